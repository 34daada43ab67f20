//! Bench-only: on each request, makes one proxy-wasm host call `times` times (configuration
//! `{"call": "get_header", "times": 100}`), so `bench-filters` can price a call as the CPU per
//! request it adds, divided by `times`. Calls: `none`, `get_header` (one request header),
//! `get_headers` (the whole request map), `set_header` (a response header),
//! `increment_metric`, `get_property` (`request.path`). Only built for `wasm32`.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, MapType, MetricType};

    #[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq, Default)]
    #[serde(rename_all = "snake_case")]
    enum Call {
        #[default]
        None,
        GetHeader,
        GetHeaders,
        SetHeader,
        IncrementMetric,
        GetProperty,
    }

    #[derive(serde::Deserialize, Clone, Copy, Default)]
    struct Settings {
        call: Call,
        times: u32,
    }

    #[derive(Default)]
    struct Root {
        settings: Settings,
        metric: u32,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let bytes = self.get_plugin_configuration().unwrap_or_default();
            let Ok(settings) = serde_json::from_slice(&bytes) else {
                return false;
            };
            self.settings = settings;
            self.metric = hostcalls::define_metric(MetricType::Counter, "bench_calls").unwrap_or(0);
            true
        }

        fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stream {
                settings: self.settings,
                metric: self.metric,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stream {
        settings: Settings,
        metric: u32,
    }

    impl Context for Stream {}

    impl Stream {
        fn call(&self, call: Call) {
            match call {
                Call::None => {}
                Call::GetHeader => {
                    let _ = hostcalls::get_map_value(MapType::HttpRequestHeaders, "x-api-key");
                }
                Call::GetHeaders => {
                    let _ = hostcalls::get_map(MapType::HttpRequestHeaders);
                }
                Call::SetHeader | Call::IncrementMetric | Call::GetProperty => {
                    self.call_more(call);
                }
            }
        }

        fn call_more(&self, call: Call) {
            match call {
                Call::SetHeader => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpResponseHeaders,
                        "x-bench",
                        Some("1"),
                    );
                }
                Call::IncrementMetric => {
                    let _ = hostcalls::increment_metric(self.metric, 1);
                }
                Call::GetProperty => {
                    let _ = hostcalls::get_property(vec!["request", "path"]);
                }
                _ => {}
            }
        }
    }

    impl HttpContext for Stream {
        fn on_http_request_headers(&mut self, _headers: usize, _eos: bool) -> Action {
            if self.settings.call != Call::SetHeader {
                for _ in 0..self.settings.times {
                    self.call(self.settings.call);
                }
            }
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _headers: usize, _eos: bool) -> Action {
            if self.settings.call == Call::SetHeader {
                for _ in 0..self.settings.times {
                    self.call(Call::SetHeader);
                }
            }
            Action::Continue
        }
    }

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
    }}
}
