//! The engine's side of a manifest change: the placement the catalog says, and the releases
//! ingest computed from it, taken in one step.

use std::sync::Arc;

use meshplug_core::rollout::effects::Effects;
use meshplug_core::rollout::placement::{Governs, Placement};
use meshplug_core::rollout::releases::ReleaseOutcome;

use super::Engine;
use crate::Error;
use crate::catalog::Catalog;
use crate::rollout::state::Release;

impl Engine {
    /// The manifests changed: the placement they say and the releases ingest computed from
    /// them, in one step (one save, every proxy served once). `governs` says which manifests
    /// count: the catalog's clusters are served over CDS in every mode, its plugins' placement
    /// with `--plugins`, its listeners with `--mesh`. Returns what became of each release, in
    /// order.
    pub fn apply_manifests(
        &mut self,
        catalog: Arc<Catalog>,
        governs: Governs,
        releases: Vec<(String, Release)>,
        now_ms: u64,
    ) -> Vec<(String, Result<ReleaseOutcome, Error>)> {
        if let Err(err) = self.must_decide("applying manifests") {
            let failed = err.to_string();
            let refused = |(plugin, _)| (plugin, Err(Error::NotLeader(failed.clone())));
            return releases.into_iter().map(refused).collect();
        }
        self.unsaved_catalog = Some(catalog.record());
        self.place(catalog, governs);
        let mut fx = Effects {
            serve_all: true,
            ..Effects::default()
        };
        let mut results = Vec::new();
        for (plugin, release) in releases {
            let outcome = self.publish(&plugin, release, now_ms, &mut fx);
            results.push((plugin, outcome));
        }
        if let Err(err) = self.commit(fx) {
            tracing::error!(error = %err, "applying manifests: saving rollout state failed");
            let failed = err.to_string();
            for (_, outcome) in &mut results {
                if outcome.is_ok() {
                    *outcome = Err(Error::rollout(format!("not saved: {failed}")));
                }
            }
        }
        results
    }

    /// Places what `catalog` says (what `governs` counts): the next serve composes every
    /// listener and the clusters again. A leader's manifest change and a follower's
    /// copy of the leader's take this one path.
    pub(super) fn place(&mut self, catalog: Arc<Catalog>, governs: Governs) {
        self.placement = Placement::governed(catalog, governs, &self.policy);
        self.serving.forget_composed();
    }
}

impl Engine {
    /// Plugin `plugin` is gone (in folder mode, its build was deleted): any rollout is
    /// cancelled and no proxy is served it any more (each falls back to its slot's default);
    /// its quarantine stays. Logged as a `remove` decision with `reason`.
    pub fn remove_plugin(&mut self, plugin: &str, reason: &str, now_ms: u64) -> Result<(), Error> {
        self.must_decide("removing a plugin")?;
        let mut fx = Effects::default();
        self.rollouts.remove(plugin, reason, now_ms, &mut fx);
        self.commit(fx)
    }
}
