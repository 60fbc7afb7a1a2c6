//! Ticket Update: one event per changed field, in field order; nothing for
//! unchanged fields; nothing at all when any field is invalid.

use ticketflow_domain::{Actor, Priority, Ticket, TicketChanges, TicketEvent, TicketPayload};
use ticketflow_testkit::prelude::*;
use uuid::Uuid;

/// alice updates the ticket rebuilt from `given` with `changes`.
fn case(
    name: &str,
    given: Vec<TicketEvent>,
    changes: TicketChanges,
    then: Then<TicketEvent>,
) -> Case<Ticket> {
    Case::new(name, given, update(changes), then)
}

/// The update emits these events, by alice.
fn emits(payloads: Vec<TicketPayload>) -> Then<TicketEvent> {
    Then::Events(by_alice(payloads))
}

fn description_changed(description: &str, mentions: Vec<Actor>) -> TicketPayload {
    TicketPayload::TicketDescriptionChanged {
        description: description.into(),
        added_mentions: mentions,
    }
}

fn labels_changed(l: &[&str]) -> TicketPayload {
    TicketPayload::TicketLabelsChanged { labels: strings(l) }
}

fn status_changed(to: i64, from: i64) -> TicketPayload {
    TicketPayload::TicketStatusChanged {
        status: status(to),
        previous: status(from),
    }
}

fn assigned(assignee: &Actor, previous: Option<Actor>) -> TicketPayload {
    TicketPayload::TicketAssigned {
        assignee: assignee.clone(),
        previous,
    }
}

/// A created ticket with these extra events applied.
fn ticket(then: Vec<TicketPayload>) -> Vec<TicketEvent> {
    let mut events = vec![ticket_created()];
    events.extend(then.into_iter().map(|p| event(&alice(), p)));
    events
}

fn assigned_to(actor: &Actor) -> Vec<TicketEvent> {
    ticket(vec![assigned(actor, None)])
}

fn described(description: &str) -> Vec<TicketEvent> {
    ticket(vec![description_changed(description, vec![])])
}

fn by_alice(payloads: Vec<TicketPayload>) -> Vec<TicketEvent> {
    payloads.into_iter().map(|p| event(&alice(), p)).collect()
}

fn title(t: &str) -> TicketChanges {
    TicketChanges {
        title: Some(t.into()),
        ..TicketChanges::default()
    }
}

fn description(d: &str) -> TicketChanges {
    TicketChanges {
        description: Some(d.into()),
        ..TicketChanges::default()
    }
}

fn labels(l: &[&str]) -> TicketChanges {
    TicketChanges {
        labels: Some(strings(l)),
        ..TicketChanges::default()
    }
}

fn status_id(id: i64) -> TicketChanges {
    TicketChanges {
        status_id: Some(id),
        ..TicketChanges::default()
    }
}

fn assignee(id: Option<Uuid>) -> TicketChanges {
    TicketChanges {
        assignee_id: Some(id),
        ..TicketChanges::default()
    }
}

// ---- preconditions -------------------------------------------------------------

#[test]
fn update_preconditions() {
    check_all(vec![
        case(
            "update_of_unknown_ticket_is_not_found",
            vec![],
            title("New"),
            Then::NotFound("ticket"),
        ),
        Case::new(
            "update_by_non_member_is_forbidden",
            ticket(vec![]),
            update_by(&dave(), title("New")),
            Then::Forbidden,
        ),
        Case::new(
            "any_member_may_update",
            ticket(vec![]),
            update_by(&bob(), title("New")),
            Then::Events(vec![event(
                &bob(),
                TicketPayload::TicketTitleChanged {
                    title: "New".into(),
                },
            )]),
        ),
    ]);
}

// ---- one event per field -------------------------------------------------------

