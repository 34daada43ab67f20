use thiserror::Error;

/// Everything that can go wrong in this crate.
#[derive(Debug, Error)]
pub enum XdsError {
    /// The first request on a stream carried no `node`.
    #[error("the first DiscoveryRequest on a stream must carry a node")]
    MissingNode,
    /// A request on an aggregated stream named no `type_url`.
    #[error("an ADS DiscoveryRequest must carry a type_url")]
    MissingTypeUrl,
    /// The first request's node is larger than the server takes.
    #[error(
        "the node in the first DiscoveryRequest is {size} bytes; this server takes at most {limit} \
         (node metadata that large is held for every stream)"
    )]
    NodeTooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream's peer may not speak for the node it names (its certificate says another
    /// identity, or it has none).
    #[error("{0}")]
    Unauthorized(String),
    /// A request could not be read (over the size limit, or not a DiscoveryRequest).
    #[error("reading a request: {0}")]
    Request(tonic::Status),
    /// The client went away while a response was being sent.
    #[error("the stream closed while sending")]
    StreamClosed,
    /// Binding or serving the gRPC listener failed.
    #[error("serving xDS failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<XdsError> for tonic::Status {
    fn from(err: XdsError) -> Self {
        match err {
            XdsError::MissingNode | XdsError::MissingTypeUrl => {
                tonic::Status::invalid_argument(err.to_string())
            }
            XdsError::NodeTooLarge { .. } => tonic::Status::resource_exhausted(err.to_string()),
            XdsError::Unauthorized(reason) => tonic::Status::permission_denied(reason),
            XdsError::Request(status) => status,
            XdsError::StreamClosed => tonic::Status::cancelled(err.to_string()),
            XdsError::Transport(_) => tonic::Status::internal(err.to_string()),
        }
    }
}
