//! How proxies on other hosts get their modules: the artifact service's URL for the
//! resources of nodes behind an agent, and which shas the service may hand out.

use super::Engine;

impl Engine {
    /// Proxies behind `meshplug agent` are served remote modules from the artifact service
    /// at `url` (`http://host:port`), or local paths with `None`.
    pub fn set_artifacts_url(&mut self, url: Option<String>) {
        self.serving.set_artifacts_url(url);
        let ids: Vec<String> = self.nodes.ids().cloned().collect();
        for id in ids {
            self.sync_node(&id);
        }
    }

    /// Why the artifact service must not serve `sha`: it is quarantined and no filter's last
    /// good or rolling-out version uses it. `None` when it may be served.
    pub fn artifact_withheld(&self, sha: &str) -> Option<String> {
        let records = self.rollouts.records.values();
        let in_use = records.clone().any(|record| {
            let last_good = record.last_good.iter();
            let rolling = record
                .rollout
                .iter()
                .flat_map(|r| [Some(&r.to), r.from.as_ref()]);
            last_good
                .chain(rolling.flatten())
                .any(|release| release.sha256 == sha)
        });
        if in_use {
            return None;
        }
        records
            .flat_map(|record| record.quarantine.values())
            .find(|q| q.release.sha256 == sha)
            .map(|q| format!("quarantined: {}", q.reason))
    }
}
