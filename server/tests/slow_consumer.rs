//! A client that stops reading is closed with 4008 ("slow consumer"), and
//! counted so in `/metrics`, while a client on the same channel that keeps
//! reading gets every message.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use ticketflow_realtime::Timing;
use ticketflow_testkit::scrape::Scrape;
use ticketflow_testkit::{Config, TestServer, TestUser};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async, connect_async, WebSocketStream};

/// A client whose receive buffer is pinned small (no autotuning to 32 MiB),
/// so a few megabytes unread are enough to stall the server's writes.
async fn stalled_client(url: &str, host: &str) -> WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(8 * 1024)
        .expect("small receive buffer");
    let addr = host.parse().expect("server address");
    let stream = socket.connect(addr).await.expect("connect");
    let (ws, _) = client_async(url, stream).await.expect("slow socket");
    ws
}

/// Messages a socket may have queued: small, so the stalled socket
/// overflows soon. The reading socket never holds more than one (each
/// comment is posted after the previous one arrived), so it cannot overflow
/// however busy the machine is.
const QUEUE_LIMIT: usize = 8;

/// 6 MB of messages: more than the kernel buffers between the server and a
/// stalled reader can hold (the server's send buffer autotunes to 4 MiB; the
/// stalled client pins its receive buffer small), so the server must notice.
const COMMENTS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_socket_is_closed_with_4008_and_a_reading_one_misses_nothing() {
    // No keepalive during the test, however slow the machine: a silent
    // client would be dropped as idle, and the stalled one, answering a
    // backlogged server Ping after the server closed, would draw a TCP reset
    // that destroys the close frame it has not read yet.
    let timing = Timing {
        ping_every: Duration::from_secs(600),
        idle_limit: Duration::from_secs(600),
    };
    let server = TestServer::start_with(Config {
        queue_limit: QUEUE_LIMIT,
        timing,
        ..Config::default()
    })
    .await;
    let alice: TestUser = server.user("alice").await;
    let project = server.project(&alice, "SLOW").await;
    let pid = project["id"].as_str().expect("id").to_string();
    let ticket = server
        .ticket(&alice, &pid, json!({ "title": "big comments" }))
        .await;
    let tid = ticket.body["id"].as_str().expect("id").to_string();
    server
        .get(&format!("/api/tickets/{tid}"), &alice.token)
        .await;
    let url = server.ws_url(&format!(
        "/ws/projects/{pid}/tickets/?token={}",
        alice.token
    ));
    // Alone in this test process: nobody else moves the figure.
    let slow_closes = |scrape: &Scrape| scrape.sum(SLOW_CLOSES, &[("code", "4008")]);
    let closed_before = slow_closes(&server.scrape().await);
    let mut slow = stalled_client(&url, server.base.trim_start_matches("http://")).await;
    let (mut fast, _) = connect_async(&url).await.expect("fast socket");

    // 10,000-character bodies fill the stalled socket's buffers quickly.
    let body = "x".repeat(10_000);
    let mut seqs = Vec::new();
    for _ in 0..COMMENTS {
        let reply = server
            .post(
                &format!("/api/tickets/{tid}/comments"),
                &alice.token,
                json!({ "body": body }),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 201);
        seqs.push(next_comment_seq(&mut fast).await);
    }
    assert_eq!(seqs, (2..=COMMENTS as i64 + 1).collect::<Vec<_>>());

    // Now the stalled client reads: its backlog, then the 4008 close.
    let code = loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), slow.next())
            .await
            .expect("the slow socket is closed in time");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => break u16::from(close.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 4008);
    // Counted before the close frame went out.
    let closed = slow_closes(&server.scrape().await) - closed_before;
    assert_eq!(closed, 1.0, "{SLOW_CLOSES}{{code=\"4008\"}}");
}

/// Sockets the server closed, by code.
const SLOW_CLOSES: &str = "ticketflow_ws_closes_total";

/// The seq of the next `comment_added` the reading client gets.
async fn next_comment_seq<S>(socket: &mut WebSocketStream<S>) -> i64
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the reading client hears something within 30 s");
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            // Ended or failed: fail the test rather than spin on a closed stream.
            other => panic!("the reading client's socket ended: {other:?}"),
        };
        let message: Value = serde_json::from_str(text.as_str()).expect("json");
        if message["type"] == "comment_added" {
            return message["seq"].as_i64().expect("seq");
        }
    }
}
