//! The API's description (`/api/openapi.json`) against the process that
//! serves it: every route the router has is described and every described
//! operation is routed; the document is OpenAPI 3.1 with the crate's
//! version, internally consistent; the docs UI loads with nothing from
//! outside.
//!
//! Run: `cargo test -p ticketflow --test openapi` (PostgreSQL must be up,
//! or `TICKETFLOW_TEST_MODE=embedded`).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ticketflow::{Front, Metrics, Roles};
use ticketflow_realtime::Settings;
use ticketflow_testkit::{Config, TestServer, JWT_SECRET};

/// The methods a route is probed for.
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Routes the description leaves out on purpose, by path prefix: the docs
/// UI is HTML and scripts for people, not API.
const UNDESCRIBED: [&str; 1] = ["/api/docs"];

/// A route or operation: method and path, the trailing slash dropped (the
/// socket paths are served with and without it, and described once).
type Operation = (String, String);

fn operation(method: &str, path: &str) -> Operation {
    let path = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    (method.to_uppercase(), path.to_string())
}

/// The paths of a router, as axum's `Debug` lists them (it has no other
/// way to list its routes): the `"path"` entries of its path router, not
/// those of the fallbacks axum adds. Fails loudly if the format changes.
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let routes = debug
        .split("fallback_router")
        .next()
        .expect("the path router comes first");
    let paths: BTreeSet<String> = routes
        .split(": \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|path| path.starts_with('/') && !path.contains("__private__axum"))
        .map(str::to_string)
        .collect();
    assert!(
        paths.contains("/api/me") && paths.contains("/ws/notifications/"),
        "axum's Debug no longer lists routes as expected: {paths:?}"
    );
    paths
}

/// A concrete path for a route: every parameter a fresh id.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.starts_with('{') {
            true => uuid::Uuid::new_v4().to_string(),
            false => segment.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The (method, path) pairs the process routes: each path of the router of
/// an instance running the API and the gateway, with each method it does not
/// answer 405 to on the live server.
async fn routed(server: &TestServer) -> BTreeSet<Operation> {
    let settings = Settings {
        queue_limit: 1024,
        replay_limit: 100_000,
        timing: Default::default(),
    };
    let (router, tasks) = server
        .backend
        .front(
            JWT_SECRET.as_bytes(),
            Front {
                origins: Default::default(),
                limits: &Default::default(),
                settings,
                roles: Roles::ALL,
                ready_max_lag: 10_000,
                metrics: Some(&Metrics::install().expect("the metrics recorder")),
                board_snapshot_every: 1000,
            },
        )
        .await
        .expect("build an instance's routes");
    tasks.iter().for_each(|t| t.abort());
    let mut routed = BTreeSet::new();
    let described = router_paths(&router)
        .into_iter()
        .filter(|p| !UNDESCRIBED.iter().any(|u| p.starts_with(u)));
    for path in described {
        let url = format!("{}{}", server.base, concrete(&path));
        for method in METHODS {
            let reply = server.http.request(method.clone(), &url).send().await;
            let status = reply.expect("the server answers").status();
            if status != StatusCode::METHOD_NOT_ALLOWED {
                routed.insert(operation(method.as_str(), &path));
            }
        }
    }
    routed
}

/// The (method, path) pairs the description has.
fn described(spec: &Value) -> BTreeSet<Operation> {
    let paths = spec["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item").keys();
            methods.map(move |method| operation(method, path))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_is_described_and_every_description_routed() {
    let server = TestServer::start().await;
    let spec = serde_json::to_value(ticketflow::openapi::spec()).expect("serialise");
    let described = described(&spec);
    let routed = routed(&server).await;
    let undescribed: Vec<_> = routed.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&routed).collect();
    assert!(
        undescribed.is_empty() && unrouted.is_empty(),
        "routes without a description (give the handler a #[utoipa::path] and register it \
         with routes!): {undescribed:?}\ndescriptions without a route: {unrouted:?}"
    );
    assert!(routed.len() > 25, "only {} operations found", routed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_description_is_openapi_3_1_with_the_crate_version() {
    let server = TestServer::start().await;
    let reply = server
        .http
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .expect("fetch the description");
    assert_eq!(reply.status(), StatusCode::OK);
    let content_type = reply.headers()["content-type"].to_str().unwrap_or_default();
    assert_eq!(content_type, "application/json");
    let spec: Value = reply.json().await.expect("JSON");
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["info"]["version"], env!("CARGO_PKG_VERSION"));
    let built = serde_json::to_value(ticketflow::openapi::spec()).expect("serialise");
    assert_eq!(
        spec, built,
        "the served document is the process's description"
    );
    assert_consistent(&spec);
}

/// Every `$ref` names a component that exists, and operation ids are unique.
fn assert_consistent(spec: &Value) {
    let mut refs = Vec::new();
    collect_refs(spec, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.trim_start_matches('#');
        assert!(spec.pointer(pointer).is_some(), "dangling $ref {reference}");
    }
    let ids: Vec<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");
}

fn collect_refs<'v>(value: &'v Value, refs: &mut Vec<&'v str>) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::String(reference)) = fields.get("$ref") {
                refs.push(reference);
            }
            fields.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// The values of `attribute="..."` in `html`.
