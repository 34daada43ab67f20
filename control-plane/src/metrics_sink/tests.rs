use envoy_types::pb::io::prometheus::client::{Bucket, Counter, Gauge, Histogram as PromHistogram};

use super::*;

fn counter(name: &str, value: f64) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        metric: vec![Metric {
            counter: Some(Counter {
                value: Some(value),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn gauge(name: &str, value: f64) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        metric: vec![Metric {
            gauge: Some(Gauge { value: Some(value) }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn histogram(name: &str, count: u64, buckets: &[(f64, u64)]) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        metric: vec![Metric {
            histogram: Some(PromHistogram {
                sample_count: Some(count),
                bucket: buckets
                    .iter()
                    .map(|(bound, n)| Bucket {
                        upper_bound: Some(*bound),
                        cumulative_count: Some(*n),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn the_gate_stats_are_read_and_the_rest_ignored() {
    let families = vec![
        counter("http.ingress.downstream_rq_completed", 40.0),
        counter("http.admin.downstream_rq_completed", 7.0),
        counter("http.ingress.downstream_rq_5xx", 3.0),
        counter(
            "extension_config_discovery.http_filter.authz.config_fail",
            1.0,
        ),
        counter(
            "extension_config_discovery.http_filter.authz.config_reload",
            5.0,
        ),
        counter("wasmcustom.meshplug_heartbeat_authz", 38.0),
        counter("cluster.upstream.upstream_rq_total", 99.0),
        gauge("server.uptime", 12.0),
        histogram(
            "http.ingress.downstream_rq_time",
            40,
            &[(100.0, 30), (250.0, 35), (500.0, 40)],
        ),
        histogram("http.admin.downstream_rq_time", 7, &[(100.0, 7)]),
    ];
    let sample = decode(&families);
    assert_eq!(sample.completed, 40);
    assert_eq!(sample.rq_5xx, 3);
    assert_eq!(sample.load_errors.get("authz"), Some(&1));
    assert_eq!(sample.heartbeats.get("authz"), Some(&38));
    assert_eq!(sample.uptime_s, Some(12));
    let rq_time = sample.rq_time.expect("histogram");
    assert_eq!(rq_time.count, 40);
    assert_eq!(rq_time.at_or_below(250.0), 35);
}

#[test]
fn a_dropped_xds_stream_is_not_a_load_error() {
    let dropped = decode(&[
        counter(
            "extension_config_discovery.http_filter.authz.config_fail",
            1.0,
        ),
        counter(
            "extension_config_discovery.http_filter.authz.update_failure",
            1.0,
        ),
    ]);
    assert!(dropped.load_errors.is_empty(), "{dropped:?}");
    let rejected = decode(&[
        counter(
            "extension_config_discovery.http_filter.authz.config_fail",
            1.0,
        ),
        counter(
            "extension_config_discovery.http_filter.authz.update_rejected",
            1.0,
        ),
    ]);
    assert_eq!(rejected.load_errors.get("authz"), Some(&1));
}

#[test]
fn an_empty_flush_is_an_empty_sample() {
    assert_eq!(decode(&[]), FlushSample::default());
}
