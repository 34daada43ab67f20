//! The dashboard in a real headless Chromium, with an admin token: log in; watch a canary
//! rollout of a bad build on its rollout page, which shows the failing traffic gate with its
//! numbers, then the rollback and the quarantine, without a reload; see a NACK on the fleet
//! page; pause a rollout by clicking, checked through the API. Screenshots of each page go to
//! `target/ui-screenshots/`.

use std::time::Duration;

use e2e::browser::Browser;
use e2e::rollout::{RolloutMesh, TEST_POLICY};

const TOKEN: &str = "dashboard-token";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_a_rollout_live() {
    // The test policy, with a first canary step that outlasts the clicks of the pause (it
    // ended before them in one CI run); a first version and a rollback do not wait for it.
    let policy = TEST_POLICY.replace("\"minDuration\": \"3s\"", "\"minDuration\": \"120s\"");
    let bed = RolloutMesh::start_with_args(&policy, false, &["--admin-token", TOKEN])
        .await
        .expect("mesh starts");
    let good = bed.deploy_first("good").await.expect("good deployed");
    let browser = Browser::start().await.expect("chromium starts");
    log_in(&bed, &browser).await;
    watch_a_bad_build(&bed, &browser, &good).await;
    see_a_nack(&bed, &browser).await;
    pause_by_clicking(&bed, &browser).await;
    for (path, name) in [
        ("/ui/plugins/authz", "plugin"),
        ("/ui/manifests", "manifests"),
    ] {
        let url = bed.mesh.control_plane.admin_url(path);
        browser.goto(&url).await.expect("open");
        browser.wait_text("h1", WAIT, |t| !t.is_empty()).await;
        browser.screenshot(name).await.expect("screenshot");
    }
}

/// Every page needs the token: the login form sets the session.
async fn log_in(bed: &RolloutMesh, browser: &Browser) {
    browser
        .goto(&bed.mesh.control_plane.admin_url("/ui/"))
        .await
        .expect("open");
    browser.wait_text("h1", WAIT, |t| t == "Log in").await;
    browser.screenshot("login").await.expect("screenshot");
    browser.type_into("#token", TOKEN).await.expect("type");
    browser.click("#login").await.expect("log in");
    browser.wait_text("h1", WAIT, |t| t == "Fleet").await;
    browser
        .wait_text("#fleet", WAIT, |t| t.contains("envoy-2"))
        .await;
    browser.screenshot("fleet").await.expect("screenshot");
}

/// A bad build, watched on its rollout page, with no reload (the marker stays).
async fn watch_a_bad_build(bed: &RolloutMesh, browser: &Browser, good: &str) {
    let page = bed.mesh.control_plane.admin_url("/ui/rollouts/authz");
    browser.goto(&page).await.expect("open the rollout");
    browser.wait_text("#live", WAIT, |t| t == "live").await;
    browser
        .run("window.stayed = true; return 1")
        .await
        .expect("marker");
    let (bad, _) = bed.publish("panic").expect("publish the bad build");
    let verdict = browser
        .wait_text("#verdict", WAIT, |t| t.contains("5xx ratio"))
        .await;
    let traffic = browser.text("#traffic").await.unwrap_or_default();
    assert!(
        traffic.contains("5xx ratio") && traffic.contains('['),
        "{traffic}"
    );
    println!("the failing look, as the page shows it: {verdict}\n{traffic}");
    browser
        .screenshot("rollout-failing")
        .await
        .expect("screenshot");
    browser
        .wait_text("#quarantine", WAIT, |t| t.contains(&bad[..12]))
        .await;
    let timeline = browser.text("#timeline").await.unwrap_or_default();
    assert!(timeline.contains("rollback (traffic gate)"), "{timeline}");
    assert_eq!(
        browser
            .run("return window.stayed === true")
            .await
            .expect("marker"),
        serde_json::json!(true),
        "the page updated itself, without a reload"
    );
    assert_eq!(
        browser.text("#last-good").await.as_deref(),
        Some(&good[..12])
    );
    browser
        .screenshot("rollout-rolled-back")
        .await
        .expect("screenshot");
}

/// A build Envoy refuses: the fleet page shows the NACK message.
async fn see_a_nack(bed: &RolloutMesh, browser: &Browser) {
    browser
        .goto(&bed.mesh.control_plane.admin_url("/ui/"))
        .await
        .expect("fleet");
    bed.publish("configure-fails").expect("publish");
    browser
        .wait_text("#fleet", WAIT, |t| {
            t.contains("last NACK") && t.contains("Wasm plugin")
        })
        .await;
    browser.screenshot("fleet-nack").await.expect("screenshot");
}

/// A pause clicked in the browser (and confirmed) pauses the rollout.
async fn pause_by_clicking(bed: &RolloutMesh, browser: &Browser) {
    let (next, _) = bed.publish("good-v2").expect("publish");
    browser
        .goto(&bed.mesh.control_plane.admin_url("/ui/rollouts/authz"))
        .await
        .expect("rollout");
    browser
        .wait_text("#rolling", WAIT, |t| next.starts_with(t))
        .await;
    browser.click("#pause").await.expect("pause");
    browser
        .wait_text("h1", WAIT, |t| t.starts_with("Confirm"))
        .await;
    browser
        .screenshot("confirm-pause")
        .await
        .expect("screenshot");
    browser.click("#confirm").await.expect("confirm");
    let done = browser
        .wait_text("#done", WAIT, |t| {
            t.contains("paused") || t.contains("refused")
        })
        .await;
    let record = bed.plugin().await.expect("rollout record");
    // A refusal means the rollout ended before the click: say how, for the next person.
    assert!(
        done.contains("paused"),
        "{done}; the rollout record: {record}"
    );
    assert!(record["rollout"]["paused"]["manual"] == true, "{record}");
    browser
        .screenshot("rollout-paused")
        .await
        .expect("screenshot");
}
