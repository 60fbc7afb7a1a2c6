//! Aggregates as this process last saw them, so that most commands load
//! nothing from the database.
//!
//! A cached state is only ever trusted to *succeed*: every append carries the
//! ticket version and the project version its events were decided against,
//! and the store refuses it if either has moved on (another instance wrote),
//! after which the command loads both afresh and decides again. A refusal
//! (404, 403, a stale If-Match, a domain error) or a command that changes
//! nothing (so appends nothing for the store to check) is only answered on
//! states just loaded from the store, so a stale entry never decides those.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ticketflow_domain::project::Project;
use ticketflow_domain::ticket::Ticket;
use ticketflow_store::{EventStore, Loaded, StoreError};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

/// Stripes of stream turns: enough that unrelated streams rarely share one.
const TURN_STRIPES: usize = 1024;
/// Tickets kept per stripe (so about 32k in all), least recently used out.
const TICKETS_PER_STRIPE: usize = 32;
const PROJECT_SHARDS: usize = 64;
/// Projects kept per shard before one is dropped to make room.
const PROJECTS_PER_SHARD: usize = 256;

pub struct Aggregates {
    /// Writers of one stream take turns here (see [`Aggregates::turn`]); the
    /// turn also guards the stripe's cached tickets.
    stripes: Vec<Mutex<Stripe>>,
    /// Read by every ticket command, written rarely: short, sharded locks
    /// never held across an await.
    projects: Vec<RwLock<HashMap<Uuid, Arc<Loaded<Project>>>>>,
}

impl Default for Aggregates {
    fn default() -> Self {
        Self {
            stripes: (0..TURN_STRIPES).map(|_| Mutex::default()).collect(),
            projects: (0..PROJECT_SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl Aggregates {
    /// The turn a writer of `stream_id` holds from loading to appending.
    /// Without it, N concurrent writers of one ticket all load, decide, and
    /// all but one lose the compare-and-set, round after round: the work
    /// grows as N², and past the command's bound on attempts a writer is
    /// turned away, which loses its update. Striped, so memory stays
    /// bounded; two streams sharing a stripe merely take turns. A command
    /// holds one turn at a time, so turns cannot deadlock.
    pub async fn turn(&self, stream_id: Uuid) -> MutexGuard<'_, Stripe> {
        self.stripes[stripe_of(stream_id, TURN_STRIPES)]
            .lock()
            .await
    }

    /// Caches a ticket whose stream nobody else in this process writes yet
    /// (just created), unless its stripe is busy: it is only a cache.
    pub fn offer_ticket(&self, ticket: Loaded<Ticket>) {
        let stripe = &self.stripes[stripe_of(ticket.state.id, TURN_STRIPES)];
        if let Ok(mut stripe) = stripe.try_lock() {
            stripe.put(ticket);
        }
    }

    /// The project from the cache, or from the store when `fresh` or absent.
    pub async fn project(
        &self,
        store: &dyn EventStore,
        project_id: Uuid,
        fresh: bool,
    ) -> Result<Arc<Loaded<Project>>, StoreError> {
        let shard = &self.projects[stripe_of(project_id, PROJECT_SHARDS)];
        if !fresh {
            let cached = shard.read().ok().and_then(|s| s.get(&project_id).cloned());
            if let Some(project) = cached {
                return Ok(project);
            }
        }
        let project = Arc::new(store.load_project(project_id).await?);
        if project.state.exists() {
            self.put_project(project.clone());
        }
        Ok(project)
    }

    pub fn put_project(&self, project: Arc<Loaded<Project>>) {
        let shard = &self.projects[stripe_of(project.state.id, PROJECT_SHARDS)];
        // A poisoned shard only means a panic elsewhere; the map is intact.
        let mut shard = shard.write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= PROJECTS_PER_SHARD && !shard.contains_key(&project.state.id) {
            let victim = shard.keys().next().copied();
            victim.map(|id| shard.remove(&id));
        }
        shard.insert(project.state.id, project);
    }

    pub fn forget_project(&self, project_id: Uuid) {
        let shard = &self.projects[stripe_of(project_id, PROJECT_SHARDS)];
        shard
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&project_id);
    }
}

fn stripe_of(id: Uuid, stripes: usize) -> usize {
    (id.as_u128() % stripes as u128) as usize
}

/// The cached tickets of one stripe, most recently used last.
#[derive(Default)]
pub struct Stripe {
    tickets: Vec<Loaded<Ticket>>,
}

impl Stripe {
    /// The ticket from the cache, or from the store when `fresh` or absent.
    pub async fn ticket(
        &mut self,
        store: &dyn EventStore,
        ticket_id: Uuid,
        fresh: bool,
    ) -> Result<Loaded<Ticket>, StoreError> {
        if let Some(i) = self.tickets.iter().position(|t| t.state.id == ticket_id) {
            let cached = self.tickets.remove(i);
            if !fresh {
                self.tickets.push(cached.clone());
                return Ok(cached);
            }
        }
        let ticket = store.load_ticket(ticket_id).await?;
        if ticket.version > 0 {
            self.put(ticket.clone());
        }
        Ok(ticket)
    }

    pub fn put(&mut self, ticket: Loaded<Ticket>) {
        self.forget(ticket.state.id);
        if self.tickets.len() >= TICKETS_PER_STRIPE {
            self.tickets.remove(0);
        }
        self.tickets.push(ticket);
    }

    pub fn forget(&mut self, ticket_id: Uuid) {
        self.tickets.retain(|t| t.state.id != ticket_id);
    }
}
