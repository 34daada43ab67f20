//! Bench-only: the job `authz` does for `make bench` (read `x-api-key`, compare with the
//! configured keys, 401 without one, 403 for an unknown one, tag allowed responses with
//! `x-meshplug-filter`) written the way a filter author would on the `proxy-wasm` crate
//! alone, with no meshplug SDK. `bench-filters` measures our SDK's `.wasm` against it.
//! Only built for `wasm32`; on the host this crate is empty.

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::collections::HashSet;
    use std::rc::Rc;

    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, LogLevel};

    const TAG: (&str, &str) = ("x-meshplug-filter", "authz/raw");

    #[derive(serde::Deserialize)]
    struct Settings {
        api_keys: Vec<String>,
    }

    #[derive(Default)]
    struct Root {
        keys: Rc<HashSet<String>>,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let bytes = self.get_plugin_configuration().unwrap_or_default();
            match serde_json::from_slice::<Settings>(&bytes) {
                Ok(settings) => {
                    self.keys = Rc::new(settings.api_keys.into_iter().collect());
                    true
                }
                Err(err) => {
                    proxy_wasm::hostcalls::log(LogLevel::Error, &format!("bad config: {err}")).ok();
                    false
                }
            }
        }

        fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stream {
                keys: Rc::clone(&self.keys),
                allowed: false,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stream {
        keys: Rc<HashSet<String>>,
        allowed: bool,
    }

    impl Context for Stream {}

    impl HttpContext for Stream {
        fn on_http_request_headers(&mut self, _headers: usize, _eos: bool) -> Action {
            let (status, body) = match self.get_http_request_header("x-api-key") {
                None => (401, "missing credential\n"),
                Some(key) if !self.keys.contains(&key) => (403, "forbidden\n"),
                Some(_) => {
                    self.allowed = true;
                    return Action::Continue;
                }
            };
            self.send_http_response(status, vec![TAG], Some(body.as_bytes()));
            Action::Pause
        }

        fn on_http_response_headers(&mut self, _headers: usize, _eos: bool) -> Action {
            if self.allowed {
                self.set_http_response_header(TAG.0, Some(TAG.1));
            }
            Action::Continue
        }
    }

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
    }}
}
