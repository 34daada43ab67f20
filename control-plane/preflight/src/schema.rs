//! Checks a filter's configuration against the JSON Schema it ships.

use crate::Rejection;

/// Validates `config` (JSON bytes) against `schema`; the first violation names its field.
pub(crate) fn check_config(schema: &serde_json::Value, config: &[u8]) -> Result<(), Rejection> {
    let instance: serde_json::Value =
        serde_json::from_slice(config).map_err(|err| Rejection::Schema {
            path: "/".into(),
            message: format!("configuration is not JSON: {err}"),
        })?;
    let validator = jsonschema::validator_for(schema).map_err(|err| Rejection::Schema {
        path: "(schema)".into(),
        message: format!("the filter's schema is invalid: {err}"),
    })?;
    match validator.iter_errors(&instance).next() {
        None => Ok(()),
        Some(err) => {
            let path = err.instance_path().to_string();
            Err(Rejection::Schema {
                path: if path.is_empty() { "/".into() } else { path },
                message: err.to_string(),
            })
        }
    }
}