#[test]
fn each_changed_field_emits_its_event() {
    check_all(vec![
        case(
            "title_change_emits_title_changed",
            ticket(vec![]),
            title("New title"),
            emits(vec![TicketPayload::TicketTitleChanged {
                title: "New title".into(),
            }]),
        ),
        case(
            "description_change_emits_description_changed",
            ticket(vec![]),
            description("Steps to reproduce"),
            emits(vec![description_changed("Steps to reproduce", vec![])]),
        ),
        case(
            "clearing_the_description_is_a_change",
            described("text"),
            description(""),
            emits(vec![description_changed("", vec![])]),
        ),
        case(
            "priority_change_emits_priority_changed",
            ticket(vec![]),
            TicketChanges {
                priority: Some(Priority::Urgent),
                ..TicketChanges::default()
            },
            emits(vec![TicketPayload::TicketPriorityChanged {
                priority: Priority::Urgent,
            }]),
        ),
        case(
            "labels_change_emits_deduplicated_labels",
            ticket(vec![]),
            labels(&["b", "a", "b"]),
            emits(vec![labels_changed(&["b", "a"])]),
        ),
        case(
            "reordering_labels_is_a_change",
            ticket(vec![labels_changed(&["a", "b"])]),
            labels(&["b", "a"]),
            emits(vec![labels_changed(&["b", "a"])]),
        ),
        case(
            "clearing_labels_is_a_change",
            ticket(vec![labels_changed(&["a"])]),
            labels(&[]),
            emits(vec![labels_changed(&[])]),
        ),
        case(
            "status_change_records_previous_status",
            ticket(vec![]),
            status_id(2),
            emits(vec![status_changed(2, 1)]),
        ),
        case(
            "second_status_change_records_the_changed_status_as_previous",
            ticket(vec![status_changed(2, 1)]),
            status_id(3),
            emits(vec![status_changed(3, 2)]),
        ),
        case(
            "every_changed_field_emits_its_own_event_in_field_order",
            ticket(vec![]),
            TicketChanges {
                assignee_id: Some(Some(bob().id)),
                status_id: Some(2),
                labels: Some(strings(&["x"])),
                priority: Some(Priority::High),
                description: Some("d".into()),
                title: Some("t".into()),
            },
            emits(vec![
                TicketPayload::TicketTitleChanged { title: "t".into() },
                description_changed("d", vec![]),
                TicketPayload::TicketPriorityChanged {
                    priority: Priority::High,
                },
                labels_changed(&["x"]),
                status_changed(2, 1),
                assigned(&bob(), None),
            ]),
        ),
        case(
            "only_changed_fields_emit_events",
            ticket(vec![]),
            TicketChanges {
                title: Some("Fix login".into()),
                priority: Some(Priority::Low),
                status_id: Some(1),
                ..TicketChanges::default()
            },
            emits(vec![TicketPayload::TicketPriorityChanged {
                priority: Priority::Low,
            }]),
        ),
    ]);
}

// ---- no change, no event -------------------------------------------------------

#[test]
fn unchanged_values_emit_nothing() {
    check_all(vec![
        case(
            "empty_update_emits_nothing",
            ticket(vec![]),
            TicketChanges::default(),
            Then::no_events(),
        ),
        case(
            "equal_values_emit_nothing",
            ticket(vec![
                description_changed("d", vec![]),
                labels_changed(&["a", "b"]),
                assigned(&bob(), None),
            ]),
            TicketChanges {
                title: Some("Fix login".into()),
                description: Some("d".into()),
                priority: Some(Priority::Medium),
                labels: Some(strings(&["a", "b"])),
                status_id: Some(1),
                assignee_id: Some(Some(bob().id)),
            },
            Then::no_events(),
        ),
        case(
            "labels_equal_after_deduplication_emit_nothing",
            ticket(vec![labels_changed(&["a", "b"])]),
            labels(&["a", "b", "a"]),
            Then::no_events(),
        ),
        case(
            "empty_labels_on_unlabelled_ticket_emit_nothing",
            ticket(vec![]),
            labels(&[]),
            Then::no_events(),
        ),
        case(
            "same_status_emits_nothing",
            ticket(vec![]),
            status_id(1),
            Then::no_events(),
        ),
    ]);
}

// ---- assignment ----------------------------------------------------------------

#[test]
fn assignment_rules() {
    let mut unassigned_again = assigned_to(&bob());
    unassigned_again.push(event(
        &alice(),
        TicketPayload::TicketUnassigned { previous: bob() },
    ));
    check_all(vec![
        case(
            "assigning_an_unassigned_ticket_has_no_previous",
            ticket(vec![]),
            assignee(Some(bob().id)),
            emits(vec![assigned(&bob(), None)]),
        ),
        case(
            "reassigning_records_previous_assignee",
            assigned_to(&bob()),
            assignee(Some(carol().id)),
            emits(vec![assigned(&carol(), Some(bob()))]),
        ),
        case(
            "reassigning_a_ticket_created_with_an_assignee_records_it_as_previous",
            vec![Created {
                assignee: Some(bob()),
                ..Created::default()
            }
            .event()],
            assignee(Some(alice().id)),
            emits(vec![assigned(&alice(), Some(bob()))]),
        ),
        case(
            "unassigning_records_previous_assignee",
            assigned_to(&bob()),
            assignee(None),
            emits(vec![TicketPayload::TicketUnassigned { previous: bob() }]),
        ),
        case(
            "unassigning_an_unassigned_ticket_emits_nothing",
            ticket(vec![]),
            assignee(None),
            Then::no_events(),
        ),
        case(
            "unassigning_after_unassign_emits_nothing",
            unassigned_again,
            assignee(None),
            Then::no_events(),
        ),
        case(
            "assigning_the_current_assignee_emits_nothing",
            assigned_to(&bob()),
            assignee(Some(bob().id)),
            Then::no_events(),
        ),
        case(
            "assigning_a_non_member_is_invalid",
            ticket(vec![]),
            assignee(Some(dave().id)),
            Then::Invalid("assignee_id"),
        ),
        case(
            "reassigning_to_a_non_member_is_invalid",
            assigned_to(&bob()),
            assignee(Some(dave().id)),
            Then::Invalid("assignee_id"),
        ),
    ]);
}

