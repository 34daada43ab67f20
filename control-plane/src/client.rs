//! A client of the admin API, for the `meshplug` CLI: rollout status and controls.

use serde_json::Value;

use crate::Error;

/// Talks to one control plane's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client of the admin API at `base` (e.g. `http://127.0.0.1:18080`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Admin(format!("HTTP client: {e}")))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// `GET /api/v1/rollouts`.
    pub async fn rollouts(&self) -> Result<Value, Error> {
        self.get("/api/v1/rollouts").await
    }

    /// `GET` a JSON document.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| Error::Admin(format!("GET {url}: {e}")))?;
        read(response, &url).await
    }

    /// `POST /api/v1/rollouts/{plugin}/{action}`; the server's message.
    pub async fn control(&self, plugin: &str, action: &str, body: Value) -> Result<String, Error> {
        let url = format!("{}/api/v1/rollouts/{plugin}/{action}", self.base);
        let mut request = self.http.post(&url).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Error::Admin(format!("POST {url}: {e}")))?;
        let reply = read(response, &url).await?;
        Ok(reply["message"].as_str().unwrap_or_default().to_string())
    }
}

async fn read(response: reqwest::Response, url: &str) -> Result<Value, Error> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| Error::Admin(format!("{url}: {status}: unreadable answer: {e}")))?;
    if status.is_success() {
        Ok(body)
    } else {
        let message = body["error"].as_str().unwrap_or("no message").to_string();
        Err(Error::Admin(format!("{url}: {status}: {message}")))
    }
}

/// The rollouts as a terminal table: one line per filter.
pub fn rollout_table(list: &Value) -> String {
    let mut out = format!(
        "{:<16} {:<14} {:<14} {:<10} {:<12} {:>7} {:>11}\n",
        "FILTER", "LAST GOOD", "ROLLING OUT", "STAGE", "STATE", "CANARY", "QUARANTINED"
    );
    let short = |v: &Value| {
        v.as_str()
            .map_or("-".to_string(), |s| s.chars().take(12).collect())
    };
    for plugin in list["plugins"].as_array().into_iter().flatten() {
        let rollout = &plugin["rollout"];
        let stage = match (&rollout["stage"]["stage"], &rollout["stage"]["index"]) {
            (Value::String(s), Value::Number(i)) => format!("{s} {i}"),
            (Value::String(s), _) => s.clone(),
            _ => "-".into(),
        };
        let state = if rollout.is_null() {
            "stable".to_string()
        } else if rollout["paused"].is_null() {
            "progressing".to_string()
        } else {
            "paused".to_string()
        };
        out.push_str(&format!(
            "{:<16} {:<14} {:<14} {:<10} {:<12} {:>7} {:>11}\n",
            plugin["name"].as_str().unwrap_or("?"),
            short(&plugin["last_good"]["sha256"]),
            short(&rollout["to"]["sha256"]),
            stage,
            state,
            rollout["canary"].as_array().map_or(0, Vec::len),
            plugin["quarantine"].as_object().map_or(0, |q| q.len()),
        ));
        if let Some(paused) = rollout["paused"]["reason"].as_str() {
            out.push_str(&format!("  paused: {paused}\n"));
        }
        if let Some(last) = plugin["recent_decisions"].as_array().and_then(|d| d.last()) {
            out.push_str(&format!(
                "  last decision: {} ({})\n",
                last["action"].as_str().unwrap_or("?"),
                last["reason"].as_str().unwrap_or("")
            ));
        }
    }
    out
}
