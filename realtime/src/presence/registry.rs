//! Who is where: this instance's sockets per (project, user), and what every
//! instance says about each user of a project. Seeing a user arrive or leave
//! (across all instances) is what sends `joined`/`left` to the local sockets.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::{json, Value};
use ticketflow_app::AuthUser;
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::wire::{Op, Wire, WireUser};
use super::EXPIRE_AFTER;
use crate::close_codes::SLOW_CONSUMER;
use crate::hub::Control;

/// One local socket.
pub(super) struct Conn {
    pub id: u64,
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub control: Arc<Control>,
}

/// A user with sockets on this instance, in one project.
struct LocalUser {
    username: String,
    viewing: Option<Uuid>,
    conns: Vec<Conn>,
}

/// What one instance says about a user.
#[derive(Clone)]
struct Seen {
    username: String,
    viewing: Option<Uuid>,
    at: Instant,
}

#[derive(Default)]
pub(super) struct Registry {
    /// project → user → this instance's sockets.
    local: HashMap<Uuid, HashMap<Uuid, LocalUser>>,
    /// project → user → instance → what it says (this instance included).
    global: HashMap<Uuid, HashMap<Uuid, HashMap<Uuid, Seen>>>,
}

impl Registry {
    /// Adds a local socket of `user`, seen here from now. Returns the user,
    /// as the other instances hear of them, if it is their first socket here.
    pub fn connect(
        &mut self,
        project_id: Uuid,
        user: &AuthUser,
        conn: Conn,
        instance: Uuid,
    ) -> Option<WireUser> {
        // A user already present elsewhere keeps viewing what they view there.
        let known_viewing = self.latest(project_id, user.id).and_then(|s| s.viewing);
        let local = self
            .local
            .entry(project_id)
            .or_default()
            .entry(user.id)
            .or_insert_with(|| LocalUser {
                username: user.username.clone(),
                viewing: known_viewing,
                conns: Vec::new(),
            });
        let first_here = local.conns.is_empty();
        local.conns.push(conn);
        let me = WireUser::of(user, local.viewing);
        // Announces the user to the others if they were absent.
        self.see(project_id, instance, &me, Instant::now());
        first_here.then_some(me)
    }

    /// Removes a local socket. Returns the user, as the other instances hear
    /// of them, if it was their last one here: they leave this instance.
    pub fn disconnect(
        &mut self,
        project_id: Uuid,
        user_id: Uuid,
        id: u64,
        instance: Uuid,
    ) -> Option<WireUser> {
        let users = self.local.get_mut(&project_id)?;
        let local = users.get_mut(&user_id)?;
        local.conns.retain(|c| c.id != id);
        if !local.conns.is_empty() {
            return None;
        }
        let username = local.username.clone();
        users.remove(&user_id);
        if users.is_empty() {
            self.local.remove(&project_id);
        }
        self.unsee(project_id, user_id, instance);
        Some(WireUser {
            user_id,
            username,
            viewing: None,
        })
    }

    /// Applies an instance's message about a project.
    pub fn apply(&mut self, project_id: Uuid, wire: &Wire, now: Instant) {
        match wire.op {
            Op::Join => {
                for user in &wire.users {
                    self.see(project_id, wire.instance, user, now);
                }
            }
            Op::Viewing => {
                for user in &wire.users {
                    self.view(project_id, wire.instance, user, now);
                }
            }
            Op::Leave => {
                for user in &wire.users {
                    self.unsee(project_id, user.user_id, wire.instance);
                }
            }
            Op::Typing => {
                if let (Some(user), Some(ticket_id)) = (wire.users.first(), wire.ticket_id) {
                    self.typing(project_id, user, ticket_id);
                }
            }
            Op::Beat => self.beat(project_id, wire.instance, &wire.users, now),
        }
    }

