use thiserror::Error;

/// What can fail between a replica and etcd.
#[derive(Debug, Error)]
pub enum Error {
    /// etcd could not be reached, or refused a request.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// A write of a leadership that is no longer the leader's: refused by etcd, nothing
    /// written.
    #[error("fenced: this replica led in term {term}, and {now}; the write was refused by etcd")]
    Fenced {
        /// The writer's term.
        term: i64,
        /// Who leads now, in words.
        now: String,
    },
}
