//! Runs a [`Client`] over a real WebSocket with tokio and tungstenite: the
//! only place where time is read and bytes move. The app shares the client
//! through [`Shared`] (a mutex held only for one call) and calls
//! [`Shared::wake`] after an edit so that its frames go out at once.

use crate::client::Client;
use crate::Millis;
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// A seed for [`crate::Config::seed`] from the operating system's entropy
/// (through std's randomly keyed hasher), so that clients dropped together
/// draw different reconnect delays.
pub fn entropy_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A client shared between its driver task and the app.
#[derive(Clone)]
pub struct Shared {
    client: Arc<Mutex<Client>>,
    notify: Arc<Notify>,
    epoch: Instant,
}

impl Shared {
    pub fn new(client: Client) -> Shared {
        Shared {
            client: Arc::new(Mutex::new(client)),
            notify: Arc::new(Notify::new()),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since this driver's epoch: the client's clock.
    pub fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    /// The client, for one call; never hold it across an await.
    pub fn lock(&self) -> MutexGuard<'_, Client> {
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the driver the app changed something (frames may be waiting).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Drives the client over `url` (with `?vsn=2.0.0&token=...`) until
    /// `stop` is notified.
    pub async fn run(self, url: String, stop: Arc<Notify>) {
        let mut ws = None;
        loop {
            let now = self.now();
            let (connect, close, frames, deadline) = {
                let mut c = self.lock();
                c.handle_timeout(now);
                let connect = c.poll_connect();
                let close = c.poll_close();
                let frames: Vec<String> = std::iter::from_fn(|| c.poll_transmit()).collect();
                (connect, close, frames, c.poll_timeout())
            };
            if close {
                ws = None;
            }
            if connect {
                // A black-holed host would hold the attempt for the OS's
                // TCP timeout; give up after one push timeout instead.
                let limit = Duration::from_millis(self.lock().config().push_timeout_ms);
                let attempt = tokio_tungstenite::connect_async(url.as_str());
                let opened = tokio::select! {
                    opened = tokio::time::timeout(limit, attempt) => opened,
                    _ = stop.notified() => return,
                };
                match opened.map_err(|_| ()).and_then(|r| r.map_err(|_| ())) {
                    Ok((stream, _)) => {
                        ws = Some(stream);
                        self.lock().handle_connected(self.now());
                    }
                    Err(_) => self.lock().handle_disconnected(self.now()),
                }
                continue;
            }
            if let Some(stream) = ws.as_mut() {
                let mut failed = false;
                for frame in frames {
                    if stream.send(Message::text(frame)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed {
                    ws = None;
                    self.lock().handle_disconnected(self.now());
                    continue;
                }
            }
            let wait = deadline.map_or(Duration::from_secs(3600), |d| {
                Duration::from_millis(d.saturating_sub(self.now()))
            });
            match ws.as_mut() {
                Some(stream) => tokio::select! {
                    message = stream.next() => match message {
                        Some(Ok(Message::Text(text))) => self.lock().handle_frame(self.now(), &text),
                        Some(Ok(Message::Binary(bytes))) => self.lock().handle_binary(self.now(), &bytes),
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            ws = None;
                            self.lock().handle_disconnected(self.now());
                        }
                    },
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.notify.notified() => {}
                    _ = stop.notified() => return,
                },
                None => tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.notify.notified() => {}
                    _ = stop.notified() => return,
                },
            }
        }
    }
}