    /// A user views a ticket (or none), as `instance` says; viewing is per
    /// user, wherever they view it from.
    pub fn view(&mut self, project_id: Uuid, instance: Uuid, user: &WireUser, now: Instant) {
        self.see(project_id, instance, user, now);
        self.set_viewing(project_id, user.user_id, user.viewing);
        let message = viewing_message(user.user_id, &user.username, user.viewing);
        self.broadcast(project_id, Some(user.user_id), &message);
    }

    pub fn typing(&self, project_id: Uuid, user: &WireUser, ticket_id: Uuid) {
        let message = typing_message(user.user_id, &user.username, ticket_id);
        self.broadcast(project_id, Some(user.user_id), &message);
    }

    /// An instance's whole list of a project's users.
    fn beat(&mut self, project_id: Uuid, instance: Uuid, listed: &[WireUser], now: Instant) {
        let gone: Vec<Uuid> = self
            .named_by(project_id, instance)
            .filter(|user| !listed.iter().any(|u| u.user_id == *user))
            .collect();
        for user_id in gone {
            self.unsee(project_id, user_id, instance);
        }
        for user in listed {
            self.see(project_id, instance, user, now);
        }
    }

    /// The users of a project `instance` has said something about.
    fn named_by(&self, project_id: Uuid, instance: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.global
            .get(&project_id)
            .into_iter()
            .flatten()
            .filter(move |(_, by)| by.contains_key(&instance))
            .map(|(user_id, _)| *user_id)
    }

    /// This instance's users of a project, as the other instances hear them.
    pub fn local_users(&self, project_id: Uuid) -> Vec<WireUser> {
        let Some(users) = self.local.get(&project_id) else {
            return Vec::new();
        };
        users
            .iter()
            .map(|(id, u)| WireUser {
                user_id: *id,
                username: u.username.clone(),
                viewing: u.viewing,
            })
            .collect()
    }

    /// Keeps `instance`'s own entries fresh; returns the projects it has
    /// sockets in.
    pub fn refresh(&mut self, instance: Uuid, now: Instant) -> Vec<Uuid> {
        let projects: Vec<Uuid> = self.local.keys().copied().collect();
        for project_id in &projects {
            let Some(users) = self.global.get_mut(project_id) else {
                continue;
            };
            for seen in users.values_mut().filter_map(|by| by.get_mut(&instance)) {
                seen.at = now;
            }
        }
        projects
    }

    /// Drops what instances other than `instance` said and did not repeat
    /// within [`EXPIRE_AFTER`].
    pub fn expire(&mut self, instance: Uuid, now: Instant) {
        let mut stale = Vec::new();
        for (project_id, users) in &self.global {
            for (user_id, by) in users {
                for (other, seen) in by {
                    if *other != instance && now - seen.at > EXPIRE_AFTER {
                        stale.push((*project_id, *user_id, *other));
                    }
                }
            }
        }
        for (project_id, user_id, other) in stale {
            self.unsee(project_id, user_id, other);
        }
    }

    /// Tells a user's local sockets on a project to close with `code`.
    pub fn close(&self, project_id: Uuid, user_id: Uuid, code: u16) {
        if let Some(local) = self.local.get(&project_id).and_then(|u| u.get(&user_id)) {
            for conn in &local.conns {
                conn.control.close(code);
            }
        }
    }

    /// Tells every local socket to close with `code`.
    pub fn close_all(&self, code: u16) {
        let users = self.local.values().flat_map(HashMap::values);
        for conn in users.flat_map(|user| &user.conns) {
            conn.control.close(code);
        }
    }

    /// The most recent word on a user in a project.
    fn latest(&self, project_id: Uuid, user_id: Uuid) -> Option<&Seen> {
        self.global
            .get(&project_id)?
            .get(&user_id)?
            .values()
            .max_by_key(|s| s.at)
    }

    fn present(&self, project_id: Uuid, user_id: Uuid) -> bool {
        self.global
            .get(&project_id)
            .and_then(|users| users.get(&user_id))
            .is_some_and(|by| !by.is_empty())
    }

