use meshplug_sdk::mock::{Harness, Request};

use super::HelloHeaders;

#[test]
fn hello_is_answered_by_the_filter() {
    let mut harness = Harness::<HelloHeaders>::new("").expect("config");
    let exchange = harness.send(&Request::get("/hello"));
    assert_eq!(exchange.status(), 200);
    assert_eq!(exchange.response_header("hello").as_deref(), Some("World"));
    assert_eq!(
        exchange.response_header("powered-by").as_deref(),
        Some("proxy-wasm")
    );
    assert_eq!(exchange.body(), b"Hello, World!\n");
    assert!(exchange.upstream_headers.is_none());
}

#[test]
fn other_paths_pass_unchanged_and_every_header_is_logged() {
    let mut harness = Harness::<HelloHeaders>::new("").expect("config");
    harness.upstream.headers = vec![("server".into(), "up".into())];
    let request = Request::get("/other")
        .header("x-one", "1")
        .header("x-one", "2");
    let exchange = harness.send(&request);
    assert_eq!(exchange.status(), 200);
    assert_eq!(
        exchange.upstream_headers.as_deref(),
        Some(request.headers.as_slice())
    );
    let logs = harness.host.logs.borrow();
    for line in [
        "request header: <x-one: 1>",
        "request header: <x-one: 2>",
        "request header: <:path: /other>",
        "response header: <server: up>",
    ] {
        assert!(logs.iter().any(|(_, l)| l == line), "{line} in {logs:?}");
    }
}

#[test]
fn the_sdk_readme_shows_this_example_verbatim() {
    let readme = include_str!("../../../sdk/README.md");
    let source = include_str!("lib.rs");
    let example = source
        .split("\n#[cfg(test)]\nmod tests;")
        .next()
        .unwrap_or(source)
        .trim_end();
    assert!(
        readme.contains(&format!("```rust\n{example}\n```")),
        "filters/sdk/README.md must show filters/examples/hello-headers/src/lib.rs as it is"
    );
}
