//! The Idempotency-Key of the request a command runs for.
//!
//! The HTTP layer claims the key and runs the handler inside [`keyed`]; the
//! command runner reads it here rather than through every handler's
//! arguments. Its appends carry the key to the store, which marks it with
//! what the command committed in the transaction of the events (see
//! `ticketflow_store::CommittedCommand`). A retry whose key carries a mark
//! but no stored response (the first request died between its commit and
//! storing its response) runs the handler again with that mark: the runner
//! then decides nothing and appends nothing, and answers with the state and
//! events the first run committed, so the handler builds the response the
//! first run would have sent.

use std::future::Future;

use ticketflow_store::{CommandKey, CommittedCommand};

tokio::task_local! {
    static REQUEST: KeyedRequest;
}

/// A keyed request, and what it already committed if it is a retry.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub key: CommandKey,
    pub committed: Option<CommittedCommand>,
}

/// Runs `handler` as the keyed request `request`.
pub async fn keyed<F: Future>(request: KeyedRequest, handler: F) -> F::Output {
    REQUEST.scope(request, handler).await
}

/// The key to mark with the command's events, if its request has one.
pub(crate) fn command_key() -> Option<CommandKey> {
    REQUEST.try_with(|r| r.key.clone()).ok()
}

/// What the first run of this request committed, if it is a retry of one.
pub(crate) fn already_committed() -> Option<CommittedCommand> {
    REQUEST.try_with(|r| r.committed).ok().flatten()
}
