//! A large, realistic event history, written fast: what benchmarks and
//! rebuild measurements start from.
//!
//! ```ignore
//! let report = seed::history(&store, &HistorySpec::default()).await?; // 1,000,000 events
//! ```
//!
//! Several projects, each with members drawn from one pool of users (so a
//! user hears of several projects), whose tickets are created, retitled,
//! described (with @mentions), reprioritised, relabelled, moved between
//! statuses, assigned and unassigned, commented on (often with @mentions, so
//! notifications exist) and sometimes deleted. Every event is decided by the
//! domain (`Project::decide`, `Ticket::decide`) against the state the seeder
//! keeps, and appended through [`EventStore`], so the log is one the API
//! could have written: the store assigns numbers, seqs and positions.
//!
//! It is fast because one append carries a burst of activity on one ticket
//! (several commands' events in one transaction, each with its own actor),
//! and several writers append at once, each to its own projects, so their
//! events interleave in the log as concurrent users' would. The default
//! million events took 66 s on a 2-core machine with PostgreSQL on it, with
//! the store connected with `options=-c synchronous_commit=off` (seeding
//! needs no durability), and about 80 s without.
//!
//! Deterministic-ish: the spec's seed fixes every project, user, ticket,
//! command and text, and each project's sequence of events; event ids,
//! positions and the interleaving of the writers are the store's. Seeding
//! one database twice with one seed fails (the project keys are taken).
//! The users exist only in events, not as accounts.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::Aggregate;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ticketflow_domain::{
    Actor, DomainError, EventMeta, NewMember, NewTicket, Priority, Project, ProjectCommand,
    ProjectView, Ticket, TicketChanges, TicketCommand, TicketEvent,
};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{Append, EventStore, Loaded, Metadata, StoreError};
use uuid::Uuid;

/// The shape of the history to write.
#[derive(Debug, Clone)]
pub struct HistorySpec {
    /// Events to write: exactly this many, once the projects' own events
    /// (created, members added) fit in it.
    pub events: u64,
    pub projects: usize,
    /// The pool of users the projects draw their members from.
    pub users: usize,
    /// Members per project (the first is its admin); at most `users`.
    pub members_per_project: usize,
    /// Mean events per ticket append: one burst of activity on a ticket.
    pub events_per_append: usize,
    /// Tickets a project works on at once; a new one pushes the least
    /// recently touched out of the set, and it goes quiet, as old tickets do.
    pub open_tickets: usize,
    /// Appending tasks, each with its own projects. More than the store's
    /// pool has connections only makes them queue.
    pub writers: usize,
    pub seed: u64,
    /// When the first event happened; every burst moves a writer's clock on.
    pub start: DateTime<Utc>,
}

