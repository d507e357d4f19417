//! What the client keeps of an `ok` answer to its own `project:ID` pushes
//! (`phx_join`, `diffs`, `sync`, `verify`), read straight from the frame.
//!
//! Every batch is acknowledged by such an answer, and a join's may carry the
//! whole document: going through a `serde_json::Value` tree first cost more
//! than the rest of reading the frame. The direct reader accepts only the
//! shapes whose meaning is plain (an object, the known fields well typed and
//! not repeated); anything else is read again as JSON and understood by
//! [`Accepted::from_json`], so both ways agree on every input.

use crate::frame::Envelope;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use tandem_core::room::ServerBatch;
use tandem_core::Document;

/// An accepted answer: the fields the client acts on.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Accepted {
    /// `seq`: the batch's sequence number, or the state's.
    pub seq: Option<u64>,
    /// `ok`: a `verify` that found the checksum right.
    pub ok: Option<bool>,
    pub state: State,
}

/// The state a join, sync or verify answer installs.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum State {
    #[default]
    Nothing,
    /// `snapshot`; `None` when it is not a document.
    Snapshot(Option<Document>),
    /// `batches` (none when unreadable).
    Batches(Vec<ServerBatch>),
}

impl Accepted {
    /// Reads an answer already parsed as JSON, with the rules the direct
    /// reader falls back on.
    pub fn from_json(mut response: Value) -> Accepted {
        let state = if let Some(snapshot) = response.get_mut("snapshot").map(Value::take) {
            State::Snapshot(serde_json::from_value(snapshot).ok())
        } else if let Some(batches) = response.get_mut("batches").map(Value::take) {
            State::Batches(serde_json::from_value(batches).unwrap_or_default())
        } else {
            State::Nothing
        };
        Accepted {
            seq: response.get("seq").and_then(Value::as_u64),
            ok: response.get("ok").and_then(Value::as_bool),
            state,
        }
    }
}

/// How a `project:ID` payload is read directly (see [`crate::frame::Envelope`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    Batch,
    Answer,
}

impl Want {
    /// `batch` broadcasts when `batches` says they are taken, and replies to
    /// the pushes of `answered(ref)`; everything else is read as JSON.
    pub fn of(head: &Envelope<'_>, batches: bool, answered: impl Fn(&str) -> bool) -> Option<Want> {
        match head.event {
            "batch" if batches => Some(Want::Batch),
            "phx_reply" if head.ref_.is_some_and(answered) => Some(Want::Answer),
            _ => None,
        }
    }
}

/// A payload read directly.
#[derive(Debug)]
pub(crate) enum Typed {
    Batch(ServerBatch),
    /// A reply: `Some` when its status is `ok` and its response plain;
    /// `None` when it must be read again as JSON.
    Answer(Option<Accepted>),
}

impl<'de> DeserializeSeed<'de> for Want {
    type Value = Typed;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Typed, D::Error> {
        match self {
            Want::Batch => ServerBatch::deserialize(d).map(Typed::Batch),
            Want::Answer => d.deserialize_map(ReplyVisitor).map(Typed::Answer),
        }
    }
}

/// `{"status": S, "response": R}` in any order, other keys ignored.
struct ReplyVisitor;

