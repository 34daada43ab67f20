//! A real headless Chromium driven over WebDriver (Debian `chromium` and `chromium-driver`,
//! installed by `make setup`), for the dashboard tests.
//!
//! `chromedriver` runs in a process group of its own on a free loopback port; the browser it
//! starts joins that group, and the guard kills the whole group on drop, panic included. The
//! browser is told to fetch nothing on its own and to send every request that is not for
//! loopback to a closed loopback port, so no traffic leaves the machine.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{HarnessError, eventually};

/// A browser session and the driver behind it.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: std::process::Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver", &self.driver.id())
            .finish_non_exhaustive()
    }
}

fn browser_error(what: &str) -> impl FnOnce(String) -> HarnessError + '_ {
    move |err| HarnessError::NotReady(format!("browser: {what}: {err}"))
}

fn find_on_path(name: &str) -> Result<PathBuf, HarnessError> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(HarnessError::Missing {
            what: "a WebDriver browser",
            path: PathBuf::from(name),
            hint: "run `make setup` (Debian chromium and chromium-driver)",
        })
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session, 1280×1000.
    pub async fn start() -> Result<Self, HarnessError> {
        let driver = find_on_path("chromedriver")?;
        let chromium = find_on_path("chromium")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(HarnessError::io("picking a port"))?
            .port();
        let profile = tempfile::tempdir().map_err(HarnessError::io("browser profile"))?;
        let mut child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(HarnessError::io("starting chromedriver"))?;
        // Connecting may fail: the guard is built first, so the driver is killed then too.
        let client = match connect(port, &chromium, &profile).await {
            Ok(client) => client,
            Err(err) => {
                kill_group(&mut child);
                return Err(err);
            }
        };
        let browser = Self {
            client,
            driver: child,
            _profile: profile,
        };
        browser
            .client
            .set_window_size(1280, 1000)
            .await
            .map_err(|e| browser_error("window size")(e.to_string()))?;
        Ok(browser)
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<(), HarnessError> {
        self.client
            .goto(url)
            .await
            .map_err(|e| browser_error("goto")(e.to_string()))
    }

    /// The text of the first element matching CSS `selector`, or `None` when there is none.
    pub async fn text(&self, selector: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(selector)).await.ok()?;
        element.text().await.ok()
    }

    /// Waits up to `timeout` until the text of `selector` satisfies `check`; returns it.
    pub async fn wait_text(
        &self,
        selector: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        eventually(timeout, &format!("{selector} in the page"), || async {
            match self.text(selector).await {
                Some(text) if check(&text) => Ok(text),
                other => Err(format!("{selector}: {other:?}")),
            }
        })
        .await
    }

    /// The first element matching CSS `selector`.
    async fn find(&self, selector: &str) -> Result<fantoccini::elements::Element, HarnessError> {
        self.client
            .find(Locator::Css(selector))
            .await
            .map_err(|e| browser_error("find")(format!("{selector}: {e}")))
    }

    /// Clicks the first element matching CSS `selector`.
    pub async fn click(&self, selector: &str) -> Result<(), HarnessError> {
        let element = self.find(selector).await?;
        element
            .click()
            .await
            .map_err(|e| browser_error("click")(format!("{selector}: {e}")))
    }

    /// Types `text` into the first element matching `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) -> Result<(), HarnessError> {
        let element = self.find(selector).await?;
        element
            .send_keys(text)
            .await
            .map_err(|e| browser_error("type")(e.to_string()))
    }

    /// Runs `script` in the page; its value.
    pub async fn run(&self, script: &str) -> Result<serde_json::Value, HarnessError> {
        self.client
            .execute(script, Vec::new())
            .await
            .map_err(|e| browser_error("script")(e.to_string()))
    }

    /// Writes a PNG of the page to `target/ui-screenshots/<name>.png`; its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, HarnessError> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|e| browser_error("screenshot")(e.to_string()))?;
        let dir = crate::paths::repo_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).map_err(HarnessError::io("screenshot folder"))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(HarnessError::io("writing a screenshot"))?;
        Ok(path)
    }
}

async fn connect(
    port: u16,
    chromium: &std::path::Path,
    profile: &tempfile::TempDir,
) -> Result<Client, HarnessError> {
    let args = [
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-default-apps".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--disable-domain-reliability".into(),
        "--disable-client-side-phishing-detection".into(),
        "--metrics-recording-only".into(),
        // Anything not for loopback goes to a closed loopback port, and fails there.
        "--proxy-server=http://127.0.0.1:9".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": chromium, "args": args}),
    );
    let url = format!("http://127.0.0.1:{port}");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = eventually(Duration::from_secs(30), "a WebDriver session", || async {
        ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    Ok(client)
}

/// Kills the driver's process group (the driver and the browsers it started) and reaps the
/// driver.
fn kill_group(driver: &mut std::process::Child) {
    if let Ok(group) = i32::try_from(driver.id()) {
        // SAFETY: `kill` has no memory-safety preconditions; the group is the driver's own
        // (it was started as the leader of a new process group), not yet reaped.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
