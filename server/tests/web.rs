//! The web app the binary embeds: served at `/` to browsers, its files by
//! path, while the API's paths and non-browser clients keep the API's 404.

use reqwest::Method;
use ticketflow_testkit::{assert_error, TestServer};

const BROWSER: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

#[tokio::test]
async fn browsers_get_the_app_on_any_page_it_routes() {
    let server = TestServer::start().await;
    for path in ["/", "/login", "/projects/some-id/board"] {
        let page = server
            .http
            .get(format!("{}{path}", server.base))
            .header(BROWSER.0, BROWSER.1)
            .send()
            .await
            .expect("request");
        assert_eq!(page.status(), 200, "{path}");
        let header = |name| page.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(header("cache-control"), Some("no-cache"), "{path}");
        let html = page.text().await.expect("body");
        assert!(html.contains("<html"), "{path}: {html}");
    }
}

#[tokio::test]
async fn api_paths_and_other_clients_keep_the_json_404() {
    let server = TestServer::start().await;
    for (path, headers) in [
        ("/api/nope", &[BROWSER][..]),
        ("/", &[][..]),
        ("/nope", &[("accept", "application/json")][..]),
    ] {
        let reply = server.send_raw(Method::GET, path, None, "", headers).await;
        assert_error(&reply, 404, "not_found", None);
    }
    let post = server
        .send_raw(Method::POST, "/", None, "", &[BROWSER])
        .await;
    assert_error(&post, 404, "not_found", None);
}
