//! The SDK's examples (`filters/examples/`) are twins of the third-party corpus
//! (`../shared/compat/`): written fresh on meshplug's SDK, they must do what the corpus README
//! says the originals do, through a real Envoy under meshplug, as `.wasm` and as `.so`. Each
//! test runs one example both ways with the same assertions the corpus tests use; as `.wasm`
//! the example's shipped pre-flight fixtures run before the push (a failing one is refused).

use std::time::Duration;

use e2e::compat::{
    cluster_manifest, composed_with_build, example_build, example_fixtures_line,
    lua_metadata_plugin, secret_listener, wait_for_answer, wait_for_auth_verdict, wait_for_header,
};
use e2e::upstream::{UPSTREAM_BODY, Upstream};
use e2e::{Mesh, eventually};

const KINDS: [bool; 2] = [false, true];

fn kind(native: bool) -> &'static str {
    if native { ".so" } else { ".wasm" }
}

/// A composed mesh running `example` (built as `.so` when `native`) as plugin `plugin` with
/// the extra `spec` lines and its fixtures, after the manifests `before` (folder, file, text),
/// its Envoy's chain `chain` (`[plugin]` when empty).
async fn twin_after(
    (example, native): (&str, bool),
    (plugin, spec): (&str, &str),
    before: &[(&str, &str, &str)],
    chain: &[&str],
) -> Mesh {
    let (path, file) = example_build(example, native).expect("make filters built the examples");
    let spec = format!(
        "{spec}{}",
        example_fixtures_line(example).expect("fixtures")
    );
    let chain = if chain.is_empty() {
        &[plugin][..]
    } else {
        chain
    };
    let mesh = composed_with_build(&path, &file, (plugin, &spec), before, chain)
        .await
        .expect("mesh");
    assert_kind(&mesh, plugin, native).await;
    mesh
}

/// [`twin_after`] with nothing before it.
async fn twin(example: &str, native: bool, plugin: &str, spec: &str) -> Mesh {
    twin_after((example, native), (plugin, spec), &[], &[]).await
}

/// Fails unless plugin `plugin` runs the kind the test asked for.
async fn assert_kind(mesh: &Mesh, plugin: &str, native: bool) {
    let status = mesh.control_plane.plugin(plugin).await.expect("plugin");
    let want = if native { "native" } else { "wasm" };
    assert_eq!(status["artifact"]["kind"], want, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_headers_answers_hello_itself_and_passes_the_rest() {
    for native in KINDS {
        let mesh = twin("hello-headers", native, "hello", "").await;
        wait_for_answer(&mesh, "/hello", |a| {
            let ours = (
                a.status,
                a.header("hello"),
                a.header("powered-by"),
                a.body.trim_end(),
            );
            (ours == (200, Some("World"), Some("proxy-wasm"), "Hello, World!"))
                .then_some(())
                .ok_or_else(|| format!("{} {ours:?}", kind(native)))
        })
        .await;
        let passed = mesh.get(0, "/other", &[]).await.expect("request");
        assert_eq!((passed.status, passed.body.as_str()), (200, UPSTREAM_BODY));
        assert_eq!(passed.header("hello"), None, "{}", kind(native));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_redaction_replaces_a_body_with_a_secret_whole() {
    let secret = "a secret here\n";
    let listener = secret_listener(secret);
    let redacted = format!("Original message body ({} bytes) redacted.\n", secret.len());
    for native in KINDS {
        let mesh = twin("body-redaction", native, "redact", "").await;
        mesh.write_manifest("mesh", "ingress.yaml", &listener)
            .expect("listener");
        wait_for_answer(&mesh, "/secret", |a| {
            (a.status == 200 && a.body == redacted && a.header("content-length").is_none())
                .then_some(())
                .ok_or_else(|| format!("{} {} {:?}", kind(native), a.status, a.body))
        })
        .await;
        let passed = mesh.get(0, "/", &[]).await.expect("request");
        assert_eq!((passed.status, passed.body.as_str()), (200, UPSTREAM_BODY));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_header_carries_its_plain_text_configuration() {
    const TEXT: &str = "The secret to life is meaningless unless you discover it yourself";
    for native in KINDS {
        let mesh = twin(
            "config-header",
            native,
            "conf",
            &format!("  configText: {TEXT:?}\n"),
        )
        .await;
        wait_for_header(&mesh, 0, "custom-header", TEXT).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callout_auth_follows_the_callouts_answer() {
    let even = Upstream::start_answering("0").await.expect("even server");
    let odd = Upstream::start_answering("1").await.expect("odd server");
    for native in KINDS {
        let cluster = cluster_manifest("httpbin", even.addr);
        let before = [("mesh", "httpbin.yaml", cluster.as_str())];
        let spec = ("auth", "  callouts: [httpbin]\n");
        let mesh = twin_after(("callout-auth", native), spec, &before, &[]).await;
        wait_for_auth_verdict(&mesh, 0, true).await;
        mesh.write_manifest(
            "mesh",
            "httpbin.yaml",
            &cluster_manifest("httpbin", odd.addr),
        )
        .expect("cluster moved");
        wait_for_auth_verdict(&mesh, 0, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_reader_answers_from_what_a_lua_filter_set() {
    for native in KINDS {
        let lua = lua_metadata_plugin("string.upper");
        let before = [("plugins", "lua.yaml", lua.as_str())];
        let spec = ("metadata", "  phase: authz\n");
        let chain = ["lua", "metadata"];
        let mesh = twin_after(("metadata-reader", native), spec, &before, &chain).await;
        let want = "Custom response with Envoy metadata: \"HELLO\"\n";
        eventually(Duration::from_secs(30), want, || async {
            let answer = mesh
                .get(0, "/", &[("x-custom-metadata", "hello")])
                .await
                .map_err(|e| e.to_string())?;
            let ours = (
                answer.status,
                answer.header("uppercased-metadata"),
                answer.body.as_str(),
            );
            (ours == (200, Some("HELLO"), want))
                .then_some(())
                .ok_or_else(|| format!("{} {ours:?}", kind(native)))
        })
        .await;
        let passed = mesh.get(0, "/", &[]).await.expect("request");
        assert_eq!((passed.status, passed.body.as_str()), (200, UPSTREAM_BODY));
    }
}
