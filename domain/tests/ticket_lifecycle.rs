//! Ticket Comment and Delete, what `apply` does to the state (version,
//! timestamps, fields) and `TicketPayload::assign_number`.

use cqrs_es::Aggregate;
use ticketflow_domain::{Priority, Ticket, TicketChanges, TicketEvent, TicketPayload};
use ticketflow_testkit::prelude::*;

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

/// The comment `body` by `actor` on alice's plain ticket comes to `then`.
fn commenting(
    name: &str,
    actor: &ticketflow_domain::Actor,
    body: &str,
    then: Then<TicketEvent>,
) -> Case<Ticket> {
    Case::new(name, vec![ticket_created()], comment_by(actor, body), then)
}

/// The command on the deleted ticket is not found.
fn after_delete(name: &str, command: ticketflow_domain::TicketCommand) -> Case<Ticket> {
    Case::new(name, deleted_ticket(), command, Then::NotFound("ticket"))
}

// ---- Comment -------------------------------------------------------------------

#[test]
fn comment_rules() {
    let body = "@carol @alice @dave see @bob.";
    let mut cases = vec![
        commenting(
            "comment_emits_comment_added",
            &alice(),
            "Looks good",
            Then::Events(vec![event(&alice(), comment_added("Looks good", vec![]))]),
        ),
        commenting(
            "any_member_may_comment",
            &carol(),
            "me too",
            Then::Events(vec![event(&carol(), comment_added("me too", vec![]))]),
        ),
        commenting(
            "comment_by_non_member_is_forbidden",
            &dave(),
            "hi",
            Then::Forbidden,
        ),
        Case::new(
            "comment_on_unknown_ticket_is_not_found",
            vec![],
            comment("hi"),
            Then::NotFound("ticket"),
        ),
        commenting(
            "empty_comment_is_invalid",
            &alice(),
            "",
            Then::Invalid("body"),
        ),
        commenting(
            "blank_comment_is_invalid",
            &alice(),
            " \n\t ",
            Then::Invalid("body"),
        ),
        commenting(
            "comment_over_10000_chars_is_invalid",
            &alice(),
            &chars('c', 10_001),
            Then::Invalid("body"),
        ),
        commenting(
            "comment_mentions_members_except_author_and_non_members",
            &alice(),
            body,
            Then::Events(vec![event(
                &alice(),
                comment_added(body, vec![carol(), bob()]),
            )]),
        ),
        Case::new(
            "comment_mentions_repeat_even_if_already_mentioned_in_description",
            vec![created_mentioning_bob()],
            comment("@bob?"),
            Then::Events(vec![event(&alice(), comment_added("@bob?", vec![bob()]))]),
        ),
    ];
    for (chars_of, body) in [("c", chars('c', 10_000)), ("é", chars('é', 10_000))] {
        cases.push(commenting(
            &format!("comment_of_10000_chars_is_accepted: {chars_of}"),
            &alice(),
            &body,
            Then::Events(vec![event(&alice(), comment_added(&body, vec![]))]),
        ));
    }
    check_all(cases);
}

// ---- Delete --------------------------------------------------------------------

#[test]
fn delete_rules() {
    check_all::<Ticket>(vec![
        Case::new(
            "delete_emits_ticket_deleted",
            vec![ticket_created()],
            delete(),
            Then::Events(vec![event(&alice(), TicketPayload::TicketDeleted {})]),
        ),
        Case::new(
            "any_member_may_delete",
            vec![ticket_created()],
            delete_by(&bob()),
            Then::Events(vec![event(&bob(), TicketPayload::TicketDeleted {})]),
        ),
        Case::new(
            "delete_by_non_member_is_forbidden",
            vec![ticket_created()],
            delete_by(&dave()),
            Then::Forbidden,
        ),
        Case::new(
            "delete_of_unknown_ticket_is_not_found",
            vec![],
            delete(),
            Then::NotFound("ticket"),
        ),
        Case::new(
            "create_over_a_deleted_ticket_conflicts",
            deleted_ticket(),
            create(new_ticket()),
            Then::Conflict("ticket_exists"),
        ),
    ]);
}

#[test]
fn a_deleted_ticket_is_not_found() {
    check_all::<Ticket>(vec![
        after_delete("second_delete_is_not_found", delete()),
        after_delete(
            "update_after_delete_is_not_found",
            update(TicketChanges {
                title: Some("New".into()),
                ..TicketChanges::default()
            }),
        ),
        after_delete(
            "empty_update_after_delete_is_not_found",
            update(TicketChanges::default()),
        ),
        after_delete("comment_after_delete_is_not_found", comment("hi")),
        after_delete(
            "deleted_ticket_is_not_found_even_for_non_members",
            delete_by(&dave()),
        ),
    ]);
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
                added_mentions: vec![],
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
