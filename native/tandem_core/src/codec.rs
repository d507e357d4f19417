//! Encodings: JSON for the JSON serializers, MessagePack for binary frames
//! and for snapshots at rest. Decoders are the boundary where untrusted bytes
//! come in, so they bound nesting depth (a stack overflow inside the NIF
//! would kill the whole VM) and never panic.

use serde::{Deserialize, Serialize};

/// Deepest nesting a decoder accepts. Values are limited further (and more
/// tightly) by [`Limits::max_value_depth`](crate::Limits::max_value_depth).
pub const MAX_DECODE_DEPTH: usize = 64;

/// A decoding failure, with a message fit to show the sender.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// The two encodings a payload can arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    MsgPack,
}

/// Decodes `bytes` in `format`.
pub fn decode<'a, T: Deserialize<'a>>(format: Format, bytes: &'a [u8]) -> Result<T, DecodeError> {
    match format {
        Format::Json => from_json(bytes),
        Format::MsgPack => from_msgpack(bytes),
    }
}

/// Decodes JSON. serde_json refuses nesting deeper than 128 levels by
/// itself, which is shallow enough for a dirty scheduler's stack.
pub fn from_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))
}

/// Decodes MessagePack with a bounded depth.
pub fn from_msgpack<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DECODE_DEPTH);
    T::deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))
}

/// Encodes as compact JSON.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("our types always encode as JSON")
}

/// Encodes as MessagePack with field names (maps, as other languages expect).
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("our types always encode as MessagePack")
}
