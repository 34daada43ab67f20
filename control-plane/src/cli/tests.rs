use std::time::Duration;

use clap::Parser;

use super::args::{AdsArg, Command, KindArg, OutputArg, StateCommand};
use super::commands::serve_config;
use super::*;
use crate::artifact::ArtifactKind;

fn parse(args: &[&str]) -> Command {
    let mut all = vec!["meshplug"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).expect("parses").command
}

#[test]
fn serve_arguments_become_the_control_plane_settings() {
    let Command::Serve(args) = parse(&[
        "serve",
        "--artifacts",
        "a",
        "--prefer-kind",
        "native",
        "--max-config-bytes",
        "4096",
        "--xds-idle-timeout-s",
        "1.5",
        "--forget-nodes-after-s",
        "60",
        "--rollout-policy",
        "immediate",
    ]) else {
        panic!("serve");
    };
    let config = serve_config(*args).expect("config");
    assert_eq!(config.prefer_kind, ArtifactKind::Native);
    assert_eq!(config.limits.max_config_bytes, 4096);
    assert_eq!(config.guards.xds_idle_timeout, Duration::from_millis(1500));
    assert_eq!(config.guards.forget_nodes_after, Duration::from_secs(60));
    assert!(config.preflight.is_some());
    assert_eq!(config.rollout_policy, crate::rollout::Policy::immediate());
}

#[test]
fn defaults_are_the_documented_ones_and_bad_values_are_refused() {
    let Command::Serve(args) = parse(&["serve"]) else {
        panic!("serve");
    };
    assert_eq!(args.prefer_kind, KindArg::Wasm);
    let config = serve_config(*args).expect("config");
    assert_eq!(config.guards, crate::serve::Guards::default());
    assert_eq!(config.admin_addr.to_string(), "127.0.0.1:18080");
    for bad in [
        &["serve", "--prefer-kind", "elf"][..],
        &["status", "-o", "yaml"],
        &["bootstrap", "--ads", "rest"],
        &["state", "restore"],
    ] {
        let mut all = vec!["meshplug"];
        all.extend_from_slice(bad);
        assert!(Cli::try_parse_from(all).is_err(), "{bad:?}");
    }
    let Command::Serve(args) = parse(&["serve", "--xds-idle-timeout-s", "0"]) else {
        panic!("serve");
    };
    let err = serve_config(*args).expect_err("zero timeout");
    assert!(err.to_string().contains("positive"), "{err}");
}

#[test]
fn value_enums_and_subcommands_parse() {
    assert!(
        matches!(parse(&["status", "-o", "json"]), Command::Status(a) if a.output == OutputArg::Json)
    );
    assert!(
        matches!(parse(&["bootstrap", "--ads", "delta"]), Command::Bootstrap(a) if a.ads == AdsArg::Delta)
    );
    assert!(matches!(
        parse(&["state", "restore", "--previous", "--data", "d"]),
        Command::State(StateCommand::Restore { previous: true, .. })
    ));
}

#[test]
fn bootstrap_addresses_point_envoy_at_an_agent_and_the_control_plane() {
    let Command::Bootstrap(args) = parse(&[
        "bootstrap",
        "--xds-address",
        "127.0.0.1:18001",
        "--metrics-address",
        "10.0.0.1:18000",
        "--bind-address",
        "0.0.0.0",
    ]) else {
        panic!("bootstrap");
    };
    let vars = super::commands::bootstrap_vars(args);
    let get = |k: &str| vars.get(k).map(String::as_str);
    assert_eq!(
        (get("XDS_HOST"), get("XDS_PORT")),
        (Some("127.0.0.1"), Some("18001"))
    );
    assert_eq!(
        (get("METRICS_HOST"), get("METRICS_PORT")),
        (Some("10.0.0.1"), Some("18000"))
    );
    assert_eq!(
        (get("ADMIN_HOST"), get("LISTENER_HOST")),
        (Some("0.0.0.0"), Some("0.0.0.0"))
    );
    let template = include_str!("../../../envoy-config/bootstrap.yaml");
    let rendered = crate::bootstrap::render(template, &vars).expect("renders");
    assert!(
        rendered.contains("address: 127.0.0.1, port_value: 18001"),
        "{rendered}"
    );
    assert!(
        rendered.contains("address: 10.0.0.1, port_value: 18000"),
        "{rendered}"
    );
}
