//! Ticket Comment and Delete, what `apply` does to the state (version,
//! timestamps, fields) and `TicketPayload::assign_number`.

mod support;

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use support::*;
use ticketflow_domain::{DomainError, Priority, Ticket, TicketChanges, TicketEvent, TicketPayload};

fn framework() -> TestFramework<Ticket> {
    TestFramework::with(())
}

fn comment_added(body: &str, mentions: Vec<ticketflow_domain::Actor>) -> TicketPayload {
    TicketPayload::CommentAdded {
        comment_id: COMMENT_ID,
        body: body.into(),
        mentions,
    }
}

fn deleted_ticket() -> Vec<TicketEvent> {
    vec![
        ticket_created(),
        event(&alice(), TicketPayload::TicketDeleted {}),
    ]
}

fn not_found() -> DomainError {
    DomainError::NotFound { what: "ticket" }
}

// ---- Comment -------------------------------------------------------------------

#[test]
fn comment_emits_comment_added() {
    framework()
        .given(vec![ticket_created()])
        .when(comment("Looks good"))
        .then_expect_events(vec![event(&alice(), comment_added("Looks good", vec![]))]);
}

#[test]
fn any_member_may_comment() {
    framework()
        .given(vec![ticket_created()])
        .when(comment_by(&carol(), "me too"))
        .then_expect_events(vec![event(&carol(), comment_added("me too", vec![]))]);
}

#[test]
fn comment_by_non_member_is_forbidden() {
    framework()
        .given(vec![ticket_created()])
        .when(comment_by(&dave(), "hi"))
        .then_expect_forbidden();
}

#[test]
fn comment_on_unknown_ticket_is_not_found() {
    framework()
        .given_no_previous_events()
        .when(comment("hi"))
        .then_expect_error(not_found());
}

#[test]
fn empty_comment_is_invalid() {
    framework()
        .given(vec![ticket_created()])
        .when(comment(""))
        .then_expect_invalid("body");
}

#[test]
fn blank_comment_is_invalid() {
    framework()
        .given(vec![ticket_created()])
        .when(comment(" \n\t "))
        .then_expect_invalid("body");
}

#[test]
fn comment_of_10000_chars_is_accepted() {
    for body in [chars('c', 10_000), chars('é', 10_000)] {
        framework()
            .given(vec![ticket_created()])
            .when(comment(&body))
            .then_expect_events(vec![event(&alice(), comment_added(&body, vec![]))]);
    }
}

#[test]
fn comment_over_10000_chars_is_invalid() {
    framework()
        .given(vec![ticket_created()])
        .when(comment(&chars('c', 10_001)))
        .then_expect_invalid("body");
}

#[test]
fn comment_mentions_members_except_author_and_non_members() {
    let body = "@carol @alice @dave see @bob.";
    framework()
        .given(vec![ticket_created()])
        .when(comment(body))
        .then_expect_events(vec![event(
            &alice(),
            comment_added(body, vec![carol(), bob()]),
        )]);
}

#[test]
fn comment_mentions_repeat_even_if_already_mentioned_in_description() {
    framework()
        .given(vec![Created {
            description: "@bob".into(),
            mentions: vec![bob()],
            ..Created::default()
        }
        .event()])
        .when(comment("@bob?"))
        .then_expect_events(vec![event(&alice(), comment_added("@bob?", vec![bob()]))]);
}

// ---- Delete --------------------------------------------------------------------

#[test]
fn delete_emits_ticket_deleted() {
    framework()
        .given(vec![ticket_created()])
        .when(delete())
        .then_expect_events(vec![event(&alice(), TicketPayload::TicketDeleted {})]);
}

#[test]
fn any_member_may_delete() {
    framework()
        .given(vec![ticket_created()])
        .when(delete_by(&bob()))
        .then_expect_events(vec![event(&bob(), TicketPayload::TicketDeleted {})]);
}

#[test]
fn delete_by_non_member_is_forbidden() {
    framework()
        .given(vec![ticket_created()])
        .when(delete_by(&dave()))
        .then_expect_forbidden();
}

#[test]
fn delete_of_unknown_ticket_is_not_found() {
    framework()
        .given_no_previous_events()
        .when(delete())
        .then_expect_error(not_found());
}

#[test]
fn second_delete_is_not_found() {
    framework()
        .given(deleted_ticket())
        .when(delete())
        .then_expect_error(not_found());
}

#[test]
fn update_after_delete_is_not_found() {
    let changes = TicketChanges {
        title: Some("New".into()),
        ..TicketChanges::default()
    };
    framework()
        .given(deleted_ticket())
        .when(update(changes))
        .then_expect_error(not_found());
}

#[test]
fn empty_update_after_delete_is_not_found() {
    framework()
        .given(deleted_ticket())
        .when(update(TicketChanges::default()))
        .then_expect_error(not_found());
}

#[test]
fn comment_after_delete_is_not_found() {
    framework()
        .given(deleted_ticket())
        .when(comment("hi"))
        .then_expect_error(not_found());
}

#[test]
fn deleted_ticket_is_not_found_even_for_non_members() {
    framework()
        .given(deleted_ticket())
        .when(delete_by(&dave()))
        .then_expect_error(not_found());
}

#[test]
fn create_over_a_deleted_ticket_conflicts() {
    framework()
        .given(deleted_ticket())
        .when(create(new_ticket()))
        .then_expect_conflict("ticket_exists");
}

// ---- apply ---------------------------------------------------------------------

#[test]
fn fresh_ticket_does_not_exist() {
    let ticket = Ticket::default();
    assert!(!ticket.exists());
    assert_eq!(ticket.version, 0);
}

