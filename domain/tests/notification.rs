//! Notification rules: who hears of which ticket event, with which words.
//! Every rule, actor exclusion, and the one-per-user priority order.

mod support;

use cqrs_es::Aggregate;
use support::*;
use ticketflow_domain::{
    notices, Actor, Notice, NotificationType, Priority, Ticket, TicketChanges, TicketEvent,
    TicketPayload,
};

use NotificationType::*;

/// alice's ticket PROJ-1 "Fix login", with these extra events (by alice) applied.
fn ticket_with(then: Vec<TicketPayload>) -> Ticket {
    let mut events = vec![created_event(Created::default())];
    events.extend(then.into_iter().map(|p| event(&alice(), p)));
    replay(events)
}

/// alice's ticket PROJ-1 assigned to `assignee`.
fn assigned(assignee: &Actor) -> Ticket {
    ticket_with(vec![TicketPayload::TicketAssigned {
        assignee: assignee.clone(),
        previous: None,
    }])
}

fn plain() -> Ticket {
    ticket_with(vec![])
}

/// A `TicketCreated` numbered 1, as the store records it, by alice.
fn created_event(created: Created) -> TicketEvent {
    let mut payload = created.payload();
    payload.assign_number(PROJECT_KEY, 1);
    event(&alice(), payload)
}

/// The (user, type) pairs of the notices, in order.
fn who(notices: &[Notice]) -> Vec<(String, NotificationType)> {
    let names = [alice(), bob(), carol(), dave()];
    notices
        .iter()
        .map(|n| {
            let name = names
                .iter()
                .find(|a| a.id == n.user_id)
                .map_or_else(|| n.user_id.to_string(), |a| a.username.clone());
            (name, n.notification_type)
        })
        .collect()
}

fn pairs(expected: &[(Actor, NotificationType)]) -> Vec<(String, NotificationType)> {
    expected
        .iter()
        .map(|(a, t)| (a.username.clone(), *t))
        .collect()
}

fn comment_by(actor: &Actor, mentions: Vec<Actor>) -> TicketEvent {
    event(
        actor,
        TicketPayload::CommentAdded {
            comment_id: COMMENT_ID,
            body: "text".into(),
            mentions,
        },
    )
}

fn status_change_by(actor: &Actor, to: i64) -> TicketEvent {
    event(
        actor,
        TicketPayload::TicketStatusChanged {
            status: status(to),
            previous: status(1),
        },
    )
}

fn assign_by(actor: &Actor, assignee: &Actor, previous: Option<Actor>) -> TicketEvent {
    event(
        actor,
        TicketPayload::TicketAssigned {
            assignee: assignee.clone(),
            previous,
        },
    )
}

fn unassign_by(actor: &Actor, previous: &Actor) -> TicketEvent {
    event(
        actor,
        TicketPayload::TicketUnassigned {
            previous: previous.clone(),
        },
    )
}

// ---- the type itself -----------------------------------------------------------

#[test]
fn types_serialise_snake_case_and_parse_back() {
    let names: Vec<String> = NotificationType::ALL
        .iter()
        .map(|t| {
            serde_json::to_value(t)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "mentioned",
            "ticket_assigned",
            "ticket_unassigned",
            "status_changed",
            "comment_added"
        ]
    );
    for t in NotificationType::ALL {
        assert_eq!(t.as_str().parse::<NotificationType>(), Ok(t));
        assert_eq!(t.to_string(), t.as_str());
    }
    assert!("assigned".parse::<NotificationType>().is_err());
}

#[test]
fn titles_are_the_contracts() {
    let titles: Vec<&str> = NotificationType::ALL.iter().map(|t| t.title()).collect();
    assert_eq!(
        titles,
        [
            "Mentioned",
            "Ticket Assigned",
            "Ticket Unassigned",
            "Status Changed",
            "Comment Added"
        ]
    );
}

#[test]
fn priority_order_is_the_contracts() {
    let mut sorted = NotificationType::ALL;
    sorted.sort();
    assert_eq!(sorted, NotificationType::ALL);
}

// ---- creation ------------------------------------------------------------------

#[test]
fn creating_with_an_assignee_notifies_the_assignee() {
    let e = created_event(Created {
        assignee: Some(bob()),
        title: "Fix login bug".into(),
        ..Created::default()
    });
    let n = notices(&Ticket::default(), &e);
    assert_eq!(
        n,
        vec![Notice {
            user_id: bob().id,
            notification_type: TicketAssigned,
            title: "Ticket Assigned".into(),
            message: "You were assigned to PROJ-1: Fix login bug".into(),
        }]
    );
}

