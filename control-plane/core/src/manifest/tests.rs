use super::*;

const PLUGIN: &str = "\
apiVersion: meshplug.dev/v1alpha1
kind: Plugin
metadata:
  name: authz
  labels:
    team: edge
spec:
  artifact: authz
  phase: authn
  priority: 10
  config:
    api_keys: [k1]
  targets:
    labels:
      tier: edge
  failurePolicy: failOpen
  rollout: immediate
";

#[test]
fn a_plugin_parses_with_its_defaults() {
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", PLUGIN).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(plugin.name, "authz");
    assert_eq!(plugin.labels["team"], "edge");
    let spec = &plugin.spec;
    assert_eq!(spec.phase, Phase::Authn);
    assert_eq!(spec.priority, 10);
    assert_eq!(spec.kind, KindChoice::Any);
    assert_eq!(spec.failure_policy, FailurePolicy::FailOpen);
    assert_eq!(spec.rollout, Some(RolloutSpec::Immediate));
    assert_eq!(spec.config, Some(serde_json::json!({"api_keys": ["k1"]})));
    assert!(spec.listeners.is_empty());
    let labels = BTreeMap::from([("tier".to_string(), "edge".to_string())]);
    assert!(spec.targets.matches("any", "any", &labels));
    assert!(!spec.targets.matches("any", "any", &BTreeMap::new()));
}

#[test]
fn a_rollout_policy_in_yaml_is_the_json_policy() {
    let text = PLUGIN.replace(
        "rollout: immediate",
        "rollout:\n    steps:\n      - nodes: 1\n        minDuration: 5s\n      - percent: 100\n    bake: 10s",
    );
    let Manifest::Plugin(plugin) = parse("p.yaml", &text).unwrap_or_else(|e| panic!("{e}")) else {
        panic!("not a plugin");
    };
    let Some(RolloutSpec::Policy(policy)) = plugin.spec.rollout else {
        panic!("no policy");
    };
    assert_eq!(policy.steps.len(), 2);
    assert_eq!(policy.bake, std::time::Duration::from_secs(10));
    assert_eq!(policy.failing_looks, Policy::default().failing_looks);
}

#[test]
fn listener_and_cluster_parse() {
    let listener = "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {name: ingress}\n\
                    spec:\n  port: 0\n  routes:\n    - prefix: /api\n      cluster: backend\n    \
                    - directResponse: {status: 404, body: nope}\n";
    let Manifest::Listener(listener) = parse("l.yaml", listener).expect("parses") else {
        panic!("not a listener");
    };
    assert_eq!(listener.spec.address, "127.0.0.1");
    assert_eq!(listener.spec.routes[1].prefix, "/");
    let cluster = "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {name: backend}\n\
                   spec:\n  endpoints: [\"127.0.0.1:8080\"]\n  connectTimeout: 250ms\n";
    let Manifest::Cluster(cluster) = parse("c.yaml", cluster).expect("parses") else {
        panic!("not a cluster");
    };
    assert_eq!(cluster.spec.addresses().len(), 1);
    assert_eq!(
        cluster.spec.connect_timeout,
        std::time::Duration::from_millis(250)
    );
}

