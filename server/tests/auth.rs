//! The contract's Auth section and "Users, tokens, members" rules, over real
//! HTTP: registration, login, refresh rotation and reuse detection, `/api/me`,
//! and every way a bearer token can be wrong.
//!
//! Run: `cargo test -p ticketflow --test auth` (PostgreSQL must be up).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
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