impl Default for HistorySpec {
    fn default() -> Self {
        Self {
            events: 1_000_000,
            projects: 24,
            users: 300,
            members_per_project: 15,
            events_per_append: 20,
            open_tickets: 200,
            writers: 4,
            seed: 1,
            start: Utc
                .with_ymd_and_hms(2024, 1, 1, 9, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

/// What [`history`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub events: u64,
    pub projects: u64,
    pub tickets: u64,
    pub comments: u64,
    /// Comments and descriptions that mention a member.
    pub mentions: u64,
    pub deleted: u64,
    pub appends: u64,
    pub elapsed: Duration,
}

impl SeedReport {
    fn add(&mut self, other: &SeedReport) {
        self.events += other.events;
        self.projects += other.projects;
        self.tickets += other.tickets;
        self.comments += other.comments;
        self.mentions += other.mentions;
        self.deleted += other.deleted;
        self.appends += other.appends;
    }
}

/// Writes the history `spec` describes through `store`'s appends.
pub async fn history(store: &PgStore, spec: &HistorySpec) -> Result<SeedReport, StoreError> {
    let started = Instant::now();
    let users = users(spec);
    let writers = spec.writers.clamp(1, spec.projects.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let budget =
            spec.events / writers as u64 + u64::from((w as u64) < spec.events % writers as u64);
        let projects: Vec<usize> = (w..spec.projects).step_by(writers).collect();
        let writer = Writer::new(store.clone(), spec, &users, w, budget);
        tasks.spawn(writer.run(projects));
    }
    let mut report = SeedReport::default();
    while let Some(done) = tasks.join_next().await {
        let written = done.map_err(|e| StoreError::Unavailable(format!("seed writer: {e}")))??;
        report.add(&written);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn users(spec: &HistorySpec) -> Vec<Actor> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    (0..spec.users.max(1))
        .map(|i| Actor {
            id: uuid::Builder::from_random_bytes(rng.gen()).into_uuid(),
            username: format!("user{i:04}"),
        })
        .collect()
}

/// One project a writer works in.
struct Site {
    view: ProjectView,
    /// The tickets being worked on, least recently touched first.
    open: Vec<Loaded<Ticket>>,
}

/// One appending task: its projects, its random stream, its clock.
struct Writer {
    store: PgStore,
    spec: HistorySpec,
    users: Vec<Actor>,
    rng: StdRng,
    clock: DateTime<Utc>,
    budget: u64,
    report: SeedReport,
}

impl Writer {
    fn new(store: PgStore, spec: &HistorySpec, users: &[Actor], index: usize, budget: u64) -> Self {
        Self {
            store,
            spec: spec.clone(),
            users: users.to_vec(),
            rng: StdRng::seed_from_u64(spec.seed.wrapping_add(1 + index as u64)),
            clock: spec.start,
            budget,
            report: SeedReport::default(),
        }
    }

    async fn run(mut self, projects: Vec<usize>) -> Result<SeedReport, StoreError> {
        let mut sites = Vec::with_capacity(projects.len());
        for index in projects {
            sites.push(self.create_project(index).await?);
        }
        while self.budget > 0 && !sites.is_empty() {
            let site = self.rng.gen_range(0..sites.len());
            self.burst(&mut sites[site]).await?;
        }
        Ok(self.report)
    }

    /// The next event's metadata: `actor`, a little after the last one.
    fn meta(&mut self, actor: &Actor) -> EventMeta {
        self.clock += chrono::Duration::milliseconds(self.rng.gen_range(200..20_000));
        EventMeta {
            actor: actor.clone(),
            occurred_at: self.clock,
        }
    }

    /// A v7 id at the writer's clock, as the API gives tickets and comments.
    fn id(&mut self) -> Uuid {
        let ms = self.clock.timestamp_millis().max(0) as u64;
        uuid::Builder::from_unix_timestamp_millis(ms, &self.rng.gen()).into_uuid()
    }

    async fn create_project(&mut self, index: usize) -> Result<Site, StoreError> {
        let mut members: Vec<Actor> = self
            .users
            .choose_multiple(&mut self.rng, self.spec.members_per_project.max(1))
            .cloned()
            .collect();
        members.sort_by(|a, b| a.username.cmp(&b.username));
        let admin = members[0].clone();
        let project_id = self.id();
        let mut project = Project::default();
        let mut events = Vec::new();
        let create = ProjectCommand::Create {
            meta: self.meta(&admin),
            project_id,
            key: format!("S{}P{index}", self.spec.seed % 1000),
            name: format!("Seeded project {index}"),
            display_name: admin.username.clone(),
        };
        decide_project(&mut project, &mut events, create)?;
        for member in &members[1..] {
            let add = ProjectCommand::AddMember {
                meta: self.meta(&admin),
                user: NewMember {
                    user_id: member.id,
                    username: member.username.clone(),
                    display_name: member.username.clone(),
                },
            };
            decide_project(&mut project, &mut events, add)?;
        }
        let count = events.len() as u64;
        self.store
            .append_project(Append {
                stream_id: project_id,
                project_id,
                before: Loaded::default(),
                events,
                metadata: Metadata::default(),
            })
            .await?;
        self.spend(count);
        self.report.projects += 1;
        Ok(Site {
            view: project.view(),
            open: Vec::new(),
        })
    }

    fn spend(&mut self, events: u64) {
        self.budget = self.budget.saturating_sub(events);
        self.report.events += events;
        self.report.appends += 1;
    }

    /// Appends one burst of activity: on a new ticket (which then joins the
    /// open set), or on an open one, which the burst may delete.
    async fn burst(&mut self, site: &mut Site) -> Result<(), StoreError> {
        let before = if site.open.is_empty() || self.rng.gen_bool(0.25) {
            Loaded::default()
        } else {
            let at = self.rng.gen_range(0..site.open.len());
            site.open.remove(at)
        };
        let (ticket_id, events) = self.plan(&site.view, &before.state)?;
        self.count(&events);
        let committed = self
            .store
            .append_ticket(Append {
                stream_id: ticket_id,
                project_id: site.view.project_id,
                before,
                events,
                metadata: Metadata::default(),
            })
            .await?;
        self.spend(committed.events.len() as u64);
        if !committed.state.deleted {
            site.open.push(Loaded {
                version: committed.state.version,
                last_position: committed.last_position(),
                state: committed.state,
                replayed: 0,
            });
            if site.open.len() > self.spec.open_tickets.max(1) {
                site.open.remove(0);
            }
        }
        Ok(())
    }

    /// The events of one burst on `ticket`, each decided on the state the
    /// previous ones left, and the ticket's id: a burst on a new ticket
    /// creates it first; a burst may end with a deletion.
    fn plan(
        &mut self,
        view: &ProjectView,
        ticket: &Ticket,
    ) -> Result<(Uuid, Vec<TicketEvent>), StoreError> {
        let mean = self.spec.events_per_append.max(1) as u64;
        let length = self.rng.gen_range(1..=2 * mean - 1).min(self.budget);
        let mut state = ticket.clone();
        let mut events = Vec::new();
        while (events.len() as u64) < length {
            let command = if !state.exists() {
                self.create(view)
            } else if events.len() as u64 + 1 == length && self.rng.gen_bool(0.04) {
                TicketCommand::Delete {
                    meta: self.any_meta(view),
                    project: view.clone(),
                }
            } else {
                self.activity(view, &state)
            };
            decide_ticket(&mut state, &mut events, command)?;
        }
        Ok((state.id, events))
    }

    fn count(&mut self, events: &[TicketEvent]) {
        use ticketflow_domain::TicketPayload as P;
        for event in events {
            match &event.payload {
                P::TicketCreated { .. } => self.report.tickets += 1,
                P::CommentAdded { mentions, .. } => {
                    self.report.comments += 1;
                    self.report.mentions += u64::from(!mentions.is_empty());
                }
                P::TicketDescriptionChanged { added_mentions, .. } => {
                    self.report.mentions += u64::from(!added_mentions.is_empty());
                }
                P::TicketDeleted {} => self.report.deleted += 1,
                _ => {}
            }
        }
    }

    fn member(&mut self, view: &ProjectView) -> Actor {
        view.members[self.rng.gen_range(0..view.members.len())].clone()
    }

    fn any_meta(&mut self, view: &ProjectView) -> EventMeta {
        let actor = self.member(view);
        self.meta(&actor)
    }

    fn create(&mut self, view: &ProjectView) -> TicketCommand {
        let assignee_id = self.rng.gen_bool(0.6).then(|| self.member(view).id);
        let n = self.rng.gen_range(1..100_000);
        TicketCommand::Create {
            meta: self.any_meta(view),
            project: view.clone(),
            ticket: NewTicket {
                ticket_id: self.id(),
                title: format!("{} #{n}", TITLES[n as usize % TITLES.len()]),
                description: self.text(view, "Steps to reproduce are in the attached log."),
                priority: PRIORITIES[n as usize % PRIORITIES.len()],
                assignee_id,
                labels: self.labels(),
                status_id: None,
            },
        }
    }

    /// One command on a live ticket that changes it: comments most often.
    fn activity(&mut self, view: &ProjectView, ticket: &Ticket) -> TicketCommand {
        let meta = self.any_meta(view);
        let project = view.clone();
        let roll = self.rng.gen_range(0..100);
        if roll < 38 {
            let body = self.text(view, "I had a look at this.");
            return TicketCommand::Comment {
                meta,
                project,
                comment_id: self.id(),
                body,
            };
        }
        let changes = match roll {
            38..=53 => TicketChanges {
                status_id: Some(other_status(view, ticket)),
                ..TicketChanges::default()
            },
            54..=67 => TicketChanges {
                assignee_id: Some(self.reassignment(view, ticket)),
                ..TicketChanges::default()
            },
            68..=77 => TicketChanges {
                title: Some(format!(
                    "{} (v{})",
                    ticket.title.split(" (v").next().unwrap_or_default(),
                    ticket.version + 1
                )),
                ..TicketChanges::default()
            },
            78..=85 => TicketChanges {
                description: Some(
                    self.text(view, "Updated the description with what we know now."),
                ),
                ..TicketChanges::default()
            },
            86..=93 => TicketChanges {
                priority: Some(PRIORITIES[(ticket.version as usize) % PRIORITIES.len()]),
                ..TicketChanges::default()
            },
            _ => TicketChanges {
                labels: Some(self.labels()),
                ..TicketChanges::default()
            },
        };
        TicketCommand::Update {
            meta,
            project,
            changes,
        }
    }

    /// Another member, or nobody now and then.
    fn reassignment(&mut self, view: &ProjectView, ticket: &Ticket) -> Option<Uuid> {
        if ticket.assignee.is_some() && self.rng.gen_bool(0.2) {
            return None;
        }
        Some(self.member(view).id)
    }

    /// `plain`, with an @mention of a member (a third of the time) and a
    /// random sentence count, so texts differ in size.
    fn text(&mut self, view: &ProjectView, plain: &str) -> String {
        let mut text = String::from(plain);
        for _ in 0..self.rng.gen_range(0..3) {
            text.push_str(" It happens on every second attempt, not only in production.");
        }
        if self.rng.gen_bool(0.33) {
            let who = self.member(view);
            text.push_str(&format!(" @{} could you take a look?", who.username));
        }
        text
    }

    fn labels(&mut self) -> Vec<String> {
        let count = self.rng.gen_range(0..=3);
        LABELS
            .choose_multiple(&mut self.rng, count)
            .map(|l| l.to_string())
            .collect()
    }
}

const TITLES: [&str; 6] = [
    "Login fails after password reset",
    "Export to CSV drops the last row",
    "Slow search on large projects",
    "Typo on the settings page",
    "Crash when uploading an empty file",
    "Add dark mode",
];

const PRIORITIES: [Priority; 4] = [
    Priority::Low,
    Priority::Medium,
    Priority::High,
    Priority::Urgent,
];

const LABELS: [&str; 6] = ["bug", "ui", "backend", "performance", "security", "docs"];

/// A status of the project other than the ticket's.
fn other_status(view: &ProjectView, ticket: &Ticket) -> i64 {
    let current = ticket.status.as_ref().map_or(0, |s| s.id);
    view.statuses
        .iter()
        .map(|s| s.id)
        .find(|id| *id > current)
        .or_else(|| view.statuses.first().map(|s| s.id))
        .unwrap_or(current)
}

/// Decides `command` on `state`, applies and collects its events.
fn decide_project(
    state: &mut Project,
    events: &mut Vec<ticketflow_domain::ProjectEvent>,
    command: ProjectCommand,
) -> Result<(), StoreError> {
    for event in state.decide(command).map_err(refused)? {
        state.apply(event.clone());
        events.push(event);
    }
    Ok(())
}

fn decide_ticket(
    state: &mut Ticket,
    events: &mut Vec<TicketEvent>,
    command: TicketCommand,
) -> Result<(), StoreError> {
    for event in state.decide(command).map_err(refused)? {
        state.apply(event.clone());
        events.push(event);
    }
    Ok(())
}

/// The seeder only issues commands the domain accepts; a refusal is its bug.
fn refused(e: DomainError) -> StoreError {
    StoreError::Corrupt(format!(
        "the seeder issued a command the domain refuses: {e}"
    ))
}
