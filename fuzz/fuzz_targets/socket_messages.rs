//! A client's text frame on a channel socket (tickets, notifications) and on
//! a presence socket, parsed as the sessions parse it.
//!
//! Beyond "no panic": every answer is a `pong` echoing the ping's timestamp
//! or a `bad_message` error, both channel kinds agree on what a ping is, and
//! a presence message's ticket is the one its text names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ticketflow_realtime::input::{parse_presence, reply_to, PresenceMessage};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    // Text frames are UTF-8 (the socket refuses others before parsing).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sent: Option<Value> = serde_json::from_str(text).ok();
    let reply = reply_to(text);
    let presence = parse_presence(text);
    match reply["type"].as_str() {
        Some("pong") => {
            let ping = sent.as_ref().expect("a pong answers JSON");
            assert_eq!(ping["type"], "ping");
            assert_eq!(reply["timestamp"], ping["timestamp"]);
            assert!(matches!(&presence, Ok(PresenceMessage::Ping(p)) if p == ping));
        }
        Some("error") => {
            assert_bad_message(&reply);
            assert!(!matches!(presence, Ok(PresenceMessage::Ping(_))));
        }
        _ => panic!("answered {reply}"),
    }
    match presence {
        Ok(PresenceMessage::Ping(_)) => {}
        Ok(PresenceMessage::Viewing(ticket)) => {
            let sent = sent.expect("viewing is JSON");
            assert_eq!(sent["type"], "viewing");
            assert_eq!(ticket, named_ticket(&sent), "viewing {sent}");
        }
        Ok(PresenceMessage::Typing(ticket)) => {
            let sent = sent.expect("typing is JSON");
            assert_eq!(sent["type"], "typing");
            assert_eq!(Some(ticket), named_ticket(&sent), "typing {sent}");
        }
        Err(bad) => assert_bad_message(&bad),
    }
});

/// The ticket a message's `ticket_id` names, if it names one.
fn named_ticket(message: &Value) -> Option<Uuid> {
    message["ticket_id"]
        .as_str()
        .map(|id| Uuid::parse_str(id).expect("the id it was read from"))
}

fn assert_bad_message(answer: &Value) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "bad_message", "{answer}");
    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
}
