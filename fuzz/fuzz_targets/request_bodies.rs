//! Request bodies, as the API parses and checks them, into domain commands
//! decided on a few states (no ticket yet, a live one, a deleted one; a new
//! project, an existing one). The first byte picks the body and the actor,
//! the rest is the body.
//!
//! Beyond "no panic": a body is refused with a client error; a command that
//! the domain refuses maps to a client error too; an accepted one keeps the
//! aggregate's laws (`ticketflow_testkit::laws`) and yields events with no
//! U+0000 (PostgreSQL text cannot hold it).

#![no_main]

use cqrs_es::Aggregate;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketflow_api::input::{
    parse_json, AddComment, AddMember, CreateProject, CreateTicket, PostAnnouncement, UpdateTicket,
};
use ticketflow_app::ApiError;
use ticketflow_domain::{
    DomainError, Event, NewMember, Payload, Project, ProjectCommand, Ticket, TicketCommand,
    TicketPayload,
};
use ticketflow_testkit::laws::{step, Stream, Versioned};
use ticketflow_testkit::prelude::*;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let actor = [alice(), bob(), carol(), dave()][usize::from(choice >> 6)].clone();
    let meta = meta(&actor);
    match choice & 0x3f {
        0 => ticket_body::<CreateTicket>(body, |b| TicketCommand::Create {
            meta: meta.clone(),
            project: view(),
            ticket: b.into_ticket(TICKET_ID),
        }),
        1 => {
            let Some(b) = parsed::<UpdateTicket>(body) else {
                return;
            };
            let Some(changes) = accepted(b.changes()) else {
                return;
            };
            decide_on_tickets(TicketCommand::Update {
                meta,
                project: view(),
                changes,
            });
        }
        2 => ticket_body::<AddComment>(body, |b| TicketCommand::Comment {
            meta: meta.clone(),
            project: view(),
            comment_id: COMMENT_ID,
            body: b.body,
        }),
        3 => project_body::<CreateProject>(body, |b| ProjectCommand::Create {
            meta: meta.clone(),
            project_id: PROJECT_ID,
            key: b.key,
            name: b.name,
            display_name: "Someone".into(),
        }),
        4 => project_body::<AddMember>(body, |b| ProjectCommand::AddMember {
            meta: meta.clone(),
            user: NewMember {
                user_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, b.username.as_bytes()),
                display_name: b.username.clone(),
                username: b.username,
            },
        }),
        _ => project_body::<PostAnnouncement>(body, |b| ProjectCommand::PostAnnouncement {
            meta: meta.clone(),
            announcement_id: Uuid::from_u128(0xD0),
            title: b.title,
            message: b.message,
        }),
    }
});

/// The body, or `None` after checking its refusal is the client's fault.
fn parsed<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    accepted(parse_json::<T>(body))
}

fn accepted<T>(result: Result<T, ApiError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            assert!(
                [400, 422].contains(&e.status.as_u16()),
                "a body refused with {}: {e:?}",
                e.status
            );
            None
        }
    }
}

fn ticket_body<T: DeserializeOwned>(body: &[u8], command: impl FnOnce(T) -> TicketCommand) {
    if let Some(b) = parsed::<T>(body) {
        decide_on_tickets(command(b));
    }
}

fn project_body<T: DeserializeOwned>(body: &[u8], command: impl FnOnce(T) -> ProjectCommand) {
    if let Some(b) = parsed::<T>(body) {
        let command = command(b);
        for history in [vec![], project_created()] {
            decide(Stream::<Project>::from_history(history), command.clone());
        }
    }
}

/// Decides the command on no ticket, a live ticket that mentions bob, and a
/// deleted ticket.
fn decide_on_tickets(command: TicketCommand) {
    let deleted = event(&alice(), TicketPayload::TicketDeleted {});
    for history in [
        vec![],
        vec![created_mentioning_bob()],
        vec![ticket_created(), deleted],
    ] {
        decide(Stream::<Ticket>::from_history(history), command.clone());
    }
}

fn decide<A, P>(mut stream: Stream<A>, command: A::Command)
where
    A: Aggregate<Event = Event<P>, Error = DomainError, Services = ()>
        + Versioned
        + Clone
        + PartialEq
        + std::fmt::Debug,
    P: Payload,
{
    let before = stream.history.len();
    match step(&mut stream, command) {
        Ok(_) => {
            for event in &stream.history[before..] {
                let json = serde_json::to_value(event).expect("an event serialises");
                assert!(!has_nul(&json), "U+0000 reached an event: {json}");
            }
        }
        Err(refusal) => {
            let status = ApiError::from(refusal.clone()).status;
            assert!(status.is_client_error(), "{refusal:?} answered {status}");
        }
    }
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
