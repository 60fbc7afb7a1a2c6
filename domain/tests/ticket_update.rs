//! Ticket Update: one event per changed field, in field order; nothing for
//! unchanged fields; nothing at all when any field is invalid.

mod support;

use cqrs_es::test::TestFramework;
use support::*;
use ticketflow_domain::{
    Actor, DomainError, Priority, Ticket, TicketChanges, TicketEvent, TicketPayload,
};
use uuid::Uuid;

fn framework() -> TestFramework<Ticket> {
    TestFramework::with(())
}

/// A created ticket with these extra events applied.
fn ticket(then: Vec<TicketPayload>) -> Vec<TicketEvent> {
    let mut events = vec![ticket_created()];
    events.extend(then.into_iter().map(|p| event(&alice(), p)));
    events
}

fn assigned_to(actor: &Actor) -> Vec<TicketEvent> {
    ticket(vec![TicketPayload::TicketAssigned {
        assignee: actor.clone(),
        previous: None,
    }])
}

fn described(description: &str) -> Vec<TicketEvent> {
    ticket(vec![TicketPayload::TicketDescriptionChanged {
        description: description.into(),
        mentions: vec![],
    }])
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
fn update_of_unknown_ticket_is_not_found() {
    framework()
        .given_no_previous_events()
        .when(update(title("New")))
        .then_expect_error(DomainError::NotFound { what: "ticket" });
}

#[test]
fn update_by_non_member_is_forbidden() {
    framework()
        .given(ticket(vec![]))
        .when(update_by(&dave(), title("New")))
        .then_expect_forbidden();
}

#[test]
fn any_member_may_update() {
    framework()
        .given(ticket(vec![]))
        .when(update_by(&bob(), title("New")))
        .then_expect_events(vec![event(
            &bob(),
            TicketPayload::TicketTitleChanged {
                title: "New".into(),
            },
        )]);
}

// ---- one event per field -------------------------------------------------------

#[test]
fn title_change_emits_title_changed() {
    framework()
        .given(ticket(vec![]))
        .when(update(title("New title")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketTitleChanged {
            title: "New title".into(),
        }]));
}

#[test]
fn description_change_emits_description_changed() {
    framework()
        .given(ticket(vec![]))
        .when(update(description("Steps to reproduce")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "Steps to reproduce".into(),
            mentions: vec![],
        }]));
}

#[test]
fn clearing_the_description_is_a_change() {
    framework()
        .given(described("text"))
        .when(update(description("")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: String::new(),
            mentions: vec![],
        }]));
}

#[test]
fn priority_change_emits_priority_changed() {
    framework()
        .given(ticket(vec![]))
        .when(update(TicketChanges {
            priority: Some(Priority::Urgent),
            ..TicketChanges::default()
        }))
        .then_expect_events(by_alice(vec![TicketPayload::TicketPriorityChanged {
            priority: Priority::Urgent,
        }]));
}

#[test]
fn labels_change_emits_deduplicated_labels() {
    framework()
        .given(ticket(vec![]))
        .when(update(labels(&["b", "a", "b"])))
        .then_expect_events(by_alice(vec![TicketPayload::TicketLabelsChanged {
            labels: strings(&["b", "a"]),
        }]));
}

#[test]
fn reordering_labels_is_a_change() {
    framework()
        .given(ticket(vec![TicketPayload::TicketLabelsChanged {
            labels: strings(&["a", "b"]),
        }]))
        .when(update(labels(&["b", "a"])))
        .then_expect_events(by_alice(vec![TicketPayload::TicketLabelsChanged {
            labels: strings(&["b", "a"]),
        }]));
}

#[test]
fn clearing_labels_is_a_change() {
    framework()
        .given(ticket(vec![TicketPayload::TicketLabelsChanged {
            labels: strings(&["a"]),
        }]))
        .when(update(labels(&[])))
        .then_expect_events(by_alice(vec![TicketPayload::TicketLabelsChanged {
            labels: vec![],
        }]));
}

#[test]
fn status_change_records_previous_status() {
    framework()
        .given(ticket(vec![]))
        .when(update(status_id(2)))
        .then_expect_events(by_alice(vec![TicketPayload::TicketStatusChanged {
            status: status(2),
            previous: status(1),
        }]));
}

#[test]
fn second_status_change_records_the_changed_status_as_previous() {
    framework()
        .given(ticket(vec![TicketPayload::TicketStatusChanged {
            status: status(2),
            previous: status(1),
        }]))
        .when(update(status_id(3)))
        .then_expect_events(by_alice(vec![TicketPayload::TicketStatusChanged {
            status: status(3),
            previous: status(2),
        }]));
}

