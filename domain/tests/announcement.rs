//! Custom (`general`) notifications: a project admin's announcement and an
//! operator's notice to one user; who may send them, what they may say, and
//! whom they notify.

use ticketflow_domain::inbox::{operator, InboxCommand, InboxPayload};
use ticketflow_domain::{
    announcement_notices, inbox_notices, Actor, Inbox, NotificationType, Project, ProjectCommand,
    ProjectEvent, ProjectPayload, Role,
};
use ticketflow_testkit::prelude::*;
use uuid::Uuid;

const ANNOUNCEMENT_ID: Uuid = Uuid::from_u128(0xD0);

fn post(actor: &Actor, title: &str, message: &str) -> ProjectCommand {
    ProjectCommand::PostAnnouncement {
        meta: meta(actor),
        announcement_id: ANNOUNCEMENT_ID,
        title: title.into(),
        message: message.into(),
    }
}

fn posted(actor: &Actor, title: &str, message: &str, recipients: Vec<Actor>) -> ProjectEvent {
    event(
        actor,
        ProjectPayload::AnnouncementPosted {
            announcement_id: ANNOUNCEMENT_ID,
            title: title.into(),
            message: message.into(),
            recipients,
        },
    )
}

/// alice (admin) with bob (member) and carol (admin).
fn project_of_three() -> Vec<ProjectEvent> {
    let mut events = project_created();
    events.push(member_added(&bob(), Role::Member));
    events.push(member_added(&carol(), Role::Admin));
    events
}

fn case(
    name: &str,
    given: Vec<ProjectEvent>,
    when: ProjectCommand,
    then: Then<ProjectEvent>,
) -> Case<Project> {
    Case::new(name, given, when, then)
}

#[test]
fn an_admin_announces_to_every_other_member() {
    let mut recipients = vec![bob(), carol()];
    recipients.sort_by_key(|a| a.id);
    let mut from_carol = vec![alice(), bob()];
    from_carol.sort_by_key(|a| a.id);
    check_all(vec![
        case(
            "the_creator_announces_to_the_others",
            project_of_three(),
            post(&alice(), "System Alert", "Your report is ready!"),
            Then::Events(vec![posted(
                &alice(),
                "System Alert",
                "Your report is ready!",
                recipients,
            )]),
        ),
        case(
            "a_second_admin_announces_to_the_others_the_creator_included",
            project_of_three(),
            post(&carol(), "Hi", "All"),
            Then::Events(vec![posted(&carol(), "Hi", "All", from_carol)]),
        ),
        case(
            "an_admin_alone_announces_to_nobody",
            project_created(),
            post(&alice(), "Hi", "Nobody hears"),
            Then::Events(vec![posted(&alice(), "Hi", "Nobody hears", vec![])]),
        ),
    ]);
}

#[test]
fn only_admins_of_an_existing_project_announce() {
    check_all(vec![
        case(
            "a_plain_member_is_forbidden",
            project_of_three(),
            post(&bob(), "Hi", "All"),
            Then::Forbidden,
        ),
        case(
            "a_non_member_is_forbidden",
            project_of_three(),
            post(&dave(), "Hi", "All"),
            Then::Forbidden,
        ),
        case(
            "an_unknown_project_is_not_found",
            vec![],
            post(&alice(), "Hi", "All"),
            Then::NotFound("project"),
        ),
        case(
            "a_member_with_bad_fields_is_still_forbidden_first",
            project_of_three(),
            post(&bob(), "", ""),
            Then::Forbidden,
        ),
    ]);
}

#[test]
fn title_and_message_lengths() {
    let ok = |name: &str, title: String, message: String| {
        let mut recipients = vec![bob(), carol()];
        recipients.sort_by_key(|a| a.id);
        let then = Then::Events(vec![posted(&alice(), &title, &message, recipients)]);
        case(
            name,
            project_of_three(),
            post(&alice(), &title, &message),
            then,
        )
    };
    let bad = |name: &str, title: String, message: String, field| {
        case(
            name,
            project_of_three(),
            post(&alice(), &title, &message),
            Then::Invalid(field),
        )
    };
    check_all(vec![
        ok("title_of_200_chars", chars('é', 200), "m".into()),
        ok("message_of_2000_chars", "t".into(), chars('é', 2000)),
        bad("empty_title", String::new(), "m".into(), "title"),
        bad("blank_title", "  \t".into(), "m".into(), "title"),
        bad("title_of_201_chars", chars('t', 201), "m".into(), "title"),
        bad("empty_message", "t".into(), String::new(), "message"),
        bad("blank_message", "t".into(), " \n ".into(), "message"),
        bad(
            "message_of_2001_chars",
            "t".into(),
            chars('m', 2001),
            "message",
        ),
        bad(
            "title_checked_before_message",
            String::new(),
            String::new(),
            "title",
        ),
    ]);
}

