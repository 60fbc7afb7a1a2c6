//! The laws every aggregate obeys whatever it is told, for the domain's
//! property tests and the fuzz targets. [`step`] handles a command as the
//! application does (cqrs-es's `handle` on a copy of the state, the events
//! through a sink) and checks that
//! - a refused command leaves the state as it was: no event, no version;
//! - an accepted one's events take the versions right after the state's,
//!   one each, in order;
//! - the state it leaves equals a replay, from nothing, of the whole history
//!   read back from its stored form ([`Event::data`], [`Event::from_stored`]),
//!   as a rebuild from the event store would do it, each event's data
//!   matching its JSON Schema ([`crate::schemas`]).

use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use ticketflow_domain::{DomainError, Event, Inbox, Payload, Project, Ticket};

/// An aggregate's version: the number of events it has applied.
pub trait Versioned {
    fn version(&self) -> u64;
}

impl Versioned for Ticket {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for Project {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for Inbox {
    fn version(&self) -> u64 {
        self.version
    }
}

/// An aggregate and the history it was built from.
pub struct Stream<A: Aggregate> {
    pub state: A,
    pub history: Vec<A::Event>,
}

impl<A: Aggregate> Stream<A> {
    /// A stream with no events yet.
    pub fn new() -> Self {
        Self::from_history(Vec::new())
    }

    /// The stream these events make.
    pub fn from_history(history: Vec<A::Event>) -> Self {
        let state = crate::given::replay::<A>(history.clone());
        Self { state, history }
    }
}

impl<A: Aggregate> Default for Stream<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// Handles `command` on `stream`, checks the laws, and on success appends
/// the events to the stream; returns how many were appended.
pub fn step<A, P>(stream: &mut Stream<A>, command: A::Command) -> Result<usize, DomainError>
where
    A: Aggregate<Event = Event<P>, Error = DomainError, Services = ()>
        + Versioned
        + Clone
        + PartialEq
        + Debug,
    P: Payload,
{
    let before = stream.state.version();
    let mut state = stream.state.clone();
    let sink = EventSink::default();
    let outcome = now_or_never(state.handle(command, &(), &sink));
    let events = now_or_never(sink.collect());
    if let Err(refusal) = outcome {
        assert!(
            events.is_empty(),
            "refused ({refusal}) yet wrote {events:?}"
        );
        assert_eq!(
            state, stream.state,
            "refused ({refusal}) yet changed the state"
        );
        return Err(refusal);
    }
    let mut live = stream.state.clone();
    for (n, event) in events.iter().enumerate() {
        live.apply(event.clone());
        assert_eq!(
            live.version(),
            before + n as u64 + 1,
            "versions not contiguous"
        );
    }
    assert_eq!(
        state, live,
        "handle left another state than its events make"
    );
    stream.history.extend(events.iter().cloned());
    let replayed = crate::given::replay::<A>(stream.history.iter().map(stored).collect());
    assert_eq!(replayed, state, "a replay of the stored history differs");
    stream.state = state;
    Ok(events.len())
}

/// `event` written to its stored form, checked against its schema, and
/// read back.
fn stored<P: Payload>(event: &Event<P>) -> Event<P> {
    let data = event.data().expect("an event serialises");
    let version = event
        .event_version()
        .parse()
        .expect("a numeric schema version");
    let shape = crate::schemas::StoredShape {
        position: 0,
        event_type: event.event_type(),
        schema_version: i64::from(version),
        data: data.get().to_string(),
    };
    if let Some(mismatch) = crate::schemas::mismatch(&shape) {
        panic!("{mismatch}");
    }
    Event::from_stored(event.meta.clone(), &event.event_type(), version, &data)
        .expect("a stored event reads back")
}

/// Runs a future that never waits: aggregates decide without I/O.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an aggregate waited for something while deciding"),
    }
}