#[test]
fn every_changed_field_emits_its_own_event_in_field_order() {
    let changes = TicketChanges {
        assignee_id: Some(Some(bob().id)),
        status_id: Some(2),
        labels: Some(strings(&["x"])),
        priority: Some(Priority::High),
        description: Some("d".into()),
        title: Some("t".into()),
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_events(by_alice(vec![
            TicketPayload::TicketTitleChanged { title: "t".into() },
            TicketPayload::TicketDescriptionChanged {
                description: "d".into(),
                mentions: vec![],
            },
            TicketPayload::TicketPriorityChanged {
                priority: Priority::High,
            },
            TicketPayload::TicketLabelsChanged {
                labels: strings(&["x"]),
            },
            TicketPayload::TicketStatusChanged {
                status: status(2),
                previous: status(1),
            },
            TicketPayload::TicketAssigned {
                assignee: bob(),
                previous: None,
            },
        ]));
}

#[test]
fn only_changed_fields_emit_events() {
    let changes = TicketChanges {
        title: Some("Fix login".into()),
        priority: Some(Priority::Low),
        status_id: Some(1),
        ..TicketChanges::default()
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_events(by_alice(vec![TicketPayload::TicketPriorityChanged {
            priority: Priority::Low,
        }]));
}

// ---- no change, no event -------------------------------------------------------

#[test]
fn empty_update_emits_nothing() {
    framework()
        .given(ticket(vec![]))
        .when(update(TicketChanges::default()))
        .then_expect_no_events();
}

#[test]
fn equal_values_emit_nothing() {
    let given = ticket(vec![
        TicketPayload::TicketDescriptionChanged {
            description: "d".into(),
            mentions: vec![],
        },
        TicketPayload::TicketLabelsChanged {
            labels: strings(&["a", "b"]),
        },
        TicketPayload::TicketAssigned {
            assignee: bob(),
            previous: None,
        },
    ]);
    let changes = TicketChanges {
        title: Some("Fix login".into()),
        description: Some("d".into()),
        priority: Some(Priority::Medium),
        labels: Some(strings(&["a", "b"])),
        status_id: Some(1),
        assignee_id: Some(Some(bob().id)),
    };
    framework()
        .given(given)
        .when(update(changes))
        .then_expect_no_events();
}

#[test]
fn labels_equal_after_deduplication_emit_nothing() {
    framework()
        .given(ticket(vec![TicketPayload::TicketLabelsChanged {
            labels: strings(&["a", "b"]),
        }]))
        .when(update(labels(&["a", "b", "a"])))
        .then_expect_no_events();
}

#[test]
fn empty_labels_on_unlabelled_ticket_emit_nothing() {
    framework()
        .given(ticket(vec![]))
        .when(update(labels(&[])))
        .then_expect_no_events();
}

#[test]
fn same_status_emits_nothing() {
    framework()
        .given(ticket(vec![]))
        .when(update(status_id(1)))
        .then_expect_no_events();
}

// ---- assignment ----------------------------------------------------------------

#[test]
fn assigning_an_unassigned_ticket_has_no_previous() {
    framework()
        .given(ticket(vec![]))
        .when(update(assignee(Some(bob().id))))
        .then_expect_events(by_alice(vec![TicketPayload::TicketAssigned {
            assignee: bob(),
            previous: None,
        }]));
}

#[test]
fn reassigning_records_previous_assignee() {
    framework()
        .given(assigned_to(&bob()))
        .when(update(assignee(Some(carol().id))))
        .then_expect_events(by_alice(vec![TicketPayload::TicketAssigned {
            assignee: carol(),
            previous: Some(bob()),
        }]));
}

#[test]
fn reassigning_a_ticket_created_with_an_assignee_records_it_as_previous() {
    framework()
        .given(vec![Created {
            assignee: Some(bob()),
            ..Created::default()
        }
        .event()])
        .when(update(assignee(Some(alice().id))))
        .then_expect_events(by_alice(vec![TicketPayload::TicketAssigned {
            assignee: alice(),
            previous: Some(bob()),
        }]));
}

#[test]
fn unassigning_records_previous_assignee() {
    framework()
        .given(assigned_to(&bob()))
        .when(update(assignee(None)))
        .then_expect_events(by_alice(vec![TicketPayload::TicketUnassigned {
            previous: bob(),
        }]));
}

#[test]
fn unassigning_an_unassigned_ticket_emits_nothing() {
    framework()
        .given(ticket(vec![]))
        .when(update(assignee(None)))
        .then_expect_no_events();
}

#[test]
fn unassigning_after_unassign_emits_nothing() {
    let mut given = assigned_to(&bob());
    given.push(event(
        &alice(),
        TicketPayload::TicketUnassigned { previous: bob() },
    ));
    framework()
        .given(given)
        .when(update(assignee(None)))
        .then_expect_no_events();
}

#[test]
fn assigning_the_current_assignee_emits_nothing() {
    framework()
        .given(assigned_to(&bob()))
        .when(update(assignee(Some(bob().id))))
        .then_expect_no_events();
}

#[test]
fn assigning_a_non_member_is_invalid() {
    framework()
        .given(ticket(vec![]))
        .when(update(assignee(Some(dave().id))))
        .then_expect_invalid("assignee_id");
}

#[test]
fn reassigning_to_a_non_member_is_invalid() {
    framework()
        .given(assigned_to(&bob()))
        .when(update(assignee(Some(dave().id))))
        .then_expect_invalid("assignee_id");
}

// ---- description mentions ------------------------------------------------------

#[test]
fn description_change_mentions_only_newly_added_members() {
    framework()
        .given(described("cc @bob"))
        .when(update(description("cc @bob and @carol")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "cc @bob and @carol".into(),
            mentions: vec![carol()],
        }]));
}

