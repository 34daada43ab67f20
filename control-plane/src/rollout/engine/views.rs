//! What the engine shows: its policy, the records, the node model, the decision log.

use std::collections::BTreeMap;

use meshplug_core::nodes::Nodes;

use super::Engine;
use crate::Error;
use crate::rollout::Policy;
use crate::rollout::state::{Decision, PluginRecord};
use meshplug_core::rollout::world::World;

impl Engine {
    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The policy `plugin`'s rollout in progress runs under (its manifest's or the control
    /// plane's, as a first version runs it), or its manifest's or the control plane's when
    /// none is in progress.
    pub fn policy_for(&self, plugin: &str) -> Policy {
        let world = world!(self);
        match self
            .rollouts
            .records
            .get(plugin)
            .and_then(|r| r.rollout.as_ref())
        {
            Some(rollout) => world.policy_for(plugin, rollout),
            None => world.plugin_policy(plugin).clone(),
        }
    }

    /// Every filter's rollout state.
    pub fn plugins(&self) -> &BTreeMap<String, PluginRecord> {
        &self.rollouts.records
    }

    /// The node model: every proxy, its connection and its versions.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// The decisions kept in memory (the most recent ones; the whole log is on disk),
    /// oldest first.
    pub fn decisions(&self) -> Result<Vec<Decision>, Error> {
        Ok(self.store.recent().cloned().collect())
    }

    /// Up to `limit` decisions about `plugin` after sequence number `since`, oldest first;
    /// with `newest`, the last `limit` of them instead of the first.
    pub fn decisions_of(
        &self,
        plugin: &str,
        since: u64,
        limit: usize,
        newest: bool,
    ) -> Vec<Decision> {
        self.store.decisions_of(plugin, since, limit, newest)
    }

    /// Where to read the decisions after `since` that memory no longer holds: the archive
    /// folder, and the sequence number memory starts at. `None` when memory holds them all.
    pub fn archived_after(&self, since: u64) -> Option<(std::path::PathBuf, u64)> {
        let oldest = self.store.recent().next()?.seq;
        let dir = self.store.archive_dir()?;
        (since + 1 < oldest).then(|| (dir.to_path_buf(), oldest))
    }

    /// Why `version` of `plugin` is quarantined, if it is.
    pub fn quarantined(&self, plugin: &str, version: &str) -> Option<String> {
        let entry = self.rollouts.quarantine_of(plugin, version)?;
        Some(entry.reason.clone())
    }

    /// What ingest last published of `plugin`, and how often it did.
    pub fn published(&self, plugin: &str) -> (Option<&str>, u64) {
        let record = self.rollouts.records.get(plugin);
        let version = record.and_then(|r| r.published.as_deref());
        (version, record.map_or(0, |r| r.publishes))
    }
}
