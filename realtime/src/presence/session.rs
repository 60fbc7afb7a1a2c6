//! One presence socket: `connection_established`, `presence_state`, then the
//! others' comings and goings, and this user's `viewing`/`typing`.

use axum::extract::ws::WebSocket;
use futures::StreamExt;
use serde_json::{json, Value};
use ticketflow_app::AuthUser;
use uuid::Uuid;

use super::Joined;
use crate::socket::{
    bad_message, closed_by_hub, finish, parse_client, ping, pong, send, send_text, text_of,
    unknown_type, within, End, Keepalive, Sink, Stream,
};
use crate::Gateway;

/// One presence socket, once its handshake passed.
pub(crate) struct PresenceSession {
    pub gateway: Gateway,
    pub user: AuthUser,
    pub project_id: Uuid,
}

impl PresenceSession {
    pub async fn run(self, socket: WebSocket) {
        let _open = self.gateway.metrics.presence.open();
        let (mut sink, mut stream) = socket.split();
        let outcome = self.serve(&mut sink, &mut stream).await;
        self.gateway.metrics.ended(&outcome);
        finish(&mut sink, &mut stream, outcome, &self.gateway.app.drain).await;
    }

    async fn serve(&self, sink: &mut Sink, stream: &mut Stream) -> Result<(), End> {
        let presence = &self.gateway.presence;
        send(sink, &self.established()).await?;
        presence.sync(self.project_id).await;
        let Joined {
            membership: _membership,
            mut rx,
            control,
            presence_state,
        } = presence.connect(self.project_id, &self.user);
        // Registered: a drain that began before is not told to the registry again.
        if self.gateway.app.drain.has_begun() {
            return Err(End::restart());
        }
        send(sink, &presence_state).await?;
        let mut keepalive = Keepalive::new(&self.gateway, &self.user);
        let messages = self.gateway.app.limits.socket_messages();
        loop {
            tokio::select! {
                // In this order: what was queued before a client frame is sent before its answer.
                biased;
                _ = control.notify.notified() => return Err(closed_by_hub(&control)),
                message = rx.recv() => {
                    let Some(message) = message else { return Err(closed_by_hub(&control)) };
                    send_text(sink, message).await?;
                    self.gateway.metrics.presence.deliveries.increment(1);
                }
                frame = stream.next() => {
                    keepalive.heard();
                    if let Some(text) = text_of(frame)? {
                        let reply = match within(&messages) {
                            Ok(()) => self.on_text(text.as_str()).await?,
                            Err(refused) => Some(refused),
                        };
                        if let Some(reply) = reply {
                            send(sink, &reply).await?;
                        }
                    }
                }
                due = keepalive.due() => {
                    due?;
                    ping(sink).await?;
                }
            }
        }
    }

    /// Presence has no seq.
    fn established(&self) -> Value {
        json!({
            "type": "connection_established", "channel": "presence",
            "user_id": self.user.id, "project_id": self.project_id,
        })
    }

    /// Handles a client message; returns the answer to the sender, if any.
    async fn on_text(&self, text: &str) -> Result<Option<Value>, End> {
        match parse_presence(text) {
            Ok(PresenceMessage::Ping(ping)) => Ok(Some(pong(&ping))),
            Ok(PresenceMessage::Viewing(ticket_id)) => self.viewing(ticket_id).await,
            Ok(PresenceMessage::Typing(ticket_id)) => self.typing(ticket_id).await,
            Err(bad) => Ok(Some(bad)),
        }
    }

    /// `viewing`: a ticket of this project, or none.
    async fn viewing(&self, ticket_id: Option<Uuid>) -> Result<Option<Value>, End> {
        if let Some(id) = ticket_id {
            if let Err(bad) = self.ticket_of_project(id).await? {
                return Ok(Some(bad));
            }
        }
        let presence = &self.gateway.presence;
        presence.viewing(self.project_id, &self.user, ticket_id);
        Ok(None)
    }

    /// `typing`: in a ticket of this project.
    async fn typing(&self, ticket_id: Uuid) -> Result<Option<Value>, End> {
        match self.ticket_of_project(ticket_id).await? {
            Ok(()) => {
                let presence = &self.gateway.presence;
                presence.typing(self.project_id, &self.user, ticket_id);
                Ok(None)
            }
            Err(bad) => Ok(Some(bad)),
        }
    }

    /// Whether `id` names a live ticket of this project (else `bad_message`).
    async fn ticket_of_project(&self, id: Uuid) -> Result<Result<(), Value>, End> {
        if self.project_of_ticket(id).await? == Some(self.project_id) {
            Ok(Ok(()))
        } else {
            Ok(Err(bad_message(
                "ticket_id is not a ticket of this project",
            )))
        }
    }

    /// The project of a live ticket. The read model knows most tickets, but
    /// lags the log: a client views a ticket the moment its creation is
    /// answered, before the projection has it, so a miss is settled by the log.
    async fn project_of_ticket(&self, id: Uuid) -> Result<Option<Uuid>, End> {
        let app = &self.gateway.app;
        let unavailable = |_| End::store_unavailable();
        if let Some(ticket) = app.reads.ticket(id).await.map_err(unavailable)? {
            return Ok(Some(ticket.project_id));
        }
        let logged = app.events.load_ticket(id).await.map_err(unavailable)?;
        Ok(logged.state.exists().then_some(logged.state.project_id))
    }
}

/// A presence client message, as far as its text tells (whether its ticket
/// belongs to the project takes the store).
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceMessage {
    /// The whole `ping`, whose `timestamp` the `pong` echoes.
    Ping(Value),
    /// `viewing` a ticket, or none (`"ticket_id": null`).
    Viewing(Option<Uuid>),
    Typing(Uuid),
}

/// Parses a presence client message, or gives the `bad_message` answer.
pub fn parse_presence(text: &str) -> Result<PresenceMessage, Value> {
    let (kind, message) = parse_client(text)?;
    match kind.as_str() {
        "ping" => Ok(PresenceMessage::Ping(message)),
        "viewing" => match &message["ticket_id"] {
            Value::Null => Ok(PresenceMessage::Viewing(None)),
            raw => ticket_id(raw).map(|id| PresenceMessage::Viewing(Some(id))),
        },
        "typing" => ticket_id(&message["ticket_id"]).map(PresenceMessage::Typing),
        other => Err(unknown_type(other)),
    }
}

fn ticket_id(raw: &Value) -> Result<Uuid, Value> {
    raw.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| bad_message("ticket_id must be a ticket id"))
}
