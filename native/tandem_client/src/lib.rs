//! A Tandem client as a pure state machine, in the style of quinn-proto:
//! the embedder feeds it inputs ([`Client::handle_connected`],
//! [`Client::handle_frame`], [`Client::handle_timeout`], app commands) with
//! the current time, and polls its outputs ([`Client::poll_transmit`],
//! [`Client::poll_timeout`], [`Client::poll_event`],
//! [`Client::poll_connect`]). It never does I/O, never reads a clock and
//! spawns nothing, so the same code runs in a phone app, a browser, a tokio
//! driver and the deterministic fuzzer.
//!
//! - [`frame`]: Phoenix V2 JSON frames.
//! - [`backoff`]: reconnect delays, capped exponential with jitter.
//! - [`client`]: the socket (heartbeats, reconnects, refs, push timeouts)
//!   and the `project:ID` sync engine on top of `tandem_core::Replica`.

mod answer;
pub mod backoff;
pub mod client;
pub mod direct;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod frame;
mod outstanding;
pub mod presence;
pub mod write;

pub use client::{Client, Config, Event, Stats, Vsn};
pub use frame::{BinaryFrame, Frame};
pub use presence::{Presence, PresenceChange};

/// Milliseconds on the embedder's monotonic clock.
pub type Millis = u64;
