//! The Project aggregate: creation, members and roles.

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ticketflow_domain::{
    default_statuses, Actor, DomainError, NewMember, Project, ProjectCommand, ProjectEvent,
    ProjectPayload, Role,
};
use ticketflow_testkit::prelude::*;

fn framework() -> TestFramework<Project> {
    TestFramework::with(())
}

/// alice creates the project with `key` and `name` on a fresh aggregate.
fn creating(case_name: &str, key: &str, name: &str, then: Then<ProjectEvent>) -> Case<Project> {
    Case::new(case_name, vec![], create_project(key, name), then)
}

fn create_project(key: &str, name: &str) -> ProjectCommand {
    ProjectCommand::Create {
        meta: meta(&alice()),
        project_id: PROJECT_ID,
        key: key.into(),
        name: name.into(),
        display_name: "Alice".into(),
    }
}

fn created_events(key: &str, name: &str) -> Vec<ProjectEvent> {
    vec![
        event(
            &alice(),
            ProjectPayload::ProjectCreated {
                project_id: PROJECT_ID,
                key: key.into(),
                name: name.into(),
                statuses: default_statuses(),
            },
        ),
        event(
            &alice(),
            ProjectPayload::MemberAdded {
                member: member(&alice(), Role::Admin),
            },
        ),
    ]
}

fn add_member(actor: &Actor, user: &Actor) -> ProjectCommand {
    ProjectCommand::AddMember {
        meta: meta(actor),
        user: NewMember {
            user_id: user.id,
            username: user.username.clone(),
            display_name: display_name(user),
        },
    }
}

fn remove_member(actor: &Actor, user: &Actor) -> ProjectCommand {
    ProjectCommand::RemoveMember {
        meta: meta(actor),
        user_id: user.id,
    }
}

fn member_added_by(actor: &Actor, user: &Actor) -> ProjectEvent {
    event(
        actor,
        ProjectPayload::MemberAdded {
            member: member(user, Role::Member),
        },
    )
}

fn member_removed(actor: &Actor, user: &Actor) -> ProjectEvent {
    event(
        actor,
        ProjectPayload::MemberRemoved {
            user_id: user.id,
            username: user.username.clone(),
        },
    )
}

/// alice's project with these events after its creation.
fn project_then(then: Vec<ProjectEvent>) -> Vec<ProjectEvent> {
    let mut events = project_created();
    events.extend(then);
    events
}

/// alice's project with bob as a plain member.
fn project_with_bob() -> Vec<ProjectEvent> {
    project_then(vec![member_added(&bob(), Role::Member)])
}

/// alice's project with bob as a second admin.
fn project_with_bob_as_admin() -> Vec<ProjectEvent> {
    project_then(vec![member_added(&bob(), Role::Admin)])
}

// ---- Create ----------------------------------------------------------------

#[test]
fn create_emits_project_created_with_default_statuses_then_admin_member_added() {
    creating(
        "create_emits_project_created_with_default_statuses_then_admin_member_added",
        "PROJ",
        "Project",
        Then::Events(created_events("PROJ", "Project")),
    )
    .check();
}

#[test]
fn default_statuses_are_open_in_progress_done() {
    let statuses: Vec<_> = default_statuses()
        .into_iter()
        .map(|s| (s.id, s.name, s.color))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, "Open".to_string(), "#1890ff".to_string()),
            (2, "In Progress".to_string(), "#faad14".to_string()),
            (3, "Done".to_string(), "#52c41a".to_string()),
        ]
    );
}

#[test]
fn creator_becomes_admin_with_given_display_name_joined_at_creation() {
    let events = framework()
        .given_no_previous_events()
        .when(create_project("PROJ", "Project"))
        .inspect_result()
        .unwrap();
    let ProjectPayload::MemberAdded { member } = &events[1].payload else {
        panic!("second event is not MemberAdded: {events:?}");
    };
    assert_eq!(member.user_id, alice().id);
    assert_eq!(member.display_name, "Alice");
    assert_eq!(member.role, Role::Admin);
    assert_eq!(member.joined_at, at(0));
}

#[test]
fn create_twice_conflicts() {
    Case::<Project>::new(
        "create_twice_conflicts",
        project_created(),
        create_project("OTHER", "Other"),
        Then::Conflict("project_exists"),
    )
    .check();
}

