//! A client that stops reading is closed with 4008 ("slow consumer"), while
//! a client on the same channel that keeps reading gets every message.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use ticketflow_testkit::{TestServer, TestUser};
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

/// Messages a socket may have queued. At least a projector batch (500), so
/// the reading client is never closed by one burst when the machine is busy
/// and a batch's messages reach the hub at once.
const QUEUE_LIMIT: usize = 512;

/// 15 MB of messages: more than a stalled reader's queue (5 MB) and the
/// kernel buffers between it and the server (the server's send buffer
/// autotunes to 4 MiB; the stalled client pins its receive buffer small) can
/// hold, so the server must notice.
const COMMENTS: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_socket_is_closed_with_4008_and_a_reading_one_misses_nothing() {
    let server = TestServer::start_with_queue_limit(QUEUE_LIMIT).await;
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
    let mut slow = stalled_client(&url, server.base.trim_start_matches("http://")).await;
    let (fast, _) = connect_async(&url).await.expect("fast socket");

    // The fast client reads continuously and counts what it gets.
    let reader = tokio::spawn(async move {
        let mut fast = fast;
        let mut seqs = Vec::new();
        while seqs.len() < COMMENTS {
            let frame = tokio::time::timeout(Duration::from_secs(30), fast.next())
                .await
                .expect("the fast client hears something within 30 s");
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                // Ended or failed: fail the test rather than spin on a closed stream.
                other => panic!("the fast client's socket ended: {other:?}"),
            };
            let message: Value = serde_json::from_str(text.as_str()).expect("json");
            if message["type"] == "comment_added" {
                seqs.push(message["seq"].as_i64().expect("seq"));
            }
        }
        seqs
    });
    // 10,000-character bodies fill the stalled socket's buffers quickly.
    let body = "x".repeat(10_000);
    for _ in 0..COMMENTS {
        let reply = server
            .post(
                &format!("/api/tickets/{tid}/comments"),
                &alice.token,
                json!({ "body": body }),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 201);
    }
    let seqs = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("fast client kept up")
        .expect("reader");
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
}
