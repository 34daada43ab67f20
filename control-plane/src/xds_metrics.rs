//! Prometheus metrics of the xDS server: responses pushed, ACKs and NACKs by resource type,
//! connected nodes, and push latency (a response handed to the stream until its ACK).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use xds::{RefusalCause, StreamId, XdsEvent, type_url};

use crate::refusals::{Limit, Refusals};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

/// The xDS metrics, registered once; fed every stream event.
#[derive(Debug)]
pub struct XdsMetrics {
    pushes: Family<TypeLabel, Counter>,
    acks: Family<TypeLabel, Counter>,
    nacks: Family<TypeLabel, Counter>,
    connected: Gauge,
    push_latency: Histogram,
    /// Per stream and type, the last response not answered yet: (nonce, when sent). A newer
    /// response of a type supersedes the older one, and a closed stream takes its entries,
    /// so this stays as small as the open streams.
    unanswered: Mutex<HashMap<StreamId, Unanswered>>,
    /// Where refused streams are counted.
    refusals: Option<std::sync::Arc<Refusals>>,
}

/// One stream's unanswered responses: type URL → (nonce, when sent).
type Unanswered = HashMap<String, (String, Instant)>;

impl XdsMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            pushes: Family::default(),
            acks: Family::default(),
            nacks: Family::default(),
            connected: Gauge::default(),
            push_latency: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            unanswered: Mutex::new(HashMap::new()),
            refusals: None,
        };
        registry.register(
            "meshplug_xds_pushes",
            "xDS responses sent, by type",
            metrics.pushes.clone(),
        );
        registry.register(
            "meshplug_xds_acks",
            "xDS responses ACKed, by type",
            metrics.acks.clone(),
        );
        registry.register(
            "meshplug_xds_nacks",
            "xDS responses NACKed, by type",
            metrics.nacks.clone(),
        );
        registry.register(
            "meshplug_connected_nodes",
            "Proxies with an open ADS stream now",
            metrics.connected.clone(),
        );
        registry.register(
            "meshplug_push_latency_seconds",
            "From an xDS response handed to its stream to the node's ACK or NACK",
            metrics.push_latency.clone(),
        );
        metrics
    }

    /// Where refusals are counted, if anywhere.
    pub fn refusals(&self) -> Option<std::sync::Arc<Refusals>> {
        self.refusals.clone()
    }

    /// Counts refused streams in `refusals` too.
    pub fn counting_refusals(mut self, refusals: std::sync::Arc<Refusals>) -> Self {
        self.refusals = Some(refusals);
        self
    }

    /// How many proxies are connected now, as the node model counts them (a proxy with two
    /// streams is one).
    pub fn set_connected(&self, nodes: usize) {
        self.connected.set(i64::try_from(nodes).unwrap_or(i64::MAX));
    }

    /// Follows one stream event.
    pub fn observe(&self, event: &XdsEvent) {
        let mut unanswered = self
            .unanswered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            XdsEvent::Refused { cause, .. } => {
                if let Some(refusals) = &self.refusals {
                    refusals.count(match cause {
                        RefusalCause::NodeTooLarge => Limit::NodeBytes,
                        RefusalCause::Unauthorized => Limit::NodeIdentity,
                    });
                }
            }
            // Connected proxies are counted by the node model: see `set_connected`.
            XdsEvent::StreamOpened { .. } | XdsEvent::Subscribed { .. } => {}
            XdsEvent::StreamClosed { stream, .. } => {
                unanswered.remove(stream);
            }
            XdsEvent::Sent {
                stream,
                type_url,
                nonce,
                ..
            } => {
                self.pushes.get_or_create(&label(type_url)).inc();
                let sent = (nonce.clone(), Instant::now());
                unanswered
                    .entry(*stream)
                    .or_default()
                    .insert(type_url.clone(), sent);
            }
            XdsEvent::Ack {
                stream,
                type_url,
                nonce,
                ..
            }
            | XdsEvent::Nack {
                stream,
                type_url,
                nonce,
                ..
            } => {
                let family = if matches!(event, XdsEvent::Ack { .. }) {
                    &self.acks
                } else {
                    &self.nacks
                };
                family.get_or_create(&label(type_url)).inc();
                if let Some(types) = unanswered.get_mut(stream)
                    && types.get(type_url).is_some_and(|(sent, _)| sent == nonce)
                    && let Some((_, at)) = types.remove(type_url)
                {
                    self.push_latency.observe(at.elapsed().as_secs_f64());
                }
            }
        }
    }
}

fn label(url: &str) -> TypeLabel {
    let short = match url {
        type_url::EXTENSION_CONFIG => "ecds",
        type_url::LISTENER => "lds",
        type_url::ROUTE_CONFIGURATION => "rds",
        type_url::CLUSTER => "cds",
        type_url::ENDPOINT => "eds",
        _ => "other",
    };
    TypeLabel {
        r#type: short.to_string(),
    }
}

#[cfg(test)]
mod tests;
