//! Phoenix V2 JSON frames: `[join_ref, ref, topic, event, payload]`.
//!
//! Frames are written straight from any serializable payload, and read in
//! one pass that parses the payload straight into the reader's type when the
//! envelope (topic, event, ref) calls for it ([`Incoming`]), so that a
//! `batch` of diffs or the answer to a push never goes through a
//! `serde_json::Value` tree: that detour was the largest cost of a busy
//! client. The envelope's strings stay borrowed from the text while only the
//! payload is wanted.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// One Phoenix message.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub ref_: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// The envelope of a frame: written before its payload (anything
/// serializable, borrowed), and read before it, to choose how to read it.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    pub join_ref: Option<&'a str>,
    pub ref_: Option<&'a str>,
    pub topic: &'a str,
    pub event: &'a str,
}

impl Envelope<'_> {
    /// The V2 JSON text of a frame with this envelope and `payload`.
    pub fn encode(&self, payload: &impl Serialize) -> String {
        let parts = (self.join_ref, self.ref_, self.topic, self.event, payload);
        serde_json::to_string(&parts).expect("a frame always serializes")
    }

    /// The V1 JSON text of a frame with this envelope and `payload`.
    pub fn encode_v1(&self, payload: &impl Serialize) -> String {
        #[derive(Serialize)]
        struct V1<'a, P> {
            topic: &'a str,
            event: &'a str,
            payload: &'a P,
            #[serde(rename = "ref")]
            ref_: Option<&'a str>,
            join_ref: Option<&'a str>,
        }
        let frame = V1 {
            topic: self.topic,
            event: self.event,
            payload,
            ref_: self.ref_,
            join_ref: self.join_ref,
        };
        serde_json::to_string(&frame).expect("a frame always serializes")
    }
}

/// A frame's payload as read: in the type the reader asked for, or JSON.
#[derive(Debug, PartialEq)]
pub enum Payload<T> {
    Typed(T),
    Json(Value),
}

/// A V2 frame as read, its payload typed when the reader wanted it so. Its
/// strings are owned, or borrowed from the frame's text ([`Incoming::read`]).
#[derive(Debug, PartialEq)]
pub struct Incoming<T, S = String> {
    pub join_ref: Option<S>,
    pub ref_: Option<S>,
    pub topic: S,
    pub event: S,
    pub payload: Payload<T>,
}

impl<T: DeserializeOwned> Incoming<T> {
    /// Parses a V2 text frame in one pass, reading the payload as `T` when
    /// `typed(topic, event)` says so (the envelope comes before the payload)
    /// and as JSON otherwise; `None` when it is not a V2 frame or the payload
    /// does not fit `T`.
    pub fn parse(text: &str, typed: impl Fn(&str, &str) -> bool) -> Option<Incoming<T>> {
        let seed = |head: &Envelope<'_>| typed(head.topic, head.event).then_some(PhantomData);
        Incoming::read(text, seed).map(Incoming::into_owned)
    }
}

impl<'t, T> Incoming<T, Cow<'t, str>> {
    /// As [`Incoming::parse`], the envelope choosing how the payload is
    /// read: with the seed `seed` returns (into `T`), as JSON when none. The
    /// envelope's strings are borrowed from `text` unless they hold escapes:
    /// most frames are read for their payload alone.
    pub fn read<S>(text: &'t str, seed: impl Fn(&Envelope<'_>) -> Option<S>) -> Option<Self>
    where
        S: for<'de> DeserializeSeed<'de, Value = T>,
    {
        let mut reader = serde_json::Deserializer::from_str(text);
        let incoming = IncomingSeed { seed }.deserialize(&mut reader).ok()?;
        reader.end().ok()?;
        Some(incoming)
    }

    pub fn into_owned(self) -> Incoming<T> {
        Incoming {
            join_ref: self.join_ref.map(Cow::into_owned),
            ref_: self.ref_.map(Cow::into_owned),
            topic: self.topic.into_owned(),
            event: self.event.into_owned(),
            payload: self.payload,
        }
    }
}

impl<T> Incoming<T> {
    /// The frame when its payload is JSON; the typed payload otherwise.
    pub fn into_frame_or_typed(self) -> Result<Frame, T> {
        match self.payload {
            Payload::Typed(typed) => Err(typed),
            Payload::Json(payload) => Ok(Frame {
                join_ref: self.join_ref,
                ref_: self.ref_,
                topic: self.topic,
                event: self.event,
                payload,
            }),
        }
    }
}

/// A string of the frame's text, borrowed unless it holds escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

struct IncomingSeed<F> {
    seed: F,
}

