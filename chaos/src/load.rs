//! The command load: users issuing a mix of ticket commands, each with an
//! Idempotency-Key and a unique marker in its text so the verifier finds its
//! events in the log; retried through faults with the same key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{Api, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Create,
    Patch,
    Comment,
    Assign,
}

impl Kind {
    /// How many of the command's events carry its marker.
    pub fn marked_events(self) -> usize {
        match self {
            Kind::Patch => 2,
            _ => 1,
        }
    }
}

/// How a command ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "status", rename_all = "snake_case")]
pub enum Answer {
    /// 2xx: its events must be in the log exactly once.
    Applied(u16),
    /// A final 4xx: none of its events may be.
    Refused(u16),
    /// Only timeouts, connection errors or 5xx until the run ended: all of
    /// its events or none.
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub marker: String,
    pub kind: Kind,
    pub answer: Answer,
    pub attempts: u32,
    /// Seconds into the load when it was first sent (to set beside the faults).
    pub at_s: f64,
}

/// What the users share: the projects, everyone in them, and the tickets
/// created so far per project.
pub struct World {
    pub api: Api,
    pub projects: Vec<Uuid>,
    pub users: Vec<User>,
    pub tickets: Mutex<Vec<Vec<Uuid>>>,
    pub outcomes: Mutex<Vec<Outcome>>,
    /// Set when the load is over: new commands stop.
    pub stop: AtomicBool,
    /// Set when the run gives up on unanswered commands.
    pub give_up: AtomicBool,
    /// When the load started.
    pub started: OnceLock<Instant>,
}

/// A command's unique marker, put in its text (see `verify::markers`).
pub fn marker() -> String {
    format!("CHAOS{:016x}", rand::thread_rng().gen::<u64>())
}

impl World {
    fn ticket(&self, project: usize) -> Option<Uuid> {
        let tickets = self.tickets.lock().ok()?;
        tickets[project].choose(&mut rand::thread_rng()).copied()
    }

    /// One user's loop until the load stops.
    pub async fn user_loop(self: Arc<Self>, me: usize) {
        while !self.stop.load(Ordering::Relaxed) {
            let (project, kind, marker) = {
                let mut rng = rand::thread_rng();
                let kind = *[
                    Kind::Create,
                    Kind::Create,
                    Kind::Patch,
                    Kind::Comment,
                    Kind::Comment,
                    Kind::Assign,
                ]
                .choose(&mut rng)
                .unwrap_or(&Kind::Create);
                (rng.gen_range(0..self.projects.len()), kind, marker())
            };
            self.issue(me, project, kind, marker).await;
            let think = rand::thread_rng().gen_range(50..250);
            tokio::time::sleep(Duration::from_millis(think)).await;
        }
    }

    /// Builds and runs one command (none when there is no ticket yet to act on).
    async fn issue(&self, me: usize, project: usize, kind: Kind, marker: String) -> Option<()> {
        let other = self.users.choose(&mut rand::thread_rng())?;
        let (method, path, body) = match kind {
            Kind::Create => (
                Method::POST,
                format!("/api/projects/{}/tickets", self.projects[project]),
                json!({"title": marker, "priority": "high"}),
            ),
            Kind::Patch => (
                Method::PATCH,
                format!("/api/tickets/{}", self.ticket(project)?),
                json!({"title": format!("t {marker}"), "description": format!("d {marker}")}),
            ),
            Kind::Comment => (
                Method::POST,
                format!("/api/tickets/{}/comments", self.ticket(project)?),
                json!({"body": format!("{marker} for @{}", other.username)}),
            ),
            Kind::Assign => (
                Method::PATCH,
                format!("/api/tickets/{}", self.ticket(project)?),
                json!({"title": format!("a {marker}"), "assignee_id": other.id}),
            ),
        };
        let reply = self
            .command(&self.users[me], method, &path, &body, marker, kind)
            .await;
        if let (Kind::Create, Some(id)) = (kind, reply.and_then(|r| id_of(&r))) {
            if let Ok(mut tickets) = self.tickets.lock() {
                tickets[project].push(id);
            }
        }
        Some(())
    }

    /// Sends a command until it is answered for good, with one key, and
    /// records its outcome; returns the body of a 2xx answer.
    pub async fn command(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: &Value,
        marker: String,
        kind: Kind,
    ) -> Option<Value> {
        let at_s = self
            .started
            .get()
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        let (answer, attempts, reply) = self.send_until_answered(user, method, path, body).await;
        if let Ok(mut all) = self.outcomes.lock() {
            all.push(Outcome {
                marker,
                kind,
                answer,
                attempts,
                at_s,
            });
        }
        reply
    }

    async fn send_until_answered(
        &self,
        user: &User,
        method: Method,
        path: &str,
        body: &Value,
    ) -> (Answer, u32, Option<Value>) {
        let key = Uuid::new_v4().to_string();
        let mut attempts = 0;
        while !self.give_up.load(Ordering::Relaxed) {
            attempts += 1;
            let token = user.token();
            let sent = self
                .api
                .send(method.clone(), path, Some(&token), Some(&key), Some(body))
                .await;
            match sent {
                Ok(reply) if reply.status.is_success() => {
                    return (
                        Answer::Applied(reply.status.as_u16()),
                        attempts,
                        Some(reply.body),
                    )
                }
                Ok(reply) if reply.status == 401 => {
                    // Expired: the command did not run; log in and send it again.
                    let _ = self.api.login(user).await;
                }
                Ok(reply)
                    if reply.status.is_server_error()
                        || reply.body["error"]["code"] == "idempotency_in_progress" => {}
                Ok(reply) => return (Answer::Refused(reply.status.as_u16()), attempts, None),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (Answer::Unknown, attempts, None)
    }
}

pub fn id_of(body: &Value) -> Option<Uuid> {
    body["id"].as_str()?.parse().ok()
}
