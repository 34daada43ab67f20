use super::*;

#[test]
fn json_is_checked_and_kept_byte_for_byte() {
    let written = b"{\n  \"b\": 1,\n  \"a\": [1, 2]\n}\n";
    let read = ConfigShape::Json.read(written).expect("valid JSON");
    assert_eq!(
        read.as_bytes(),
        written,
        "not re-encoded, keys not reordered"
    );
    let refused = ConfigShape::Json
        .read(b"The secret to life")
        .expect_err("not JSON");
    assert!(refused.contains("not valid JSON"), "{refused}");
    assert!(
        refused.contains(".config"),
        "says how to give text: {refused}"
    );
}

#[test]
fn text_is_taken_as_it_is() {
    let written = "The secret to life is meaningless unless you discover it yourself";
    assert_eq!(
        ConfigShape::Text.read(written.as_bytes()),
        Ok(written.into())
    );
    let yaml = "a: 1\nb: [x, y]\n";
    assert_eq!(ConfigShape::Text.read(yaml.as_bytes()), Ok(yaml.into()));
    assert_eq!(ConfigShape::Text.read(b""), Ok(String::new()));
}

#[test]
fn bytes_that_are_not_utf8_are_refused_in_either_shape() {
    for shape in [ConfigShape::Json, ConfigShape::Text] {
        let refused = shape.read(&[0x22, 0xff, 0x22]).expect_err("not UTF-8");
        assert!(refused.contains("not UTF-8"), "{refused}");
    }
}

#[test]
fn the_extension_decides() {
    assert_eq!(
        ConfigShape::of_file(Path::new("/a/authz.json")),
        ConfigShape::Json
    );
    for file in ["/a/authz.config", "/a/c.yaml", "/a/plain"] {
        assert_eq!(
            ConfigShape::of_file(Path::new(file)),
            ConfigShape::Text,
            "{file}"
        );
    }
    assert_eq!(ConfigShape::Text.file_name("authz"), "authz.config");
    assert_eq!(ConfigShape::Json.other(), ConfigShape::Text);
}

#[test]
fn json_nested_past_the_limit_is_refused() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let refused = ConfigShape::Json
        .read(deep.as_bytes())
        .expect_err("too deep");
    assert!(refused.contains("recursion limit"), "{refused}");
}
