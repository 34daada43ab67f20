//! `nodes.json`: the node model as saved, by node id. A file written before the node model
//! (per node: `desired`, `acked`, `applied` maps and `last_nack` pairs, no identity) is read
//! into the same shape.

use std::collections::BTreeMap;

use meshplug_core::nodes::Node;
use serde_json::{Map, Value, json};

/// Reads a saved `nodes.json`, current or older.
pub(super) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Node>, serde_json::Error> {
    let entries: BTreeMap<String, Value> = serde_json::from_slice(bytes)?;
    entries
        .into_iter()
        .map(|(id, value)| {
            let value = if value.get("id").is_some() {
                value
            } else {
                from_before_the_node_model(&id, &value)
            };
            Ok((id, serde_json::from_value(value)?))
        })
        .collect()
}

fn from_before_the_node_model(id: &str, old: &Value) -> Value {
    let mut filters: Map<String, Value> = Map::new();
    for field in ["desired", "acked", "applied"] {
        let Some(map) = old.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (filter, version) in map {
            let entry = filters.entry(filter.clone()).or_insert_with(|| json!({}));
            entry[field] = version.clone();
        }
    }
    if let Some(map) = old.get("last_nack").and_then(Value::as_object) {
        for (filter, pair) in map {
            let (Some(version), Some(error)) = (pair.get(0), pair.get(1)) else {
                continue;
            };
            let entry = filters.entry(filter.clone()).or_insert_with(|| json!({}));
            entry["last_nack"] = json!({"version": version, "error": error});
        }
    }
    json!({"id": id, "filters": filters})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_before_the_node_model_keeps_every_version() {
        let old = br#"{"n1":{"desired":{"authz":"v2"},"acked":{"authz":"v1"},
            "last_nack":{"authz":["v2","bad config"]},"applied":{"authz":"v1"}}}"#;
        let nodes = parse(old).expect("reads");
        let authz = &nodes["n1"].filters["authz"];
        assert_eq!(authz.desired.as_deref(), Some("v2"));
        assert_eq!(authz.acked.as_deref(), Some("v1"));
        assert_eq!(authz.applied.as_deref(), Some("v1"));
        let nack = authz.last_nack.as_ref().expect("nack");
        assert_eq!(
            (nack.version.as_str(), nack.error.as_str()),
            ("v2", "bad config")
        );
        assert_eq!(nodes["n1"].id, "n1");
    }

    #[test]
    fn the_current_shape_round_trips() {
        let text = r#"{"n1":{"id":"n1","cluster":"edge","envoy_version":"1.40.0","metadata":{},
            "connected":true,"connected_since_unix_ms":5,"filters":{"authz":{"desired":"v1",
            "sent":"v1","acked":"v1","applied":null,"last_nack":null,"sends":1}}}}"#;
        let nodes = parse(text.as_bytes()).expect("reads");
        assert_eq!(nodes["n1"].cluster, "edge");
        assert_eq!(nodes["n1"].filters["authz"].sends, 1);
    }
}
