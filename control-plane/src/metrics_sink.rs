//! The gRPC `MetricsService` edge: Envoy's `metrics_service` stat sink streams its stats here
//! every flush. Each flush is decoded into a domain [`FlushSample`] and handed to the rollout
//! engine; protobuf stops at this file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use envoy_types::pb::envoy::service::metrics::v3::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use envoy_types::pb::envoy::service::metrics::v3::{StreamMetricsMessage, StreamMetricsResponse};
use envoy_types::pb::io::prometheus::client::{Metric, MetricFamily};
use tonic::{Request, Response, Status, Streaming};

use crate::ingest::unix_ms;
use crate::refusals::{Limit, Refusals};
use crate::rollout::Engine;
use crate::rollout::signals::{FlushSample, Histogram};
use crate::tls::identity;

/// Receives Envoy stats for the rollout engine.
#[derive(Debug, Clone)]
pub struct MetricsSink {
    engine: Arc<Mutex<Engine>>,
    stop: tokio::sync::watch::Receiver<bool>,
    bind_identity: Option<Arc<Refusals>>,
}

impl MetricsSink {
    /// A sink feeding `engine`; its streams end (status OK) once `stop` turns true.
    pub fn new(engine: Arc<Mutex<Engine>>, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            engine,
            stop,
            bind_identity: None,
        }
    }

    /// Accepts a stream only for the node its client certificate names
    /// ([`identity::authorize`]); refusals are counted in `refusals`.
    pub fn binding_identity(mut self, refusals: Arc<Refusals>) -> Self {
        self.bind_identity = Some(refusals);
        self
    }

    /// The tonic service.
    pub fn into_service(self) -> MetricsServiceServer<Self> {
        MetricsServiceServer::new(self).max_decoding_message_size(16 * 1024 * 1024)
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsSink {
    async fn stream_metrics(
        &self,
        request: Request<Streaming<StreamMetricsMessage>>,
    ) -> Result<Response<StreamMetricsResponse>, Status> {
        let certs = request.peer_certs();
        let mut stream = request.into_inner();
        let mut node: Option<String> = None;
        let mut stop = self.stop.clone();
        loop {
            let message = tokio::select! {
                message = stream.message() => message?,
                _ = stop.wait_for(|stopped| *stopped) => None,
            };
            let Some(message) = message else { break };
            if node.is_none() {
                node = message
                    .identifier
                    .as_ref()
                    .and_then(|i| i.node.as_ref())
                    .map(|n| n.id.clone());
                if let (Some(id), Some(refusals)) = (&node, &self.bind_identity)
                    && let Err(reason) =
                        identity::authorize(id, certs.as_deref().map(Vec::as_slice))
                {
                    tracing::warn!(node = %id, %reason, "metrics stream refused");
                    refusals.count(Limit::NodeIdentity);
                    return Err(Status::permission_denied(reason));
                }
                if let Some(id) = &node {
                    tracing::info!(node = %id, "metrics stream opened");
                }
            }
            let Some(id) = &node else {
                return Err(Status::invalid_argument(
                    "the first StreamMetricsMessage must carry identifier.node",
                ));
            };
            let sample = decode(&message.envoy_metrics);
            tracing::debug!(node = %id, completed = sample.completed, rq_5xx = sample.rq_5xx,
                timed = sample.rq_time.as_ref().map_or(0, |h| h.count), "stats flush");
            self.engine
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .on_metrics(id, &sample, unix_ms());
        }
        if let Some(id) = &node {
            tracing::info!(node = %id, "metrics stream closed");
        }
        Ok(Response::new(StreamMetricsResponse {}))
    }
}

/// Reads the stats the rollout gates use from one flush.
pub fn decode(families: &[MetricFamily]) -> FlushSample {
    let mut scratch = Scratch::default();
    for family in families {
        let Some(name) = family.name.as_deref() else {
            continue;
        };
        for metric in &family.metric {
            read_metric(&mut scratch, name, metric);
        }
    }
    let mut sample = scratch.sample;
    for (filter, counts) in scratch.discovery {
        // `config_fail` also moves when the xDS stream fails (then `update_failure` moves with
        // it), e.g. when the control plane restarts. Only a rejected update is a load error.
        let errors = counts
            .update_rejected
            .max(counts.config_fail.saturating_sub(counts.update_failure));
        if errors > 0 {
            sample.load_errors.insert(filter.clone(), errors);
        }
        if counts.config_reload > 0 {
            sample.reloads.insert(filter, counts.config_reload);
        }
    }
    sample
}

#[derive(Default)]
struct DiscoveryCounts {
    config_reload: u64,
    config_fail: u64,
    update_rejected: u64,
    update_failure: u64,
}

#[derive(Default)]
struct Scratch {
    sample: FlushSample,
    discovery: BTreeMap<String, DiscoveryCounts>,
}

fn read_metric(scratch: &mut Scratch, name: &str, metric: &Metric) {
    let sample = &mut scratch.sample;
    let counter = || {
        metric
            .counter
            .as_ref()
            .and_then(|c| c.value)
            .map_or(0, |v| v.max(0.0) as u64)
    };
    if let Some(stat) = http_listener_stat(name) {
        match stat {
            "downstream_rq_completed" => add(&mut sample.completed, counter()),
            "downstream_rq_5xx" => add(&mut sample.rq_5xx, counter()),
            "downstream_rq_time" => add_histogram(sample, metric),
            _ => {}
        }
    } else if let Some(rest) = name.strip_prefix("extension_config_discovery.http_filter.") {
        if let Some((filter, stat)) = rest.rsplit_once('.') {
            let counts = scratch.discovery.entry(filter.to_string()).or_default();
            match stat {
                "config_reload" => add(&mut counts.config_reload, counter()),
                "config_fail" => add(&mut counts.config_fail, counter()),
                "update_rejected" => add(&mut counts.update_rejected, counter()),
                "update_failure" => add(&mut counts.update_failure, counter()),
                _ => {}
            }
        }
    } else if let Some((_, filter)) = name.split_once("meshplug_heartbeat_") {
        add(
            sample.heartbeats.entry(filter.to_string()).or_default(),
            counter(),
        );
    } else if name == "server.uptime" {
        sample.uptime_s = metric
            .gauge
            .as_ref()
            .and_then(|g| g.value)
            .map(|v| v.max(0.0) as u64);
    }
}

/// Adds a counter reading; a proxy's stats are input like any other, so an absurd value
/// saturates instead of overflowing.
fn add(total: &mut u64, value: u64) {
    *total = total.saturating_add(value);
}

/// `downstream_rq_*` of a listener's HTTP connection manager (`http.<prefix>.<stat>`), never
/// the admin listener's.
fn http_listener_stat(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("http.")?;
    let (prefix, stat) = rest.split_once('.')?;
    (prefix != "admin").then_some(stat)
}

fn add_histogram(sample: &mut FlushSample, metric: &Metric) {
    let Some(histogram) = &metric.histogram else {
        return;
    };
    let count = histogram.sample_count.unwrap_or(0);
    let buckets: Vec<(f64, u64)> = histogram
        .bucket
        .iter()
        .filter_map(|b| Some((b.upper_bound?, b.cumulative_count.unwrap_or(0))))
        .collect();
    let total = sample.rq_time.get_or_insert_with(Histogram::default);
    add(&mut total.count, count);
    let mut merged: BTreeMap<u64, (f64, u64)> = total
        .buckets
        .iter()
        .map(|(bound, n)| (bound.to_bits(), (*bound, *n)))
        .collect();
    for (bound, n) in buckets {
        add(
            &mut merged.entry(bound.to_bits()).or_insert((bound, 0)).1,
            n,
        );
    }
    let mut list: Vec<(f64, u64)> = merged.into_values().collect();
    list.sort_by(|a, b| a.0.total_cmp(&b.0));
    total.buckets = list;
}

#[cfg(test)]
mod tests;
