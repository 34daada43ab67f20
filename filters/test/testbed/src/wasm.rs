//! The proxy-wasm adapter. Host-call failures are logged, never unwrapped (except in the
//! `panic` variant, whose point is to panic).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::{SLOW_MS, Variant, variant};

type Waiting = Rc<RefCell<VecDeque<(u32, u64)>>>;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { heartbeat: None, waiting: Rc::default() })
    });
}}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

struct Root {
    heartbeat: Option<u32>,
    waiting: Waiting,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if variant() == Variant::ConfigureFails {
            let _ = hostcalls::log(
                LogLevel::Error,
                "testbed: refusing the configuration (configure-fails variant)",
            );
            return false;
        }
        let filter = hostcalls::get_property(vec!["plugin_name"])
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| "testbed".into());
        let metric = format!("meshplug_heartbeat_{filter}");
        self.heartbeat = hostcalls::define_metric(MetricType::Counter, &metric).ok();
        if variant() == Variant::Slow {
            let _ = hostcalls::set_tick_period(Duration::from_millis(10));
        }
        true
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        let mut waiting = self.waiting.borrow_mut();
        while let Some((context, due)) = waiting.front().copied() {
            if due > now {
                break;
            }
            waiting.pop_front();
            if hostcalls::set_effective_context(context).is_ok() {
                let _ = hostcalls::resume_http_request();
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            id: context_id,
            heartbeat: self.heartbeat,
            waiting: Rc::clone(&self.waiting),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    id: u32,
    heartbeat: Option<u32>,
    waiting: Waiting,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, _end: bool) -> Action {
        if let Some(metric) = self.heartbeat {
            let _ = hostcalls::increment_metric(metric, 1);
        }
        match variant() {
            Variant::Panic => panic!("testbed: panic variant"),
            Variant::Status500 => {
                let tag = ("x-meshplug-filter", "variant/status-500");
                let _ = hostcalls::send_http_response(
                    500,
                    vec![tag],
                    Some(b"testbed: status-500 variant\n"),
                );
                Action::Pause
            }
            Variant::Slow => {
                self.waiting
                    .borrow_mut()
                    .push_back((self.id, now_ms() + SLOW_MS));
                Action::Pause
            }
            Variant::Loop => loop {
                // A host call per turn, so nothing optimises the loop away.
                let _ = hostcalls::get_current_time();
            },
            Variant::Good | Variant::GoodV2 | Variant::ConfigureFails => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end: bool) -> Action {
        let tag = format!("variant/{}", variant().name());
        let _ = hostcalls::set_map_value(
            proxy_wasm::types::MapType::HttpResponseHeaders,
            "x-meshplug-filter",
            Some(&tag),
        );
        Action::Continue
    }
}
