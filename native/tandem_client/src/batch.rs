//! `batch` broadcasts on `project:ID`, read straight from the frame's text.
//!
//! Every member reads every batch, so this is the frame a busy client reads
//! most, and serde_json's general reader spent more instructions walking its
//! tokens than the client spent rebasing over the batch. The server always
//! writes a batch the same way (compact, its fields and each diff's in
//! declaration order, attributes sorted), and that one layout is read here
//! by hand. Anything else (whitespace, escapes, other orders, floats or
//! negative numbers, unknown fields) is refused, and the caller reads the
//! frame with serde as before: a frame accepted here means what serde makes
//! of it, which the tests check.

use serde_json::{Map, Number, Value};
use tandem_core::room::ServerBatch;
use tandem_core::{Attrs, Checksum, Diff};

/// Values nested deeper than this go to serde (whose own limit is 128).
const MAX_DEPTH: usize = 32;

/// The batch of a V2 frame `[null,null,TOPIC,"batch",{...}]` for `topic`;
/// `None` for any other frame, or a batch not laid out as the server
/// writes it.
pub(crate) fn read(text: &str, topic: &str) -> Option<ServerBatch> {
    let mut c = Cursor { text, at: 0 };
    c.eat("[null,null,\"")?;
    c.eat(topic)?;
    c.eat("\",\"batch\",{\"seq\":")?;
    let seq = c.number()?;
    c.eat(",\"client_id\":")?;
    let client_id = c.string()?.to_owned();
    c.eat(",\"batch_id\":")?;
    let batch_id = c.number()?;
    c.eat(",\"user_id\":")?;
    let user_id = c.string()?.to_owned();
    c.eat(",\"diffs\":")?;
    let diffs = c.diffs()?;
    c.eat(",\"checksum\":")?;
    let checksum = Checksum::parse(c.string()?)?;
    c.eat("}]")?;
    (c.at == text.len()).then_some(ServerBatch {
        seq,
        client_id,
        batch_id,
        user_id,
        diffs,
        checksum,
    })
}

struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Steps over `literal`, which must come next.
    fn eat(&mut self, literal: &str) -> Option<()> {
        let rest = self.text.as_bytes().get(self.at..)?;
        rest.starts_with(literal.as_bytes()).then(|| {
            self.at += literal.len();
        })
    }

    /// A string without escapes (a control character is not JSON either).
    fn string(&mut self) -> Option<&'t str> {
        self.eat("\"")?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        // Both ends are ASCII quotes, so the slice is on char boundaries.
        self.text.get(start..self.at - 1)
    }

    /// A non-negative integer that fits a u64, without a leading zero
    /// (JSON has none); a fraction or exponent after it fails the caller's
    /// next step.
    fn number(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(digit) = bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        (digits == 1 || (digits > 1 && bytes[start] != b'0')).then_some(n)
    }

    /// The items of a list whose opening bracket was just read, up to
    /// `close`: none, or each read by `item`, separated by commas.
    fn items(&mut self, close: &str, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            item(self)?;
            if self.eat(close).is_some() {
                return Some(());
            }
            self.eat(",")?;
        }
    }

    fn diffs(&mut self) -> Option<Vec<Diff>> {
        self.eat("[")?;
        let mut diffs = Vec::new();
        self.items("]", |c| c.diff().map(|d| diffs.push(d)))?;
        Some(diffs)
    }

    fn diff(&mut self) -> Option<Diff> {
        self.eat("{\"op\":\"")?;
        let diff = if self.eat("add\",\"id\":").is_some() {
            let id = self.string()?.to_owned();
            self.eat(",\"attrs\":")?;
            Diff::Add {
                id,
                attrs: self.attrs()?,
            }
        } else if self.eat("remove\",\"id\":").is_some() {
            Diff::Remove {
                id: self.string()?.to_owned(),
            }
        } else {
            self.eat("set\",\"id\":")?;
            let id = self.string()?.to_owned();
            self.eat(",\"key\":")?;
            let key = self.string()?.to_owned();
            let value = match self.eat(",\"value\":") {
                // `null` is no value, as when it is left out.
                Some(()) => Some(self.value(0)?).filter(|v| !v.is_null()),
                None => None,
            };
            Diff::Set { id, key, value }
        };
        self.eat("}")?;
        Some(diff)
    }

    /// Attributes in strictly increasing order, as the server sorts them.
    /// None are written `[]`: with no first name to show that names are
    /// strings, the map is written as a list of pairs.
    fn attrs(&mut self) -> Option<Attrs> {
        let mut attrs = Attrs::new();
        if self.eat("[]").is_some() {
            return Some(attrs);
        }
        self.eat("{")?;
        self.items("}", |c| {
            let name = c.string()?;
            c.eat(":")?;
            let value = c.value(0)?;
            attrs.try_append(name.into(), value).is_none().then_some(())
        })?;
        Some(attrs)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.to_owned())),
            b'0'..=b'9' => Some(Value::Number(Number::from(self.number()?))),
            b'n' => self.eat("null").map(|()| Value::Null),
            b't' => self.eat("true").map(|()| Value::Bool(true)),
            b'f' => self.eat("false").map(|()| Value::Bool(false)),
            b'[' => {
                self.eat("[")?;
                let mut items = Vec::new();
                self.items("]", |c| c.value(depth + 1).map(|v| items.push(v)))?;
                Some(Value::Array(items))
            }
            b'{' => {
                self.eat("{")?;
                let mut map = Map::new();
                self.items("}", |c| {
                    let key = c.string()?.to_owned();
                    c.eat(":")?;
                    // A repeated key (serde keeps the last) is left to serde.
                    map.insert(key, c.value(depth + 1)?).is_none().then_some(())
                })?;
                Some(Value::Object(map))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read;
    use crate::answer::{Typed, Want};
    use crate::frame::{Envelope, Incoming, Payload};
    use serde_json::{json, Value};
    use tandem_core::room::ServerBatch;
    use tandem_core::{Attrs, Checksum, Diff};

    const TOPIC: &str = "project:p";

    /// The batch as serde reads it for the client (`None` when it does not).
    fn by_serde(text: &str) -> Option<ServerBatch> {
        let want = |head: &Envelope<'_>| {
            (head.topic == TOPIC && head.event == "batch").then_some(Want::Batch)
        };
        match Incoming::<Typed, _>::read(text, want)?.payload {
            Payload::Typed(Typed::Batch(batch)) => Some(batch),
            _ => None,
        }
    }

    fn frame(batch: &ServerBatch) -> String {
        let envelope = Envelope {
            join_ref: None,
            ref_: None,
            topic: TOPIC,
            event: "batch",
        };
        envelope.encode(batch)
    }

    fn batch(diffs: Vec<Diff>) -> ServerBatch {
        ServerBatch {
            seq: 12,
            client_id: "client-1-0".into(),
            batch_id: u64::MAX,
            user_id: "user-é".into(),
            diffs,
            checksum: Checksum(0x0123_4567_89ab_cdef),
        }
    }

    fn attrs(pairs: &[(&str, Value)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn samples() -> Vec<ServerBatch> {
        let add = |id: &str, a: Attrs| Diff::Add {
            id: id.into(),
            attrs: a,
        };
        vec![
            batch(vec![]),
            batch(vec![add(
                "o1",
                attrs(&[
                    ("color", json!({"g": 0, "r": 255})),
                    ("name", json!("layer ✓")),
                    ("parent", json!("g1")),
                    ("z", json!("80")),
                ]),
            )]),
            batch(vec![
                add("a", Attrs::new()),
                Diff::Remove { id: "b".into() },
                Diff::set("c", "x", Some(json!(0))),
                Diff::set("c", "y", None),
                Diff::set("c", "u", Some(Value::Null)),
                Diff::set("c", "w", Some(json!([1, [true, false, null], {}, []]))),
                Diff::set("c", "v", Some(json!({"a": {"b": {"c": u64::MAX}}}))),
            ]),
        ]
    }

    #[test]
    fn frames_as_the_server_writes_them_are_read_as_serde_reads_them() {
        for batch in samples() {
            let text = frame(&batch);
            assert!(read(&text, TOPIC).is_some(), "{text}");
            assert_eq!(read(&text, TOPIC), by_serde(&text));
        }
    }

    #[test]
    fn other_layouts_are_left_to_serde() {
        let text = frame(&samples()[1]);
        let left = [
            text.replace(",\"diffs\"", ", \"diffs\""),
            text.replace("[null,null", "[\"1\",null"),
            text.replace("layer", "la\\u0079er"),
            text.replace("\"r\":255", "\"r\":255.0"),
            text.replace("\"g\":0", "\"g\":-0"),
            text.replace("\"g\":0", "\"g\":00"),
            text.replace("\"g\":0", "\"g\":18446744073709551616"),
            text.replace("\"g\":0", "\"g\":0,\"g\":1"),
            text.replace(
                "\"parent\":\"g1\",\"z\":\"80\"",
                "\"z\":\"80\",\"parent\":\"g1\"",
            ),
            text.replace("\"z\":\"80\"", "\"z\":\"80\",\"a\":1"),
            text.replace("\"seq\":12,", "\"seq\":12,\"extra\":1,"),
            text.replace("}}],", "}},{\"op\":\"move\",\"id\":\"x\"}],"),
            format!("{text} "),
            text.replace(TOPIC, "project:q"),
        ];
        for other in left {
            assert_ne!(other, text);
            assert_eq!(read(&other, TOPIC), None, "{other}");
        }
    }

    /// Every frame one ASCII byte away from a server's: read here only as
    /// serde reads it.
    #[test]
    fn a_frame_read_here_means_what_serde_makes_of_it() {
        let replacements = b" \"\\{}[],:.-+e0159anulltrsf\x01";
        for batch in samples() {
            let text = frame(&batch);
            for at in 0..text.len() {
                if !text.as_bytes()[at].is_ascii() {
                    continue;
                }
                for &r in replacements.iter().chain(b"x") {
                    let mut bytes = text.clone().into_bytes();
                    bytes[at] = r;
                    let other = String::from_utf8(bytes).expect("ASCII for ASCII");
                    if let Some(direct) = read(&other, TOPIC) {
                        assert_eq!(Some(direct), by_serde(&other), "{other}");
                    }
                }
                let cut = &text[..at];
                if let Some(direct) = read(cut, TOPIC) {
                    assert_eq!(Some(direct), by_serde(cut), "{cut}");
                }
            }
        }
    }
}
