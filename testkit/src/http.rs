//! What the HTTP tests share: a server with a user and a project (the usual
//! starting point of ticket tests), paths, and checks of error replies.

use serde_json::{json, Value};

use crate::{Reply, TestServer, TestUser};

/// A running server, its first user, and a project that user administers.
pub struct Setup {
    pub server: TestServer,
    pub alice: TestUser,
    pub project_id: String,
}

/// A fresh server with `alice` owning project `PROJ`.
pub async fn setup() -> Setup {
    setup_on(TestServer::start().await).await
}

/// [`setup`] on a server of the caller's.
pub async fn setup_on(server: TestServer) -> Setup {
    let alice = server.user("alice").await;
    let project = server.project(&alice, "PROJ").await;
    let project_id = project["id"].as_str().expect("project id").to_string();
    Setup {
        server,
        alice,
        project_id,
    }
}

impl Setup {
    /// Another user, added to the project as a plain member.
    pub async fn member(&self, username: &str) -> TestUser {
        let user = self.server.user(username).await;
        self.server
            .add_member(&self.alice, &self.project_id, &user)
            .await;
        user
    }

    /// A ticket created by alice with just a title; returns its id.
    pub async fn ticket(&self, title: &str) -> String {
        let reply = self
            .server
            .ticket(&self.alice, &self.project_id, json!({ "title": title }))
            .await;
        id_of(&reply.body)
    }

    /// GET `path` as alice.
    pub async fn get(&self, path: &str) -> Reply {
        self.server.get(path, &self.alice.token).await
    }

    /// POST `body` to `path` as alice.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.server.post(path, &self.alice.token, body).await
    }

    /// PATCH `path` with `body` as alice.
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.server.patch(path, &self.alice.token, body).await
    }

    /// DELETE `path` as alice.
    pub async fn delete(&self, path: &str) -> Reply {
        self.server.delete(path, &self.alice.token).await
    }

    pub fn tickets_path(&self) -> String {
        format!("/api/projects/{}/tickets", self.project_id)
    }

    /// POSTs a ticket body as alice, whatever the outcome.
    pub async fn try_ticket(&self, body: Value) -> Reply {
        self.post(&self.tickets_path(), body).await
    }
}

pub fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("id").to_string()
}

pub fn ticket_path(ticket_id: &str) -> String {
    format!("/api/tickets/{ticket_id}")
}

/// The `type` of every history item, in order.
pub fn event_types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_string())
        .collect()
}

/// The `version` of every history item, in order.
pub fn versions(history: &[Value]) -> Vec<u64> {
    history
        .iter()
        .map(|e| e["version"].as_u64().expect("version"))
        .collect()
}

/// The quoted version an `ETag` / `If-Match` carries.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Asserts an error reply: status, code and (for 422s) field.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    assert_error_in("", reply, status, code, field);
}

/// [`assert_error`] for one case of a table: a failure names `case`.
#[track_caller]
pub fn assert_error_in(case: &str, reply: &Reply, status: u16, code: &str, field: Option<&str>) {
    let body = &reply.body;
    assert_eq!(reply.status.as_u16(), status, "{case}: {body:?}");
    assert_eq!(reply.error_code(), code, "{case}: {body:?}");
    assert!(
        body["error"]["message"].is_string(),
        "{case}: error message: {body:?}"
    );
    if let Some(field) = field {
        assert_eq!(reply.error_field(), field, "{case}: {body:?}");
    }
}

/// Of the replies to one request raced several times, exactly one is a 201
/// and every other a 409 `code`.
#[track_caller]
pub fn assert_one_created(replies: &[Reply], code: &str) {
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    assert_eq!(created, 1, "201s among {} racing requests", replies.len());
    for reply in replies.iter().filter(|r| r.status.as_u16() != 201) {
        assert_error(reply, 409, code, None);
    }
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Sorted owned strings, for comparing against [`keys`].
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}