#[test]
fn description_change_keeping_same_mentions_mentions_nobody() {
    framework()
        .given(described("cc @bob"))
        .when(update(description("cc @bob, thanks")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "cc @bob, thanks".into(),
            mentions: vec![],
        }]));
}

#[test]
fn description_mentions_from_creation_count_as_existing() {
    framework()
        .given(vec![Created {
            description: "@bob".into(),
            mentions: vec![bob()],
            ..Created::default()
        }
        .event()])
        .when(update(description("@bob @carol")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "@bob @carol".into(),
            mentions: vec![carol()],
        }]));
}

#[test]
fn description_change_mentions_exclude_actor_and_non_members() {
    framework()
        .given(ticket(vec![]))
        .when(update(description("@alice @dave @carol")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "@alice @dave @carol".into(),
            mentions: vec![carol()],
        }]));
}

#[test]
fn mention_removed_then_re_added_counts_as_new() {
    framework()
        .given(described("cc @bob"))
        .and(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "cc nobody".into(),
            mentions: vec![],
        }]))
        .when(update(description("cc @bob")))
        .then_expect_events(by_alice(vec![TicketPayload::TicketDescriptionChanged {
            description: "cc @bob".into(),
            mentions: vec![bob()],
        }]));
}

// ---- invalid fields ------------------------------------------------------------

#[test]
fn blank_title_is_invalid() {
    for t in ["", "  \t "] {
        framework()
            .given(ticket(vec![]))
            .when(update(title(t)))
            .then_expect_invalid("title");
    }
}

#[test]
fn title_of_201_chars_is_invalid() {
    framework()
        .given(ticket(vec![]))
        .when(update(title(&chars('é', 201))))
        .then_expect_invalid("title");
}

#[test]
fn title_of_200_unicode_chars_is_accepted() {
    let t = chars('é', 200);
    framework()
        .given(ticket(vec![]))
        .when(update(title(&t)))
        .then_expect_events(by_alice(vec![TicketPayload::TicketTitleChanged {
            title: t.clone(),
        }]));
}

#[test]
fn description_over_20000_chars_is_invalid() {
    framework()
        .given(ticket(vec![]))
        .when(update(description(&chars('d', 20_001))))
        .then_expect_invalid("description");
}

#[test]
fn invalid_labels_are_refused() {
    let too_many: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    for bad in [
        strings(&[""]),
        strings(&[" "]),
        vec![chars('l', 51)],
        too_many,
    ] {
        framework()
            .given(ticket(vec![]))
            .when(update(TicketChanges {
                labels: Some(bad),
                ..TicketChanges::default()
            }))
            .then_expect_invalid("labels");
    }
}

#[test]
fn unknown_status_is_invalid() {
    framework()
        .given(ticket(vec![]))
        .when(update(status_id(9)))
        .then_expect_invalid("status_id");
}

#[test]
fn invalid_title_refuses_the_whole_update() {
    let changes = TicketChanges {
        title: Some(" ".into()),
        priority: Some(Priority::High),
        status_id: Some(2),
        ..TicketChanges::default()
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_invalid("title");
}

#[test]
fn invalid_description_refuses_the_whole_update() {
    let changes = TicketChanges {
        title: Some("New".into()),
        description: Some(chars('d', 20_001)),
        ..TicketChanges::default()
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_invalid("description");
}

#[test]
fn invalid_labels_refuse_the_whole_update() {
    let changes = TicketChanges {
        title: Some("New".into()),
        labels: Some(strings(&[""])),
        ..TicketChanges::default()
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_invalid("labels");
}

#[test]
fn invalid_status_refuses_the_whole_update() {
    let changes = TicketChanges {
        title: Some("New".into()),
        priority: Some(Priority::Low),
        status_id: Some(0),
        assignee_id: Some(Some(bob().id)),
        ..TicketChanges::default()
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_invalid("status_id");
}

#[test]
fn invalid_assignee_refuses_the_whole_update() {
    let changes = TicketChanges {
        title: Some("New".into()),
        description: Some("d".into()),
        priority: Some(Priority::Low),
        labels: Some(strings(&["x"])),
        status_id: Some(3),
        assignee_id: Some(Some(dave().id)),
    };
    framework()
        .given(ticket(vec![]))
        .when(update(changes))
        .then_expect_invalid("assignee_id");
}