#[test]
fn creating_assigned_to_oneself_notifies_nobody() {
    let e = created_event(Created {
        assignee: Some(alice()),
        ..Created::default()
    });
    assert!(notices(&Ticket::default(), &e).is_empty());
}

#[test]
fn creating_without_assignee_or_mentions_notifies_nobody() {
    assert!(notices(&Ticket::default(), &created_event(Created::default())).is_empty());
}

#[test]
fn mentions_in_a_new_description_notify_the_mentioned() {
    let e = created_event(Created {
        description: "@bob and @carol please".into(),
        mentions: vec![bob(), carol()],
        ..Created::default()
    });
    let n = notices(&Ticket::default(), &e);
    assert_eq!(who(&n), pairs(&[(bob(), Mentioned), (carol(), Mentioned)]));
    assert_eq!(n[0].title, "Mentioned");
    assert_eq!(n[0].message, "alice mentioned you in PROJ-1: Fix login");
}

#[test]
fn a_mentioned_new_assignee_gets_only_the_mention() {
    let e = created_event(Created {
        assignee: Some(bob()),
        mentions: vec![bob()],
        description: "@bob".into(),
        ..Created::default()
    });
    assert_eq!(
        who(&notices(&Ticket::default(), &e)),
        pairs(&[(bob(), Mentioned)])
    );
}

#[test]
fn creation_uses_the_events_own_key_and_title() {
    // Whatever `before` holds, a creation names the new ticket.
    let stale = Ticket {
        key: "OLD-9".into(),
        title: "Old".into(),
        ..Ticket::default()
    };
    let e = created_event(Created {
        assignee: Some(carol()),
        title: "New one".into(),
        ..Created::default()
    });
    assert_eq!(
        notices(&stale, &e)[0].message,
        "You were assigned to PROJ-1: New one"
    );
}

// ---- assignment ----------------------------------------------------------------

#[test]
fn assigning_someone_else_notifies_them() {
    let n = notices(&plain(), &assign_by(&alice(), &bob(), None));
    assert_eq!(who(&n), pairs(&[(bob(), TicketAssigned)]));
    assert_eq!(n[0].title, "Ticket Assigned");
    assert_eq!(n[0].message, "You were assigned to PROJ-1: Fix login");
}

#[test]
fn taking_a_ticket_oneself_notifies_nobody() {
    assert!(notices(&plain(), &assign_by(&bob(), &bob(), None)).is_empty());
}

#[test]
fn reassignment_notifies_the_old_and_the_new_assignee() {
    let n = notices(
        &assigned(&bob()),
        &assign_by(&alice(), &carol(), Some(bob())),
    );
    assert_eq!(
        who(&n),
        pairs(&[(carol(), TicketAssigned), (bob(), TicketUnassigned)])
    );
    let unassigned = &n[1];
    assert_eq!(unassigned.title, "Ticket Unassigned");
    assert_eq!(
        unassigned.message,
        "You were unassigned from PROJ-1: Fix login"
    );
}

#[test]
fn handing_ones_ticket_to_someone_notifies_only_them() {
    let n = notices(&assigned(&bob()), &assign_by(&bob(), &carol(), Some(bob())));
    assert_eq!(who(&n), pairs(&[(carol(), TicketAssigned)]));
}

#[test]
fn taking_someone_elses_ticket_notifies_only_the_old_assignee() {
    let n = notices(
        &assigned(&bob()),
        &assign_by(&carol(), &carol(), Some(bob())),
    );
    assert_eq!(who(&n), pairs(&[(bob(), TicketUnassigned)]));
}

#[test]
fn reassigning_to_the_same_user_never_unassigns_them() {
    // The domain never emits this, but a notice must not contradict itself.
    let n = notices(&assigned(&bob()), &assign_by(&alice(), &bob(), Some(bob())));
    assert_eq!(who(&n), pairs(&[(bob(), TicketAssigned)]));
}

#[test]
fn unassigning_someone_else_notifies_them() {
    let n = notices(&assigned(&bob()), &unassign_by(&alice(), &bob()));
    assert_eq!(who(&n), pairs(&[(bob(), TicketUnassigned)]));
    assert_eq!(n[0].message, "You were unassigned from PROJ-1: Fix login");
}

