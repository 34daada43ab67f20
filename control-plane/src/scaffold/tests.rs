use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn files() -> BTreeMap<PathBuf, String> {
    filter_files("greet", Path::new("filters"), Path::new("filters/sdk"))
        .expect("files")
        .into_iter()
        .collect()
}

#[test]
fn a_new_filter_has_its_crate_its_fixtures_and_its_cases() {
    let files = files();
    let cargo = &files[Path::new("filters/greet/Cargo.toml")];
    assert!(cargo.contains("name = \"greet\""), "{cargo}");
    assert!(
        cargo.contains("meshplug-sdk = { path = \"../sdk\" }"),
        "{cargo}"
    );
    let lib = &files[Path::new("filters/greet/src/lib.rs")];
    assert!(lib.contains("const NAME: &'static str = \"greet\";") && !lib.contains("{{"));
    let fixtures = &files[Path::new("filters/greet/preflight/fixtures.json")];
    let parsed = meshplug_preflight::parse_fixtures(fixtures.as_bytes()).expect("fixtures parse");
    assert_eq!(parsed[0].expect.headers["x-greet"], "hello");
    let cases: serde_json::Value =
        serde_norway::from_str(&files[Path::new("filters/greet/cases.yaml")]).expect("yaml");
    let cases: meshplug_preflight::CasesFile = serde_json::from_value(cases).expect("cases parse");
    assert_eq!(cases.cases.len(), 2);
    let envoy: serde_norway::Value =
        serde_norway::from_str(&files[Path::new("filters/greet/envoy.yaml")]).expect("yaml");
    let rendered = crate::testkit::render::render(
        &envoy,
        &crate::testkit::render::RenderInputs {
            filters: &BTreeSet::from(["greet".to_string()]),
            fakes: &BTreeMap::from([("api".to_string(), "127.0.0.1:1".parse().expect("a"))]),
            xds: "127.0.0.1:2".parse().expect("a"),
            node_id: "n",
        },
    )
    .expect("meshplug test can run it");
    assert_eq!(rendered.filter_configs["greet"], r#"{"greeting": "hello"}"#);
}

#[test]
fn names_and_paths_are_checked() {
    for bad in ["Greet", "1x", "a_b", "x-", ""] {
        assert!(
            filter_files(bad, Path::new("filters"), Path::new("filters/sdk")).is_err(),
            "{bad}"
        );
    }
    let deep = filter_files("a", Path::new("crates/filters"), Path::new("vendor/sdk")).expect("ok");
    assert!(
        deep[0].1.contains("path = \"../../../vendor/sdk\""),
        "{}",
        deep[0].1
    );
    assert!(filter_files("a", Path::new("../x"), Path::new("filters/sdk")).is_err());
}
