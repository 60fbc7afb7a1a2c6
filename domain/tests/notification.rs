//! Notification rules: who hears of which ticket event, with which words.
//! Every rule, actor exclusion, and the one-per-user priority order.

use cqrs_es::Aggregate;
use ticketflow_domain::{
    notices, Actor, Notice, NotificationType, Priority, Ticket, TicketChanges, TicketEvent,
    TicketPayload,
};
use ticketflow_testkit::prelude::*;

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

/// A notice rule: `event`, on the ticket as it was just before (`before`),
/// is heard by `who` (user and type, in order); `says` is the title and
/// message of the notice at that index, where the case checks the wording.
struct Heard {
    name: &'static str,
    before: Ticket,
    event: TicketEvent,
    who: Vec<(Actor, NotificationType)>,
    says: Option<(usize, &'static str, &'static str)>,
}

fn check_heard(cases: Vec<Heard>) {
    for case in cases {
        let n = notices(&case.before, &case.event);
        assert_eq!(who(&n), pairs(&case.who), "case {:?}: who", case.name);
        if let Some((i, title, message)) = case.says {
            assert_eq!(
                (n[i].title.as_str(), n[i].message.as_str()),
                (title, message),
                "case {:?}: notice {i}",
                case.name
            );
        }
    }
}

/// Heard by nobody.
fn nobody() -> Vec<(Actor, NotificationType)> {
    vec![]
}