#[test]
fn unassigning_oneself_notifies_nobody() {
    // Not even the reporter: only the rules above notify.
    assert!(notices(&assigned(&bob()), &unassign_by(&bob(), &bob())).is_empty());
}

// ---- status --------------------------------------------------------------------

#[test]
fn a_status_change_notifies_assignee_and_reporter() {
    let n = notices(&assigned(&bob()), &status_change_by(&carol(), 2));
    assert_eq!(
        who(&n),
        pairs(&[(bob(), StatusChanged), (alice(), StatusChanged)])
    );
    assert_eq!(n[0].title, "Status Changed");
    assert_eq!(n[0].message, "PROJ-1: Fix login moved to In Progress");
}

#[test]
fn a_status_change_by_the_reporter_notifies_only_the_assignee() {
    let n = notices(&assigned(&bob()), &status_change_by(&alice(), 3));
    assert_eq!(who(&n), pairs(&[(bob(), StatusChanged)]));
    assert_eq!(n[0].message, "PROJ-1: Fix login moved to Done");
}

#[test]
fn a_status_change_by_the_assignee_notifies_only_the_reporter() {
    let n = notices(&assigned(&bob()), &status_change_by(&bob(), 2));
    assert_eq!(who(&n), pairs(&[(alice(), StatusChanged)]));
}

#[test]
fn a_status_change_of_an_unassigned_ticket_notifies_the_reporter() {
    let n = notices(&plain(), &status_change_by(&bob(), 2));
    assert_eq!(who(&n), pairs(&[(alice(), StatusChanged)]));
}

#[test]
fn a_reporter_who_is_the_assignee_hears_once() {
    let n = notices(&assigned(&alice()), &status_change_by(&bob(), 2));
    assert_eq!(who(&n), pairs(&[(alice(), StatusChanged)]));
}

#[test]
fn ones_own_status_change_on_ones_own_ticket_notifies_nobody() {
    assert!(notices(&assigned(&alice()), &status_change_by(&alice(), 2)).is_empty());
}

// ---- comments ------------------------------------------------------------------

#[test]
fn a_comment_notifies_assignee_and_reporter() {
    let n = notices(&assigned(&bob()), &comment_by(&carol(), vec![]));
    assert_eq!(
        who(&n),
        pairs(&[(bob(), CommentAdded), (alice(), CommentAdded)])
    );
    assert_eq!(n[0].title, "Comment Added");
    assert_eq!(n[0].message, "carol commented on PROJ-1: Fix login");
}

#[test]
fn a_comment_by_the_assignee_notifies_the_reporter_only() {
    let n = notices(&assigned(&bob()), &comment_by(&bob(), vec![]));
    assert_eq!(who(&n), pairs(&[(alice(), CommentAdded)]));
}

#[test]
fn a_comment_by_the_reporter_on_an_unassigned_ticket_notifies_nobody() {
    assert!(notices(&plain(), &comment_by(&alice(), vec![])).is_empty());
}

#[test]
fn a_mention_in_a_comment_notifies_the_mentioned() {
    let n = notices(&plain(), &comment_by(&alice(), vec![carol()]));
    assert_eq!(who(&n), pairs(&[(carol(), Mentioned)]));
    assert_eq!(n[0].message, "alice mentioned you in PROJ-1: Fix login");
}

#[test]
fn a_mentioned_assignee_gets_the_mention_not_the_comment() {
    let n = notices(&assigned(&bob()), &comment_by(&carol(), vec![bob()]));
    assert_eq!(
        who(&n),
        pairs(&[(bob(), Mentioned), (alice(), CommentAdded)])
    );
}

#[test]
fn mentioning_everyone_yields_one_notice_each() {
    let n = notices(
        &assigned(&bob()),
        &comment_by(&carol(), vec![alice(), bob()]),
    );
    assert_eq!(who(&n), pairs(&[(alice(), Mentioned), (bob(), Mentioned)]));
}

#[test]
fn a_self_mention_is_never_a_notice() {
    // Mentions exclude the actor already; the rule holds even if one slips in.
    let n = notices(&plain(), &comment_by(&bob(), vec![bob(), carol()]));
    assert_eq!(
        who(&n),
        pairs(&[(carol(), Mentioned), (alice(), CommentAdded)])
    );
}

