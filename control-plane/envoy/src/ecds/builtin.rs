//! A built-in Envoy HTTP filter as an ECDS resource. Its configuration arrives as protobuf
//! JSON with its `@type` (`{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", …}`);
//! meshplug has no descriptors to encode every Envoy message, so the resource carries it as
//! an `xds.type.v3.TypedStruct` (the type URL and the fields as a `google.protobuf.Struct`),
//! which Envoy turns into the typed message itself when it takes the resource. The control
//! plane checked it with Envoy's own `--mode validate` before (see `meshplug::builtin`).

use envoy_types::pb::google::protobuf::{ListValue, NullValue, Struct, Value, value::Kind};
use prost::Message;
use xds::proto::Any;

/// The type URL of `xds.type.v3.TypedStruct`.
pub const TYPED_STRUCT: &str = "type.googleapis.com/xds.type.v3.TypedStruct";

/// `xds.type.v3.TypedStruct` (envoy-types does not generate it): a message of `type_url`
/// given as a `Struct`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypedStruct {
    /// `type_url` (1): the message the value is.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// `value` (2): its fields, as protobuf JSON maps them.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Struct>,
}

/// The typed config of a built-in filter from its protobuf JSON (an object with `@type`), or
/// why not.
pub fn builtin_config(config_json: &str) -> Result<Any, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(config_json).map_err(|e| format!("not JSON: {e}"))?;
    let serde_json::Value::Object(mut fields) = parsed else {
        return Err("not a JSON object".into());
    };
    let Some(serde_json::Value::String(type_url)) = fields.remove("@type") else {
        return Err("no `@type` string".into());
    };
    let typed = TypedStruct {
        type_url,
        value: Some(to_struct(fields)),
    };
    Ok(Any {
        type_url: TYPED_STRUCT.into(),
        value: typed.encode_to_vec(),
    })
}

/// The type URL a built-in filter's protobuf JSON names, if any.
pub fn builtin_type_url(config_json: &str) -> Option<String> {
    let parsed: serde_json::Value = serde_json::from_str(config_json).ok()?;
    parsed.get("@type")?.as_str().map(str::to_string)
}

fn to_struct(fields: serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: fields.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(NullValue::NullValue as i32),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lua_config_becomes_a_typed_struct_of_its_type() {
        let json = r#"{"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                       "default_source_code": {"inline_string": "x"}, "n": [1, true, null]}"#;
        let any = builtin_config(json).expect("typed");
        assert_eq!(any.type_url, TYPED_STRUCT);
        let typed = TypedStruct::decode(any.value.as_slice()).expect("decodes");
        assert_eq!(
            typed.type_url,
            "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
        );
        let value = typed.value.expect("fields");
        assert!(!value.fields.contains_key("@type"));
        let Some(Kind::StructValue(source)) = &value.fields["default_source_code"].kind else {
            panic!("a struct");
        };
        assert_eq!(
            source.fields["inline_string"].kind,
            Some(Kind::StringValue("x".into()))
        );
        let Some(Kind::ListValue(list)) = &value.fields["n"].kind else {
            panic!("a list");
        };
        assert_eq!(list.values.len(), 3);
    }

    #[test]
    fn a_config_without_its_type_is_refused() {
        assert!(builtin_config(r#"{"a": 1}"#).is_err());
        assert!(builtin_config("[1]").is_err());
        assert_eq!(builtin_type_url(r#"{"a": 1}"#), None);
    }
}
