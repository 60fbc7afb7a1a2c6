//! The contract's Projects section and its member rules, over real HTTP:
//! creation, keys and names, listing and paging, membership and who may see
//! what under a project.
//!
//! Run: `cargo test -p ticketflow --test projects` (PostgreSQL must be up).

use reqwest::{Method, StatusCode};
use serde_json::json;
use ticketflow_testkit::{assert_error, assert_one_created, id_of, keys, setup, sorted};
use ticketflow_testkit::{Reply, TestServer, TestUser};

const PROJECT_KEYS: [&str; 5] = ["id", "key", "name", "statuses", "created_at"];
const MEMBER_KEYS: [&str; 5] = ["user_id", "username", "display_name", "role", "joined_at"];

/// POSTs a project `key` named `name` as `user`, whatever the outcome.
async fn post_project(server: &TestServer, user: &TestUser, key: &str, name: &str) -> Reply {
    let body = json!({ "key": key, "name": name });
    server.post("/api/projects", &user.token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_returns_201_with_the_project_json() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = post_project(&server, &alice, "PROJ", "Project").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(keys(&reply.body), sorted(&PROJECT_KEYS));
    assert!(uuid::Uuid::parse_str(&id_of(&reply.body)).is_ok());
    assert_eq!(reply.body["key"], "PROJ");
    assert_eq!(reply.body["name"], "Project");
    assert_eq!(
        reply.body["statuses"],
        json!([
            {"id": 1, "name": "Open", "color": "#1890ff"},
            {"id": 2, "name": "In Progress", "color": "#faad14"},
            {"id": 3, "name": "Done", "color": "#52c41a"},
        ])
    );
    let created_at = reply.body["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    assert!(reply.position() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creator_is_the_admin_and_first_member() {
    let s = setup().await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let reply = s.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["next_cursor"], json!(null));
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(keys(&items[0]), sorted(&MEMBER_KEYS));
    assert_eq!(items[0]["user_id"], s.alice.id.as_str());
    assert_eq!(items[0]["username"], "alice");
    assert_eq!(items[0]["display_name"], "alice");
    assert_eq!(items[0]["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_must_match_the_pattern() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for bad in [
        "",
        "A",
        "ABCDEFGHIJK",
        "abc",
        "Proj",
        "1AB",
        "AB-C",
        "AB C",
        "ÄB",
        "A_1",
    ] {
        let reply = post_project(&server, &alice, bad, "x").await;
        assert_error(&reply, 422, "invalid_field", Some("key"));
    }
    for good in ["AB", "A1", "ABCDEFGHIJ", "Z9Z9"] {
        server.project(&alice, good).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_key_is_409_project_key_taken() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server.project(&alice, "PROJ").await;
    for user in [&alice, &bob] {
        let reply = post_project(&server, user, "PROJ", "again").await;
        assert_error(&reply, 409, "project_key_taken", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn name_is_1_to_100_characters() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for (key, name) in [("EMPTY", String::new()), ("LONG", "n".repeat(101))] {
        let reply = post_project(&server, &alice, key, &name).await;
        assert_error(&reply, 422, "invalid_field", Some("name"));
    }
    for (key, name) in [("ONE", "n".to_string()), ("WIDE", "é".repeat(100))] {
        let reply = post_project(&server, &alice, key, &name).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["name"], name.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_shows_only_the_callers_projects() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let first = server.project(&alice, "AONE").await;
    let second = server.project(&alice, "ATWO").await;
    let bobs = server.project(&bob, "BONE").await;

    let reply = server.get("/api/projects", &alice.token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(keys(&reply.body), sorted(&["items", "next_cursor"]));
    assert_eq!(reply.body["items"], json!([first, second]));
    assert_eq!(reply.body["next_cursor"], json!(null));

    let listed = server.list_all("/api/projects", &bob.token, 50).await;
    assert_eq!(listed, vec![bobs.clone()]);
    server.add_member(&alice, &id_of(&first), &bob).await;
    let listed = server.list_all("/api/projects", &bob.token, 50).await;
    let keys: Vec<&str> = listed.iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(sorted(&keys), sorted(&["AONE", "BONE"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_pages_with_an_exclusive_cursor() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut ids = Vec::new();
    for key in ["PA", "PB", "PC", "PD", "PE"] {
        ids.push(id_of(&server.project(&alice, key).await));
    }
    let first = server.get("/api/projects?limit=2", &alice.token).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor");
    let second = server
        .get(
            &format!("/api/projects?limit=2&after={cursor}"),
            &alice.token,
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        id_of(&second.body["items"][0]),
        ids[2],
        "after is exclusive"
    );

    let all: Vec<String> = server
        .list_all("/api/projects", &alice.token, 2)
        .await
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(all, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_limit_defaults_to_50_and_allows_at_most_200() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let creates = (1..=51).map(|n| {
        let body = json!({ "key": format!("P{n}"), "name": "p" });
        server.post("/api/projects", &alice.token, body)
    });
    for reply in futures::future::join_all(creates).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    let default = server.get("/api/projects", &alice.token).await;
    assert_eq!(default.body["items"].as_array().unwrap().len(), 50);
    assert!(default.body["next_cursor"].is_string());
    let max = server.get("/api/projects?limit=200", &alice.token).await;
    assert_eq!(max.body["items"].as_array().unwrap().len(), 51);
    assert_eq!(max.body["next_cursor"], json!(null));
    for bad in ["201", "0", "-1", "abc"] {
        let reply = server
            .get(&format!("/api/projects?limit={bad}"), &alice.token)
            .await;
        assert_error(&reply, 422, "invalid_field", Some("limit"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_by_id_returns_the_project() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let created = server.project(&alice, "PROJ").await;
    let reply = server
        .get(&format!("/api/projects/{}", id_of(&created)), &alice.token)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_or_non_uuid_project_is_404() {
    let s = setup().await;
    let token = &s.alice.token;
    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid", "123"] {
        for path in [
            format!("/api/projects/{id}"),
            format!("/api/projects/{id}/members"),
            format!("/api/projects/{id}/tickets"),
        ] {
            let reply = s.server.get(&path, token).await;
            assert_error(&reply, 404, "not_found", None);
        }
        let path = format!("/api/projects/{id}/tickets");
        let create = s.server.post(&path, token, json!({ "title": "t" })).await;
        assert_error(&create, 404, "not_found", None);
        let path = format!("/api/projects/{id}/members");
        let add = s
            .server
            .post(&path, token, json!({ "username": "alice" }))
            .await;
        assert_error(&add, 404, "not_found", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_member_gets_403_on_everything_under_a_project() {
    let s = setup().await;
    let bob = s.server.user("bob").await;
    let ticket = s.ticket("secret").await;
    let pid = &s.project_id;
    let comment = s
        .post(
            &format!("/api/tickets/{ticket}/comments"),
            json!({ "body": "hi" }),
        )
        .await;
    assert_eq!(comment.status, StatusCode::CREATED);

    let requests = [
        (Method::GET, format!("/api/projects/{pid}"), None),
        (Method::GET, format!("/api/projects/{pid}/members"), None),
        (
            Method::POST,
            format!("/api/projects/{pid}/members"),
            Some(json!({ "username": "bob" })),
        ),
        (
            Method::DELETE,
            format!("/api/projects/{pid}/members/{}", s.alice.id),
            None,
        ),
        (Method::GET, format!("/api/projects/{pid}/tickets"), None),
        (
            Method::POST,
            format!("/api/projects/{pid}/tickets"),
            Some(json!({ "title": "t" })),
        ),
        (Method::GET, format!("/api/tickets/{ticket}"), None),
        (Method::GET, format!("/api/tickets/{ticket}?as_of=1"), None),
        (
            Method::PATCH,
            format!("/api/tickets/{ticket}"),
            Some(json!({ "title": "mine" })),
        ),
        (Method::DELETE, format!("/api/tickets/{ticket}"), None),
        (Method::GET, format!("/api/tickets/{ticket}/comments"), None),
        (
            Method::POST,
            format!("/api/tickets/{ticket}/comments"),
            Some(json!({ "body": "x" })),
        ),
        (Method::GET, format!("/api/tickets/{ticket}/history"), None),
    ];
    for (method, path, body) in requests {
        let reply = s
            .server
            .call(method.clone(), &path, Some(&bob.token), body, &[])
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {:?}",
            reply.body
        );
        assert_eq!(reply.error_code(), "forbidden", "{method} {path}");
    }
    // Nothing bob tried changed the ticket.
    assert_eq!(s.server.history(&s.alice, &ticket).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_member_returns_201_with_the_member_json() {
    let s = setup().await;
    let bob = s.server.user("bob").await;
    s.server
        .register(
            json!({ "username": "carol", "password": "password123", "display_name": "Carol C" }),
        )
        .await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let reply = s.post(&path, json!({ "username": "bob" })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(keys(&reply.body), sorted(&MEMBER_KEYS));
    assert_eq!(reply.body["user_id"], bob.id.as_str());
    assert_eq!(reply.body["username"], "bob");
    assert_eq!(reply.body["display_name"], "bob");
    assert_eq!(reply.body["role"], "member");
    let joined_at = reply.body["joined_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(joined_at).is_ok());
    assert!(reply.position() > 0);

    let carol = s.post(&path, json!({ "username": "carol" })).await;
    assert_eq!(carol.body["display_name"], "Carol C");
    // The new member now sees the project.
    let project = s
        .server
        .get(&format!("/api/projects/{}", s.project_id), &bob.token)
        .await;
    assert_eq!(project.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_lists_everyone_with_roles_and_pages() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let carol = s.member("carol").await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let members = s.server.list_all(&path, &bob.token, 1).await;
    let summary: Vec<(String, String)> = members
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (s.alice.id.clone(), "admin".to_string()),
            (bob.id.clone(), "member".to_string()),
            (carol.id.clone(), "member".to_string()),
        ]
    );
    let too_many = s.server.get(&format!("{path}?limit=201"), &bob.token).await;
    assert_error(&too_many, 422, "invalid_field", Some("limit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_admin_adds_members() {
    let s = setup().await;
    let bob = s.member("bob").await;
    s.server.user("carol").await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let reply = s
        .server
        .post(&path, &bob.token, json!({ "username": "carol" }))
        .await;
    assert_error(&reply, 403, "forbidden", None);
    // A non-admin learns nothing about which usernames exist.
    let unknown = s
        .server
        .post(&path, &bob.token, json!({ "username": "nobody" }))
        .await;
    assert_error(&unknown, 403, "forbidden", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_an_unknown_username_is_422_on_username() {
    let s = setup().await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let reply = s.post(&path, json!({ "username": "nobody" })).await;
    assert_error(&reply, 422, "invalid_field", Some("username"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_a_member_twice_is_409_already_member() {
    let s = setup().await;
    s.member("bob").await;
    let path = format!("/api/projects/{}/members", s.project_id);
    for username in ["bob", "alice"] {
        let reply = s.post(&path, json!({ "username": username })).await;
        assert_error(&reply, 409, "already_member", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn remove_member_is_204_and_ends_their_access() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let path = format!("/api/projects/{}/members/{}", s.project_id, bob.id);
    let reply = s.delete(&path).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.body, json!(null));
    assert!(reply.position() > 0);

    let project = format!("/api/projects/{}", s.project_id);
    assert_error(
        &s.server.get(&project, &bob.token).await,
        403,
        "forbidden",
        None,
    );
    assert!(s
        .server
        .list_all("/api/projects", &bob.token, 50)
        .await
        .is_empty());
    let members = s
        .server
        .list_all(&format!("{project}/members"), &s.alice.token, 50)
        .await;
    assert_eq!(members.len(), 1);
    // Removed members may be added back.
    s.server.add_member(&s.alice, &s.project_id, &bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_a_non_member_is_404() {
    let s = setup().await;
    let stranger = s.server.user("stranger").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for user_id in [stranger.id.as_str(), unknown.as_str(), "not-a-uuid"] {
        let path = format!("/api/projects/{}/members/{user_id}", s.project_id);
        let reply = s.delete(&path).await;
        assert_error(&reply, 404, "not_found", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_the_last_admin_is_409() {
    let s = setup().await;
    s.member("bob").await;
    let path = format!("/api/projects/{}/members/{}", s.project_id, s.alice.id);
    let reply = s.delete(&path).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{:?}", reply.body);
    assert!(reply.body["error"]["code"].is_string());
    let project = format!("/api/projects/{}", s.project_id);
    assert_eq!(s.get(&project).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_admin_removes_members() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let carol = s.member("carol").await;
    for target in [&carol.id, &s.alice.id] {
        let path = format!("/api/projects/{}/members/{target}", s.project_id);
        let reply = s.server.delete(&path, &bob.token).await;
        assert_error(&reply, 403, "forbidden", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_key_make_one_project() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let attempts = (0..10).map(|_| post_project(&server, &alice, "RACE", "r"));
    let replies = futures::future::join_all(attempts).await;
    assert_one_created(&replies, "project_key_taken");
    assert_eq!(
        server
            .list_all("/api/projects", &alice.token, 50)
            .await
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_of_one_member_add_them_once() {
    let s = setup().await;
    s.server.user("bob").await;
    let path = format!("/api/projects/{}/members", s.project_id);
    let attempts = (0..10).map(|_| s.post(&path, json!({ "username": "bob" })));
    let replies = futures::future::join_all(attempts).await;
    assert_one_created(&replies, "already_member");
    assert_eq!(s.server.list_all(&path, &s.alice.token, 50).await.len(), 2);
}
