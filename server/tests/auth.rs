//! The contract's Auth section and "Users, tokens, members" rules, over real
//! HTTP: registration, login, refresh rotation and reuse detection, `/api/me`,
//! and every way a bearer token can be wrong; and the additions: logout,
//! password change, and sessions that end at once on every instance, sockets
//! included.
//!
//! Run: `cargo test -p ticketflow --test auth` (PostgreSQL must be up).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::process::{ProcessData, ServerProcess};
use ticketflow_testkit::ws::{close_code, connect, next_json, refused, send_json, Socket};
use ticketflow_testkit::{assert_error, keys, sorted};
use ticketflow_testkit::{Reply, TestServer, JWT_SECRET};

const PASSWORD: &str = "password123";

async fn refresh(server: &TestServer, refresh_token: &str) -> Reply {
    let body = json!({ "refresh_token": refresh_token });
    server
        .call(Method::POST, "/api/auth/refresh", None, Some(body), &[])
        .await
}

async fn me_with(server: &TestServer, authorization: &str) -> Reply {
    server
        .call(
            Method::GET,
            "/api/me",
            None,
            None,
            &[("authorization", authorization)],
        )
        .await
}

/// Claims as the server issues them, for `sub` and `username` of `user_id`.
fn claims(user_id: &str, username: &str, iat: i64, exp: i64) -> Value {
    json!({ "sub": user_id, "username": username, "iat": iat, "exp": exp })
}

fn sign(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret))
        .expect("sign")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[track_caller]
