//! The artifacts a replica must hold before it serves records: those of every release a proxy
//! may be served (last good, and a rollout's both sides). A missing one is fetched from a
//! peer's artifact service (sha256-checked); a replica taking the lead also looks in its own
//! artifacts folder, since the leader that admitted a build may have died before anyone
//! fetched it. A file whose bytes hash to the sha is the build that was checked then.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::Member;
use crate::agent::Fetcher;
use crate::artifact::{ArtifactKind, WatchedFile, classify};
use crate::rollout::state::{PluginRecord, Release};
use crate::store::{Store, sha256_hex};

/// Every release of `records` a proxy may be served.
pub(super) fn served(records: &BTreeMap<String, PluginRecord>) -> impl Iterator<Item = &Release> {
    records.values().flat_map(|record| {
        let rolling = record
            .rollout
            .iter()
            .flat_map(|r| [Some(&r.to), r.from.as_ref()]);
        record.last_good.iter().chain(rolling.flatten())
    })
}

/// The peers' artifact services, `leader`'s first.
pub(super) fn peers<'a>(
    members: impl Iterator<Item = &'a Member>,
    leader: Option<&str>,
) -> Vec<String> {
    let mut members: Vec<&Member> = members.collect();
    members.sort_by_key(|m| Some(m.id.as_str()) != leader);
    members
        .into_iter()
        .filter_map(|m| m.artifacts.clone())
        .collect()
}

/// Fetches each artifact of `releases` the store lacks from the first of `peers` that has
/// it. Returns those still missing, by sha.
pub(super) async fn fetch<'a>(
    releases: impl Iterator<Item = &'a Release>,
    peers: &[String],
    fetcher: &Fetcher,
) -> BTreeMap<String, ArtifactKind> {
    let mut missing = BTreeMap::new();
    let mut seen = BTreeSet::new();
    // A built-in Envoy filter has no file to fetch.
    for release in releases.filter(|r| r.kind != ArtifactKind::Builtin) {
        if !seen.insert(release.sha256.clone()) {
            continue;
        }
        let module = |base: &str| meshplug_envoy::ecds::RemoteModule {
            filter: String::new(),
            uri: crate::artifacts::artifact_url(base, &release.sha256, release.kind),
            sha256: release.sha256.clone(),
            kind: release.kind,
        };
        if fetcher.path_for(&module("")).is_file() {
            continue;
        }
        let mut fetched = false;
        for base in peers {
            match fetcher.ensure(&module(base)).await {
                Ok(_) => {
                    fetched = true;
                    break;
                }
                Err(err) => tracing::warn!(sha = %release.sha256, peer = %base, error = %err,
                    "fetching an artifact from a peer"),
            }
        }
        if !fetched {
            missing.insert(release.sha256.clone(), release.kind);
        }
    }
    missing
}

/// Stores each file of `folder` whose bytes hash to one of `missing`; returns those still
/// missing.
pub(super) fn from_folder(
    folder: &Path,
    store: &Store,
    mut missing: BTreeMap<String, ArtifactKind>,
) -> BTreeMap<String, ArtifactKind> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return missing;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if missing.is_empty() {
            break;
        }
        let Some(WatchedFile::Artifact { kind, .. }) = classify(&path) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let sha = sha256_hex(&bytes);
        if missing.get(&sha) == Some(&kind) {
            match store.put(&sha, kind, &bytes) {
                Ok(_) => {
                    tracing::info!(%sha, file = %path.display(), "artifact found in the folder");
                    missing.remove(&sha);
                }
                Err(err) => {
                    tracing::warn!(%sha, error = %err, "storing an artifact from the folder")
                }
            }
        }
    }
    missing
}
