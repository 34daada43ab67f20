//! Several `meshplug serve` replicas on one etcd cluster: the foundation of high availability.
//!
//! - **One leader**, elected with an etcd lease ([`Etcd::campaign`]): the replica that creates
//!   `<prefix>/leader` while it is absent leads, for as long as it keeps the key's lease alive.
//!   When the leader dies or is paused past the lease, etcd deletes the key and another
//!   replica's campaign succeeds.
//! - **A term** per leadership: the leader key's create revision, so terms only grow, and two
//!   leaderships never share one.
//! - **Fenced writes** ([`Leadership::put`]): every write of a leader is an etcd transaction
//!   that compares the leader key's create revision with the writer's term, so a leader that was
//!   paused or cut off and comes back cannot write, whatever it still believes (Jepsen found
//!   etcd locks unsafe without this).
//!
//! - **Watches** ([`PrefixWatch`]): resumed from the last revision seen; after a compaction or a
//!   cancelled watch, a full read the caller replaces its view with; never skipping ahead.
//!
//! - **Membership** ([`Etcd::join`]): the keys a replica owns (its address, the nodes it holds)
//!   live under its own lease, so they vanish when it dies.
//!
//! `meshplug serve --store etcd://…` is built on this (see ARCHITECTURE.md, "Replicas").

mod error;
mod leader;
mod member;
mod watch;

pub use error::Error;
pub use leader::{Etcd, Leadership, Term};
pub use member::{BATCH, Membership};
pub use watch::{Change, PrefixWatch, WatchEvent};