// ---- description mentions ------------------------------------------------------

#[test]
fn description_change_mentions() {
    let mut mention_removed = described("cc @bob");
    mention_removed.extend(by_alice(vec![description_changed("cc nobody", vec![])]));
    check_all(vec![
        case(
            "description_change_mentions_only_newly_added_members",
            described("cc @bob"),
            description("cc @bob and @carol"),
            emits(vec![description_changed(
                "cc @bob and @carol",
                vec![carol()],
            )]),
        ),
        case(
            "description_change_keeping_same_mentions_mentions_nobody",
            described("cc @bob"),
            description("cc @bob, thanks"),
            emits(vec![description_changed("cc @bob, thanks", vec![])]),
        ),
        case(
            "description_mentions_from_creation_count_as_existing",
            vec![created_mentioning_bob()],
            description("@bob @carol"),
            emits(vec![description_changed("@bob @carol", vec![carol()])]),
        ),
        case(
            "description_change_mentions_exclude_actor_and_non_members",
            ticket(vec![]),
            description("@alice @dave @carol"),
            emits(vec![description_changed(
                "@alice @dave @carol",
                vec![carol()],
            )]),
        ),
        case(
            "mention_removed_then_re_added_counts_as_new",
            mention_removed,
            description("cc @bob"),
            emits(vec![description_changed("cc @bob", vec![bob()])]),
        ),
    ]);
}

// ---- invalid fields ------------------------------------------------------------

#[test]
fn invalid_fields_are_refused() {
    let too_many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    let mut cases = vec![
        case(
            "title_of_201_chars_is_invalid",
            ticket(vec![]),
            title(&chars('é', 201)),
            Then::Invalid("title"),
        ),
        case(
            "title_of_200_unicode_chars_is_accepted",
            ticket(vec![]),
            title(&chars('é', 200)),
            emits(vec![TicketPayload::TicketTitleChanged {
                title: chars('é', 200),
            }]),
        ),
        case(
            "description_over_20000_chars_is_invalid",
            ticket(vec![]),
            description(&chars('d', 20_001)),
            Then::Invalid("description"),
        ),
        case(
            "unknown_status_is_invalid",
            ticket(vec![]),
            status_id(9),
            Then::Invalid("status_id"),
        ),
    ];
    for t in ["", "  \t "] {
        cases.push(case(
            &format!("blank_title_is_invalid: {t:?}"),
            ticket(vec![]),
            title(t),
            Then::Invalid("title"),
        ));
    }
    for (name, bad) in [
        ("empty label", strings(&[""])),
        ("blank label", strings(&[" "])),
        ("label of 51 chars", vec![chars('l', 51)]),
        ("21 labels", too_many),
    ] {
        cases.push(case(
            &format!("invalid_labels_are_refused: {name}"),
            ticket(vec![]),
            TicketChanges {
                labels: Some(bad),
                ..TicketChanges::default()
            },
            Then::Invalid("labels"),
        ));
    }
    check_all(cases);
}

#[test]
fn an_invalid_field_refuses_the_whole_update() {
    check_all(vec![
        case(
            "invalid_title_refuses_the_whole_update",
            ticket(vec![]),
            TicketChanges {
                title: Some(" ".into()),
                priority: Some(Priority::High),
                status_id: Some(2),
                ..TicketChanges::default()
            },
            Then::Invalid("title"),
        ),
        case(
            "invalid_description_refuses_the_whole_update",
            ticket(vec![]),
            TicketChanges {
                title: Some("New".into()),
                description: Some(chars('d', 20_001)),
                ..TicketChanges::default()
            },
            Then::Invalid("description"),
        ),
        case(
            "invalid_labels_refuse_the_whole_update",
            ticket(vec![]),
            TicketChanges {
                title: Some("New".into()),
                labels: Some(strings(&[""])),
                ..TicketChanges::default()
            },
            Then::Invalid("labels"),
        ),
        case(
            "invalid_status_refuses_the_whole_update",
            ticket(vec![]),
            TicketChanges {
                title: Some("New".into()),
                priority: Some(Priority::Low),
                status_id: Some(0),
                assignee_id: Some(Some(bob().id)),
                ..TicketChanges::default()
            },
            Then::Invalid("status_id"),
        ),
        case(
            "invalid_assignee_refuses_the_whole_update",
            ticket(vec![]),
            TicketChanges {
                title: Some("New".into()),
                description: Some("d".into()),
                priority: Some(Priority::Low),
                labels: Some(strings(&["x"])),
                status_id: Some(3),
                assignee_id: Some(Some(dave().id)),
            },
            Then::Invalid("assignee_id"),
        ),
    ]);
}
