//! The run's cast: users, projects and their first tickets; the sockets.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use rand::seq::SliceRandom;
use reqwest::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::api::{Api, Targets, User};
use crate::load::{self, World};
use crate::sockets::{Channel, Client, Log};

/// Users (the first one admin of everything), the projects with everyone
/// in them and a few tickets each, and the probe project (admin alone).
pub async fn world(api: Api, users: usize, projects: usize) -> anyhow::Result<(Arc<World>, Uuid)> {
    let mut all: Vec<User> = Vec::new();
    for chunk in (0..users.max(2)).collect::<Vec<_>>().chunks(4) {
        let made = futures::future::try_join_all(chunk.iter().map(|i| {
            let api = api.clone();
            async move { api.register(&format!("chaos-user-{i}")).await }
        }))
        .await?;
        all.extend(made);
    }
    let admin = all[0].token();
    let mut ids = Vec::new();
    let mut tickets = Vec::new();
    for p in 0..=projects {
        let key = if p == projects {
            "PROBE".to_string()
        } else {
            format!("CH{p}")
        };
        let body = json!({"key": key, "name": key});
        let project = api
            .expect(Method::POST, "/api/projects", Some(&admin), body, 201)
            .await?;
        let id = load::id_of(&project).context("project id")?;
        ids.push(id);
        if p == projects {
            break;
        }
        for user in &all[1..] {
            let body = json!({"username": user.username});
            let path = format!("/api/projects/{id}/members");
            api.expect(Method::POST, &path, Some(&admin), body, 201)
                .await?;
        }
        let mut made = Vec::new();
        for n in 0..3 {
            let body = json!({"title": format!("seed ticket {n}")});
            let path = format!("/api/projects/{id}/tickets");
            let ticket = api
                .expect(Method::POST, &path, Some(&admin), body, 201)
                .await?;
            made.push(load::id_of(&ticket).context("ticket id")?);
        }
        tickets.push(made);
    }
    let probe = ids.pop().context("probe project")?;
    let world = World {
        api,
        projects: ids,
        users: all,
        tickets: Mutex::new(tickets),
        outcomes: Mutex::default(),
        stop: AtomicBool::new(false),
        give_up: AtomicBool::new(false),
        started: OnceLock::new(),
    };
    Ok((Arc::new(world), probe))
}

/// A tenth presence sockets, the rest ticket and notification sockets, on
/// random projects and users.
fn spread(world: &World, count: usize) -> Vec<Arc<Client>> {
    let mut rng = rand::thread_rng();
    (0..count)
        .map(|i| {
            let user = world
                .users
                .choose(&mut rng)
                .cloned()
                .unwrap_or_else(|| world.users[0].clone());
            let project = *world
                .projects
                .choose(&mut rng)
                .unwrap_or(&world.projects[0]);
            let channel = match i % 10 {
                0 => Channel::Presence(project),
                1..=5 => Channel::Tickets(project),
                _ => Channel::Notifications(user.id),
            };
            Client::new(channel, user, false)
        })
        .collect()
}

/// Every socket of the run, running.
pub struct Sockets {
    pub clients: Vec<Arc<Client>>,
    /// On the probe project's channel (see `faults::Probe`).
    pub probe: Arc<Client>,
    /// The one that will stop reading (see `faults::Fault::SlowClient`).
    pub slow: Arc<Client>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Sockets {
    /// Starts `count` clients, the probe and the slow one, and waits until
    /// each has its first connection (its starting head).
    pub async fn connect(
        world: &World,
        targets: &Targets,
        count: usize,
        probe_project: Uuid,
    ) -> anyhow::Result<Self> {
        let admin = world.users[0].clone();
        let probe = Client::new(Channel::Tickets(probe_project), admin.clone(), false);
        let slow = Client::new(Channel::Tickets(world.projects[0]), admin, true);
        let mut clients = spread(world, count);
        clients.push(probe.clone());
        clients.push(slow.clone());
        let (stop, stopped) = watch::channel(false);
        let tasks = clients
            .iter()
            .map(|c| tokio::spawn(c.clone().run(targets.clone(), stopped.clone())))
            .collect();
        crate::cluster::wait_until(
            Duration::from_secs(120),
            "every socket connected",
            || async {
                clients
                    .iter()
                    .all(|c| !c.channel.has_seqs() || c.snapshot().first_since.is_some())
            },
        )
        .await?;
        Ok(Self {
            clients,
            probe,
            slow,
            tasks,
            stop,
        })
    }

    /// Closes every socket and returns what each saw.
    pub async fn stop(self) -> Vec<(Channel, Log)> {
        let _ = self.stop.send(true);
        futures::future::join_all(self.tasks).await;
        self.clients
            .iter()
            .map(|c| (c.channel.clone(), c.snapshot()))
            .collect()
    }
}
