use std::path::Path;

use super::*;

fn wasm(name: &str) -> Option<WatchedFile> {
    Some(WatchedFile::Artifact {
        name: name.into(),
        kind: ArtifactKind::Wasm,
    })
}

fn native(name: &str) -> Option<WatchedFile> {
    Some(WatchedFile::Artifact {
        name: name.into(),
        kind: ArtifactKind::Native,
    })
}

#[test]
fn classifies_by_file_name() {
    let table = [
        ("/a/authz.wasm", wasm("authz")),
        ("/a/libauthz.so", native("authz")),
        ("/a/libheader-rewrite.so", native("header-rewrite")),
        ("/a/authz.so", None),
        ("/a/libAuthz.so", None),
        ("/a/.libauthz.so.tmp.12", None),
        ("/a/header-rewrite.wasm", wasm("header-rewrite")),
        (
            "/a/authz.json",
            Some(WatchedFile::Config {
                name: "authz".into(),
                shape: crate::config_shape::ConfigShape::Json,
            }),
        ),
        (
            "/a/authz.config",
            Some(WatchedFile::Config {
                name: "authz".into(),
                shape: crate::config_shape::ConfigShape::Text,
            }),
        ),
        (
            "/a/authz.fixtures.json",
            Some(WatchedFile::Fixtures {
                name: "authz".into(),
            }),
        ),
        (
            "/a/authz.schema.json",
            Some(WatchedFile::Schema {
                name: "authz".into(),
            }),
        ),
        ("/a/Bad.fixtures.json", None),
        ("/a/.authz.wasm", None),
        ("/a/authz.wasm~", None),
        ("/a/authz.wasm.tmp", None),
        ("/a/authz.wasm.tmp.123", None),
        ("/a/authz.wasm.part", None),
        ("/a/.authz.wasm.swp", None),
        ("/a/Authz.wasm", None),
        ("/a/1authz.wasm", None),
        ("/a/authz.txt", None),
        ("/a/authz", None),
        ("/a/a.b.wasm", None),
        (
            "/a/authz.wasm.minisig",
            Some(WatchedFile::Signature {
                name: "authz".into(),
                build: "authz.wasm".into(),
            }),
        ),
        (
            "/a/libauthz.so.release-team.minisig",
            Some(WatchedFile::Signature {
                name: "authz".into(),
                build: "libauthz.so".into(),
            }),
        ),
        ("/a/authz.json.minisig", None),
        ("/a/authz.minisig", None),
    ];
    for (path, expected) in table {
        assert_eq!(classify(Path::new(path)), expected, "{path}");
    }
}

#[test]
fn filter_names_are_plain_and_bounded() {
    assert!(is_filter_name("a"));
    assert!(is_filter_name("rate_limit-2"));
    assert!(!is_filter_name(""));
    assert!(!is_filter_name("-a"));
    assert!(!is_filter_name(&"a".repeat(64)));
    assert!(is_filter_name(&"a".repeat(63)));
}

#[test]
fn every_ignored_name_has_a_reason() {
    let table = [
        ("/a/Authz.wasm", "is not a filter name"),
        ("/a/libAuthz.so", "is not a filter name"),
        ("/a/authz.so", "lib<name>.so"),
        ("/a/1authz.json", "is not a filter name"),
        ("/a/authz.wasm~", "partial file"),
        ("/a/.authz.wasm", "hidden"),
        ("/a/authz.txt", "not <name>.wasm"),
        ("/a/authz", "not <name>.wasm"),
        ("/a/a b.wasm", "is not a filter name"),
        ("/a/Bad.fixtures.json", "is not a filter name"),
    ];
    for (path, expected) in table {
        assert_eq!(classify(Path::new(path)), None, "{path}");
        let reason = ignored_reason(Path::new(path));
        assert!(reason.contains(expected), "{path}: {reason}");
    }
}
