//! A connection to the cluster for the client commands.

use std::path::Path;

use fabric_client::Client;

use super::runtime;
use crate::profile;

/// Connects with the cluster profile (`--cluster` or the default one), runs
/// `f` on the connection and closes it, on a fresh runtime.
pub(crate) fn with_client<T>(
    cluster: Option<&Path>,
    f: impl AsyncFnOnce(&Client) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime::block_on(async {
        let client = profile::connect(cluster).await?;
        let result = f(&client).await;
        client.close().await;
        result
    })
}
