//! WebSocket subscribers: connect to a channel, then count and time every
//! message, checking that seqs arrive contiguous (nothing lost, nothing twice).

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The fields of a server message the benchmark looks at.
#[derive(Deserialize)]
pub struct Message<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: &'a str,
    pub seq: Option<i64>,
    pub data: Option<TicketData>,
}

#[derive(Deserialize)]
pub struct TicketData {
    pub ticket_id: Option<Uuid>,
    pub version: Option<i64>,
}

/// Opens a socket on `url` and returns it with the channel head it reported.
pub async fn connect(url: &str) -> anyhow::Result<(Socket, i64)> {
    // Small buffers: the load generator holds 10,000 of these.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .with_context(|| format!("connecting {}", url.split('?').next().unwrap_or(url)))?;
    let head = next_text(&mut socket, |m| {
        (m.kind == "connection_established").then_some(m.seq.unwrap_or(0))
    })
    .await?;
    Ok((socket, head))
}

/// Waits (up to 30 s) until a channel's head reaches `head`: the messages
/// of commands already accepted are stored a moment later.
pub async fn wait_for_head(url: &str, head: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, now) = connect(url).await?;
        if now >= head {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "channel head stuck at {now} < {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads until `pick` accepts a message, within 30 s.
pub async fn next_text<T>(
    socket: &mut Socket,
    mut pick: impl FnMut(&Message) -> Option<T>,
) -> anyhow::Result<T> {
    let read = async {
        while let Some(frame) = socket.next().await {
            if let Frame::Text(text) = frame.context("reading the socket")? {
                let message: Message = serde_json::from_str(text.as_str())
                    .with_context(|| format!("unexpected message {}", text.as_str()))?;
                if let Some(found) = pick(&message) {
                    return Ok(found);
                }
            }
        }
        bail!("socket closed")
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .context("no such message within 30 s")?
}

/// One ticket change as it reached a subscriber.
pub struct Delivery {
    pub ticket_id: Uuid,
    pub version: i64,
    pub at: Instant,
}

/// What one subscriber saw.
#[derive(Default)]
pub struct Tally {
    pub received: u64,
    pub duplicates: u64,
    /// Seqs skipped over (a hole), or never reached by the end.
    pub missing: u64,
    pub deliveries: Vec<Delivery>,
}

/// Reads `socket` until its seq reaches the target sent on `until` (the
/// channel's final head, once the load is over), recording each delivery.
pub async fn subscribe(mut socket: Socket, head: i64, mut until: watch::Receiver<i64>) -> Tally {
    let mut tally = Tally::default();
    let mut last = head;
    loop {
        if last >= *until.borrow() {
            break;
        }
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    let at = Instant::now();
                    let Ok(message) = serde_json::from_str::<Message>(text.as_str()) else {
                        continue;
                    };
                    let Some(seq) = message.seq else { continue };
                    if seq <= last {
                        tally.duplicates += 1;
                        continue;
                    }
                    tally.missing += (seq - last - 1) as u64;
                    last = seq;
                    tally.received += 1;
                    if let Some(TicketData { ticket_id: Some(ticket_id), version: Some(version) }) = message.data {
                        tally.deliveries.push(Delivery { ticket_id, version, at });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            changed = until.changed() => if changed.is_err() { break },
        }
    }
    // A socket that ended early still owes every seq up to the final head:
    // wait for it to be announced, or its losses would go uncounted.
    while *until.borrow() == i64::MAX && until.changed().await.is_ok() {}
    let target = *until.borrow();
    if target != i64::MAX && last < target {
        tally.missing += (target - last) as u64;
    }
    tally
}
