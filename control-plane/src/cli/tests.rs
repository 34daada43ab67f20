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
