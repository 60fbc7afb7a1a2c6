//! The embedded mode's relay: committed events onto the in-process broker,
//! on the subjects JetStream would carry them on, for the gateway's member
//! removals. There is no stream to keep: what nobody is listening to when it
//! is published is not needed by anyone later (the log is the history).

use std::sync::Arc;
use std::time::Duration;

use crate::{metrics, Broker};
use ticketflow_store::EventStore;
use ticketflow_store::Watch;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 500;
const BACKOFF: Duration = Duration::from_millis(500);

pub struct LocalRelay {
    pub events: Arc<dyn EventStore>,
    pub broker: Broker,
    pub watch: Watch,
}

impl LocalRelay {
    /// Publishes each event committed after the start, in position order,
    /// until `stop` is cancelled (between batches).
    pub async fn run(mut self, stop: CancellationToken) {
        let mut at = loop {
            match self.events.head_position().await {
                Ok(head) => break head,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the log head; retrying");
                    if stop
                        .run_until_cancelled(tokio::time::sleep(BACKOFF))
                        .await
                        .is_none()
                    {
                        return;
                    }
                }
            }
        };
        metrics::relay_at(at, at);
        loop {
            let grown = self.watch.head.wait_for(|head| *head > at);
            // Stopped, or the store is gone (and so is the process).
            if !matches!(stop.run_until_cancelled(grown).await, Some(Ok(_))) {
                return;
            }
            match self.events.read_all(at, BATCH).await {
                Ok(batch) => {
                    for event in &batch {
                        if let Err(e) = self.broker.publish_event(event).await {
                            tracing::warn!(error = %e, "cannot publish an event locally");
                        }
                        at = event.position;
                    }
                    metrics::relayed(batch.len(), at, *self.watch.head.borrow());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the log; retrying");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }
}
