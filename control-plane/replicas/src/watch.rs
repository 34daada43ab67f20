//! One prefix watch per replica, done the way APISIX's history says it must be: resumed from the
//! last revision seen after a lost stream, never skipping ahead (progress and timeouts do not
//! move the revision; only events do); when the history it needs was compacted away, or the
//! watch was cancelled, a full read replaces the caller's view ([`WatchEvent::Reset`]).

use std::collections::BTreeMap;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchStream};

use crate::{Error, Etcd};

/// One key's change, in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `key` (relative to the watched prefix) now holds `value`.
    Put {
        /// The key.
        key: String,
        /// Its value.
        value: Vec<u8>,
        /// The revision of the write.
        revision: i64,
    },
    /// `key` was deleted.
    Delete {
        /// The key.
        key: String,
        /// The revision of the deletion.
        revision: i64,
    },
}

/// What the watch says next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Changes after the last revision seen, in order.
    Changes(Vec<Change>),
    /// The whole prefix as of `revision`: the history between was compacted (or the watch was
    /// cancelled), so the caller replaces its view with this one.
    Reset {
        /// Every key under the prefix and its value.
        state: BTreeMap<String, Vec<u8>>,
        /// The revision of the read.
        revision: i64,
    },
}

/// A watch of every key under one prefix.
pub struct PrefixWatch {
    etcd: Etcd,
    prefix: String,
    revision: i64,
    stream: Option<WatchStream>,
    restarts: u64,
}

impl std::fmt::Debug for PrefixWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixWatch")
            .field("prefix", &self.prefix)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Etcd {
    /// Every key under `sub` (relative to this connection's prefix) and the read's revision.
    pub async fn snapshot(&self, sub: &str) -> Result<(BTreeMap<String, Vec<u8>>, i64), Error> {
        self.read_prefix(&self.key(sub)).await
    }

    /// Every key under the full `prefix`, relative to it, and the read's revision.
    async fn read_prefix(&self, prefix: &str) -> Result<(BTreeMap<String, Vec<u8>>, i64), Error> {
        let found = crate::leader::again(|| {
            let mut client = self.client.clone();
            let prefix = prefix.to_string();
            async move {
                client
                    .get(prefix, Some(GetOptions::new().with_prefix()))
                    .await
            }
        })
        .await?;
        let revision = found.header().map_or(0, |h| h.revision());
        let state = found
            .kvs()
            .iter()
            .map(|kv| (relative(prefix, kv.key()), kv.value().to_vec()))
            .collect();
        Ok((state, revision))
    }

    /// A watch of `sub` that reports what changed after `revision` (e.g. a snapshot's).
    pub fn watch_from(&self, sub: &str, revision: i64) -> PrefixWatch {
        PrefixWatch {
            etcd: self.clone(),
            prefix: self.key(sub),
            revision,
            stream: None,
            restarts: 0,
        }
    }
}

impl PrefixWatch {
    /// The last revision whose changes were handed out.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// How often the stream was lost and reopened, or replaced by a full read.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The next changes, or a full read when history was lost. A failed stream is dropped and
    /// the next call opens a new one from the last revision seen.
    pub async fn next(&mut self) -> Result<WatchEvent, Error> {
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let options = WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(self.revision + 1);
                    let mut client = self.etcd.client.clone();
                    self.stream
                        .insert(client.watch(self.prefix.clone(), Some(options)).await?)
                }
            };
            let reply = match stream.message().await {
                Ok(Some(reply)) => reply,
                Ok(None) => {
                    self.stream = None;
                    self.restarts += 1;
                    continue;
                }
                Err(err) => {
                    self.stream = None;
                    self.restarts += 1;
                    return Err(err.into());
                }
            };
            if reply.compact_revision() > 0 || reply.canceled() {
                tracing::warn!(prefix = %self.prefix, compacted = reply.compact_revision(),
                    reason = reply.cancel_reason(), "watch lost its history: reading everything");
                self.stream = None;
                self.restarts += 1;
                return self.reset().await;
            }
            let changes: Vec<Change> = reply
                .events()
                .iter()
                .filter_map(|e| self.change(e))
                .collect();
            if let Some(last) = changes.last() {
                self.revision = match last {
                    Change::Put { revision, .. } | Change::Delete { revision, .. } => *revision,
                };
                return Ok(WatchEvent::Changes(changes));
            }
        }
    }

    fn change(&self, event: &etcd_client::Event) -> Option<Change> {
        let kv = event.kv()?;
        let key = relative(&self.prefix, kv.key());
        let revision = kv.mod_revision();
        Some(match event.event_type() {
            EventType::Put => Change::Put {
                key,
                value: kv.value().to_vec(),
                revision,
            },
            EventType::Delete => Change::Delete { key, revision },
        })
    }

    async fn reset(&mut self) -> Result<WatchEvent, Error> {
        let (state, revision) = self.etcd.read_prefix(&self.prefix).await?;
        self.revision = revision;
        Ok(WatchEvent::Reset { state, revision })
    }
}

fn relative(prefix: &str, key: &[u8]) -> String {
    let key = String::from_utf8_lossy(key);
    key.strip_prefix(prefix).map_or_else(
        || key.to_string(),
        |k| k.trim_start_matches('/').to_string(),
    )
}
