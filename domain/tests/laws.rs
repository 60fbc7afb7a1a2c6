//! Property tests: any sequence of commands, realistic or not, keeps each
//! aggregate's laws (`ticketflow_testkit::laws`): a refused command changes
//! nothing, an accepted one's events take contiguous versions, and a replay
//! of the stored history reproduces the state.

use proptest::collection::vec;
use proptest::prelude::*;
use ticketflow_domain::inbox::InboxCommand;
use ticketflow_domain::{
    Actor, EventMeta, Inbox, NewMember, NewTicket, Priority, Project, ProjectCommand, ProjectView,
    Ticket, TicketChanges, TicketCommand,
};
use ticketflow_testkit::laws::{step, Stream, Versioned};
use ticketflow_testkit::prelude::*;
use uuid::Uuid;

/// Sequences stay short and cases few, so the domain's tests stay fast.
const CASES: u32 = 96;
const LONGEST: usize = 24;

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![Just(alice()), Just(bob()), Just(carol()), Just(dave())]
}

fn any_meta() -> impl Strategy<Value = EventMeta> {
    (actor(), 0i64..1000).prop_map(|(a, secs)| meta_at(&a, secs))
}

/// Text that is mostly fine and sometimes breaks a rule: empty, blank,
/// too long, mentions of members and of strangers.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("Fix login".to_string()),
        2 => Just("@bob and @carol, see @dave.".to_string()),
        1 => Just(String::new()),
        1 => Just(" \t\n".to_string()),
        1 => Just(chars('x', 201)),
        3 => "\\PC{0,24}",
    ]
}

fn labels() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => vec(prop_oneof![Just("bug".to_string()), Just("ui".to_string()), "[a-z ]{0,4}"], 0..4),
        1 => vec(Just("x".to_string()), 21..23),
        1 => vec("[a-z]{1,3}", 19..23),
    ]
}

/// A user id: one of the cast's (dave is never a member), or a stranger's.
fn user_id() -> impl Strategy<Value = Uuid> {
    prop_oneof![
        4 => actor().prop_map(|a| a.id),
        1 => Just(Uuid::from_u128(0xFF)),
    ]
}

/// The project a ticket command decides against: the usual one, or one
/// that lost bob, or one without statuses.
fn project() -> impl Strategy<Value = ProjectView> {
    prop_oneof![
        6 => Just(view()),
        1 => Just(ProjectView { members: vec![alice(), carol()], ..view() }),
        1 => Just(ProjectView { statuses: vec![], ..view() }),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Medium),
        Just(Priority::High),
        Just(Priority::Urgent)
    ]
}

fn new_ticket() -> impl Strategy<Value = NewTicket> {
    (
        text(),
        text(),
        priority(),
        proptest::option::of(user_id()),
        labels(),
        proptest::option::of(0i64..5),
    )
        .prop_map(
            |(title, description, priority, assignee_id, labels, status_id)| NewTicket {
                ticket_id: TICKET_ID,
                title,
                description,
                priority,
                assignee_id,
                labels,
                status_id,
            },
        )
}

fn changes() -> impl Strategy<Value = TicketChanges> {
    use proptest::option::of;
    (
        of(text()),
        of(text()),
        of(priority()),
        of(labels()),
        of(0i64..5),
        of(of(user_id())),
    )
        .prop_map(
            |(title, description, priority, labels, status_id, assignee_id)| TicketChanges {
                title,
                description,
                priority,
                labels,
                status_id,
                assignee_id,
            },
        )
}

fn ticket_command() -> impl Strategy<Value = TicketCommand> {
    prop_oneof![
        2 => (any_meta(), project(), new_ticket())
            .prop_map(|(meta, project, ticket)| TicketCommand::Create { meta, project, ticket }),
        5 => (any_meta(), project(), changes())
            .prop_map(|(meta, project, changes)| TicketCommand::Update { meta, project, changes }),
        3 => (any_meta(), project(), text()).prop_map(|(meta, project, body)| {
            TicketCommand::Comment { meta, project, comment_id: COMMENT_ID, body }
        }),
        1 => (any_meta(), project()).prop_map(|(meta, project)| TicketCommand::Delete { meta, project }),
    ]
}

fn project_command() -> impl Strategy<Value = ProjectCommand> {
    let key = prop_oneof![3 => Just("PROJ".to_string()), 1 => "[A-Za-z0-9]{0,12}"];
    prop_oneof![
        2 => (any_meta(), key, text()).prop_map(|(meta, key, name)| ProjectCommand::Create {
            meta,
            project_id: PROJECT_ID,
            key,
            name,
            display_name: "Someone".into(),
        }),
        4 => (any_meta(), actor()).prop_map(|(meta, user)| ProjectCommand::AddMember {
            meta,
            user: NewMember {
                user_id: user.id,
                display_name: display_name(&user),
                username: user.username,
            },
        }),
        2 => (any_meta(), user_id())
            .prop_map(|(meta, user_id)| ProjectCommand::RemoveMember { meta, user_id }),
        2 => (any_meta(), text(), text()).prop_map(|(meta, title, message)| {
            ProjectCommand::PostAnnouncement {
                meta,
                announcement_id: Uuid::from_u128(0xD0),
                title,
                message,
            }
        }),
    ]
}

fn inbox_command() -> impl Strategy<Value = InboxCommand> {
    (actor(), text(), text()).prop_map(|(user, title, message)| InboxCommand::SendNotice {
        meta: meta(&ticketflow_domain::inbox::operator()),
        user,
        title,
        message,
    })
}

/// Runs `commands` through [`step`] (which checks the laws at each one) and
/// checks the stream's version against the events appended.
fn run<A, P>(commands: Vec<A::Command>) -> Result<(), TestCaseError>
where
    A: cqrs_es::Aggregate<
            Event = ticketflow_domain::Event<P>,
            Error = ticketflow_domain::DomainError,
            Services = (),
        > + Versioned
        + Clone
        + PartialEq
        + std::fmt::Debug,
    P: ticketflow_domain::Payload,
{
    let mut stream = Stream::<A>::new();
    let mut appended = 0;
    for command in commands {
        if let Ok(n) = step(&mut stream, command) {
            appended += n;
        }
    }
    prop_assert_eq!(stream.state.version(), appended as u64);
    prop_assert_eq!(stream.history.len(), appended);
    Ok(())
}

/// Most sequences start with a valid creation, so that later commands meet
/// a live aggregate; the others are left to chance.
fn after<C, S>(first: C, rest: fn() -> S) -> impl Strategy<Value = Vec<C>>
where
    C: Clone + std::fmt::Debug + 'static,
    S: Strategy<Value = C> + 'static,
{
    prop_oneof![
        3 => vec(rest(), 0..LONGEST).prop_map(move |mut commands| {
            commands.insert(0, first.clone());
            commands
        }),
        1 => vec(rest(), 0..LONGEST),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn ticket_commands_keep_the_laws(
        commands in after(create(ticketflow_testkit::builders::new_ticket()), ticket_command)
    ) {
        run::<Ticket, _>(commands)?;
    }

    #[test]
    fn project_commands_keep_the_laws(
        commands in after(
            ProjectCommand::Create {
                meta: meta(&alice()),
                project_id: PROJECT_ID,
                key: PROJECT_KEY.into(),
                name: "Project".into(),
                display_name: "Alice".into(),
            },
            project_command,
        )
    ) {
        run::<Project, _>(commands)?;
    }

    #[test]
    fn inbox_commands_keep_the_laws(commands in vec(inbox_command(), 0..LONGEST)) {
        run::<Inbox, _>(commands)?;
    }
}
