//! Ticket Create: validation, defaults, assignee, labels and mentions.

mod support;

use cqrs_es::test::TestFramework;
use support::*;
use ticketflow_domain::{NewTicket, Priority, ProjectView, Ticket, TicketCommand};
use uuid::Uuid;

fn framework() -> TestFramework<Ticket> {
    TestFramework::with(())
}

fn with_title(title: &str) -> NewTicket {
    NewTicket {
        title: title.into(),
        ..new_ticket()
    }
}

fn with_description(description: &str) -> NewTicket {
    NewTicket {
        description: description.into(),
        ..new_ticket()
    }
}

fn with_labels(labels: Vec<String>) -> NewTicket {
    NewTicket {
        labels,
        ..new_ticket()
    }
}

fn numbered_labels(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("label-{i}")).collect()
}

#[test]
fn create_emits_ticket_created_in_first_status_unassigned_reported_by_actor() {
    framework()
        .given_no_previous_events()
        .when(create(new_ticket()))
        .then_expect_events(vec![ticket_created()]);
}

#[test]
fn create_leaves_number_and_key_for_the_store() {
    let events = framework()
        .given_no_previous_events()
        .when(create(new_ticket()))
        .inspect_result()
        .unwrap();
    let ticketflow_domain::TicketPayload::TicketCreated {
        number,
        key,
        project_id,
        ..
    } = &events[0].payload
    else {
        panic!("not TicketCreated: {events:?}");
    };
    assert_eq!((*number, key.as_str(), *project_id), (0, "", PROJECT_ID));
}

#[test]
fn create_twice_conflicts() {
    framework()
        .given(vec![ticket_created()])
        .when(create(new_ticket()))
        .then_expect_conflict("ticket_exists");
}

#[test]
fn create_by_non_member_is_forbidden() {
    framework()
        .given_no_previous_events()
        .when(create_by(&dave(), new_ticket()))
        .then_expect_forbidden();
}

#[test]
fn membership_is_checked_before_fields() {
    framework()
        .given_no_previous_events()
        .when(create_by(&dave(), with_title("")))
        .then_expect_forbidden();
}

#[test]
fn any_member_may_create() {
    let events = framework()
        .given_no_previous_events()
        .when(create_by(&bob(), new_ticket()))
        .inspect_result()
        .unwrap();
    let ticketflow_domain::TicketPayload::TicketCreated { reporter, .. } = &events[0].payload
    else {
        panic!("not TicketCreated: {events:?}");
    };
    assert_eq!(reporter, &bob());
    assert_eq!(events[0].meta, meta(&bob()));
}

// ---- title -----------------------------------------------------------------

#[test]
fn empty_title_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_title("")))
        .then_expect_invalid("title");
}

#[test]
fn whitespace_only_title_is_invalid() {
    for title in [" ", "   ", "\t\n", "\u{3000}"] {
        framework()
            .given_no_previous_events()
            .when(create(with_title(title)))
            .then_expect_invalid("title");
    }
}

#[test]
fn title_of_201_chars_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_title(&chars('t', 201))))
        .then_expect_invalid("title");
}

#[test]
fn title_of_one_and_200_chars_is_accepted() {
    for title in ["x".to_string(), chars('t', 200)] {
        framework()
            .given_no_previous_events()
            .when(create(with_title(&title)))
            .then_expect_events(vec![Created {
                title,
                ..Created::default()
            }
            .event()]);
    }
}

#[test]
fn title_length_counts_unicode_chars_not_bytes() {
    for title in [chars('é', 200), chars('😀', 200), chars('日', 200)] {
        framework()
            .given_no_previous_events()
            .when(create(with_title(&title)))
            .then_expect_events(vec![Created {
                title,
                ..Created::default()
            }
            .event()]);
    }
}

#[test]
fn title_of_201_unicode_chars_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_title(&chars('é', 201))))
        .then_expect_invalid("title");
}

#[test]
fn title_is_kept_verbatim_with_surrounding_spaces() {
    framework()
        .given_no_previous_events()
        .when(create(with_title("  padded  ")))
        .then_expect_events(vec![Created {
            title: "  padded  ".into(),
            ..Created::default()
        }
        .event()]);
}

// ---- description -------------------------------------------------------------

#[test]
fn description_of_20000_chars_is_accepted() {
    for description in [chars('d', 20_000), chars('é', 20_000)] {
        framework()
            .given_no_previous_events()
            .when(create(with_description(&description)))
            .then_expect_events(vec![Created {
                description,
                ..Created::default()
            }
            .event()]);
    }
}

#[test]
fn description_over_20000_chars_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_description(&chars('d', 20_001))))
        .then_expect_invalid("description");
}

#[test]
fn empty_or_blank_description_is_accepted() {
    for description in ["", "   "] {
        framework()
            .given_no_previous_events()
            .when(create(with_description(description)))
            .then_expect_events(vec![Created {
                description: description.into(),
                ..Created::default()
            }
            .event()]);
    }
}

// ---- priority ------------------------------------------------------------------

#[test]
fn priority_is_recorded() {
    for priority in [
        Priority::Low,
        Priority::Medium,
        Priority::High,
        Priority::Urgent,
    ] {
        framework()
            .given_no_previous_events()
            .when(create(NewTicket {
                priority,
                ..new_ticket()
            }))
            .then_expect_events(vec![Created {
                priority,
                ..Created::default()
            }
            .event()]);
    }
}

