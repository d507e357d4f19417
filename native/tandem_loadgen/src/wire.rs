//! The few pieces of the Phoenix V2 JSON protocol a load generator needs:
//! connect, push a message under a fresh ref, join a topic, and read what
//! comes back, parsing only the fields the scenarios look at (the status of
//! a reply, the `client_id`/`batch_id` of a broadcast).

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One WebSocket connection speaking `vsn=2.0.0`.
pub struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
}

/// A frame from the server, with the moment it was read (before parsing).
pub struct Incoming {
    pub at: Instant,
    pub reference: Option<u64>,
    pub event: String,
    pub payload: Payload,
}

/// The payload fields the scenarios use; everything else is skipped.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Payload {
    pub status: Option<String>,
    pub client_id: Option<String>,
    pub batch_id: Option<u64>,
}

#[derive(Deserialize)]
struct Frame(
    serde::de::IgnoredAny,
    Option<String>,
    serde::de::IgnoredAny,
    String,
    Payload,
);

impl Conn {
    /// Opens `url` (which carries `vsn` and `token`).
    pub async fn connect(url: &str) -> Result<Conn, Error> {
        // Small buffers: tungstenite's default 128 KiB read buffer per
        // connection would make 20,000 connections cost 2.5 GB here.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        Ok(Conn { ws, next_ref: 0 })
    }

    /// Sends `[join_ref, ref, topic, event, payload]` and returns the ref.
    /// `payload` is JSON text.
    pub async fn push(
        &mut self,
        join_ref: Option<u64>,
        topic: &str,
        event: &str,
        payload: &str,
    ) -> Result<u64, Error> {
        self.next_ref += 1;
        let reference = self.next_ref;
        let join_ref = join_ref.map_or("null".to_string(), |r| format!("\"{r}\""));
        let text = format!("[{join_ref},\"{reference}\",\"{topic}\",\"{event}\",{payload}]");
        self.ws.send(Message::text(text)).await?;
        Ok(reference)
    }

    /// Joins `topic` and waits for the reply; returns the join ref.
    pub async fn join(&mut self, topic: &str, payload: &str) -> Result<u64, Error> {
        // A join carries its own ref as join_ref (as phoenix.js does); later
        // messages on the topic must carry it too or the server drops them.
        let reference = self.next_ref + 1;
        self.push(Some(reference), topic, "phx_join", payload)
            .await?;
        loop {
            let incoming = self.next().await?;
            if incoming.reference == Some(reference) {
                return match incoming.payload.status.as_deref() {
                    Some("ok") => Ok(reference),
                    other => Err(format!("join {topic} refused: {other:?}").into()),
                };
            }
        }
    }

    /// The next text frame from the server (pings are answered by tungstenite).
    pub async fn next(&mut self) -> Result<Incoming, Error> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let at = Instant::now();
                    let Frame(_, reference, _, event, payload) = serde_json::from_str(&text)?;
                    let reference = reference.and_then(|r| r.parse().ok());
                    return Ok(Incoming {
                        at,
                        reference,
                        event,
                        payload,
                    });
                }
                Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
