//! The event envelope: stable type names, `data` as stored, and the roundtrip
//! through `Event::from_stored` for every payload.

use cqrs_es::DomainEvent;
use serde_json::json;
use serde_json::value::RawValue;
use ticketflow_domain::event::upcast;
use ticketflow_domain::{
    Event, Payload, Priority, ProjectEvent, ProjectPayload, Role, TicketEvent, TicketPayload,
};
use ticketflow_testkit::prelude::*;

fn project_payloads() -> Vec<ProjectPayload> {
    vec![
        ProjectPayload::ProjectCreated {
            project_id: PROJECT_ID,
            key: PROJECT_KEY.into(),
            name: "Project".into(),
            statuses: ticketflow_domain::default_statuses(),
        },
        ProjectPayload::MemberAdded {
            member: member(&bob(), Role::Member),
        },
        ProjectPayload::MemberRemoved {
            user_id: bob().id,
            username: "bob".into(),
        },
    ]
}

fn ticket_payloads() -> Vec<TicketPayload> {
    let mut created = Created {
        assignee: Some(bob()),
        labels: strings(&["a", "b"]),
        mentions: vec![carol()],
        description: "@carol".into(),
        ..Created::default()
    }
    .payload();
    created.assign_number(PROJECT_KEY, 7);
    vec![
        created,
        TicketPayload::TicketTitleChanged { title: "T".into() },
        TicketPayload::TicketDescriptionChanged {
            description: "@bob".into(),
            added_mentions: vec![bob()],
        },
        TicketPayload::TicketPriorityChanged {
            priority: Priority::Urgent,
        },
        TicketPayload::TicketLabelsChanged {
            labels: strings(&["x"]),
        },
        TicketPayload::TicketStatusChanged {
            status: status(2),
            previous: status(1),
        },
        TicketPayload::TicketAssigned {
            assignee: carol(),
            previous: Some(bob()),
        },
        TicketPayload::TicketAssigned {
            assignee: bob(),
            previous: None,
        },
        TicketPayload::TicketUnassigned { previous: bob() },
        TicketPayload::CommentAdded {
            comment_id: COMMENT_ID,
            body: "hi @bob".into(),
            mentions: vec![bob()],
        },
        TicketPayload::TicketDeleted {},
    ]
}

/// `value` as stored: JSON text.
fn raw(value: serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&value).expect("JSON")
}

/// The event's stored data, parsed.
fn data<P: Payload>(event: &Event<P>) -> serde_json::Value {
    let text = event.data().expect("data serialises");
    serde_json::from_str(text.get()).expect("data is JSON")
}

fn roundtrip<P: Payload>(event: &Event<P>) -> Event<P> {
    Event::from_stored(
        event.meta.clone(),
        event.payload.event_type(),
        event.payload.schema_version(),
        &event.data().expect("data serialises"),
    )
    .unwrap_or_else(|e| panic!("{} does not roundtrip: {e}", event.payload.event_type()))
}

#[test]
fn event_type_names_are_the_contracts_pascal_case_names() {
    let project: Vec<_> = project_payloads().iter().map(|p| p.event_type()).collect();
    assert_eq!(project, ["ProjectCreated", "MemberAdded", "MemberRemoved"]);
    let ticket: Vec<_> = ticket_payloads().iter().map(|p| p.event_type()).collect();
    assert_eq!(
        ticket,
        [
            "TicketCreated",
            "TicketTitleChanged",
            "TicketDescriptionChanged",
            "TicketPriorityChanged",
            "TicketLabelsChanged",
            "TicketStatusChanged",
            "TicketAssigned",
            "TicketAssigned",
            "TicketUnassigned",
            "CommentAdded",
            "TicketDeleted",
        ]
    );
}

#[test]
fn event_type_is_the_serde_tag() {
    for p in ticket_payloads() {
        assert_eq!(serde_json::to_value(&p).unwrap()["type"], p.event_type());
    }
    for p in project_payloads() {
        assert_eq!(serde_json::to_value(&p).unwrap()["type"], p.event_type());
    }
}

#[test]
fn cqrs_event_type_and_version_come_from_the_payload() {
    for p in ticket_payloads() {
        let e: TicketEvent = event(&alice(), p.clone());
        assert_eq!(e.event_type(), p.event_type());
        assert_eq!(e.event_version(), p.schema_version().to_string());
    }
    for p in project_payloads() {
        let e: ProjectEvent = event(&alice(), p.clone());
        assert_eq!(e.event_type(), p.event_type());
        assert_eq!(e.event_version(), "1");
    }
}

#[test]
fn every_schema_version_is_1_but_the_description_change_at_2() {
    for p in ticket_payloads() {
        let expected = if p.event_type() == "TicketDescriptionChanged" {
            2
        } else {
            1
        };
        assert_eq!(p.schema_version(), expected, "{}", p.event_type());
    }
    assert!(project_payloads().iter().all(|p| p.schema_version() == 1));
}

