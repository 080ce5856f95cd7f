//! Many tasks in one request.

use fabric_proto::TaskSpec;
use fabric_proto::wire::{MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES, Request, Response};

use crate::{Client, ClientError, Queued, unexpected};

impl Client {
    /// Queues many tasks in one request, all or none (at most
    /// [`MAX_SUBMIT_BATCH`] of them, with at most
    /// [`MAX_SUBMIT_BATCH_BYTES`] of args, env and inline inputs; more is
    /// refused here, before anything is sent: split the batch). They are stored in shared transactions with one flush, and
    /// the answer, in the order of `specs`, comes once all are durable. A
    /// refused spec refuses the batch, and the error names its place.
    ///
    /// ```no_run
    /// # async fn demo(client: fabric_client::Client, module: fabric_proto::Sha256) -> Result<(), fabric_client::ClientError> {
    /// use fabric_proto::TaskSpec;
    /// let specs = (1..=100)
    ///     .map(|n| TaskSpec {
    ///         args: vec!["--part".into(), n.to_string()],
    ///         ..TaskSpec::wasm(module)
    ///     })
    ///     .collect();
    /// let queued = client.submit_many(specs).await?;
    /// assert_eq!(queued.len(), 100);
    /// # Ok(()) }
    /// ```
    pub async fn submit_many(&self, specs: Vec<TaskSpec>) -> Result<Vec<Queued>, ClientError> {
        if specs.len() > MAX_SUBMIT_BATCH {
            return Err(ClientError::TooMany {
                count: specs.len(),
                max: MAX_SUBMIT_BATCH,
            });
        }
        let mut prepared = Vec::with_capacity(specs.len());
        for spec in specs {
            prepared.push(self.prepare(spec).await?);
        }
        let bytes: usize = prepared
            .iter()
            .map(|s| s.args_env_bytes() + s.input.len())
            .sum();
        if bytes > MAX_SUBMIT_BATCH_BYTES {
            return Err(ClientError::TooLarge {
                bytes,
                max: MAX_SUBMIT_BATCH_BYTES,
            });
        }
        let count = prepared.len();
        match self.call(&Request::SubmitMany { specs: prepared }).await? {
            Response::SubmittedMany(all) if all.len() == count => Ok(all
                .into_iter()
                .map(|t| Queued {
                    id: t.id,
                    warning: t.warning,
                })
                .collect()),
            other => Err(unexpected(other)),
        }
    }
}
