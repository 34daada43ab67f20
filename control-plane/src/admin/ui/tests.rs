//! The dashboard on 127.0.0.1:0, with a token: a visitor is sent to the login page, the token
//! sets a session cookie, the pages render what the engine holds, a control needs a
//! confirmation and a same-origin form, and the event stream greets.

use reqwest::StatusCode;
use reqwest::redirect::Policy;

use super::super::tests::admin;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Logs in with `token`: the session cookie, or the redirect's target when refused.
async fn log_in(base: &str, token: &str) -> Result<String, String> {
    let answer = client()
        .post(format!("{base}/ui/login"))
        .form(&[("token", token), ("next", "/ui/rollouts/authz")])
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let location = answer.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    match answer.headers().get("set-cookie") {
        Some(cookie) => {
            let cookie = cookie.to_str().expect("ascii");
            assert!(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
                "{cookie}"
            );
            assert_eq!(location, "/ui/rollouts/authz");
            Ok(cookie.split(';').next().expect("pair").to_string())
        }
        None => Err(location),
    }
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn a_visitor_logs_in_with_the_token_and_sees_the_pages() {
    let api = admin(Some("s3cret")).await;
    let refused = get(&api.base, "/ui/", None).await;
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    assert_eq!(refused.headers()["location"], "/ui/login?next=/ui/");
    let wrong = log_in(&api.base, "nope").await.expect_err("refused");
    assert!(wrong.starts_with("/ui/login?failed=true"), "{wrong}");
    let cookie = log_in(&api.base, "s3cret").await.expect("logged in");
    for (path, expected) in [
        ("/ui/", "Fleet"),
        ("/ui/rollouts/authz", "Rollout authz"),
        (
            "/ui/plugins/authz",
            "<p id=\"targets\">every proxy (no plugin manifest names it)",
        ),
        ("/ui/manifests", "Manifests do not govern"),
    ] {
        let page = get(&api.base, path, Some(&cookie)).await;
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let text = page.text().await.expect("text");
        assert!(text.contains(expected), "{path}: {text}");
        assert!(text.starts_with("<!DOCTYPE html>"), "{path}");
    }
    // The bearer token works as well as the cookie; a forged cookie does not.
    let bearer = client()
        .get(format!("{}/ui/", api.base))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("send");
    assert_eq!(bearer.status(), StatusCode::OK);
    let forged = get(&api.base, "/ui/", Some("meshplug_session=00")).await;
    assert_eq!(forged.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_rollout_page_shows_the_rollout_and_a_fragment_is_its_main() {
    let api = admin(None).await;
    let text = get(&api.base, "/ui/rollouts/authz", None)
        .await
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("id=\"state\" data-state=\"progressing\""),
        "{text}"
    );
    assert!(text.contains("id=\"last-good\">aaaa<"), "{text}");
    assert!(text.contains("id=\"rolling\">bbbb<"), "{text}");
    assert!(text.contains("Started rolling out bbbb:cfg"), "{text}");
    let fragment = client()
        .get(format!("{}/ui/rollouts/authz", api.base))
        .header("x-meshplug-fragment", "1")
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(
        fragment.starts_with("<main>") && fragment.ends_with("</main>"),
        "{fragment}"
    );
}

#[tokio::test]
async fn a_control_is_confirmed_then_carried_out_from_this_origin_only() {
    let api = admin(None).await;
    let confirm = get(&api.base, "/ui/rollouts/authz/pause", None).await;
    let text = confirm.text().await.expect("text");
    assert!(text.contains("Confirm pause"), "{text}");
    let url = format!("{}/ui/rollouts/authz/pause", api.base);
    let foreign = client()
        .post(&url)
        .header("origin", "http://evil.example")
        .form(&[("full", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let host = api.base.trim_start_matches("http://").to_string();
    let done = client()
        .post(&url)
        .header("origin", format!("http://{host}"))
        .form(&[("full", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let location = done.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        location.starts_with("/ui/rollouts/authz?done=authz%3A%20paused"),
        "{location}"
    );
    let rollouts = api.get_json("/api/v1/rollouts").await;
    let reason = &rollouts["plugins"][0]["rollout"]["paused"]["reason"];
    assert!(reason.is_string(), "{rollouts}");
}

#[tokio::test]
async fn the_event_stream_greets_then_says_what_changed() {
    use futures::StreamExt;
    let api = admin(None).await;
    let answer = get(&api.base, "/ui/events", None).await;
    assert_eq!(answer.headers()["content-type"], "text/event-stream");
    let mut body = answer.bytes_stream();
    let first = body.next().await.expect("an event").expect("bytes");
    assert!(
        String::from_utf8_lossy(&first).starts_with("event: hello"),
        "{first:?}"
    );
    api.http
        .post(format!("{}/api/v1/rollouts/authz/pause", api.base))
        .send()
        .await
        .expect("pause");
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("in time")
        .expect("an event")
        .expect("bytes");
    assert!(
        String::from_utf8_lossy(&next).starts_with("event: change"),
        "{next:?}"
    );
}