fn description_change_by(actor: &Actor, description: &str, mentions: Vec<Actor>) -> TicketEvent {
    event(
        actor,
        TicketPayload::TicketDescriptionChanged {
            description: description.into(),
            added_mentions: mentions,
        },
    )
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
            "comment_added",
            "general"
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
            "Comment Added",
            "General"
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
fn who_hears_of_a_creation() {
    let fresh = Ticket::default;
    check_heard(vec![
        Heard {
            name: "creating_with_an_assignee_notifies_the_assignee",
            before: fresh(),
            event: created_event(Created {
                assignee: Some(bob()),
                title: "Fix login bug".into(),
                ..Created::default()
            }),
            who: vec![(bob(), TicketAssigned)],
            says: Some((
                0,
                "Ticket Assigned",
                "You were assigned to PROJ-1: Fix login bug",
            )),
        },
        Heard {
            name: "creating_assigned_to_oneself_notifies_nobody",
            before: fresh(),
            event: created_event(Created {
                assignee: Some(alice()),
                ..Created::default()
            }),
            who: nobody(),
            says: None,
        },
        Heard {
            name: "creating_without_assignee_or_mentions_notifies_nobody",
            before: fresh(),
            event: created_event(Created::default()),
            who: nobody(),
            says: None,
        },
        Heard {
            name: "mentions_in_a_new_description_notify_the_mentioned",
            before: fresh(),
            event: created_event(Created {
                description: "@bob and @carol please".into(),
                mentions: vec![bob(), carol()],
                ..Created::default()
            }),
            who: vec![(bob(), Mentioned), (carol(), Mentioned)],
            says: Some((0, "Mentioned", "alice mentioned you in PROJ-1: Fix login")),
        },
        Heard {
            name: "a_mentioned_new_assignee_gets_only_the_mention",
            before: fresh(),
            event: created_event(Created {
                assignee: Some(bob()),
                mentions: vec![bob()],
                description: "@bob".into(),
                ..Created::default()
            }),
            who: vec![(bob(), Mentioned)],
            says: None,
        },
        Heard {
            // Whatever `before` holds, a creation names the new ticket.
            name: "creation_uses_the_events_own_key_and_title",
            before: Ticket {
                key: "OLD-9".into(),
                title: "Old".into(),
                ..Ticket::default()
            },
            event: created_event(Created {
                assignee: Some(carol()),
                title: "New one".into(),
                ..Created::default()
            }),
            who: vec![(carol(), TicketAssigned)],
            says: Some((0, "Ticket Assigned", "You were assigned to PROJ-1: New one")),
        },
    ]);
}

// ---- assignment ----------------------------------------------------------------

#[test]
fn who_hears_of_an_assignment() {
    check_heard(vec![
        Heard {
            name: "assigning_someone_else_notifies_them",
            before: plain(),
            event: assign_by(&alice(), &bob(), None),
            who: vec![(bob(), TicketAssigned)],
            says: Some((
                0,
                "Ticket Assigned",
                "You were assigned to PROJ-1: Fix login",
            )),
        },
        Heard {
            name: "taking_a_ticket_oneself_notifies_nobody",
            before: plain(),
            event: assign_by(&bob(), &bob(), None),
            who: nobody(),
            says: None,
        },
        Heard {
            name: "reassignment_notifies_the_old_and_the_new_assignee",
            before: assigned(&bob()),
            event: assign_by(&alice(), &carol(), Some(bob())),
            who: vec![(carol(), TicketAssigned), (bob(), TicketUnassigned)],
            says: Some((
                1,
                "Ticket Unassigned",
                "You were unassigned from PROJ-1: Fix login",
            )),
        },
        Heard {
            name: "handing_ones_ticket_to_someone_notifies_only_them",
            before: assigned(&bob()),
            event: assign_by(&bob(), &carol(), Some(bob())),
            who: vec![(carol(), TicketAssigned)],
            says: None,
        },
        Heard {
            name: "taking_someone_elses_ticket_notifies_only_the_old_assignee",
            before: assigned(&bob()),
            event: assign_by(&carol(), &carol(), Some(bob())),
            who: vec![(bob(), TicketUnassigned)],
            says: None,
        },
        Heard {
            // The domain never emits this, but a notice must not contradict itself.
            name: "reassigning_to_the_same_user_never_unassigns_them",
            before: assigned(&bob()),
            event: assign_by(&alice(), &bob(), Some(bob())),
            who: vec![(bob(), TicketAssigned)],
            says: None,
        },
        Heard {
            name: "unassigning_someone_else_notifies_them",
            before: assigned(&bob()),
            event: unassign_by(&alice(), &bob()),
            who: vec![(bob(), TicketUnassigned)],
            says: Some((
                0,
                "Ticket Unassigned",
                "You were unassigned from PROJ-1: Fix login",
            )),
        },
        Heard {
            // Not even the reporter: only the rules above notify.
            name: "unassigning_oneself_notifies_nobody",
            before: assigned(&bob()),
            event: unassign_by(&bob(), &bob()),
            who: nobody(),
            says: None,
        },
    ]);
}

// ---- status --------------------------------------------------------------------

#[test]
fn who_hears_of_a_status_change() {
    check_heard(vec![
        Heard {
            name: "a_status_change_notifies_assignee_and_reporter",
            before: assigned(&bob()),
            event: status_change_by(&carol(), 2),
            who: vec![(bob(), StatusChanged), (alice(), StatusChanged)],
            says: Some((
                0,
                "Status Changed",
                "PROJ-1: Fix login moved to In Progress",
            )),
        },
        Heard {
            name: "a_status_change_by_the_reporter_notifies_only_the_assignee",
            before: assigned(&bob()),
            event: status_change_by(&alice(), 3),
            who: vec![(bob(), StatusChanged)],
            says: Some((0, "Status Changed", "PROJ-1: Fix login moved to Done")),
        },
        Heard {
            name: "a_status_change_by_the_assignee_notifies_only_the_reporter",
            before: assigned(&bob()),
            event: status_change_by(&bob(), 2),
            who: vec![(alice(), StatusChanged)],
            says: None,
        },
        Heard {
            name: "a_status_change_of_an_unassigned_ticket_notifies_the_reporter",
            before: plain(),
            event: status_change_by(&bob(), 2),
            who: vec![(alice(), StatusChanged)],
            says: None,
        },
        Heard {
            name: "a_reporter_who_is_the_assignee_hears_once",
            before: assigned(&alice()),
            event: status_change_by(&bob(), 2),
            who: vec![(alice(), StatusChanged)],
            says: None,
        },
        Heard {
            name: "ones_own_status_change_on_ones_own_ticket_notifies_nobody",
            before: assigned(&alice()),
            event: status_change_by(&alice(), 2),
            who: nobody(),
            says: None,
        },
    ]);
}

// ---- comments ------------------------------------------------------------------

#[test]
fn who_hears_of_a_comment() {
    check_heard(vec![
        Heard {
            name: "a_comment_notifies_assignee_and_reporter",
            before: assigned(&bob()),
            event: comment_by(&carol(), vec![]),
            who: vec![(bob(), CommentAdded), (alice(), CommentAdded)],
            says: Some((0, "Comment Added", "carol commented on PROJ-1: Fix login")),
        },
        Heard {
            name: "a_comment_by_the_assignee_notifies_the_reporter_only",
            before: assigned(&bob()),
            event: comment_by(&bob(), vec![]),
            who: vec![(alice(), CommentAdded)],
            says: None,
        },
        Heard {
            name: "a_comment_by_the_reporter_on_an_unassigned_ticket_notifies_nobody",
            before: plain(),
            event: comment_by(&alice(), vec![]),
            who: nobody(),
            says: None,
        },
        Heard {
            name: "a_mention_in_a_comment_notifies_the_mentioned",
            before: plain(),
            event: comment_by(&alice(), vec![carol()]),
            who: vec![(carol(), Mentioned)],
            says: Some((0, "Mentioned", "alice mentioned you in PROJ-1: Fix login")),
        },
        Heard {
            name: "a_mentioned_assignee_gets_the_mention_not_the_comment",
            before: assigned(&bob()),
            event: comment_by(&carol(), vec![bob()]),
            who: vec![(bob(), Mentioned), (alice(), CommentAdded)],
            says: None,
        },
        Heard {
            name: "mentioning_everyone_yields_one_notice_each",
            before: assigned(&bob()),
            event: comment_by(&carol(), vec![alice(), bob()]),
            who: vec![(alice(), Mentioned), (bob(), Mentioned)],
            says: None,
        },
        Heard {
            // Mentions exclude the actor already; the rule holds even if one slips in.
            name: "a_self_mention_is_never_a_notice",
            before: plain(),
            event: comment_by(&bob(), vec![bob(), carol()]),
            who: vec![(carol(), Mentioned), (alice(), CommentAdded)],
            says: None,
        },
        Heard {
            name: "a_duplicate_mention_yields_one_notice",
            before: plain(),
            event: comment_by(&alice(), vec![bob(), bob()]),
            who: vec![(bob(), Mentioned)],
            says: None,
        },
        Heard {
            name: "messages_use_the_title_the_ticket_had_before_the_event",
            before: ticket_with(vec![TicketPayload::TicketTitleChanged {
                title: "Fix logout".into(),
            }]),
            event: comment_by(&bob(), vec![]),
            who: vec![(alice(), CommentAdded)],
            says: Some((0, "Comment Added", "bob commented on PROJ-1: Fix logout")),
        },
    ]);
}

// ---- descriptions --------------------------------------------------------------

#[test]
fn who_hears_of_a_description_change() {
    check_heard(vec![
        Heard {
            name: "mentions_in_a_changed_description_notify_the_mentioned",
            before: assigned(&carol()),
            event: description_change_by(&bob(), "ask @carol", vec![carol()]),
            who: vec![(carol(), Mentioned)],
            says: Some((0, "Mentioned", "bob mentioned you in PROJ-1: Fix login")),
        },
        Heard {
            name: "a_description_change_without_mentions_notifies_nobody",
            before: assigned(&carol()),
            event: description_change_by(&bob(), "no one", vec![]),
            who: nobody(),
            says: None,
        },
    ]);
}

#[test]
fn a_description_change_notifies_only_newly_added_mentions() {
    // The domain decides which mentions are new; notices trust it.
    let before = ticket_with(vec![TicketPayload::TicketDescriptionChanged {
        description: "ask @bob".into(),
        added_mentions: vec![bob()],
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
        ticketflow_testkit::builders::comment_by(&carol(), "@dave @alice @carol @bob. thanks"),
    );
    // dave is no member, carol is the actor.
    assert_eq!(who(&n), pairs(&[(alice(), Mentioned), (bob(), Mentioned)]));
}