#[test]
fn ticket_created_sets_every_field() {
    let ticket: Ticket = replay(vec![Created {
        assignee: Some(bob()),
        labels: strings(&["a"]),
        priority: Priority::High,
        ..Created::default()
    }
    .event()]);
    assert!(ticket.exists());
    assert_eq!((ticket.id, ticket.project_id), (TICKET_ID, PROJECT_ID));
    assert_eq!(ticket.title, "Fix login");
    assert_eq!(ticket.priority, Priority::High);
    assert_eq!(ticket.status, Some(status(1)));
    assert_eq!(ticket.assignee, Some(bob()));
    assert_eq!(ticket.reporter, Some(alice()));
    assert_eq!(ticket.labels, strings(&["a"]));
    assert_eq!((ticket.created_at, ticket.updated_at), (at(0), at(0)));
    assert_eq!(ticket.version, 1);
}

#[test]
fn ticket_created_takes_number_and_key_assigned_by_the_store() {
    let mut payload = Created::default().payload();
    payload.assign_number(PROJECT_KEY, 42);
    let ticket: Ticket = replay(vec![event(&alice(), payload)]);
    assert_eq!((ticket.number, ticket.key.as_str()), (42, "PROJ-42"));
}

#[test]
fn field_events_change_their_field() {
    let ticket: Ticket = replay(vec![
        ticket_created(),
        event(
            &alice(),
            TicketPayload::TicketTitleChanged { title: "T".into() },
        ),
        event(
            &alice(),
            TicketPayload::TicketDescriptionChanged {
                description: "D".into(),
                mentions: vec![],
            },
        ),
        event(
            &alice(),
            TicketPayload::TicketPriorityChanged {
                priority: Priority::Low,
            },
        ),
        event(
            &alice(),
            TicketPayload::TicketLabelsChanged {
                labels: strings(&["l"]),
            },
        ),
        event(
            &alice(),
            TicketPayload::TicketStatusChanged {
                status: status(3),
                previous: status(1),
            },
        ),
        event(
            &alice(),
            TicketPayload::TicketAssigned {
                assignee: carol(),
                previous: None,
            },
        ),
    ]);
    assert_eq!(ticket.title, "T");
    assert_eq!(ticket.description, "D");
    assert_eq!(ticket.priority, Priority::Low);
    assert_eq!(ticket.labels, strings(&["l"]));
    assert_eq!(ticket.status, Some(status(3)));
    assert_eq!(ticket.assignee, Some(carol()));
}

#[test]
fn ticket_unassigned_clears_assignee() {
    let ticket: Ticket = replay(vec![
        Created {
            assignee: Some(bob()),
            ..Created::default()
        }
        .event(),
        event(
            &alice(),
            TicketPayload::TicketUnassigned { previous: bob() },
        ),
    ]);
    assert_eq!(ticket.assignee, None);
}

#[test]
fn ticket_deleted_marks_deleted_and_not_existing() {
    let ticket: Ticket = replay(deleted_ticket());
    assert!(ticket.deleted);
    assert!(!ticket.exists());
    assert_eq!(ticket.title, "Fix login", "the last known state is kept");
}

#[test]
fn version_counts_every_event_including_comments_and_deletion() {
    let mut ticket: Ticket = replay(vec![ticket_created()]);
    assert_eq!(ticket.version, 1);
    ticket.apply(event(
        &alice(),
        TicketPayload::TicketTitleChanged { title: "T".into() },
    ));
    assert_eq!(ticket.version, 2);
    ticket.apply(event(&bob(), comment_added("hi", vec![])));
    assert_eq!(ticket.version, 3);
    ticket.apply(event(&alice(), TicketPayload::TicketDeleted {}));
    assert_eq!(ticket.version, 4);
}

#[test]
fn updated_at_follows_the_latest_event_and_created_at_stays() {
    let mut ticket: Ticket = replay(vec![ticket_created()]);
    let title = TicketPayload::TicketTitleChanged { title: "T".into() };
    ticket.apply(TicketEvent::new(&meta_at(&alice(), 60), title));
    assert_eq!((ticket.created_at, ticket.updated_at), (at(0), at(60)));
    ticket.apply(TicketEvent::new(
        &meta_at(&bob(), 120),
        comment_added("hi", vec![]),
    ));
    assert_eq!((ticket.created_at, ticket.updated_at), (at(0), at(120)));
}

#[test]
fn events_of_one_update_are_applied_in_order() {
    let changes = TicketChanges {
        status_id: Some(2),
        assignee_id: Some(Some(bob().id)),
        ..TicketChanges::default()
    };
    let mut ticket: Ticket = replay(vec![ticket_created()]);
    let events = ticket.decide(update(changes)).unwrap();
    assert_eq!(events.len(), 2);
    for e in events {
        ticket.apply(e);
    }
    assert_eq!(ticket.version, 3);
    assert_eq!(
        (ticket.status, ticket.assignee),
        (Some(status(2)), Some(bob()))
    );
}

// ---- assign_number -------------------------------------------------------------

#[test]
fn assign_number_sets_number_and_project_key() {
    let mut payload = Created::default().payload();
    payload.assign_number("PROJ", 42);
    let TicketPayload::TicketCreated { number, key, .. } = payload else {
        panic!("not TicketCreated");
    };
    assert_eq!((number, key.as_str()), (42, "PROJ-42"));
}

#[test]
fn assign_number_leaves_other_payloads_alone() {
    let original = TicketPayload::TicketTitleChanged { title: "T".into() };
    let mut payload = original.clone();
    payload.assign_number("PROJ", 7);
    assert_eq!(payload, original);
}