fn attribute_values<'h>(html: &'h str, attribute: &str) -> Vec<&'h str> {
    let opening = format!("{attribute}=\"");
    html.split(opening.as_str())
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docs_ui_loads_with_every_asset_from_the_server() {
    let server = TestServer::start_with(Config::default()).await;
    let docs = format!("{}/api/docs/", server.base);
    // `/api/docs` redirects to the page itself.
    let page = server
        .http
        .get(format!("{}/api/docs", server.base))
        .send()
        .await
        .expect("load the docs");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.url().as_str(), docs);
    let html = page.text().await.expect("the page");
    let assets: Vec<&str> = ["src", "href"]
        .iter()
        .flat_map(|a| attribute_values(&html, a))
        .collect();
    assert!(assets.len() >= 5, "the page names its assets: {assets:?}");
    for asset in assets.iter().chain(&["swagger-initializer.js"]) {
        assert!(
            !asset.contains("//"),
            "{asset}: every asset comes from the server itself"
        );
        let url = format!("{docs}{}", asset.trim_start_matches("./"));
        let reply = server.http.get(&url).send().await.expect("fetch an asset");
        assert_eq!(reply.status(), StatusCode::OK, "{url}");
        let body = reply.text().await.expect("the asset");
        assert!(!body.is_empty(), "{url} is empty");
        if asset.ends_with("swagger-initializer.js") {
            assert!(body.contains(r#""url": "/api/openapi.json""#), "{body}");
            // The validator badge would send the document to an outside service.
            assert!(body.contains(r#""validatorUrl": "none""#), "{body}");
            assert!(!body.contains("http"), "{body}");
        }
    }
}

// Regressions of what schemathesis (scripts/schemathesis.sh) found.

/// The description of one operation's responses.
fn responses<'s>(spec: &'s Value, method: &str, path: &str) -> &'s Value {
    &spec["paths"][path][method]["responses"]
}

/// A read that cannot reach its `X-Min-Position` answers the contract's 503
/// `projection_lagging`: a 5xx by design, which the description must list
/// (schemathesis' first run sent `X-Min-Position: 9223372036854775806`; the
/// fuzz configuration now pins the header, so runs stay short).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_past_the_log_answers_the_described_503() {
    let server = TestServer::start().await;
    let user = server.user("lagging").await;
    let far = [("X-Min-Position", "9223372036854775806")];
    let reply = server
        .call(Method::GET, "/api/me", Some(&user.token), None, &far)
        .await;
    ticketflow_testkit::assert_error(&reply, 503, "projection_lagging", None);
    assert!(reply.body["error"]["current_position"].is_i64());
    let spec = serde_json::to_value(ticketflow::openapi::spec()).expect("serialise");
    let unavailable = &responses(&spec, "get", "/api/me")["503"]["$ref"];
    assert_eq!(unavailable, "#/components/responses/Unavailable");
}

/// Query values the server refuses are outside their described schema, so
/// a client (or a fuzzer) generating valid requests does not send them:
/// an empty `after` and an `as_of` that is neither a version nor a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_query_values_are_outside_the_description() {
    let server = TestServer::start().await;
    let user = server.user("querying").await;
    let reply = server
        .call(
            Method::GET,
            "/api/projects?limit=1&after=",
            Some(&user.token),
            None,
            &[],
        )
        .await;
    ticketflow_testkit::assert_error(&reply, 422, "invalid_field", Some("after"));
    let project = server.project(&user, "QUERY").await;
    let pid = project["id"].as_str().expect("project id");
    let created = server
        .ticket(&user, pid, serde_json::json!({"title": "t"}))
        .await;
    let ticket = created.body["id"].as_str().expect("ticket id");
    let odd_time = format!("/api/tickets/{ticket}?as_of=%F0%90%A1%A3%C2%8D");
    let reply = server
        .call(Method::GET, &odd_time, Some(&user.token), None, &[])
        .await;
    ticketflow_testkit::assert_error(&reply, 422, "invalid_field", Some("as_of"));

    let spec = serde_json::to_value(ticketflow::openapi::spec()).expect("serialise");
    let parameter = |path: &str, name: &str| {
        let parameters = spec["paths"][path]["get"]["parameters"].as_array();
        let found = parameters.and_then(|ps| ps.iter().find(|p| p["name"] == name));
        found.unwrap_or_else(|| panic!("{path} describes {name}"))["schema"].clone()
    };
    for path in [
        "/api/projects",
        "/api/tickets/{id}/history",
        "/api/notifications",
    ] {
        assert_eq!(parameter(path, "after")["minLength"], 1, "{path}");
    }
    let as_of = parameter("/api/tickets/{id}", "as_of")["pattern"].clone();
    assert!(
        as_of.as_str().is_some_and(|p| p.starts_with("^([0-9]+|")),
        "{as_of}"
    );
}