/// Each bad manifest: the text, then the field and line the error must name, and a part of its
/// message.
#[test]
fn bad_manifests_name_file_line_and_field() {
    let cases: &[(&str, String, &str, Option<usize>, &str)] = &[
        (
            "unknown field",
            PLUGIN.replace("priority: 10", "priority: 10\n  colour: red"),
            "spec.colour",
            Some(11),
            "unknown field `colour`",
        ),
        (
            "bad phase",
            PLUGIN.replace("phase: authn", "phase: authx"),
            "spec.phase",
            Some(9),
            "unknown variant `authx`",
        ),
        (
            "wrong type",
            PLUGIN.replace("priority: 10", "priority: high"),
            "spec.priority",
            Some(10),
            "invalid type",
        ),
        (
            "missing artifact",
            PLUGIN.replace("  artifact: authz\n", ""),
            "spec",
            None,
            "give `artifact` (a build) or `envoyFilter`",
        ),
        (
            "bad name",
            PLUGIN.replace("name: authz", "name: Authz!"),
            "metadata.name",
            Some(4),
            "not a valid name",
        ),
        (
            "wrong apiVersion",
            PLUGIN.replace("v1alpha1", "v9"),
            "apiVersion",
            Some(1),
            "unsupported",
        ),
        (
            "unknown kind",
            PLUGIN.replace("kind: Plugin", "kind: Plugn"),
            "kind",
            Some(2),
            "unknown kind `Plugn`",
        ),
        (
            "bad rollout word",
            PLUGIN.replace("rollout: immediate", "rollout: soon"),
            "spec.rollout",
            Some(17),
            "invalid value",
        ),
        (
            "bad rollout rule",
            PLUGIN.replace("rollout: immediate", "rollout:\n    steps: []"),
            "spec.rollout.steps",
            Some(18),
            "at least one step",
        ),
        (
            "unknown rollout field",
            PLUGIN.replace(
                "rollout: immediate",
                "rollout:\n    bake: 1s\n    backe: 2s",
            ),
            "spec.rollout.backe",
            Some(19),
            "unknown field `backe`",
        ),
        (
            "config not a mapping",
            PLUGIN.replace("config:\n    api_keys: [k1]", "config: [1]"),
            "spec.config",
            Some(11),
            "must be a mapping",
        ),
        (
            "config not a mapping, in a plugin whose name holds the word",
            PLUGIN
                .replace("name: authz", "name: http-config")
                .replace("config:\n    api_keys: [k1]", "config: [1]"),
            "spec.config",
            Some(11),
            "must be a mapping",
        ),
        (
            "config and configText",
            PLUGIN.replace("config:\n", "configText: plain\n  config:\n"),
            "spec.configText",
            Some(11),
            "not both",
        ),
        (
            "artifact path",
            PLUGIN.replace("artifact: authz", "artifact: ./authz.wasm"),
            "spec.artifact",
            Some(8),
            "not a path",
        ),
        (
            "not yaml",
            "apiVersion: meshplug.dev/v1alpha1\nkind: Plugin\nspec: [\n".to_string(),
            "spec",
            Some(4),
            "",
        ),
    ];
    for (what, text, field, line, message) in cases {
        let err = parse("plugins/authz.yaml", text).expect_err(what);
        assert_eq!(err.file, "plugins/authz.yaml", "{what}: {err}");
        assert_eq!(err.field, *field, "{what}: {err}");
        if line.is_some() {
            assert_eq!(err.line, *line, "{what}: {err}");
        }
        assert!(err.message.contains(message), "{what}: {err}");
        assert!(
            err.to_string().starts_with("plugins/authz.yaml:"),
            "{what}: {err}"
        );
    }
}

#[test]
fn bad_listeners_and_clusters_are_refused() {
    let listener = |routes: &str| {
        format!(
            "apiVersion: meshplug.dev/v1alpha1\nkind: Listener\nmetadata: {{name: l}}\nspec:\n  port: 1\n  routes:\n{routes}"
        )
    };
    let cases = [
        (listener("    - prefix: /\n"), "spec.routes[0]"),
        (
            listener("    - prefix: /\n      cluster: a\n      directResponse: {status: 200}\n"),
            "spec.routes[0]",
        ),
        (
            listener("    - prefix: x\n      cluster: a\n"),
            "spec.routes[0].prefix",
        ),
        (
            listener("    - directResponse: {status: 999}\n"),
            "spec.routes[0].directResponse.status",
        ),
        (
            "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  endpoints: [localhost:80]\n".to_string(),
            "spec.endpoints[0]",
        ),
    ];
    for (text, field) in cases {
        let err = parse("mesh/x.yaml", &text).expect_err(field);
        assert_eq!(err.field, field, "{err}");
        assert!(err.line.is_some(), "{err}");
    }
}

#[test]
fn selectors_match_ids_by_glob_clusters_and_all_labels() {
    let selector = Selector {
        node_ids: vec!["edge-*".into()],
        clusters: vec!["eu".into(), "us".into()],
        labels: BTreeMap::from([("tier".into(), "edge".into())]),
    };
    let labels = BTreeMap::from([
        ("tier".to_string(), "edge".to_string()),
        ("x".to_string(), "y".to_string()),
    ]);
    assert!(selector.matches("edge-1", "eu", &labels));
    assert!(!selector.matches("core-1", "eu", &labels));
    assert!(!selector.matches("edge-1", "asia", &labels));
    assert!(!selector.matches("edge-1", "us", &BTreeMap::new()));
    assert!(Selector::default().matches("anything", "", &BTreeMap::new()));
}

#[test]
fn the_kind_a_plugin_runs() {
    let Manifest::Plugin(plugin) = parse("p.yaml", PLUGIN).expect("parses") else {
        panic!("not a plugin");
    };
    let mut spec = plugin.spec;
    assert_eq!(
        preferred_kind(&spec, ArtifactKind::Native),
        ArtifactKind::Native
    );
    spec.prefer = Some(ArtifactKind::Wasm);
    assert_eq!(
        preferred_kind(&spec, ArtifactKind::Native),
        ArtifactKind::Wasm
    );
    spec.kind = KindChoice::Native;
    assert_eq!(
        preferred_kind(&spec, ArtifactKind::Wasm),
        ArtifactKind::Native
    );
}

