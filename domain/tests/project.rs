//! The Project aggregate: creation, members and roles.

mod support;

use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use support::*;
use ticketflow_domain::{
    default_statuses, Actor, DomainError, NewMember, Project, ProjectCommand, ProjectEvent,
    ProjectPayload, Role,
};

fn framework() -> TestFramework<Project> {
    TestFramework::with(())
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

fn member_removed(actor: &Actor, user: &Actor) -> ProjectEvent {
    event(
        actor,
        ProjectPayload::MemberRemoved {
            user_id: user.id,
            username: user.username.clone(),
        },
    )
}

/// alice's project with bob as a plain member.
fn project_with_bob() -> Vec<ProjectEvent> {
    let mut events = project_created();
    events.push(member_added(&bob(), Role::Member));
    events
}

// ---- Create ----------------------------------------------------------------

#[test]
fn create_emits_project_created_with_default_statuses_then_admin_member_added() {
    framework()
        .given_no_previous_events()
        .when(create_project("PROJ", "Project"))
        .then_expect_events(created_events("PROJ", "Project"));
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
    framework()
        .given(project_created())
        .when(create_project("OTHER", "Other"))
        .then_expect_conflict("project_exists");
}

#[test]
fn key_of_two_to_ten_chars_is_accepted() {
    for key in ["AB", "A1", "ABCDEFGHIJ", "A123456789", "X9Y8"] {
        framework()
            .given_no_previous_events()
            .when(create_project(key, "Project"))
            .then_expect_events(created_events(key, "Project"));
    }
}

#[test]
fn key_shorter_than_two_chars_is_invalid() {
    for key in ["", "A"] {
        framework()
            .given_no_previous_events()
            .when(create_project(key, "Project"))
            .then_expect_invalid("key");
    }
}

#[test]
fn key_longer_than_ten_chars_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create_project("ABCDEFGHIJK", "Project"))
        .then_expect_invalid("key");
}

#[test]
fn key_must_start_with_an_uppercase_letter() {
    for key in ["1AB", "aBC", "_AB", "ÄBC"] {
        framework()
            .given_no_previous_events()
            .when(create_project(key, "Project"))
            .then_expect_invalid("key");
    }
}

#[test]
fn key_must_continue_with_uppercase_letters_or_digits_only() {
    for key in ["Ab", "AB-C", "AB_C", "AB C", "AB ", "ABÉ", "AＢ"] {
        framework()
            .given_no_previous_events()
            .when(create_project(key, "Project"))
            .then_expect_invalid("key");
    }
}

#[test]
fn name_of_one_to_hundred_chars_is_accepted() {
    for name in ["P".to_string(), chars('n', 100), chars('é', 100)] {
        framework()
            .given_no_previous_events()
            .when(create_project("PROJ", &name))
            .then_expect_events(created_events("PROJ", &name));
    }
}

#[test]
fn empty_name_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create_project("PROJ", ""))
        .then_expect_invalid("name");
}

#[test]
fn blank_name_is_invalid() {
    framework()
        .given_no_previous_events()
        .when(create_project("PROJ", " \t\n "))
        .then_expect_invalid("name");
}

#[test]
fn name_over_hundred_chars_is_invalid() {
    for name in [chars('n', 101), chars('é', 101)] {
        framework()
            .given_no_previous_events()
            .when(create_project("PROJ", &name))
            .then_expect_invalid("name");
    }
}

// ---- AddMember -------------------------------------------------------------

#[test]
fn admin_adds_member_with_member_role() {
    framework()
        .given(project_created())
        .when(add_member(&alice(), &bob()))
        .then_expect_events(vec![event(
            &alice(),
            ProjectPayload::MemberAdded {
                member: member(&bob(), Role::Member),
            },
        )]);
}

#[test]
fn plain_member_may_not_add_members() {
    framework()
        .given(project_with_bob())
        .when(add_member(&bob(), &carol()))
        .then_expect_forbidden();
}

#[test]
fn non_member_may_not_add_members() {
    framework()
        .given(project_created())
        .when(add_member(&dave(), &carol()))
        .then_expect_forbidden();
}

