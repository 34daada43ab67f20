use super::*;

#[test]
fn a_store_url_names_endpoints_and_a_prefix() {
    let config = ReplicaConfig::parse("etcd://10.0.0.1:2379,10.0.0.2:2379/prod/mesh/").expect("ok");
    assert_eq!(config.endpoints, ["10.0.0.1:2379", "10.0.0.2:2379"]);
    assert_eq!(config.prefix, "/prod/mesh");
    let config = ReplicaConfig::parse("etcd://127.0.0.1:2379").expect("ok");
    assert_eq!(config.prefix, "/meshplug", "the default prefix");
}

#[test]
fn a_bad_store_url_is_refused_with_the_shape_expected() {
    for (url, why) in [
        ("http://127.0.0.1:2379", "not an etcd:// URL"),
        ("etcd://", "no endpoint"),
        ("etcd://127.0.0.1", "has no port"),
        ("etcd://127.0.0.1:2379/", "the prefix is empty"),
    ] {
        let err = ReplicaConfig::parse(url).expect_err(url).to_string();
        assert!(err.contains(why), "{url}: {err}");
        assert!(err.contains("etcd://host:port"), "{url}: {err}");
    }
}