#[test]
fn key_rules() {
    let mut cases = vec![];
    for key in ["AB", "A1", "ABCDEFGHIJ", "A123456789", "X9Y8"] {
        cases.push(creating(
            &format!("key_of_two_to_ten_chars_is_accepted: {key:?}"),
            key,
            "Project",
            Then::Events(created_events(key, "Project")),
        ));
    }
    for (rule, keys) in [
        ("key_shorter_than_two_chars_is_invalid", &["", "A"][..]),
        ("key_longer_than_ten_chars_is_invalid", &["ABCDEFGHIJK"]),
        (
            "key_must_start_with_an_uppercase_letter",
            &["1AB", "aBC", "_AB", "ÄBC"],
        ),
        (
            "key_must_continue_with_uppercase_letters_or_digits_only",
            &["Ab", "AB-C", "AB_C", "AB C", "AB ", "ABÉ", "AＢ"],
        ),
    ] {
        for key in keys {
            cases.push(creating(
                &format!("{rule}: {key:?}"),
                key,
                "Project",
                Then::Invalid("key"),
            ));
        }
    }
    check_all(cases);
}

#[test]
fn name_rules() {
    let mut cases = vec![
        creating("empty_name_is_invalid", "PROJ", "", Then::Invalid("name")),
        creating(
            "blank_name_is_invalid",
            "PROJ",
            " \t\n ",
            Then::Invalid("name"),
        ),
    ];
    for (length, name) in [
        ("1", "P".to_string()),
        ("100", chars('n', 100)),
        ("100 unicode", chars('é', 100)),
    ] {
        cases.push(creating(
            &format!("name_of_one_to_hundred_chars_is_accepted: {length}"),
            "PROJ",
            &name,
            Then::Events(created_events("PROJ", &name)),
        ));
    }
    for (length, name) in [("101", chars('n', 101)), ("101 unicode", chars('é', 101))] {
        cases.push(creating(
            &format!("name_over_hundred_chars_is_invalid: {length}"),
            "PROJ",
            &name,
            Then::Invalid("name"),
        ));
    }
    check_all(cases);
}

// ---- AddMember -------------------------------------------------------------

#[test]
fn add_member_rules() {
    check_all::<Project>(vec![
        Case::new(
            "admin_adds_member_with_member_role",
            project_created(),
            add_member(&alice(), &bob()),
            Then::Events(vec![member_added_by(&alice(), &bob())]),
        ),
        Case::new(
            "plain_member_may_not_add_members",
            project_with_bob(),
            add_member(&bob(), &carol()),
            Then::Forbidden,
        ),
        Case::new(
            "non_member_may_not_add_members",
            project_created(),
            add_member(&dave(), &carol()),
            Then::Forbidden,
        ),
        Case::new(
            "adding_an_existing_member_conflicts_with_already_member",
            project_with_bob(),
            add_member(&alice(), &bob()),
            Then::Conflict("already_member"),
        ),
        Case::new(
            "adding_the_admin_again_conflicts_with_already_member",
            project_created(),
            add_member(&alice(), &alice()),
            Then::Conflict("already_member"),
        ),
        Case::new(
            "adding_to_unknown_project_is_not_found",
            vec![],
            add_member(&alice(), &bob()),
            Then::NotFound("project"),
        ),
        Case::new(
            "removed_member_can_be_added_again",
            project_then(vec![
                member_added(&bob(), Role::Member),
                member_removed(&alice(), &bob()),
            ]),
            add_member(&alice(), &bob()),
            Then::Events(vec![member_added_by(&alice(), &bob())]),
        ),
        Case::new(
            "second_admin_may_add_members",
            project_with_bob_as_admin(),
            add_member(&bob(), &carol()),
            Then::Events(vec![member_added_by(&bob(), &carol())]),
        ),
        Case::new(
            "removed_admin_loses_admin_rights",
            project_then(vec![
                member_added(&bob(), Role::Admin),
                member_removed(&bob(), &alice()),
            ]),
            add_member(&alice(), &carol()),
            Then::Forbidden,
        ),
    ]);
}

// ---- RemoveMember ----------------------------------------------------------

