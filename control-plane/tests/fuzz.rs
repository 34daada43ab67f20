//! Property tests over every parser that reads what users and proxies send: manifests, the
//! Wasm and ELF checks, fixtures, rollout policies, `state.json` and Envoy's stats. Each runs
//! a fixed number of cases (seeded by proptest's defaults, with failures persisted) and
//! asserts the parser answers (a value or an error) without panicking, and within bounds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::metrics::v3::StreamMetricsMessage;
use envoy_types::pb::io::prometheus::client::{Counter, Histogram, Metric, MetricFamily};
use meshplug::artifact::ArtifactKind;
use meshplug::check::{Limits, check_artifact};
use meshplug::manifest::parse;
use meshplug::metrics_sink::decode;
use meshplug::rollout::Policy;
use meshplug::rollout::signals::NodeSignals;
use meshplug::rollout::state::envelope::{Loaded, verify};
use proptest::prelude::*;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const PLUGIN: &str = "apiVersion: meshplug.dev/v1alpha1
kind: Plugin
metadata:
  name: authz
spec:
  artifact: authz
  phase: authz
  config:
    api_keys: [k1, k2]
  targets:
    - nodeIds: [\"edge-*\"]
  rollout:
    steps:
      - nodes: 1
        minDuration: 1s
";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

/// `text` with `edits` applied: each replaces the byte at a position with another.
fn mutate(text: &[u8], edits: &[(usize, u8)]) -> Vec<u8> {
    let mut out = text.to_vec();
    for (at, byte) in edits {
        if !out.is_empty() {
            let at = at % out.len();
            out[at] = *byte;
        }
    }
    out
}

fn yaml_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(b" \n\t:-[]{}'\"#&*!|>%@`,?0a\\".to_vec())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn manifests_of_any_text_parse_or_are_refused_with_a_location(text in ".{0,400}") {
        if let Err(err) = parse("plugins/x.yaml", &text) {
            prop_assert_eq!(err.file.as_str(), "plugins/x.yaml");
        }
    }

    #[test]
    fn a_mutated_manifest_parses_or_is_refused_fast(
        edits in prop::collection::vec((any::<usize>(), yaml_byte()), 1..8),
        nesting in 0usize..300,
    ) {
        let mut text = String::from_utf8_lossy(&mutate(PLUGIN.as_bytes(), &edits)).into_owned();
        text.push_str(&format!("    deep: {}{}\n", "[".repeat(nesting), "]".repeat(nesting)));
        let started = Instant::now();
        let _ = parse("plugins/x.yaml", &text);
        prop_assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn the_wasm_check_refuses_or_passes_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        header in any::<bool>(),
    ) {
        let bytes = if header { [b"\0asm\x01\0\0\0".as_slice(), &bytes].concat() } else { bytes };
        let _ = check_artifact(ArtifactKind::Wasm, &bytes, Limits::default());
    }

    #[test]
    fn the_elf_check_refuses_or_passes_a_mutated_module(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..16),
        cut in any::<usize>(),
    ) {
        let module = std::fs::read(repo("target/filters/libauthz.so"))
            .expect("run `make filters` first");
        let mut bytes = mutate(&module, &edits);
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = check_artifact(ArtifactKind::Native, &bytes, Limits::default());
    }

    #[test]
    fn fixtures_and_policies_of_any_json_parse_or_are_refused(text in any_json()) {
        let _ = meshplug_preflight::parse_fixtures(text.as_bytes());
        let _ = Policy::from_json(text.as_bytes());
    }

    #[test]
    fn any_state_file_is_valid_legacy_or_damaged_never_a_panic(text in any_json()) {
        match verify(text.as_bytes()) {
            Loaded::Valid(_) | Loaded::Legacy(_) | Loaded::Corrupt(_) | Loaded::Missing => {}
        }
    }

    #[test]
    fn any_metrics_message_decodes_without_overflow(
        families in prop::collection::vec(family(), 0..12),
        raw in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut signals = NodeSignals::default();
        let sample = decode(&families);
        signals.record(1_000, &sample, 250.0);
        signals.record(2_000, &sample, f64::NAN);
        let totals = signals.totals(0, 3_000, "authz");
        prop_assert_eq!(totals.completed, sample.completed.saturating_add(sample.completed));
        if let Ok(message) = <StreamMetricsMessage as prost::Message>::decode(raw.as_slice()) {
            let _ = decode(&message.envoy_metrics);
        }
    }
}

fn any_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z_]{0,8}".prop_map(|s| format!("\"{s}\"")),
        Just("\"1s\"".to_string()),
        Just("1e400".to_string()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-zA-Z_]{1,10}", inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        any::<f64>().prop_map(Some),
        Just(Some(f64::INFINITY)),
        Just(Some(f64::NAN)),
        Just(Some(-1.0)),
        Just(Some(1.8e19)),
    ]
}

fn family() -> impl Strategy<Value = MetricFamily> {
    let names = prop::sample::select(vec![
        "http.ingress.downstream_rq_completed",
        "http.ingress.downstream_rq_5xx",
        "http.ingress.downstream_rq_time",
        "wasm.authz.heartbeat",
        "extension_config_discovery.authz.config_reload",
        "extension_config_discovery.authz.config_fail",
        "extension_config_discovery.authz.update_rejected",
        "server.uptime",
        "",
        "http..downstream_rq_5xx",
    ]);
    (
        names,
        prop::collection::vec(
            (
                value(),
                prop::collection::vec((value(), any::<u64>()), 0..4),
            ),
            0..4,
        ),
    )
        .prop_map(|(name, metrics)| MetricFamily {
            name: Some(name.to_string()),
            metric: metrics
                .into_iter()
                .map(|(counter, buckets)| Metric {
                    counter: Some(Counter {
                        value: counter,
                        ..Counter::default()
                    }),
                    histogram: Some(Histogram {
                        sample_count: buckets.first().map(|(_, n)| *n),
                        bucket: buckets
                            .into_iter()
                            .map(
                                |(bound, count)| envoy_types::pb::io::prometheus::client::Bucket {
                                    upper_bound: bound,
                                    cumulative_count: Some(count),
                                    ..Default::default()
                                },
                            )
                            .collect(),
                        ..Histogram::default()
                    }),
                    ..Metric::default()
                })
                .collect(),
            ..MetricFamily::default()
        })
}
