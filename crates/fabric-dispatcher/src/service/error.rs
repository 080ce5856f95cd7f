//! What can go wrong while the dispatcher starts or serves.

use fabric_net::{EndpointError, IdentityError, MdnsError, StreamError};
use fabric_proto::SignError;
use fabric_store::StoreError;

/// The dispatcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatcherError {
    /// The data dir could not be created or made private.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The QUIC endpoint could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The mDNS announcement could not start.
    #[error(transparent)]
    Mdns(#[from] MdnsError),
    /// The group of dispatchers could not be joined.
    #[error("cannot join the group of dispatchers: {0}")]
    Group(String),
}

/// Serving one stream failed; the stream ends and the error is logged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream broke.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A manifest could not be signed.
    #[error("cannot sign a manifest: {0}")]
    Sign(#[from] SignError),
}