#[test]
fn remove_member_rules() {
    check_all::<Project>(vec![
        Case::new(
            "admin_removes_member",
            project_with_bob(),
            remove_member(&alice(), &bob()),
            Then::Events(vec![member_removed(&alice(), &bob())]),
        ),
        Case::new(
            "plain_member_may_not_remove_members",
            project_then(vec![
                member_added(&bob(), Role::Member),
                member_added(&carol(), Role::Member),
            ]),
            remove_member(&bob(), &carol()),
            Then::Forbidden,
        ),
        Case::new(
            "plain_member_may_not_remove_themself",
            project_with_bob(),
            remove_member(&bob(), &bob()),
            Then::Forbidden,
        ),
        Case::new(
            "non_member_may_not_remove_members",
            project_with_bob(),
            remove_member(&dave(), &bob()),
            Then::Forbidden,
        ),
        Case::new(
            "removing_a_non_member_is_not_found",
            project_created(),
            remove_member(&alice(), &dave()),
            Then::NotFound("member"),
        ),
        Case::new(
            "removing_an_already_removed_member_is_not_found",
            project_then(vec![
                member_added(&bob(), Role::Member),
                member_removed(&alice(), &bob()),
            ]),
            remove_member(&alice(), &bob()),
            Then::NotFound("member"),
        ),
        Case::new(
            "removing_from_unknown_project_is_not_found",
            vec![],
            remove_member(&alice(), &bob()),
            Then::NotFound("project"),
        ),
        Case::new(
            "removing_the_last_admin_conflicts",
            project_with_bob(),
            remove_member(&alice(), &alice()),
            Then::Conflict("last_admin"),
        ),
        Case::new(
            "removing_an_admin_who_is_not_the_last_is_allowed",
            project_with_bob_as_admin(),
            remove_member(&alice(), &bob()),
            Then::Events(vec![member_removed(&alice(), &bob())]),
        ),
        Case::new(
            "admin_may_remove_themself_while_another_admin_remains",
            project_with_bob_as_admin(),
            remove_member(&alice(), &alice()),
            Then::Events(vec![member_removed(&alice(), &alice())]),
        ),
    ]);
}

// ---- apply -----------------------------------------------------------------

#[test]
fn fresh_project_does_not_exist() {
    let project = Project::default();
    assert!(!project.exists());
    assert_eq!(project.version, 0);
}

#[test]
fn project_created_sets_identity_statuses_and_created_at() {
    let project: Project = replay(project_created());
    assert!(project.exists());
    assert_eq!(project.id, PROJECT_ID);
    assert_eq!(project.key, PROJECT_KEY);
    assert_eq!(project.name, "Project");
    assert_eq!(project.statuses, default_statuses());
    assert_eq!(project.created_at, at(0));
}

#[test]
fn member_added_registers_member_with_role() {
    let project: Project = replay(project_with_bob());
    assert_eq!(
        project.member(alice().id),
        Some(&member(&alice(), Role::Admin))
    );
    assert_eq!(
        project.member(bob().id),
        Some(&member(&bob(), Role::Member))
    );
    assert!(project.is_admin(alice().id));
    assert!(!project.is_admin(bob().id));
    assert!(!project.is_admin(dave().id));
}

#[test]
fn member_removed_drops_member() {
    let project: Project = replay(project_then(vec![
        member_added(&bob(), Role::Member),
        member_removed(&alice(), &bob()),
    ]));
    assert_eq!(project.member(bob().id), None);
    assert_eq!(project.members.len(), 1);
}

#[test]
fn version_counts_every_applied_event() {
    let mut project: Project = replay(project_created());
    assert_eq!(project.version, 2);
    project.apply(member_added(&bob(), Role::Member));
    assert_eq!(project.version, 3);
    project.apply(member_removed(&alice(), &bob()));
    assert_eq!(project.version, 4);
}

#[test]
fn view_exposes_id_key_statuses_and_members_as_actors() {
    let view = replay::<Project>(project_with_bob()).view();
    assert_eq!(view.project_id, PROJECT_ID);
    assert_eq!(view.key, PROJECT_KEY);
    assert_eq!(view.statuses, default_statuses());
    assert_eq!(view.members, vec![alice(), bob()]);
    assert_eq!(view.member(bob().id), Some(&bob()));
    assert_eq!(view.member(dave().id), None);
}

#[test]
fn view_status_finds_known_status_and_rejects_unknown() {
    let view = view();
    assert_eq!(view.status(2), Ok(&status(2)));
    assert!(matches!(
        view.status(4),
        Err(DomainError::Invalid {
            field: "status_id",
            ..
        })
    ));
}

#[test]
fn view_first_status_fails_without_statuses() {
    let empty = ticketflow_domain::ProjectView {
        statuses: vec![],
        ..view()
    };
    assert_eq!(view().first_status(), Ok(&status(1)));
    assert!(matches!(
        empty.first_status(),
        Err(DomainError::Invalid {
            field: "status_id",
            ..
        })
    ));
}

#[test]
fn view_mentions_only_members_other_than_the_actor() {
    let mentioned = view().mentions("@carol @alice @dave @bob @nobody", &alice());
    assert_eq!(mentioned, vec![carol(), bob()]);
}

#[test]
fn member_actor_carries_id_and_username() {
    assert_eq!(member(&bob(), Role::Member).actor(), bob());
}
