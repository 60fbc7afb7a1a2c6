//! Browser pages on other origins: CORS on every route for the allowed
//! ones (preflights with the headers the contract uses, `X-Position` and
//! `ETag` readable), nothing for the others, and the WebSocket handshake
//! holding `Origin` to the same rule.

use reqwest::Method;
use ticketflow::Origins;
use ticketflow_testkit::{Config, Reply, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error as WsError;

const APP: &str = "http://app.example:5173";
const OTHER: &str = "https://other.example";

async fn server_allowing(origins: Origins) -> TestServer {
    TestServer::start_with(Config {
        origins,
        ..Config::default()
    })
    .await
}

async fn preflight(server: &TestServer, path: &str, origin: &str, method: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", method),
        (
            "access-control-request-headers",
            "authorization,content-type,if-match,idempotency-key,x-min-position",
        ),
    ];
    server
        .send_raw(Method::OPTIONS, path, None, "", &headers)
        .await
}

fn listed(reply: &Reply, header: &str) -> Vec<String> {
    reply
        .header(header)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn preflights_are_answered_on_every_route_for_an_allowed_origin() {
    let server = server_allowing(Origins::new([APP], false)).await;
    let id = uuid::Uuid::now_v7();
    let routes = [
        ("/api/auth/login".to_string(), "POST"),
        ("/api/projects".to_string(), "POST"),
        (format!("/api/projects/{id}/members/{id}"), "DELETE"),
        (format!("/api/tickets/{id}"), "PATCH"),
        ("/api/notifications/read-all".to_string(), "POST"),
        ("/api/no-such-route".to_string(), "GET"),
    ];
    for (path, method) in routes {
        let reply = preflight(&server, &path, APP, method).await;
        assert!(
            reply.status.is_success(),
            "{method} {path}: {}",
            reply.status
        );
        assert_eq!(
            reply.header("access-control-allow-origin").as_deref(),
            Some(APP),
            "{method} {path}"
        );
        assert!(
            listed(&reply, "access-control-allow-methods").contains(&method.to_ascii_lowercase()),
            "{method} {path}"
        );
        let allowed = listed(&reply, "access-control-allow-headers");
        for header in [
            "authorization",
            "content-type",
            "if-match",
            "idempotency-key",
            "x-min-position",
        ] {
            assert!(allowed.iter().any(|h| h == header), "{header} on {path}");
        }
    }
}

#[tokio::test]
async fn an_allowed_page_can_read_the_headers_the_contract_gives_it() {
    let server = server_allowing(Origins::new([APP], false)).await;
    let alice = server.user("alice").await;
    let body = serde_json::json!({ "key": "CORS", "name": "Cors" }).to_string();
    let created = server
        .send_raw(
            Method::POST,
            "/api/projects",
            Some(&alice.token),
            body,
            &[("origin", APP)],
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.header("access-control-allow-origin").as_deref(),
        Some(APP)
    );
    let exposed = listed(&created, "access-control-expose-headers");
    for header in ["x-position", "etag", "idempotent-replayed"] {
        assert!(exposed.iter().any(|h| h == header), "{header}: {exposed:?}");
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_by_default_and_the_servers_own_does() {
    let server = TestServer::start().await;
    let own = server.base.clone();
    for origin in [OTHER, APP] {
        let reply = preflight(&server, "/api/projects", origin, "POST").await;
        assert_eq!(
            reply.header("access-control-allow-origin"),
            None,
            "{origin}"
        );
        let get = server
            .send_raw(Method::GET, "/api/me", None, "", &[("origin", origin)])
            .await;
        assert_eq!(get.header("access-control-allow-origin"), None, "{origin}");
    }
    let reply = preflight(&server, "/api/projects", &own, "POST").await;
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(own.as_str())
    );
}

#[tokio::test]
async fn development_allows_pages_on_localhost() {
    let server = server_allowing(Origins::new(Vec::<String>::new(), true)).await;
    let local = "http://localhost:5173";
    let reply = preflight(&server, "/api/projects", local, "POST").await;
    assert_eq!(
        reply.header("access-control-allow-origin").as_deref(),
        Some(local)
    );
    let reply = preflight(&server, "/api/projects", OTHER, "POST").await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

/// Opens `path` with `origin` (none: a client that is not a browser);
/// the HTTP status of a refusal, or 101.
async fn open_socket(server: &TestServer, path: &str, origin: Option<&str>) -> u16 {
    let mut request = server
        .ws_url(path)
        .into_client_request()
        .expect("a socket request");
    if let Some(origin) = origin {
        let value = HeaderValue::from_str(origin).expect("an origin header");
        request.headers_mut().insert("origin", value);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => 101,
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("socket failed without an HTTP answer: {e}"),
    }
}

#[tokio::test]
async fn sockets_from_other_pages_are_refused_before_anything_else() {
    let server = server_allowing(Origins::new([APP], false)).await;
    let alice = server.user("alice").await;
    let path = format!("/ws/notifications/?token={}", alice.token);
    let own = server.base.clone();
    let cases = [
        ("an allowed page", Some(APP), 101),
        ("the server's own page", Some(own.as_str()), 101),
        ("a client that is not a browser", None, 101),
        ("another page", Some(OTHER), 403),
    ];
    for (case, origin, status) in cases {
        assert_eq!(open_socket(&server, &path, origin).await, status, "{case}");
    }
    // The origin is checked first: a bad token from another page is a 403.
    let no_token = open_socket(&server, "/ws/notifications/", Some(OTHER)).await;
    assert_eq!(no_token, 403);
}