#[test]
fn priority_defaults_to_medium() {
    assert_eq!(Priority::default(), Priority::Medium);
}

// ---- labels --------------------------------------------------------------------

#[test]
fn twenty_labels_are_accepted() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(numbered_labels(20))))
        .then_expect_events(vec![Created {
            labels: numbered_labels(20),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn more_than_twenty_labels_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(numbered_labels(21))))
        .then_expect_invalid("labels");
}

#[test]
fn label_limit_counts_labels_after_deduplication() {
    let mut labels = numbered_labels(20);
    labels.push("label-1".into());
    framework()
        .given_no_previous_events()
        .when(create(with_labels(labels)))
        .then_expect_events(vec![Created {
            labels: numbered_labels(20),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn empty_label_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(strings(&["ok", ""]))))
        .then_expect_invalid("labels");
}

#[test]
fn blank_label_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(strings(&["  "]))))
        .then_expect_invalid("labels");
}

#[test]
fn label_of_51_chars_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(vec![chars('l', 51)])))
        .then_expect_invalid("labels");
}

#[test]
fn label_of_50_unicode_chars_is_accepted() {
    let labels = vec![chars('l', 50), chars('é', 50)];
    framework()
        .given_no_previous_events()
        .when(create(with_labels(labels.clone())))
        .then_expect_events(vec![Created {
            labels,
            ..Created::default()
        }
        .event()]);
}

#[test]
fn duplicate_labels_are_removed_keeping_first_order() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(strings(&[
            "bug", "ui", "bug", "api", "ui",
        ]))))
        .then_expect_events(vec![Created {
            labels: strings(&["bug", "ui", "api"]),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn labels_are_case_sensitive() {
    framework()
        .given_no_previous_events()
        .when(create(with_labels(strings(&["Bug", "bug"]))))
        .then_expect_events(vec![Created {
            labels: strings(&["Bug", "bug"]),
            ..Created::default()
        }
        .event()]);
}

// ---- status --------------------------------------------------------------------

#[test]
fn given_status_is_used() {
    framework()
        .given_no_previous_events()
        .when(create(NewTicket {
            status_id: Some(3),
            ..new_ticket()
        }))
        .then_expect_events(vec![Created {
            status: status(3),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn unknown_status_is_invalid() {
    for status_id in [0, 4, -1] {
        framework()
            .given_no_previous_events()
            .when(create(NewTicket {
                status_id: Some(status_id),
                ..new_ticket()
            }))
            .then_expect_invalid("status_id");
    }
}

#[test]
fn default_status_is_the_projects_first_status() {
    let mut project = view();
    project.statuses.reverse();
    framework()
        .given_no_previous_events()
        .when(TicketCommand::Create {
            meta: meta(&alice()),
            project,
            ticket: new_ticket(),
        })
        .then_expect_events(vec![Created {
            status: status(3),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn project_without_statuses_refuses_default_status() {
    let project = ProjectView {
        statuses: vec![],
        ..view()
    };
    framework()
        .given_no_previous_events()
        .when(TicketCommand::Create {
            meta: meta(&alice()),
            project,
            ticket: new_ticket(),
        })
        .then_expect_invalid("status_id");
}

// ---- assignee ------------------------------------------------------------------

#[test]
fn member_assignee_is_inside_ticket_created() {
    framework()
        .given_no_previous_events()
        .when(create(NewTicket {
            assignee_id: Some(bob().id),
            ..new_ticket()
        }))
        .then_expect_events(vec![Created {
            assignee: Some(bob()),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn actor_may_assign_themself() {
    framework()
        .given_no_previous_events()
        .when(create(NewTicket {
            assignee_id: Some(alice().id),
            ..new_ticket()
        }))
        .then_expect_events(vec![Created {
            assignee: Some(alice()),
            ..Created::default()
        }
        .event()]);
}

#[test]
fn non_member_assignee_is_invalid() {
    for id in [dave().id, Uuid::nil()] {
        framework()
            .given_no_previous_events()
            .when(create(NewTicket {
                assignee_id: Some(id),
                ..new_ticket()
            }))
            .then_expect_invalid("assignee_id");
    }
}

// ---- mentions ------------------------------------------------------------------

#[test]
fn description_mentions_members_in_order() {
    let description = "ping @carol and @bob";
    framework()
        .given_no_previous_events()
        .when(create(with_description(description)))
        .then_expect_events(vec![Created {
            description: description.into(),
            mentions: vec![carol(), bob()],
            ..Created::default()
        }
        .event()]);
}

#[test]
fn description_mentions_exclude_actor_and_non_members() {
    let description = "@alice @dave @bob @nobody";
    framework()
        .given_no_previous_events()
        .when(create(with_description(description)))
        .then_expect_events(vec![Created {
            description: description.into(),
            mentions: vec![bob()],
            ..Created::default()
        }
        .event()]);
}

#[test]
fn repeated_mention_is_recorded_once() {
    let description = "@bob, again @bob.";
    framework()
        .given_no_previous_events()
        .when(create(with_description(description)))
        .then_expect_events(vec![Created {
            description: description.into(),
            mentions: vec![bob()],
            ..Created::default()
        }
        .event()]);
}

#[test]
fn mentions_in_title_are_ignored() {
    framework()
        .given_no_previous_events()
        .when(create(with_title("ask @bob")))
        .then_expect_events(vec![Created {
            title: "ask @bob".into(),
            ..Created::default()
        }
        .event()]);
}