#[test]
fn signers_are_minisign_keys_with_a_threshold_in_range() {
    let a = include_str!("../signature/testdata/a.pub")
        .lines()
        .nth(1)
        .expect("key");
    let b = include_str!("../signature/testdata/b.pub")
        .lines()
        .nth(1)
        .expect("key");
    let with = |signers: &str| format!("{PLUGIN}  signers:\n{signers}");
    let two = with(&format!("    keys: [{a}, {b}]\n    threshold: 2\n"));
    let Manifest::Plugin(plugin) = parse("p.yaml", &two).unwrap_or_else(|e| panic!("{e}")) else {
        panic!("not a plugin");
    };
    let policy = plugin
        .spec
        .signers
        .expect("signers")
        .policy()
        .expect("policy");
    assert_eq!((policy.keys.len(), policy.threshold), (2, 2));
    let one = with(&format!("    keys: [{a}]\n"));
    let Manifest::Plugin(plugin) = parse("p.yaml", &one).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(
        plugin.spec.signers.expect("signers").threshold,
        1,
        "default"
    );
    let too_many = with(&format!("    keys: [{a}]\n    threshold: 2\n"));
    let err = parse("p.yaml", &too_many).expect_err("threshold over the keys");
    assert_eq!(err.field, "spec.signers.threshold", "{err}");
    let bad = with("    keys: [not-a-key]\n");
    let err = parse("p.yaml", &bad).expect_err("not a key");
    assert_eq!(err.field, "spec.signers.keys[0]", "{err}");
    assert!(err.to_string().contains("minisign"), "{err}");
}

#[test]
fn a_plugin_without_a_phase_runs_in_custom() {
    let text = PLUGIN.replace("  phase: authn\n", "");
    let Manifest::Plugin(plugin) = parse("p.yaml", &text).unwrap_or_else(|e| panic!("{e}")) else {
        panic!("not a plugin");
    };
    assert_eq!(plugin.spec.phase, Phase::Custom);
}

#[test]
fn config_text_reaches_the_filter_as_written_and_config_as_json() {
    let text = PLUGIN.replace(
        "config:\n    api_keys: [k1]",
        "configText: |\n    The secret to life\n    is plain text: not JSON\n",
    );
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", &text).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(
        plugin.spec.configuration(),
        "The secret to life\nis plain text: not JSON\n"
    );
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", PLUGIN).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(plugin.spec.configuration(), r#"{"api_keys":["k1"]}"#);
    let bare = PLUGIN.replace("  config:\n    api_keys: [k1]\n", "");
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", &bare).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(plugin.spec.configuration(), "{}");
}

#[test]
fn vm_settings_are_read_and_checked() {
    let with = |lines: &str| {
        PLUGIN.replace(
            "  rollout: immediate\n",
            &format!("  rollout: immediate\n{lines}"),
        )
    };
    let text =
        with("  rootId: second\n  vmId: shared\n  vmConfig:\n    configurationText: plain\n");
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", &text).expect("parses") else {
        panic!("not a plugin");
    };
    let vm = plugin.spec.vm_settings();
    assert_eq!(vm.root_id.as_deref(), Some("second"));
    assert_eq!(vm.vm_id.as_deref(), Some("shared"));
    assert_eq!(vm.configuration.as_deref(), Some("plain"));
    let text = with("  vmConfig:\n    configuration: {shared: true}\n");
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", &text).expect("parses") else {
        panic!("not a plugin");
    };
    assert_eq!(
        plugin.spec.vm_settings().configuration.as_deref(),
        Some(r#"{"shared":true}"#)
    );
    let Manifest::Plugin(plugin) = parse("plugins/authz.yaml", PLUGIN).expect("parses") else {
        panic!("not a plugin");
    };
    assert!(plugin.spec.vm_settings().is_default());

    for (lines, field) in [
        (
            "  vmConfig:\n    configuration: [1]\n",
            "spec.vmConfig.configuration",
        ),
        (
            "  vmConfig:\n    configuration: {a: 1}\n    configurationText: b\n",
            "spec.vmConfig.configurationText",
        ),
        ("  vmId: \"\"\n", "spec.vmId"),
    ] {
        let refused = parse("plugins/authz.yaml", &with(lines)).expect_err("refused");
        assert_eq!(refused.field, field, "{refused}");
        assert!(refused.line.is_some(), "{refused}");
    }
}