#[test]
fn every_ticket_event_roundtrips_through_from_stored() {
    for p in ticket_payloads() {
        let e = TicketEvent::new(&meta_at(&bob(), 5), p);
        assert_eq!(roundtrip(&e), e);
    }
}

#[test]
fn every_project_event_roundtrips_through_from_stored() {
    for p in project_payloads() {
        let e = ProjectEvent::new(&meta_at(&alice(), 5), p);
        assert_eq!(roundtrip(&e), e);
    }
}

#[test]
fn data_is_the_payload_fields_only() {
    let e = event(
        &alice(),
        TicketPayload::TicketTitleChanged { title: "T".into() },
    );
    assert_eq!(data(&e), json!({"title": "T"}));
}

#[test]
fn ticket_deleted_data_is_an_empty_object() {
    assert_eq!(
        data(&event(&alice(), TicketPayload::TicketDeleted {})),
        json!({})
    );
}

#[test]
fn priority_and_role_serialise_in_snake_case() {
    let e = event(
        &alice(),
        TicketPayload::TicketPriorityChanged {
            priority: Priority::Urgent,
        },
    );
    assert_eq!(data(&e), json!({"priority": "urgent"}));
    let e = event(
        &alice(),
        ProjectPayload::MemberAdded {
            member: member(&bob(), Role::Admin),
        },
    );
    assert_eq!(data(&e)["member"]["role"], "admin");
}

#[test]
fn status_changed_data_carries_status_and_previous() {
    let e = event(
        &alice(),
        TicketPayload::TicketStatusChanged {
            status: status(2),
            previous: status(1),
        },
    );
    assert_eq!(
        data(&e),
        json!({
            "status": {"id": 2, "name": "In Progress", "color": "#faad14"},
            "previous": {"id": 1, "name": "Open", "color": "#1890ff"},
        })
    );
}

#[test]
fn unassigned_ticket_created_stores_null_assignee() {
    let data = data(&event(&alice(), Created::default().payload()));
    assert_eq!(data["assignee"], serde_json::Value::Null);
    assert_eq!(
        data["reporter"],
        json!({"id": alice().id, "username": "alice"})
    );
}

#[test]
fn from_stored_refuses_unknown_event_type() {
    let result = TicketEvent::from_stored(meta(&alice()), "TicketRenamed", 1, &raw(json!({})));
    assert!(result.is_err());
}

#[test]
fn from_stored_refuses_data_of_the_wrong_shape() {
    let result = TicketEvent::from_stored(meta(&alice()), "TicketTitleChanged", 1, &raw(json!({})));
    assert!(result.is_err());
}

#[test]
fn from_stored_refuses_a_project_type_for_a_ticket_event() {
    let data = raw(json!({"user_id": bob().id, "username": "bob"}));
    assert!(TicketEvent::from_stored(meta(&alice()), "MemberRemoved", 1, &data).is_err());
    assert!(ProjectEvent::from_stored(meta(&alice()), "MemberRemoved", 1, &data).is_ok());
}

#[test]
fn upcast_leaves_current_data_unchanged() {
    let data = raw(json!({"title": "T"}));
    let current = upcast("TicketTitleChanged", 1, &data).expect("upcast");
    assert_eq!(current.schema_version, 1);
    assert_eq!(current.data.get(), data.get());
    let data = raw(json!({"description": "D", "added_mentions": []}));
    let current = upcast("TicketDescriptionChanged", 2, &data).expect("upcast");
    assert_eq!(current.schema_version, 2);
    assert_eq!(current.data.get(), data.get());
}

#[test]
fn a_version_1_description_change_reads_as_version_2() {
    let v1 = raw(json!({"description": "ask @bob", "mentions": [bob()]}));
    let current = upcast("TicketDescriptionChanged", 1, &v1).expect("upcast");
    assert_eq!(current.schema_version, 2);
    let data: serde_json::Value = serde_json::from_str(current.data.get()).expect("JSON");
    assert_eq!(
        data,
        json!({"description": "ask @bob", "added_mentions": [bob()]})
    );
    let event = TicketEvent::from_stored(meta(&alice()), "TicketDescriptionChanged", 1, &v1)
        .expect("a version 1 event reads");
    assert_eq!(
        event.payload,
        TicketPayload::TicketDescriptionChanged {
            description: "ask @bob".into(),
            added_mentions: vec![bob()],
        }
    );
}

#[test]
fn a_version_1_description_change_of_the_wrong_shape_is_refused() {
    let v1 = raw(json!({"description": "D"}));
    assert!(upcast("TicketDescriptionChanged", 1, &v1).is_err());
    // Version 2's layout under version 1's number is no version 1 event.
    let v2 = raw(json!({"description": "D", "added_mentions": []}));
    assert!(TicketEvent::from_stored(meta(&alice()), "TicketDescriptionChanged", 1, &v2).is_err());
}