    /// What a user views, wherever they view it from (viewing is per user).
    fn set_viewing(&mut self, project_id: Uuid, user_id: Uuid, viewing: Option<Uuid>) {
        if let Some(local) = self
            .local
            .get_mut(&project_id)
            .and_then(|u| u.get_mut(&user_id))
        {
            local.viewing = viewing;
        }
        if let Some(by) = self
            .global
            .get_mut(&project_id)
            .and_then(|u| u.get_mut(&user_id))
        {
            by.values_mut().for_each(|seen| seen.viewing = viewing);
        }
    }

    /// Records what an instance says; announces a user who just arrived.
    fn see(&mut self, project_id: Uuid, instance: Uuid, user: &WireUser, at: Instant) {
        let was_present = self.present(project_id, user.user_id);
        let seen = Seen {
            username: user.username.clone(),
            viewing: user.viewing,
            at,
        };
        self.global
            .entry(project_id)
            .or_default()
            .entry(user.user_id)
            .or_default()
            .insert(instance, seen);
        if !was_present {
            let message = status("joined", user.user_id, &user.username);
            self.broadcast(project_id, Some(user.user_id), &message);
        }
    }

    /// Forgets what an instance said; announces a user who just left.
    fn unsee(&mut self, project_id: Uuid, user_id: Uuid, instance: Uuid) {
        let Some(users) = self.global.get_mut(&project_id) else {
            return;
        };
        let Some(by) = users.get_mut(&user_id) else {
            return;
        };
        let Some(seen) = by.remove(&instance) else {
            return;
        };
        if !by.is_empty() {
            return;
        }
        users.remove(&user_id);
        if users.is_empty() {
            self.global.remove(&project_id);
        }
        let message = status("left", user_id, &seen.username);
        self.broadcast(project_id, Some(user_id), &message);
    }

    /// `presence_state`: everyone present in a project, by username.
    pub fn snapshot(&self, project_id: Uuid) -> Value {
        let mut users: Vec<(&str, Value)> = self
            .global
            .get(&project_id)
            .into_iter()
            .flatten()
            .filter_map(|(user_id, by)| {
                // The most recent word on the user wins.
                let seen = by.values().max_by_key(|s| s.at)?;
                let user = json!({
                    "user_id": user_id,
                    "username": seen.username,
                    "viewing_ticket_id": seen.viewing,
                });
                Some((seen.username.as_str(), user))
            })
            .collect();
        users.sort_by(|a, b| a.0.cmp(b.0));
        let users: Vec<Value> = users.into_iter().map(|(_, u)| u).collect();
        json!({ "type": "presence_state", "users": users })
    }

    /// Queues a message on the project's local sockets, except `except`'s.
    /// A full queue closes its socket (4008); it unregisters itself.
    fn broadcast(&self, project_id: Uuid, except: Option<Uuid>, message: &Value) {
        let Some(users) = self.local.get(&project_id) else {
            return;
        };
        let json = Utf8Bytes::from(message.to_string());
        for (user_id, local) in users {
            if Some(*user_id) == except {
                continue;
            }
            for conn in &local.conns {
                if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(json.clone()) {
                    conn.control.close(SLOW_CONSUMER);
                }
            }
        }
    }
}

fn status(action: &str, user_id: Uuid, username: &str) -> Value {
    json!({ "type": "user_status", "action": action, "user_id": user_id, "username": username })
}

fn viewing_message(user_id: Uuid, username: &str, ticket_id: Option<Uuid>) -> Value {
    json!({ "type": "ticket_viewing", "user_id": user_id, "username": username, "ticket_id": ticket_id })
}

fn typing_message(user_id: Uuid, username: &str, ticket_id: Uuid) -> Value {
    json!({ "type": "user_typing", "user_id": user_id, "username": username, "ticket_id": ticket_id })
}