#[test]
fn a_duplicate_mention_yields_one_notice() {
    let n = notices(&plain(), &comment_by(&alice(), vec![bob(), bob()]));
    assert_eq!(who(&n), pairs(&[(bob(), Mentioned)]));
}

#[test]
fn messages_use_the_title_the_ticket_had_before_the_event() {
    let retitled = ticket_with(vec![TicketPayload::TicketTitleChanged {
        title: "Fix logout".into(),
    }]);
    let n = notices(&retitled, &comment_by(&bob(), vec![]));
    assert_eq!(n[0].message, "bob commented on PROJ-1: Fix logout");
}

// ---- descriptions --------------------------------------------------------------

#[test]
fn mentions_in_a_changed_description_notify_the_mentioned() {
    let e = event(
        &bob(),
        TicketPayload::TicketDescriptionChanged {
            description: "ask @carol".into(),
            mentions: vec![carol()],
        },
    );
    let n = notices(&assigned(&carol()), &e);
    assert_eq!(who(&n), pairs(&[(carol(), Mentioned)]));
    assert_eq!(n[0].message, "bob mentioned you in PROJ-1: Fix login");
}

#[test]
fn a_description_change_notifies_only_newly_added_mentions() {
    // The domain decides which mentions are new; notices trust it.
    let before = ticket_with(vec![TicketPayload::TicketDescriptionChanged {
        description: "ask @bob".into(),
        mentions: vec![bob()],
    }]);
    let changes = TicketChanges {
        description: Some("ask @bob and @carol".into()),
        ..TicketChanges::default()
    };
    let events = before.decide(update(changes)).expect("update");
    assert_eq!(events.len(), 1);
    assert_eq!(
        who(&notices(&before, &events[0])),
        pairs(&[(carol(), Mentioned)])
    );
}

#[test]
fn a_description_change_without_mentions_notifies_nobody() {
    let e = event(
        &bob(),
        TicketPayload::TicketDescriptionChanged {
            description: "no one".into(),
            mentions: vec![],
        },
    );
    assert!(notices(&assigned(&carol()), &e).is_empty());
}

// ---- events that notify nobody -------------------------------------------------

#[test]
fn title_priority_labels_and_deletion_notify_nobody() {
    let quiet = [
        TicketPayload::TicketTitleChanged { title: "x".into() },
        TicketPayload::TicketPriorityChanged {
            priority: Priority::Urgent,
        },
        TicketPayload::TicketLabelsChanged {
            labels: strings(&["a"]),
        },
        TicketPayload::TicketDeleted {},
    ];
    for payload in quiet {
        let n = notices(&assigned(&bob()), &event(&carol(), payload.clone()));
        assert!(n.is_empty(), "{payload:?} gave {n:?}");
    }
}

// ---- through the aggregate -----------------------------------------------------

/// Decides `command` on `state` and returns every notice of every event it
/// yields, each against the state just before it, then the new state.
fn decide_and_notify(
    state: Ticket,
    command: ticketflow_domain::TicketCommand,
) -> (Vec<Notice>, Ticket) {
    let mut state = state;
    let mut out = Vec::new();
    for e in state.decide(command).expect("command") {
        out.extend(notices(&state, &e));
        state.apply(e);
    }
    (out, state)
}

#[test]
fn a_patch_changing_status_and_assignee_notifies_per_event() {
    let (n, after) = decide_and_notify(
        assigned(&bob()),
        update_by(
            &carol(),
            TicketChanges {
                status_id: Some(2),
                assignee_id: Some(Some(carol().id)),
                ..TicketChanges::default()
            },
        ),
    );
    // Status first (bob still assigned), then the reassignment.
    assert_eq!(
        who(&n),
        pairs(&[
            (bob(), StatusChanged),
            (alice(), StatusChanged),
            (bob(), TicketUnassigned),
        ])
    );
    assert_eq!(after.assignee, Some(carol()));
}

#[test]
fn a_comment_command_mentioning_members_and_outsiders() {
    let (n, _) = decide_and_notify(
        assigned(&bob()),
        support::comment_by(&carol(), "@dave @alice @carol @bob. thanks"),
    );
    // dave is no member, carol is the actor.
    assert_eq!(who(&n), pairs(&[(alice(), Mentioned), (bob(), Mentioned)]));
}
