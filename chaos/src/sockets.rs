//! WebSocket clients that resume: on any disconnect each reconnects to a
//! random live instance with `since` = the last seq it received, and records
//! every seq per channel for the verifier.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

use crate::api::{Targets, User};
use crate::cluster::{IDLE_LIMIT, PING_EVERY};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Channel {
    Tickets(Uuid),
    Notifications(Uuid),
    Presence(Uuid),
}

impl Channel {
    fn path(&self) -> String {
        match self {
            Channel::Tickets(p) => format!("/ws/projects/{p}/tickets/"),
            Channel::Notifications(_) => "/ws/notifications/".to_string(),
            Channel::Presence(p) => format!("/ws/projects/{p}/presence/"),
        }
    }

    pub fn has_seqs(&self) -> bool {
        !matches!(self, Channel::Presence(_))
    }
}

/// What one client saw over the whole run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Log {
    /// The head at its first connection: it must then get every seq after it.
    pub first_since: Option<i64>,
    pub seqs: Vec<i64>,
    pub connects: u32,
    pub failed_connects: u32,
    /// Close codes the server sent, by code.
    pub closes: BTreeMap<u16, u32>,
    /// Connections dropped without a close frame, or silent too long.
    pub dropped: u32,
    pub resyncs: u32,
    /// Instances (ports) it was served by.
    pub ports: Vec<u16>,
}

/// A client's shared state: its log, its progress (last seq), and whether it
/// is to stop reading for a while (the slow consumer fault).
pub struct Client {
    pub channel: Channel,
    pub user: User,
    pub log: Mutex<Log>,
    pub last: AtomicI64,
    pub stalled: AtomicBool,
    /// A small receive buffer, so that not reading backs up into the server fast.
    pub small_buffer: bool,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<i64>,
}

impl Client {
    pub fn new(channel: Channel, user: User, small_buffer: bool) -> Arc<Self> {
        Arc::new(Self {
            channel,
            user,
            log: Mutex::default(),
            last: AtomicI64::new(-1),
            stalled: AtomicBool::new(false),
            small_buffer,
        })
    }

    fn with_log(&self, f: impl FnOnce(&mut Log)) {
        if let Ok(mut log) = self.log.lock() {
            f(&mut log);
        }
    }

    /// Connects, reads, reconnects, until `stop` turns true.
    pub async fn run(self: Arc<Self>, targets: Targets, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let port = targets.pick();
            tokio::select! {
                _ = self.session(port) => {}
                _ = stop.changed() => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, port: u16) -> String {
        let mut url = format!(
            "ws://127.0.0.1:{port}{}?token={}",
            self.channel.path(),
            self.user.token()
        );
        let last = self.last.load(Ordering::SeqCst);
        if self.channel.has_seqs() && last >= 0 {
            url.push_str(&format!("&since={last}"));
        }
        url
    }

    async fn connect(&self, port: u16) -> anyhow::Result<Socket> {
        let tcp = TcpSocket::new_v4()?;
        if self.small_buffer {
            tcp.set_recv_buffer_size(4096)?;
        }
        let stream = tcp.connect(([127, 0, 0, 1], port).into()).await?;
        let (socket, _) = tokio_tungstenite::client_async(self.url(port), stream).await?;
        Ok(socket)
    }

    /// One connection, until it ends.
    async fn session(&self, port: u16) {
        let connected = tokio::time::timeout(Duration::from_secs(3), self.connect(port)).await;
        let Ok(Ok(mut socket)) = connected else {
            self.with_log(|l| l.failed_connects += 1);
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        };
        self.with_log(|l| {
            l.connects += 1;
            l.ports.push(port);
        });
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            if self.stalled.load(Ordering::SeqCst) {
                // Not reading, but alive: it still pings, as a busy client would.
                tokio::time::sleep(PING_EVERY).await;
                if socket.send(ping_frame()).await.is_err() {
                    self.with_log(|l| l.dropped += 1);
                    return;
                }
                continue;
            }
            tokio::select! {
                frame = tokio::time::timeout(IDLE_LIMIT, socket.next()) => match frame {
                    Ok(Some(Ok(Frame::Text(text)))) => self.receive(text.as_str()),
                    Ok(Some(Ok(Frame::Close(close)))) => {
                        let code = close.map(|c| u16::from(c.code)).unwrap_or(1005);
                        self.with_log(|l| *l.closes.entry(code).or_default() += 1);
                        return;
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) | Err(_) => {
                        self.with_log(|l| l.dropped += 1);
                        return;
                    }
                },
                _ = ping.tick() => {
                    if socket.send(ping_frame()).await.is_err() {
                        self.with_log(|l| l.dropped += 1);
                        return;
                    }
                }
            }
        }
    }

    fn receive(&self, text: &str) {
        let Ok(message) = serde_json::from_str::<Message>(text) else {
            return;
        };
        match (message.kind.as_str(), message.seq) {
            // The first connection's head: from there on, every seq must come.
            ("connection_established", Some(head))
                if self.channel.has_seqs() && self.last.load(Ordering::SeqCst) < 0 =>
            {
                self.with_log(|l| l.first_since = Some(head));
                self.last.store(head, Ordering::SeqCst);
            }
            ("ticket_update" | "comment_added" | "notification_message", Some(seq)) => {
                self.with_log(|l| l.seqs.push(seq));
                self.last.fetch_max(seq, Ordering::SeqCst);
            }
            ("resync_required", _) => self.with_log(|l| l.resyncs += 1),
            _ => {}
        }
    }

    pub fn snapshot(&self) -> Log {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

fn ping_frame() -> Frame {
    Frame::text(r#"{"type":"ping","timestamp":0}"#)
}