fn assert_token_pair(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(
        keys(&reply.body),
        sorted(&["access_token", "refresh_token", "token_type", "expires_in"])
    );
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 900);
    assert!(reply.body["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(reply.body["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn register_returns_201_with_the_user() {
    let server = TestServer::start().await;
    let reply = server
        .register(json!({ "username": "alice", "password": PASSWORD, "display_name": "Alice A." }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(
        keys(&reply.body),
        sorted(&["id", "username", "display_name"])
    );
    assert!(uuid::Uuid::parse_str(reply.body["id"].as_str().unwrap()).is_ok());
    assert_eq!(reply.body["username"], "alice");
    assert_eq!(reply.body["display_name"], "Alice A.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn display_name_defaults_to_the_username() {
    let server = TestServer::start().await;
    let reply = server
        .register(json!({ "username": "bob", "password": PASSWORD }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["display_name"], "bob");
    let login = server.login("bob", PASSWORD).await;
    let token = login.body["access_token"].as_str().unwrap();
    assert_eq!(
        server.get("/api/me", token).await.body["display_name"],
        "bob"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn username_must_match_the_pattern() {
    let server = TestServer::start().await;
    let too_long = "a".repeat(33);
    for bad in [
        "",
        "ab",
        too_long.as_str(),
        "Alice",
        "al ice",
        "al!ce",
        "ałice",
        "bob@x",
    ] {
        let reply = server
            .register(json!({ "username": bad, "password": PASSWORD }))
            .await;
        assert_error(&reply, 422, "invalid_field", Some("username"));
    }
    let longest = "z".repeat(32);
    for good in ["abc", "a.b-c_9", "0-0", longest.as_str()] {
        let reply = server
            .register(json!({ "username": good, "password": PASSWORD }))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{good}: {:?}",
            reply.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_length_is_8_to_128_characters_not_bytes() {
    let server = TestServer::start().await;
    let cases = [
        ("short", "a".repeat(7), false),
        ("shortwide", "é".repeat(7), false), // 14 bytes, still 7 characters
        ("min", "a".repeat(8), true),
        ("maxwide", "é".repeat(128), true), // 256 bytes, 128 characters
        ("long", "a".repeat(129), false),
    ];
    for (username, password, ok) in cases {
        let reply = server
            .register(json!({ "username": username, "password": password }))
            .await;
        if ok {
            assert_eq!(
                reply.status,
                StatusCode::CREATED,
                "{username}: {:?}",
                reply.body
            );
            assert_eq!(
                server.login(username, &password).await.status,
                StatusCode::OK
            );
        } else {
            assert_error(&reply, 422, "invalid_field", Some("password"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn taken_username_is_409_username_taken() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let reply = server
        .register(json!({ "username": "alice", "password": "another-password" }))
        .await;
    assert_error(&reply, 409, "username_taken", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_returns_a_bearer_pair_with_a_15_minute_jwt() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server.login("alice", PASSWORD).await;
    assert_token_pair(&reply);

    let token = reply.body["access_token"].as_str().unwrap();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("an HS256 JWT signed with JWT_SECRET")
    .claims;
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["username"], "alice");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_password_or_unknown_user_is_401() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let wrong = server.login("alice", "not-the-password").await;
    assert_error(&wrong, 401, "unauthenticated", None);
    let unknown = server.login("nobody", PASSWORD).await;
    assert_error(&unknown, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_returns_a_new_pair() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = refresh(&server, &alice.refresh_token).await;
    assert_token_pair(&reply);
    assert_ne!(reply.body["refresh_token"], alice.refresh_token.as_str());
    let access = reply.body["access_token"].as_str().unwrap();
    let me = server.get("/api/me", access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["id"], alice.id.as_str());
    // The successor is live in its turn.
    let next = reply.body["refresh_token"].as_str().unwrap();
    assert_token_pair(&refresh(&server, next).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reusing_a_refresh_token_revokes_its_whole_family() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let other_session = server.login("alice", PASSWORD).await;
    let first = refresh(&server, &alice.refresh_token).await;
    let successor = first.body["refresh_token"].as_str().unwrap();

    let reuse = refresh(&server, &alice.refresh_token).await;
    assert_error(&reuse, 401, "unauthenticated", None);
    let after = refresh(&server, successor).await;
    assert_error(&after, 401, "unauthenticated", None);

    // Another login is another family, untouched.
    let other = other_session.body["refresh_token"].as_str().unwrap();
    assert_token_pair(&refresh(&server, other).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_refresh_token_is_401() {
    let server = TestServer::start().await;
    let reply = refresh(&server, "not-a-refresh-token").await;
    assert_error(&reply, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_token_is_refused_at_refresh() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = refresh(&server, &alice.token).await;
    assert_error(&reply, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_token_is_refused_as_bearer() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server.get("/api/me", &alice.refresh_token).await;
    assert_error(&reply, 401, "unauthenticated", None);
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("not an access token"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn me_returns_the_caller() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let reply = server.get("/api/me", &alice.token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({ "id": alice.id, "username": "alice", "display_name": "alice" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correctly_crafted_token_is_accepted() {
    // Guards the refusals below: they fail for the reason they name.
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = sign(
        Algorithm::HS256,
        JWT_SECRET.as_bytes(),
        &claims(&alice.id, "alice", now(), now() + 600),
    );
    let reply = me_with(&server, &format!("Bearer {token}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_or_malformed_authorization_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let none = server.call(Method::GET, "/api/me", None, None, &[]).await;
    assert_error(&none, 401, "unauthenticated", None);
    for header in [
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer garbage".to_string(),
        "Bearer a.b.c".to_string(),
        format!("Basic {}", alice.token),
        alice.token.clone(),
    ] {
        let reply = me_with(&server, &header).await;
        assert_error(&reply, 401, "unauthenticated", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_signed_with_another_secret_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = sign(
        Algorithm::HS256,
        b"some-other-secret",
        &claims(&alice.id, "alice", now(), now() + 600),
    );
    let reply = me_with(&server, &format!("Bearer {token}")).await;
    assert_error(&reply, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_token_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = sign(
        Algorithm::HS256,
        JWT_SECRET.as_bytes(),
        &claims(&alice.id, "alice", now() - 1000, now() - 100),
    );
    let reply = me_with(&server, &format!("Bearer {token}")).await;
    assert_error(&reply, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_with_alg_none_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = claims(&alice.id, "alice", now(), now() + 600);
    let payload = URL_SAFE_NO_PAD.encode(body.to_string());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let reply = me_with(&server, &format!("Bearer {token}")).await;
        assert_error(&reply, 401, "unauthenticated", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_with_another_algorithm_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = claims(&alice.id, "alice", now(), now() + 600);
    for alg in [Algorithm::HS512, Algorithm::HS384] {
        let token = sign(alg, JWT_SECRET.as_bytes(), &body);
        let reply = me_with(&server, &format!("Bearer {token}")).await;
        assert_error(&reply, 401, "unauthenticated", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_without_required_claims_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let secret = JWT_SECRET.as_bytes();
    let no_exp = json!({ "sub": alice.id, "username": "alice", "iat": now() });
    let no_sub = json!({ "username": "alice", "iat": now(), "exp": now() + 600 });
    for body in [no_exp, no_sub] {
        let token = sign(Algorithm::HS256, secret, &body);
        let reply = me_with(&server, &format!("Bearer {token}")).await;
        assert_error(&reply, 401, "unauthenticated", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_api_route_but_register_login_refresh_needs_a_token() {
    let server = TestServer::start().await;
    let id = uuid::Uuid::new_v4();
    let routes = [
        (Method::GET, "/api/me".to_string()),
        (Method::GET, "/api/projects".to_string()),
        (Method::POST, "/api/projects".to_string()),
        (Method::GET, format!("/api/projects/{id}")),
        (Method::GET, format!("/api/projects/{id}/members")),
        (Method::POST, format!("/api/projects/{id}/members")),
        (Method::DELETE, format!("/api/projects/{id}/members/{id}")),
        (Method::GET, format!("/api/projects/{id}/tickets")),
        (Method::POST, format!("/api/projects/{id}/tickets")),
        (Method::GET, format!("/api/tickets/{id}")),
        (Method::PATCH, format!("/api/tickets/{id}")),
        (Method::DELETE, format!("/api/tickets/{id}")),
        (Method::GET, format!("/api/tickets/{id}/comments")),
        (Method::POST, format!("/api/tickets/{id}/comments")),
        (Method::GET, format!("/api/tickets/{id}/history")),
    ];
    for (method, path) in routes {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let reply = server.call(method.clone(), &path, None, body, &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(reply.error_code(), "unauthenticated", "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passwords_are_stored_as_argon2id_hashes() {
    let server = TestServer::start().await;
    server.user("alice").await;
    let hash = server.stored_password_hash("alice").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_refresh_token_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    server.expire_refresh_tokens().await;
    let reply = refresh(&server, &alice.refresh_token).await;
    assert_error(&reply, 401, "unauthenticated", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_username_create_one_user() {
    let server = TestServer::start().await;
    let attempts =
        (0..5).map(|_| server.register(json!({ "username": "racer", "password": PASSWORD })));
    let replies = futures::future::join_all(attempts).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_error(reply, 409, "username_taken", None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let attempts = (0..5).map(|_| refresh(&server, &alice.refresh_token));
    let replies = futures::future::join_all(attempts).await;
    let rotated = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert!(rotated <= 1, "a single-use token was used {rotated} times");
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_error(reply, 401, "unauthenticated", None);
    }
}

// Ending sessions: logout, password change, and a reused refresh token.
// A session is a refresh family; its access tokens name it (`sid`) and are
// refused the moment it ends, on every instance, and its sockets close with
// 4401.

/// One login's tokens.
struct Session {
    access: String,
    refresh: String,
}

impl Session {
    #[track_caller]
    fn of(reply: &Reply) -> Self {
        assert_token_pair(reply);
        Self {
            access: reply.body["access_token"].as_str().unwrap().to_string(),
            refresh: reply.body["refresh_token"].as_str().unwrap().to_string(),
        }
    }
}

async fn logout(server: &TestServer, refresh_token: &str) -> Reply {
    let body = json!({ "refresh_token": refresh_token });
    server
        .call(Method::POST, "/api/auth/logout", None, Some(body), &[])
        .await
}

async fn change_password(server: &TestServer, token: &str, current: &str, new: &str) -> Reply {
    let body = json!({ "current_password": current, "new_password": new });
    server.post("/api/auth/password", token, body).await
}

/// A socket of every kind on `project_id` with `token`, each past its
/// opening messages (so it is live before anything is revoked).
async fn sockets(base_ws: &str, project_id: &str, token: &str) -> Vec<Socket> {
    let paths = [
        "/ws/notifications/".to_string(),
        format!("/ws/projects/{project_id}/tickets/"),
        format!("/ws/projects/{project_id}/presence/"),
    ];
    let mut open = Vec::new();
    for path in paths {
        let mut socket = connect(&format!("{base_ws}{path}?token={token}")).await;
        assert_eq!(
            next_json(&mut socket).await["type"],
            "connection_established"
        );
        if path.ends_with("/presence/") {
            assert_eq!(next_json(&mut socket).await["type"], "presence_state");
        }
        open.push(socket);
    }
    open
}

/// Answers a ping (whatever presence news comes before the pong).
async fn assert_still_open(socket: &mut Socket) {
    let stamp = uuid::Uuid::new_v4().to_string();
    send_json(socket, json!({ "type": "ping", "timestamp": stamp })).await;
    loop {
        let message = next_json(socket).await;
        if message["type"] == "pong" {
            assert_eq!(message["timestamp"], stamp.as_str());
            return;
        }
        assert_eq!(message["type"], "user_status", "{message}");
    }
}

async fn assert_all_close_with_4401(sockets: &mut [Socket]) {
    for socket in sockets {
        assert_eq!(close_code(socket).await, 4401);
    }
}

#[track_caller]
fn assert_refused_as_ended(reply: &Reply) {
    assert_error(reply, 401, "unauthenticated", None);
    let message = reply.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("session was ended"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_ends_the_presented_session_at_once_and_no_other() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let project = server.project(&alice, "LOG").await;
    let pid = project["id"].as_str().unwrap();
    let other = Session::of(&server.login("alice", PASSWORD).await);
    let ws = server.ws_url("");
    let mut ending = sockets(&ws, pid, &alice.token).await;
    let mut staying = sockets(&ws, pid, &other.access).await;

    let reply = logout(&server, &alice.refresh_token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
    assert_refused_as_ended(&server.get("/api/me", &alice.token).await);
    assert_error(
        &refresh(&server, &alice.refresh_token).await,
        401,
        "unauthenticated",
        None,
    );
    assert_all_close_with_4401(&mut ending).await;
    let handshake = format!("/ws/notifications/?token={}", alice.token);
    assert_eq!(refused(&server.ws_url(&handshake)).await, 401);

    // The other login goes on: its sockets, its token, its refresh.
    for socket in &mut staying {
        assert_still_open(socket).await;
    }
    assert_eq!(
        server.get("/api/me", &other.access).await.status,
        StatusCode::OK
    );
    assert_token_pair(&refresh(&server, &other.refresh).await);

    // Idempotent, and a token never issued gets the same answer.
    assert_eq!(
        logout(&server, &alice.refresh_token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        logout(&server, "never-issued").await.status,
        StatusCode::NO_CONTENT
    );
    let missing = server
        .call(Method::POST, "/api/auth/logout", None, Some(json!({})), &[])
        .await;
    assert_error(&missing, 422, "invalid_field", Some("refresh_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_with_a_used_refresh_token_ends_its_family_too() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let rotated = Session::of(&refresh(&server, &alice.refresh_token).await);
    assert_eq!(
        server.get("/api/me", &rotated.access).await.status,
        StatusCode::OK
    );

    let reply = logout(&server, &alice.refresh_token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_refused_as_ended(&server.get("/api/me", &rotated.access).await);
    assert_error(
        &refresh(&server, &rotated.refresh).await,
        401,
        "unauthenticated",
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_ends_every_session_of_the_user_and_starts_one() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let project = server.project(&alice, "PWD").await;
    let pid = project["id"].as_str().unwrap();
    server.add_member(&alice, pid, &bob).await;
    let second = Session::of(&server.login("alice", PASSWORD).await);
    let ws = server.ws_url("");
    let mut alices = sockets(&ws, pid, &alice.token).await;
    alices.extend(sockets(&ws, pid, &second.access).await);
    let mut bobs = sockets(&ws, pid, &bob.token).await;

    let new_password = "a much better password";
    let reply = change_password(&server, &second.access, PASSWORD, new_password).await;
    let fresh = Session::of(&reply);

    assert_all_close_with_4401(&mut alices).await;
    for old in [&alice.token, &second.access] {
        assert_refused_as_ended(&server.get("/api/me", old).await);
    }
    for old in [&alice.refresh_token, &second.refresh] {
        assert_error(&refresh(&server, old).await, 401, "unauthenticated", None);
    }
    assert_error(
        &server.login("alice", PASSWORD).await,
        401,
        "unauthenticated",
        None,
    );
    assert_token_pair(&server.login("alice", new_password).await);
    // The caller's new session works, sockets included.
    let me = server.get("/api/me", &fresh.access).await;
    assert_eq!(
        (me.status, me.body["username"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    sockets(&ws, pid, &fresh.access).await;
    assert_token_pair(&refresh(&server, &fresh.refresh).await);
    // Another user is not concerned.
    for socket in &mut bobs {
        assert_still_open(socket).await;
    }
    assert_eq!(
        server.get("/api/me", &bob.token).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_password_change_changes_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let path = "/api/auth/password";

    let wrong = change_password(&server, &alice.token, "not my password", "new password 1").await;
    assert_error(&wrong, 403, "wrong_password", Some("current_password"));
    let short = change_password(&server, &alice.token, PASSWORD, "short").await;
    assert_error(&short, 422, "invalid_field", Some("new_password"));
    let long = change_password(&server, &alice.token, PASSWORD, &"p".repeat(129)).await;
    assert_error(&long, 422, "invalid_field", Some("new_password"));
    let missing = server
        .post(
            path,
            &alice.token,
            json!({ "new_password": "new password 1" }),
        )
        .await;
    assert_error(&missing, 422, "invalid_field", Some("current_password"));
    let body = json!({ "current_password": PASSWORD, "new_password": "new password 1" });
    let anonymous = server.call(Method::POST, path, None, Some(body), &[]).await;
    assert_error(&anonymous, 401, "unauthenticated", None);

    assert_eq!(
        server.get("/api/me", &alice.token).await.status,
        StatusCode::OK
    );
    assert_token_pair(&server.login("alice", PASSWORD).await);
    assert_token_pair(&refresh(&server, &alice.refresh_token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auth_routes_take_no_idempotency_key() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let body = json!({ "current_password": PASSWORD, "new_password": "new password 1" });
    let keyed = [("idempotency-key", "change-1")];
    let path = "/api/auth/password";
    let first = server
        .call(
            Method::POST,
            path,
            Some(&alice.token),
            Some(body.clone()),
            &keyed,
        )
        .await;
    let fresh = Session::of(&first);
    // Run again, not replayed: the current password is no longer that one,
    // and no response holding credentials was stored to replay.
    let again = server
        .call(Method::POST, path, Some(&fresh.access), Some(body), &keyed)
        .await;
    assert_error(&again, 403, "wrong_password", Some("current_password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reused_refresh_token_ends_its_familys_access_tokens_and_sockets() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let project = server.project(&alice, "REU").await;
    let pid = project["id"].as_str().unwrap();
    let rotated = Session::of(&refresh(&server, &alice.refresh_token).await);
    let mut open = sockets(&server.ws_url(""), pid, &rotated.access).await;
    assert_eq!(
        server.get("/api/me", &rotated.access).await.status,
        StatusCode::OK
    );

    // The first refresh token again: stolen, says the server.
    let reuse = refresh(&server, &alice.refresh_token).await;
    assert_error(&reuse, 401, "unauthenticated", None);
    for token in [&alice.token, &rotated.access] {
        assert_refused_as_ended(&server.get("/api/me", token).await);
    }
    assert_all_close_with_4401(&mut open).await;
}

/// `GET /api/me` on `base` with `token`, as a status.
async fn me_status(base: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

/// Waits for `token` to be refused on `base`: the other instance hears of
/// the revocation over the broker, well before its database poll.
async fn refused_within(base: &str, token: &str, wait: std::time::Duration) {
    let deadline = std::time::Instant::now() + wait;
    while me_status(base, token).await != StatusCode::UNAUTHORIZED {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepted on {base}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_end_on_every_instance() {
    let server = TestServer::start().await;
    let Some(other) = server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let alice = server.user("alice").await;
    let project = server.project(&alice, "MUL").await;
    let pid = project["id"].as_str().unwrap();
    let second = Session::of(&server.login("alice", PASSWORD).await);
    // Known and remembered as valid on the other instance first.
    assert_eq!(me_status(&other.base, &alice.token).await, StatusCode::OK);
    let mut there = sockets(&other.ws_url(""), pid, &alice.token).await;
    let broker_not_poll = std::time::Duration::from_secs(3);

    assert_eq!(
        logout(&server, &alice.refresh_token).await.status,
        StatusCode::NO_CONTENT
    );
    refused_within(&other.base, &alice.token, broker_not_poll).await;
    assert_all_close_with_4401(&mut there).await;
    assert_eq!(me_status(&other.base, &second.access).await, StatusCode::OK);

    // A password change on the other instance ends the rest here.
    let mut here = sockets(&server.ws_url(""), pid, &second.access).await;
    let body = json!({ "current_password": PASSWORD, "new_password": "new password 1" });
    let changed = reqwest::Client::new()
        .post(format!("{}/api/auth/password", other.base))
        .bearer_auth(&second.access)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(changed.status(), StatusCode::OK);
    refused_within(&server.base, &second.access, broker_not_poll).await;
    assert_all_close_with_4401(&mut here).await;

    // An instance started afterwards knows from the database.
    let late = server.another_instance().await.expect("postgres mode");
    for token in [&alice.token, &second.access] {
        assert_eq!(me_status(&late.base, token).await, StatusCode::UNAUTHORIZED);
    }
}

// No secret in the logs: the binary itself, logging at every level in
// either format, through a whole session's life.

fn token_of(body: &Value, which: &str) -> String {
    body[which].as_str().expect(which).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_password_or_token_reaches_the_text_log_at_any_level() {
    no_password_or_token_reaches_the_log("text").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_password_or_token_reaches_the_json_log_at_any_level() {
    no_password_or_token_reaches_the_log("json").await;
}

/// A request id of the test's (the log must carry it), for the `n`th request.
fn request_id(n: usize) -> String {
    format!("secrets-test-{n}")
}

async fn no_password_or_token_reaches_the_log(format: &str) {
    let data = ProcessData::new().await;
    let env = [("RUST_LOG", "trace"), ("LOG_FORMAT", format)];
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_ticketflow"), &data, &env);
    let mut sent = 0;
    let mut send = |path: &str, token: Option<String>, body: Option<Value>| {
        sent += 1;
        let id = request_id(sent);
        let (server, path) = (&server, path.to_string());
        async move {
            let headers = [("x-request-id", id.as_str())];
            let answer = server.send(&path, token.as_deref(), body, &headers).await;
            let echoed = answer.headers.get("x-request-id");
            assert_eq!(echoed.and_then(|v| v.to_str().ok()), Some(id.as_str()));
            (answer.status, answer.body)
        }
    };
    let (first, second, wrong) = ("first secret pw", "second secret pw", "wrong secret pw");
    let mut secrets = vec![first.to_string(), second.to_string(), wrong.to_string()];

    let register = json!({ "username": "alice", "password": first });
    assert_eq!(
        send("/api/auth/register", None, Some(register)).await.0,
        201
    );
    let bad = json!({ "username": "alice", "password": wrong });
    assert_eq!(send("/api/auth/login", None, Some(bad)).await.0, 401);
    let login = json!({ "username": "alice", "password": first });
    let (status, pair) = send("/api/auth/login", None, Some(login)).await;
    assert_eq!(status, 200);
    let (access, old_refresh) = (
        token_of(&pair, "access_token"),
        token_of(&pair, "refresh_token"),
    );
    let presented = json!({ "refresh_token": old_refresh });
    let (status, pair) = send("/api/auth/refresh", None, Some(presented)).await;
    assert_eq!(status, 200);
    let (access2, refresh2) = (
        token_of(&pair, "access_token"),
        token_of(&pair, "refresh_token"),
    );

    let ws = server.base.replacen("http://", "ws://", 1);
    let mut socket = connect(&format!("{ws}/ws/notifications/?token={access2}&since=0")).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    let project = json!({ "key": "LOGS", "name": "Logs" });
    assert_eq!(
        send("/api/projects", Some(access2.clone()), Some(project))
            .await
            .0,
        201
    );
    let me = format!("/api/me?token={access2}");
    assert_eq!(send(&me, Some(access2.clone()), None).await.0, 200);
    // A client that sends a token as its request id gets a new one: a
    // token is no request id.
    for token in [&access2, &refresh2] {
        let headers = [("x-request-id", token.as_str())];
        let answer = server.send("/api/me", Some(&access2), None, &headers).await;
        let given = answer.headers.get("x-request-id").expect("a request id");
        assert_ne!(given, token.as_str());
    }

    let change = json!({ "current_password": first, "new_password": second });
    let (status, pair) = send("/api/auth/password", Some(access2.clone()), Some(change)).await;
    assert_eq!(status, 200);
    assert_eq!(close_code(&mut socket).await, 4401);
    let (access3, refresh3) = (
        token_of(&pair, "access_token"),
        token_of(&pair, "refresh_token"),
    );
    let out = json!({ "refresh_token": refresh3 });
    assert_eq!(send("/api/auth/logout", None, Some(out)).await.0, 204);
    // Refused tokens are secrets too.
    assert_eq!(send("/api/me", Some(access3.clone()), None).await.0, 401);
    let reuse = json!({ "refresh_token": old_refresh });
    assert_eq!(send("/api/auth/refresh", None, Some(reuse)).await.0, 401);

    let log = server.stop();
    data.remove_stream().await;
    assert!(
        log.iter().any(|l| l.contains("TRACE")),
        "the log was not at trace level: {} lines",
        log.len()
    );
    if format == "json" {
        for line in &log {
            let parsed = serde_json::from_str::<Value>(line);
            assert!(
                parsed.is_ok_and(|v| v.is_object()),
                "not a JSON object: {line}"
            );
        }
    }
    // The ids the test sent are the log's, so its lines are the requests'.
    for n in 1..=sent {
        let id = request_id(n);
        assert!(
            log.iter().any(|l| l.contains(&id)),
            "{id} is not in the log"
        );
    }
    for token in [&access, &access2, &access3] {
        secrets.push(token.clone());
        // A JWT's signature alone would do to forge nothing, but is its secret part.
        secrets.push(token.rsplit('.').next().expect("signature").to_string());
    }
    secrets.extend([old_refresh, refresh2, refresh3]);
    // Nor how passwords are stored (every argon2id hash starts so).
    secrets.push("$argon2id$".to_string());
    for secret in &secrets {
        let leaks: Vec<&String> = log.iter().filter(|l| l.contains(secret.as_str())).collect();
        assert!(leaks.is_empty(), "{secret:?} is in the log:\n{leaks:#?}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_data_is_its_owners_alone_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = ProcessData::Embedded(tempfile::tempdir_in(dir.path()).expect("data dir"));
    let ProcessData::Embedded(path) = &data else {
        unreachable!()
    };
    let path = path.path().to_path_buf();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_ticketflow"), &data, &[]);
    // Writes to both databases, so SQLite has made its -wal and -shm files.
    let register = json!({ "username": "alice", "password": PASSWORD });
    let registered = server.send("/api/auth/register", None, Some(register), &[]);
    assert_eq!(registered.await.status, 201);
    let login = json!({ "username": "alice", "password": PASSWORD });
    let pair = server.send("/api/auth/login", None, Some(login), &[]).await;
    assert_eq!(pair.status, 200);
    let project = json!({ "key": "PRIV", "name": "Private" });
    let token = token_of(&pair.body, "access_token");
    let created = server.send("/api/projects", Some(&token), Some(project), &[]);
    assert_eq!(created.await.status, 201);

    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let files: Vec<(String, u32)> = std::fs::read_dir(&path)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                mode(&p),
            )
        })
        .collect();
    server.stop();
    assert_eq!(mode(&path), 0o700);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "events.db",
        "events.db-wal",
        "reads.db",
        "reads.db-wal",
        "jwt-secret",
    ] {
        assert!(names.contains(&expected), "{expected} among {names:?}");
    }
    for (name, mode) in files {
        assert_eq!(mode, 0o600, "{name} is {mode:o}");
    }
}
