//! Tandem's diff engine, shared by the server (through the NIF), the Rust and
//! browser clients and the fuzzy tester, so that every party applies, inverts,
//! amends and rebases edits with exactly the same code.
//!
//! The crate is pure: no I/O, no clocks, no global state. Every type here is a
//! plain value that callers drive; the BEAM, a tokio task or a deterministic
//! simulation decide when things happen.
//!
//! Map of the crate:
//! - [`diff`]: the three diffs and their wire shape.
//! - [`value`]: attribute values (JSON held compactly).
//! - [`document`]: the document, applying diffs with server resolution and
//!   computing inverses.
//! - [`checksum`]: the order-independent document hash.
//! - [`zindex`]: validating and amending fractional `z` indices.
//! - [`limits`]: the schema limits that protect the server.
//! - [`room`]: the server's authoritative room (sequencing, retries, log).
//! - [`replica`]: the client's optimistic replica and its rebase.
//! - [`codec`]: JSON and MessagePack encodings of batches and snapshots.

pub mod checksum;
mod client_record;
pub mod codec;
pub mod diff;
pub mod document;
mod journal;
pub mod limits;
mod msgpack_objects;
pub mod replica;
pub mod room;
mod snapshot;
pub mod value;
pub mod zindex;

pub use checksum::Checksum;
pub use diff::{AttrName, Attrs, Diff, ObjectId};
pub use document::{Document, DropReason, Outcome};
pub use limits::Limits;
pub use replica::Replica;
pub use room::{Ack, Rejection, Room, ServerBatch};
pub use value::Value;

/// The protocol version this build speaks (the `protocol` field of a join).
pub const PROTOCOL_VERSION: u32 = 1;
/// The oldest protocol version this build still accepts.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Whether a peer announcing `version` can talk to this build.
pub fn protocol_supported(version: u32) -> bool {
    (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version)
}
