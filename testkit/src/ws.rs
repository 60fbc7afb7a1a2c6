//! WebSocket clients for the tests: connect, read JSON with a deadline,
//! expect a refusal or a close code.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn connect(url: &str) -> Socket {
    connect_async(url).await.expect("websocket handshake").0
}

pub async fn refused(url: &str) -> u16 {
    match connect_async(url).await {
        Err(WsError::Http(response)) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
    }
}

/// The next JSON text message (Ping/Pong frames skipped), within [`WAIT`].
pub async fn next_json(socket: &mut Socket) -> Value {
    next_json_within(socket, WAIT).await
}

pub async fn next_json_within(socket: &mut Socket, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("no message in time");
        match frame.expect("socket open").expect("frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The close code the server ends with.
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("no close in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => return 1005,
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before close: {e}"),
        }
    }
}

/// Asserts that nothing is pending for `socket`: a ping's pong comes next.
pub async fn nothing_more(socket: &mut Socket, what: &str) {
    let stamp = uuid::Uuid::new_v4().to_string();
    send_json(socket, json!({ "type": "ping", "timestamp": stamp })).await;
    assert_eq!(
        next_json(socket).await,
        json!({ "type": "pong", "timestamp": stamp }),
        "{what}"
    );
}

pub async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}