#[test]
fn adding_an_existing_member_conflicts_with_already_member() {
    framework()
        .given(project_with_bob())
        .when(add_member(&alice(), &bob()))
        .then_expect_conflict("already_member");
}

#[test]
fn adding_the_admin_again_conflicts_with_already_member() {
    framework()
        .given(project_created())
        .when(add_member(&alice(), &alice()))
        .then_expect_conflict("already_member");
}

#[test]
fn adding_to_unknown_project_is_not_found() {
    framework()
        .given_no_previous_events()
        .when(add_member(&alice(), &bob()))
        .then_expect_error(DomainError::NotFound { what: "project" });
}

#[test]
fn removed_member_can_be_added_again() {
    let mut given = project_with_bob();
    given.push(member_removed(&alice(), &bob()));
    framework()
        .given(given)
        .when(add_member(&alice(), &bob()))
        .then_expect_events(vec![event(
            &alice(),
            ProjectPayload::MemberAdded {
                member: member(&bob(), Role::Member),
            },
        )]);
}

#[test]
fn second_admin_may_add_members() {
    framework()
        .given(project_created())
        .and(vec![member_added(&bob(), Role::Admin)])
        .when(add_member(&bob(), &carol()))
        .then_expect_events(vec![event(
            &bob(),
            ProjectPayload::MemberAdded {
                member: member(&carol(), Role::Member),
            },
        )]);
}

// ---- RemoveMember ----------------------------------------------------------

#[test]
fn admin_removes_member() {
    framework()
        .given(project_with_bob())
        .when(remove_member(&alice(), &bob()))
        .then_expect_events(vec![member_removed(&alice(), &bob())]);
}

#[test]
fn plain_member_may_not_remove_members() {
    framework()
        .given(project_with_bob())
        .and(vec![member_added(&carol(), Role::Member)])
        .when(remove_member(&bob(), &carol()))
        .then_expect_forbidden();
}

#[test]
fn plain_member_may_not_remove_themself() {
    framework()
        .given(project_with_bob())
        .when(remove_member(&bob(), &bob()))
        .then_expect_forbidden();
}

#[test]
fn non_member_may_not_remove_members() {
    framework()
        .given(project_with_bob())
        .when(remove_member(&dave(), &bob()))
        .then_expect_forbidden();
}

#[test]
fn removing_a_non_member_is_not_found() {
    framework()
        .given(project_created())
        .when(remove_member(&alice(), &dave()))
        .then_expect_error(DomainError::NotFound { what: "member" });
}

#[test]
fn removing_an_already_removed_member_is_not_found() {
    framework()
        .given(project_with_bob())
        .and(vec![member_removed(&alice(), &bob())])
        .when(remove_member(&alice(), &bob()))
        .then_expect_error(DomainError::NotFound { what: "member" });
}

#[test]
fn removing_from_unknown_project_is_not_found() {
    framework()
        .given_no_previous_events()
        .when(remove_member(&alice(), &bob()))
        .then_expect_error(DomainError::NotFound { what: "project" });
}

#[test]
fn removing_the_last_admin_conflicts() {
    framework()
        .given(project_with_bob())
        .when(remove_member(&alice(), &alice()))
        .then_expect_conflict("last_admin");
}

#[test]
fn removing_an_admin_who_is_not_the_last_is_allowed() {
    framework()
        .given(project_created())
        .and(vec![member_added(&bob(), Role::Admin)])
        .when(remove_member(&alice(), &bob()))
        .then_expect_events(vec![member_removed(&alice(), &bob())]);
}

#[test]
fn admin_may_remove_themself_while_another_admin_remains() {
    framework()
        .given(project_created())
        .and(vec![member_added(&bob(), Role::Admin)])
        .when(remove_member(&alice(), &alice()))
        .then_expect_events(vec![member_removed(&alice(), &alice())]);
}

#[test]
fn removed_admin_loses_admin_rights() {
    framework()
        .given(project_created())
        .and(vec![
            member_added(&bob(), Role::Admin),
            member_removed(&bob(), &alice()),
        ])
        .when(add_member(&alice(), &carol()))
        .then_expect_forbidden();
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
    let mut events = project_with_bob();
    events.push(member_removed(&alice(), &bob()));
    let project: Project = replay(events);
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