impl<'de> Visitor<'de> for ReplyVisitor {
    type Value = Option<Accepted>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reply payload")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut ok, mut response) = (None, None);
        while let Some(Key(key)) = map.next_key()? {
            match key {
                "status" if ok.is_none() => ok = Some(map.next_value::<Key>()?.0 == "ok"),
                "response" if response.is_none() => {
                    response = Some(map.next_value_seed(ResponseSeed)?);
                }
                "status" | "response" => return Err(de::Error::custom("repeated key")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (ok, response) {
            (Some(true), Some(accepted)) => Ok(accepted),
            (Some(false), Some(_)) => Ok(None),
            _ => Err(de::Error::custom("not a reply")),
        }
    }
}

/// The response of an `ok` reply: `None` when it is not plain.
struct ResponseSeed;

impl<'de> DeserializeSeed<'de> for ResponseSeed {
    type Value = Option<Accepted>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed {
    type Value = Option<Accepted>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a response")
    }

    /// Not an object (the status may still say `error`): read as JSON.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut accepted = Accepted::default();
        let (mut seq, mut ok) = (false, false);
        let (mut snapshot, mut batches) = (None, None);
        while let Some(Key(key)) = map.next_key()? {
            let repeated = match key {
                "seq" => std::mem::replace(&mut seq, true),
                "ok" => std::mem::replace(&mut ok, true),
                "snapshot" => snapshot.is_some(),
                "batches" => batches.is_some(),
                _ => false,
            };
            if repeated {
                return Err(de::Error::custom("repeated key"));
            }
            // A field of another type than the one understood fails the
            // whole reading, which then goes through JSON.
            match key {
                "seq" => accepted.seq = map.next_value::<Option<u64>>()?,
                "ok" => accepted.ok = map.next_value::<Option<bool>>()?,
                "snapshot" => snapshot = Some(map.next_value::<Document>()?),
                "batches" => batches = Some(map.next_value::<Vec<ServerBatch>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        accepted.state = match (snapshot, batches) {
            (Some(document), _) => State::Snapshot(Some(document)),
            (None, Some(batches)) => State::Batches(batches),
            (None, None) => State::Nothing,
        };
        Ok(Some(accepted))
    }
}

/// A key, or the status, among the few this module knows (`""` for any
/// other string), read without copying it.
struct Key(&'static str);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        const KNOWN: [&str; 7] = ["status", "response", "ok", "seq", "snapshot", "batches", ""];
        Ok(Key(KNOWN.into_iter().find(|k| *k == v).unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::{Accepted, State, Typed, Want};
    use crate::frame::{Incoming, Payload};
    use serde_json::{json, Value};

    /// The direct reading of a reply payload: `None` when it falls back to JSON.
    fn direct(payload: &Value) -> Option<Option<Accepted>> {
        let text = json!([null, "1", "project:p", "phx_reply", payload]).to_string();
        let incoming = Incoming::<Typed, _>::read(&text, |_| Some(Want::Answer))?;
        match incoming.payload {
            Payload::Typed(Typed::Answer(answer)) => Some(answer),
            _ => unreachable!("asked for an answer"),
        }
    }

    #[test]
    fn a_direct_reading_agrees_with_json_or_leaves_the_reply_to_it() {
        let batch = json!({"seq": 3, "client_id": "c", "batch_id": 1, "user_id": "u",
            "diffs": [], "checksum": "0000000000000000"});
        let plain = [
            json!({"seq": 7, "checksum": "0000000000000000", "amended": [], "dropped": []}),
            json!({"ok": true}),
            json!({"ok": false, "seq": 2, "snapshot": {"a": {"name": "x"}}}),
            json!({"seq": 3, "batches": [batch]}),
            json!({"seq": null}),
            json!({}),
        ];
        for response in plain {
            let payload = json!({"response": response, "status": "ok"});
            let read = direct(&payload).expect("plain").expect("ok");
            assert_eq!(read, Accepted::from_json(response));
        }
        let snapshot = direct(&json!({"status": "ok", "response": {"snapshot": {}}}));
        assert!(matches!(
            snapshot,
            Some(Some(Accepted {
                state: State::Snapshot(Some(_)),
                ..
            }))
        ));
        // Left to JSON: refusals, other shapes, odd types, repeated keys.
        let not_plain = [
            json!({"status": "error", "response": {"reason": "unavailable"}}),
            json!({"status": "ok", "response": [1, true]}),
            json!({"status": "ok", "response": "x"}),
            json!({"status": "ok", "response": {"seq": -1}}),
            json!({"status": "ok", "response": {"seq": "1"}}),
            json!({"status": "ok", "response": {"snapshot": null}}),
            json!({"status": "ok", "response": {"batches": [1]}}),
            json!({"status": "ok"}),
            json!({"status": 1, "response": {}}),
        ];
        for payload in not_plain {
            assert!(matches!(direct(&payload), None | Some(None)), "{payload}");
        }
        let text =
            r#"[null,"1","project:p","phx_reply",{"status":"ok","response":{"seq":1,"seq":2}}]"#;
        assert!(Incoming::<Typed, _>::read(text, |_| Some(Want::Answer)).is_none());
    }
}