#[test]
fn an_announcement_changes_nothing_but_the_version() {
    let before: Project = replay(project_of_three());
    let mut after = before.clone();
    cqrs_es::Aggregate::apply(&mut after, posted(&alice(), "t", "m", vec![bob()]));
    assert_eq!(after.version, before.version + 1);
    after.version = before.version;
    assert_eq!(after, before);
}

#[test]
fn an_announcement_gives_each_recipient_one_general_notice_never_its_author() {
    let event = posted(
        &alice(),
        "System Alert",
        "Your report is ready!",
        vec![bob(), alice(), carol()],
    );
    let notices = announcement_notices(&event);
    let users: Vec<Uuid> = notices.iter().map(|n| n.user_id).collect();
    assert_eq!(users, vec![bob().id, carol().id]);
    for n in &notices {
        assert_eq!(n.notification_type, NotificationType::General);
        assert_eq!(n.title, "System Alert");
        assert_eq!(n.message, "Your report is ready!");
    }
    assert!(announcement_notices(&member_added(&bob(), Role::Member)).is_empty());
}

#[test]
fn general_is_the_last_kind_and_its_wire_name_is_general() {
    assert_eq!(NotificationType::General.as_str(), "general");
    assert_eq!(
        "general".parse::<NotificationType>(),
        Ok(NotificationType::General)
    );
    assert_eq!(
        NotificationType::ALL.last(),
        Some(&NotificationType::General)
    );
}

fn send(user: &Actor, title: &str, message: &str) -> InboxCommand {
    InboxCommand::SendNotice {
        meta: meta(&operator()),
        user: user.clone(),
        title: title.into(),
        message: message.into(),
    }
}

fn sent(user: &Actor, title: &str, message: &str) -> ticketflow_domain::InboxEvent {
    event(
        &operator(),
        InboxPayload::NoticeSent {
            user: user.clone(),
            title: title.into(),
            message: message.into(),
        },
    )
}

#[test]
fn an_operator_notice_goes_to_its_user_alone() {
    check_all(vec![
        Case::<Inbox>::new(
            "a_first_notice",
            vec![],
            send(&bob(), "System Alert", "Your report is ready!"),
            Then::Events(vec![sent(&bob(), "System Alert", "Your report is ready!")]),
        ),
        Case::<Inbox>::new(
            "a_second_notice",
            vec![sent(&bob(), "a", "b")],
            send(&bob(), "c", "d"),
            Then::Events(vec![sent(&bob(), "c", "d")]),
        ),
        Case::<Inbox>::new(
            "another_users_inbox_is_refused",
            vec![sent(&bob(), "a", "b")],
            send(&carol(), "c", "d"),
            Then::Invalid("user"),
        ),
        Case::<Inbox>::new(
            "empty_title",
            vec![],
            send(&bob(), "", "m"),
            Then::Invalid("title"),
        ),
        Case::<Inbox>::new(
            "overlong_title",
            vec![],
            send(&bob(), &chars('t', 201), "m"),
            Then::Invalid("title"),
        ),
        Case::<Inbox>::new(
            "blank_message",
            vec![],
            send(&bob(), "t", " "),
            Then::Invalid("message"),
        ),
        Case::<Inbox>::new(
            "overlong_message",
            vec![],
            send(&bob(), "t", &chars('m', 2001)),
            Then::Invalid("message"),
        ),
    ]);
    let notices = inbox_notices(&sent(&bob(), "System Alert", "Your report is ready!"));
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].user_id, bob().id);
    assert_eq!(notices[0].notification_type, NotificationType::General);
    assert_eq!(notices[0].title, "System Alert");
}