impl<'de, F, S> DeserializeSeed<'de> for IncomingSeed<F>
where
    F: Fn(&Envelope<'_>) -> Option<S>,
    S: for<'a> DeserializeSeed<'a>,
{
    type Value = Incoming<<S as DeserializeSeed<'de>>::Value, Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, S> Visitor<'de> for IncomingSeed<F>
where
    F: Fn(&Envelope<'_>) -> Option<S>,
    S: for<'a> DeserializeSeed<'a>,
{
    type Value = Incoming<<S as DeserializeSeed<'de>>::Value, Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("[join_ref, ref, topic, event, payload]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = |n| de::Error::invalid_length(n, &"five elements");
        let join_ref: Option<Text> = seq.next_element()?.ok_or_else(|| missing(0))?;
        let ref_: Option<Text> = seq.next_element()?.ok_or_else(|| missing(1))?;
        let Text(topic) = seq.next_element()?.ok_or_else(|| missing(2))?;
        let Text(event) = seq.next_element()?.ok_or_else(|| missing(3))?;
        let (join_ref, ref_) = (join_ref.map(|t| t.0), ref_.map(|t| t.0));
        let head = Envelope {
            join_ref: join_ref.as_deref(),
            ref_: ref_.as_deref(),
            topic: &topic,
            event: &event,
        };
        let payload = match (self.seed)(&head) {
            Some(seed) => Payload::Typed(seq.next_element_seed(seed)?.ok_or_else(|| missing(4))?),
            None => Payload::Json(seq.next_element()?.ok_or_else(|| missing(4))?),
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(6, &"five elements"));
        }
        Ok(Incoming {
            join_ref,
            ref_,
            topic,
            event,
            payload,
        })
    }
}

impl Frame {
    pub(crate) fn envelope(&self) -> Envelope<'_> {
        Envelope {
            join_ref: self.join_ref.as_deref(),
            ref_: self.ref_.as_deref(),
            topic: &self.topic,
            event: &self.event,
        }
    }

    /// The JSON text of the frame.
    pub fn encode(&self) -> String {
        self.envelope().encode(&self.payload)
    }

    /// Parses a text frame; `None` when it is not a V2 frame.
    pub fn decode(text: &str) -> Option<Frame> {
        // Nothing is asked typed, so the payload is always JSON.
        Incoming::<Value>::parse(text, |_, _| false)?
            .into_frame_or_typed()
            .ok()
    }

    /// For `phx_reply`: the status and the response.
    pub fn reply(&self) -> Option<(&str, &Value)> {
        if self.event != "phx_reply" {
            return None;
        }
        Some((
            self.payload.get("status")?.as_str()?,
            self.payload.get("response")?,
        ))
    }
}

/// A V2 binary frame: the same envelope with raw bytes as payload. Clients
/// send kind 0 (push); servers send 0 (push), 1 (reply: `event` is the
/// status) and 2 (broadcast).
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryFrame {
    pub kind: u8,
    pub join_ref: Option<String>,
    pub ref_: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Vec<u8>,
}

fn short(field: &Option<String>) -> &[u8] {
    field.as_deref().unwrap_or("").as_bytes()
}

impl BinaryFrame {
    /// Encodes a client push (kind 0). Fields are at most 255 bytes each.
    pub fn encode_push(&self) -> Option<Vec<u8>> {
        let (jr, r, t, e) = (
            short(&self.join_ref),
            short(&self.ref_),
            self.topic.as_bytes(),
            self.event.as_bytes(),
        );
        let sizes = [jr.len(), r.len(), t.len(), e.len()].map(u8::try_from);
        let [a, b, c, d] = sizes;
        let mut out = vec![0, a.ok()?, b.ok()?, c.ok()?, d.ok()?];
        for part in [jr, r, t, e, &self.payload] {
            out.extend_from_slice(part);
        }
        Some(out)
    }

    /// Decodes a server frame of kind 0, 1 or 2; `None` when malformed.
    pub fn decode(bytes: &[u8]) -> Option<BinaryFrame> {
        let (&kind, rest) = bytes.split_first()?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        let take = |rest: &[u8], sizes: &[usize]| -> Option<(Vec<String>, Vec<u8>)> {
            let mut fields = Vec::new();
            let mut at = 0;
            for &n in sizes {
                fields.push(text(rest.get(at..at + n)?)?);
                at += n;
            }
            Some((fields, rest.get(at..)?.to_vec()))
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        match kind {
            0 => {
                let (head, rest) = rest.split_at_checked(3)?;
                let (mut f, payload) =
                    take(rest, &[head[0].into(), head[1].into(), head[2].into()])?;
                let (event, topic, join_ref) = (f.pop()?, f.pop()?, f.pop()?);
                Some(BinaryFrame {
                    kind,
                    join_ref: non_empty(join_ref),
                    ref_: None,
                    topic,
                    event,
                    payload,
                })
            }
            1 => {
                let (head, rest) = rest.split_at_checked(4)?;
                let sizes = [
                    head[0].into(),
                    head[1].into(),
                    head[2].into(),
                    head[3].into(),
                ];
                let (mut f, payload) = take(rest, &sizes)?;
                let (event, topic, ref_, join_ref) = (f.pop()?, f.pop()?, f.pop()?, f.pop()?);
                Some(BinaryFrame {
                    kind,
                    join_ref: non_empty(join_ref),
                    ref_: non_empty(ref_),
                    topic,
                    event,
                    payload,
                })
            }
            2 => {
                let (head, rest) = rest.split_at_checked(2)?;
                let (mut f, payload) = take(rest, &[head[0].into(), head[1].into()])?;
                let (event, topic) = (f.pop()?, f.pop()?);
                Some(BinaryFrame {
                    kind,
                    join_ref: None,
                    ref_: None,
                    topic,
                    event,
                    payload,
                })
            }
            _ => None,
        }
    }
}

/// V1 JSON frames: `{"topic","event","payload","ref","join_ref"}`.
impl Frame {
    pub fn encode_v1(&self) -> String {
        self.envelope().encode_v1(&self.payload)
    }

    pub fn decode_v1(text: &str) -> Option<Frame> {
        let v: Value = serde_json::from_str(text).ok()?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Frame {
            join_ref: s("join_ref"),
            ref_: s("ref"),
            topic: s("topic")?,
            event: s("event")?,
            payload: v.get("payload").cloned().unwrap_or(Value::Null),
        })
    }
}
