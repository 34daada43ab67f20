//! The authorization decision, independent of any proxy.

use std::collections::BTreeSet;

use meshplug_sdk::Error;
use serde::Deserialize;

/// The plugin configuration, as JSON, e.g.
/// `{"header": "x-api-key", "api_keys": ["k1"], "bearer_tokens": ["t1"],
///   "rules": [{"prefix": "/admin", "allow": ["k1"]}, {"prefix": "/health", "anonymous": true}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzSettings {
    /// The request header that carries an API key (default `x-api-key`).
    #[serde(default = "default_header")]
    pub header: String,
    /// API keys that are allowed.
    #[serde(default)]
    pub api_keys: BTreeSet<String>,
    /// Tokens accepted as `authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_tokens: BTreeSet<String>,
    /// Per-path rules; the longest matching prefix applies.
    #[serde(default)]
    pub rules: Vec<PathRule>,
}

/// A rule for paths under `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// No credential needed.
    #[serde(default)]
    pub anonymous: bool,
    /// Only these keys or tokens (empty: any valid one).
    #[serde(default)]
    pub allow: BTreeSet<String>,
}

fn default_header() -> String {
    "x-api-key".to_string()
}

/// The checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzPolicy {
    /// The API key header (lower case).
    pub header: String,
    /// Every valid credential: API keys and bearer tokens.
    pub credentials: BTreeSet<String>,
    /// Whether bearer tokens are configured (a 401 then says `WWW-Authenticate: Bearer`).
    pub bearer: bool,
    /// Rules, longest prefix first.
    pub rules: Vec<PathRule>,
}

/// Checks settings; the error names what is wrong.
pub fn check(settings: AuthzSettings) -> Result<AuthzPolicy, Error> {
    let fail = |reason: String| Err(Error::config("authz", reason));
    let header = settings.header.trim().to_ascii_lowercase();
    if header.is_empty() {
        return fail("header must not be empty".into());
    }
    let mut credentials = settings.api_keys;
    if credentials.iter().any(String::is_empty) {
        return fail("api_keys must not contain an empty key".into());
    }
    if settings.bearer_tokens.iter().any(String::is_empty) {
        return fail("bearer_tokens must not contain an empty token".into());
    }
    let bearer = !settings.bearer_tokens.is_empty();
    credentials.extend(settings.bearer_tokens);
    let mut rules = settings.rules;
    for rule in &rules {
        if !rule.prefix.starts_with('/') {
            return fail(format!("rule prefix {:?} must start with /", rule.prefix));
        }
        if let Some(unknown) = rule.allow.iter().find(|c| !credentials.contains(*c)) {
            return fail(format!(
                "rule {} allows {unknown:?}, which is not a configured key or token",
                rule.prefix
            ));
        }
    }
    rules.sort_by_key(|rule| std::cmp::Reverse(rule.prefix.len()));
    Ok(AuthzPolicy {
        header,
        credentials,
        bearer,
        rules,
    })
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Answer locally.
    Deny {
        /// HTTP status.
        status: u16,
        /// Plain-text body.
        body: &'static str,
        /// Envoy response code details.
        details: &'static str,
    },
}

/// The credential a request presents: the API key header, else a bearer token.
pub fn credential<'a>(api_key: Option<&'a str>, authorization: Option<&'a str>) -> Option<&'a str> {
    let key = api_key.map(str::trim).filter(|k| !k.is_empty());
    let token = authorization
        .map(str::trim)
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty());
    key.or(token)
}

/// Decides on a request for `path` presenting `credential`.
pub fn decide(policy: &AuthzPolicy, path: &str, credential: Option<&str>) -> Decision {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let rule = policy.rules.iter().find(|r| path.starts_with(&r.prefix));
    if rule.is_some_and(|r| r.anonymous) {
        return Decision::Allow;
    }
    let Some(credential) = credential else {
        return Decision::Deny {
            status: 401,
            body: "missing API key\n",
            details: "authz_missing_credential",
        };
    };
    if !policy.credentials.contains(credential) {
        return Decision::Deny {
            status: 403,
            body: "API key not allowed\n",
            details: "authz_unknown_credential",
        };
    }
    match rule {
        Some(rule) if !rule.allow.is_empty() && !rule.allow.contains(credential) => {
            Decision::Deny {
                status: 403,
                body: "API key not allowed on this path\n",
                details: "authz_path_denied",
            }
        }
        _ => Decision::Allow,
    }
}

#[cfg(test)]
mod tests;
