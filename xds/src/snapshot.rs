use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use sha2::{Digest, Sha256};

/// One resource as stored: its body, a digest of body and version, and its version label.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    body: Any,
    digest: [u8; 32],
    version: String,
}

/// The name and version label of one resource, as reported in events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceVersion {
    /// Resource name.
    pub name: String,
    /// The label the publisher gave it (by default a digest of its encoding).
    pub version: String,
}

/// The resources of one type in a snapshot, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypedResources {
    resources: BTreeMap<String, Arc<Entry>>,
}

impl TypedResources {
    /// The resource called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Any> {
        self.resources.get(name).map(|entry| &entry.body)
    }

    /// The version label of resource `name`, if present.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.resources.get(name).map(|entry| entry.version.as_str())
    }

    /// All resource names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when there is no resource of this type.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The resources a subscription to `names` receives (every one when `wildcard`), sorted by
    /// name, with the content version of exactly that selection.
    pub fn select<'a>(
        &'a self,
        names: &std::collections::BTreeSet<String>,
        wildcard: bool,
    ) -> (String, Vec<Selected<'a>>) {
        let mut hasher = Sha256::new();
        let mut selected = Vec::new();
        for (name, entry) in &self.resources {
            if wildcard || names.contains(name) {
                hasher.update((name.len() as u64).to_be_bytes());
                hasher.update(name.as_bytes());
                hasher.update(entry.digest);
                selected.push(Selected {
                    name,
                    body: &entry.body,
                    version: &entry.version,
                });
            }
        }
        let version = hex_prefix(&hasher.finalize(), 8);
        (version, selected)
    }
}

/// A resource body with its version label, digested once and shared by every snapshot that
/// holds it: serving one version to many per-node snapshots copies a pointer, not the body.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedResource(Arc<Entry>);

impl PreparedResource {
    /// Prepares `body` labelled `version`.
    pub fn new(version: &str, body: Any) -> Self {
        Self(Arc::new(Entry {
            digest: body_digest(&body, version),
            body,
            version: version.to_string(),
        }))
    }

    /// Its version label.
    pub fn version(&self) -> &str {
        &self.0.version
    }
}

/// A resource chosen for a response.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    /// Resource name.
    pub name: &'a str,
    /// Resource body.
    pub body: &'a Any,
    /// Its version label.
    pub version: &'a str,
}

impl Selected<'_> {
    /// The name and version, owned.
    pub fn to_version(&self) -> ResourceVersion {
        ResourceVersion {
            name: self.name.to_string(),
            version: self.version.to_string(),
        }
    }
}

/// An immutable set of resources by type URL, as served to one group of nodes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    types: BTreeMap<String, TypedResources>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces resource `name` of `type_url`, labelled with a digest of its encoding.
    /// Returns true when anything changed.
    pub fn set_resource(&mut self, type_url: &str, name: &str, body: Any) -> bool {
        let version = hex_prefix(&body_digest(&body, ""), 8);
        self.set_versioned_resource(type_url, name, &version, body)
    }

    /// Adds or replaces resource `name` of `type_url` with the caller's version label, which
    /// events report when nodes receive, ACK or NACK it. Returns true when anything changed.
    pub fn set_versioned_resource(
        &mut self,
        type_url: &str,
        name: &str,
        version: &str,
        body: Any,
    ) -> bool {
        self.set_prepared_resource(type_url, name, &PreparedResource::new(version, body))
    }

    /// Adds or replaces resource `name` of `type_url` with a prepared resource, sharing its
    /// body. Returns true when anything changed.
    pub fn set_prepared_resource(
        &mut self,
        type_url: &str,
        name: &str,
        resource: &PreparedResource,
    ) -> bool {
        let typed = self.types.entry(type_url.to_string()).or_default();
        let unchanged = typed
            .resources
            .get(name)
            .is_some_and(|old| old.digest == resource.0.digest);
        if unchanged {
            return false;
        }
        typed
            .resources
            .insert(name.to_string(), Arc::clone(&resource.0));
        true
    }

    /// Sets each of `resources` under `type_url` and, with `remove_others`, removes the
    /// resources of that type not among them: the whole type replaced in one call, and known
    /// to the snapshot even when empty (a wildcard subscription to it is answered, which ends
    /// a node's initial fetch). Returns true when anything changed.
    pub fn put_resources<'a>(
        &mut self,
        type_url: &str,
        resources: impl IntoIterator<Item = (&'a str, &'a PreparedResource)>,
        remove_others: bool,
    ) -> bool {
        let resources: Vec<(&str, &PreparedResource)> = resources.into_iter().collect();
        let mut changed = false;
        if remove_others && !self.types.contains_key(type_url) {
            self.types
                .insert(type_url.to_string(), TypedResources::default());
            changed = true;
        }
        if remove_others && let Some(typed) = self.types.get_mut(type_url) {
            let before = typed.resources.len();
            typed
                .resources
                .retain(|name, _| resources.iter().any(|(n, _)| n == name));
            changed |= typed.resources.len() != before;
        }
        for (name, resource) in resources {
            changed |= self.set_prepared_resource(type_url, name, resource);
        }
        changed
    }

    /// Removes resource `name` of `type_url`. Returns true when it was present.
    pub fn remove_resource(&mut self, type_url: &str, name: &str) -> bool {
        self.types
            .get_mut(type_url)
            .is_some_and(|typed| typed.resources.remove(name).is_some())
    }

    /// The resources of `type_url`, if any were ever set.
    pub fn resources(&self, type_url: &str) -> Option<&TypedResources> {
        self.types.get(type_url)
    }

    /// The type URLs present.
    pub fn type_urls(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

fn body_digest(body: &Any, version: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update((body.type_url.len() as u64).to_be_bytes())
        .chain_update(body.type_url.as_bytes())
        .chain_update((version.len() as u64).to_be_bytes())
        .chain_update(version.as_bytes())
        .chain_update(&body.value)
        .finalize()
        .into()
}

/// The first `len` bytes of `bytes` in lower-case hex.
pub(crate) fn hex_prefix(bytes: &[u8], len: usize) -> String {
    bytes.iter().take(len).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
