//! The frames a busy client and the simulated server read most, read
//! straight from their text: `batch` broadcasts (every member reads every
//! batch), the `ok` answers to `diffs` pushes and those that catch up with
//! batches or with the whole document (a join on a large project reads
//! most of its bytes there), and the pushes themselves.
//!
//! serde_json's general reader spent more instructions walking their tokens
//! than the client spent rebasing over a batch. These frames are always
//! written the same way (compact, fields in declaration order, attributes
//! sorted), and that one layout is read here by hand. Anything else
//! (whitespace, escapes, other orders, floats or negative numbers, unknown
//! fields) is refused, and the caller reads the frame with serde as before:
//! a frame accepted here means what serde makes of it, which the tests check.

use crate::answer::{Accepted, State};
use crate::frame::{Incoming, Payload};
use serde_json::Number;
use std::borrow::Cow;
use tandem_core::checksum::escape_flags;
use tandem_core::room::{IncomingBatch, ServerBatch};
use tandem_core::value::Map;
use tandem_core::{Attrs, Checksum, Diff, Document, Limits, Value};

/// Values nested deeper than this go to serde (whose own limit is 128).
const MAX_DEPTH: usize = 32;

/// A `batch` broadcast on `topic`, as read here.
#[derive(Debug, PartialEq)]
pub(crate) enum Broadcast {
    Batch(ServerBatch),
    /// A batch of this client's whose diffs are byte for byte the ones it
    /// sent: the server applied them as they were (nothing amended or
    /// dropped), and they are not read again (see [`broadcast`]).
    Echo(Echo),
}

/// What an [`Broadcast::Echo`] tells beside diffs the client already has.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Echo {
    pub seq: u64,
    pub batch_id: u64,
    pub checksum: Checksum,
}

/// A `batch` broadcast on `topic`. `sent(client_id, batch_id)` gives the
/// diffs of a batch this client has sent, as they were written in its push
/// (the JSON array): a broadcast whose diffs are those very bytes is read as
/// an [`Echo`] without reading them again. A client receives its own every
/// batch, and reading their diffs was a quarter of its reading; the bytes
/// are compared exactly, so an echo is read only when the diffs are known
/// JSON that means what the client sent.
pub(crate) fn broadcast<'s>(
    text: &str,
    topic: &str,
    sent: impl FnOnce(&str, u64) -> Option<&'s str>,
) -> Option<Broadcast> {
    let mut c = Cursor { text, at: 0 };
    // As every broadcast starts: no refs, and the topic needs no escapes.
    c.eat("[null,null,\"")?;
    c.eat(topic)?;
    c.eat("\",\"batch\",")?;
    let head = c.batch_head()?;
    if let Some(diffs) = sent(head.client_id, head.batch_id) {
        let start = c.at;
        let echo = c.eat(diffs).and_then(|()| {
            let checksum = c.batch_checksum()?;
            c.end("]")?;
            Some(Echo {
                seq: head.seq,
                batch_id: head.batch_id,
                checksum,
            })
        });
        if let Some(echo) = echo {
            return Some(Broadcast::Echo(echo));
        }
        c.at = start;
    }
    let batch = c.batch_rest(head)?;
    c.end("]")?;
    Some(Broadcast::Batch(batch))
}

/// The ref of an `ok` answer to a `diffs` push, or of one that catches up
/// (to a join or a sync) with batches or a snapshot, and what the client
/// keeps of it: the seq and the batches or the document (the rest is read
/// only to be sure the frame is JSON).
pub(crate) fn ack(text: &str) -> Option<(&str, Accepted)> {
    let mut c = Cursor { text, at: 0 };
    let (_, ref_, _) = c.envelope()?;
    c.eat("\"phx_reply\",{\"status\":\"ok\",\"response\":{\"seq\":")?;
    let seq = c.number()?;
    c.eat(",\"checksum\":")?;
    c.checksum()?;
    let state = if c.eat(",\"batches\":[").is_some() {
        State::Batches(c.list("]", Cursor::server_batch)?)
    } else if c.eat(",\"snapshot\":{").is_some() {
        State::Snapshot(Some(c.snapshot()?))
    } else {
        // Read to be sure they are JSON; mostly none, stepped over.
        for field in [",\"amended\":", ",\"dropped\":"] {
            c.eat(field)?;
            if c.eat("[]").is_none() {
                c.value(0)?;
            }
        }
        State::Nothing
    };
    c.end("}}]")?;
    let accepted = Accepted {
        seq: Some(seq),
        ok: None,
        state,
    };
    Some((ref_?, accepted))
}

/// A `diffs` push, as the server reads it. Its envelope is borrowed from
/// `text`: owning its four strings (the event too) cost more than a tenth
/// of the read, and the server keeps only a held reply's refs past the frame.
pub fn diffs_push(text: &str) -> Option<Incoming<IncomingBatch, Cow<'_, str>>> {
    diffs_push_as_written(text).map(|(incoming, _)| incoming)
}

/// A push read by [`diffs_push`], and the text of its diffs' array when
/// that is what serde_json writes for the diffs read.
type PushAsWritten<'t> = (Incoming<IncomingBatch, Cow<'t, str>>, Option<&'t str>);

/// [`diffs_push`], and the text of the diffs' array in the frame when it
/// is what serde_json writes for the diffs read: only that layout is read
/// here (no whitespace, keys in order, escape-free strings, integers), but
/// for a set's `"value":null`, which is read as no value (the text is not
/// given when that appears anywhere in the diffs, a nested key included).
pub fn diffs_push_as_written(text: &str) -> Option<PushAsWritten<'_>> {
    let mut c = Cursor { text, at: 0 };
    let (join_ref, ref_, topic) = c.envelope()?;
    c.eat("\"diffs\",{\"batch_id\":")?;
    let batch_id = c.number()?;
    c.eat(",\"diffs\":")?;
    let start = c.at;
    let diffs = c.diffs()?;
    let written = text.get(start..c.at)?;
    let written = (!written.contains("\"value\":null")).then_some(written);
    c.end("}]")?;
    let incoming = Incoming {
        join_ref: join_ref.map(Cow::Borrowed),
        ref_: ref_.map(Cow::Borrowed),
        topic: Cow::Borrowed(topic),
        event: Cow::Borrowed("diffs"),
        payload: Payload::Typed(IncomingBatch { batch_id, diffs }),
    };
    Some((incoming, written))
}

/// The bytes that end a string read here: its closing quote, and those
/// that refuse it (a backslash, a control character). The same bytes are
/// those JSON escapes.
static STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

/// Where the first of [`STOPS`] is in `bytes`, eight bytes at a time while
/// eight are left. A string is followed by the rest of its frame, so even
/// a short one is found in the first word, in a dozen instructions where
/// the table took six a byte; only a string at the very end of the text
/// leaves a tail to the table. Inlined into every string read or
/// written: as a call, which the compiler kept where several strings are
/// read (a batch's ids, the envelope's refs), it cost about eight
/// instructions more a string.
#[inline(always)]
pub(crate) fn first_stop(bytes: &[u8]) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        let stops = escape_flags(word);
        if stops != 0 {
            // The lowest flag is exact (see `escape_flags`): the first byte.
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words
        .remainder()
        .iter()
        .position(|&b| STOPS[usize::from(b)]);
    tail.map(|i| at + i)
}

/// The value of a run of ASCII digits, or none when it overflows a u64.
#[cold]
fn checked_number(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A batch's fields before its diffs, borrowed from the frame.
struct BatchHead<'t> {
    seq: u64,
    client_id: &'t str,
    batch_id: u64,
    user_id: &'t str,
}

struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// `[JOIN_REF,REF,TOPIC,`: the refs may be null.
    fn envelope(&mut self) -> Option<(Option<&'t str>, Option<&'t str>, &'t str)> {
        self.eat("[")?;
        let join_ref = self.nullable_string()?;
        self.eat(",")?;
        let ref_ = self.nullable_string()?;
        self.eat(",")?;
        let topic = self.string()?;
        self.eat(",")?;
        Some((join_ref, ref_, topic))
    }

    /// Steps over `last`, which must end the text.
    fn end(&mut self, last: &str) -> Option<()> {
        self.eat(last)?;
        (self.at == self.text.len()).then_some(())
    }

    /// Inlined, as [`Cursor::string`] is: as a call, each of the
    /// envelope's two refs cost some forty instructions more, saving
    /// registers and loading the scan's constants again.
    #[inline(always)]
    fn nullable_string(&mut self) -> Option<Option<&'t str>> {
        match self.eat("null") {
            Some(()) => Some(None),
            None => self.string().map(Some),
        }
    }

    /// Steps over `literal`, which must come next. Inlined, so that the
    /// comparison with each literal is one of known length.
    #[inline(always)]
    fn eat(&mut self, literal: &str) -> Option<()> {
        let rest = self.text.as_bytes().get(self.at..)?;
        rest.starts_with(literal.as_bytes()).then(|| {
            self.at += literal.len();
        })
    }

    /// A string without escapes (a control character is not JSON either).
    /// Inlined: called for every id, key and string value, it spent about
    /// eighty instructions on each, a quarter of them saving registers and
    /// loading constants.
    #[inline(always)]
    fn string(&mut self) -> Option<&'t str> {
        self.eat("\"")?;
        // Both ends are ASCII quotes, so the slices are on char boundaries.
        // Cut from the rest and then to its length, each slice checks one
        // boundary inline; `get(start..end)` was a call checking both.
        let rest = self.text.get(self.at..)?;
        let length = first_stop(rest.as_bytes())?;
        let inside = rest.get(..length)?;
        self.at += length;
        self.eat("\"")?;
        Some(inside)
    }

    /// A checksum as its `Serialize` writes it: a string of 16 hex digits,
    /// read in place. Any other string fails here, and also failed
    /// [`Checksum::parse`] after [`Cursor::string`].
    fn checksum(&mut self) -> Option<Checksum> {
        let rest = self.text.as_bytes().get(self.at..)?;
        let quoted: &[u8; 18] = rest.get(..18)?.try_into().ok()?;
        let (b'"', b'"') = (quoted[0], quoted[17]) else {
            return None;
        };
        let checksum = Checksum::from_hex(quoted[1..17].try_into().ok()?)?;
        self.at += 18;
        Some(checksum)
    }

    /// A non-negative integer that fits a u64, without a leading zero
    /// (JSON has none); a fraction or exponent after it fails the caller's
    /// next step. Summed without overflow checks, which cost about half of
    /// each digit's instructions: up to 19 digits cannot overflow, and only
    /// a longer run is read again with them.
    fn number(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let (mut n, mut at) = (0u64, start);
        while let Some(digit) = bytes.get(at).map(|b| b.wrapping_sub(b'0')) {
            if digit > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            at += 1;
        }
        let run = &bytes[start..at];
        if run.is_empty() || (run.len() > 1 && run[0] == b'0') {
            return None;
        }
        if run.len() > 19 {
            n = checked_number(run)?;
        }
        self.at = at;
        Some(n)
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

    /// [`Cursor::items`] gathered. The vector is given at its first item
    /// the room its first push would give it (four, for items of these
    /// sizes), without growing into it: growing cost three times the
    /// allocation itself, on every batch's diffs and every added object's
    /// attributes. An empty list allocates nothing, as before.
    fn list<T>(
        &mut self,
        close: &str,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut list = Vec::new();
        self.items(close, |c| {
            let item = item(c)?;
            if list.capacity() == 0 {
                list = Vec::with_capacity(4);
            }
            list.push(item);
            Some(())
        })?;
        Some(list)
    }

    fn server_batch(&mut self) -> Option<ServerBatch> {
        let head = self.batch_head()?;
        self.batch_rest(head)
    }

    /// A batch up to its diffs.
    fn batch_head(&mut self) -> Option<BatchHead<'t>> {
        self.eat("{\"seq\":")?;
        let seq = self.number()?;
        self.eat(",\"client_id\":")?;
        let client_id = self.string()?;
        self.eat(",\"batch_id\":")?;
        let batch_id = self.number()?;
        self.eat(",\"user_id\":")?;
        let user_id = self.string()?;
        self.eat(",\"diffs\":")?;
        Some(BatchHead {
            seq,
            client_id,
            batch_id,
            user_id,
        })
    }

    /// A batch from its diffs on.
    fn batch_rest(&mut self, head: BatchHead<'_>) -> Option<ServerBatch> {
        let diffs = self.diffs()?;
        Some(ServerBatch {
            seq: head.seq,
            client_id: head.client_id.to_owned(),
            batch_id: head.batch_id,
            user_id: head.user_id.to_owned(),
            diffs,
            checksum: self.batch_checksum()?,
        })
    }

    /// A batch after its diffs: its checksum, and its end.
    fn batch_checksum(&mut self) -> Option<Checksum> {
        self.eat(",\"checksum\":")?;
        let checksum = self.checksum()?;
        self.eat("}")?;
        Some(checksum)
    }

    /// A document after its `{`: each object's id and attributes, as a
    /// document writes them. One that is not a document (an id repeated,
    /// which serde would read as the last of them, or a broken tree) is left
    /// to serde, which has the last word on it.
    fn snapshot(&mut self) -> Option<Document> {
        let objects = self.list("}", |c| {
            let id = c.string()?.into();
            c.eat(":")?;
            Some((id, c.attrs()?))
        })?;
        Document::from_objects(objects, Limits::default()).ok()
    }

    fn diffs(&mut self) -> Option<Vec<Diff>> {
        self.eat("[")?;
        self.list("]", Self::diff)
    }

    fn diff(&mut self) -> Option<Diff> {
        self.eat("{\"op\":\"")?;
        let diff = if self.eat("add\",\"id\":").is_some() {
            let id = self.string()?.into();
            self.eat(",\"attrs\":")?;
            Diff::Add {
                id,
                attrs: self.attrs()?,
            }
        } else if self.eat("remove\",\"id\":").is_some() {
            Diff::Remove {
                id: self.string()?.into(),
            }
        } else {
            self.eat("set\",\"id\":")?;
            let id = self.string()?.into();
            self.eat(",\"key\":")?;
            let key = self.string()?.into();
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
        if self.eat("[]").is_some() {
            return Some(Attrs::new());
        }
        self.eat("{")?;
        self.members(0)
    }

    /// An object's members after its `{`, their values at `depth`, keys in
    /// strictly increasing order as every writer here sorts them (an
    /// attribute map and an object value are the same map). Keys out of
    /// order or repeated (serde keeps the last) are left to serde.
    fn members(&mut self, depth: usize) -> Option<Map> {
        let mut last: Option<&str> = None;
        let members = self.list("}", |c| {
            let name = c.string()?;
            last.is_none_or(|last| last < name).then_some(())?;
            last = Some(name);
            c.eat(":")?;
            Some((name.into(), c.value(depth)?))
        })?;
        // Sorted without repeats, as just checked.
        Some(Map::from_sorted_store_unchecked(members))
    }

    /// A value at `depth`. The values read most, strings and numbers, are
    /// read inline, the rest out of line ([`Cursor::nested`]): as a call
    /// for every attribute and set value, each spent about twelve
    /// instructions on the call and on saving the registers that only an
    /// array or object needs.
    #[inline(always)]
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.into())),
            b'0'..=b'9' => Some(Value::Number(Number::from(self.number()?))),
            _ => self.nested(depth),
        }
    }

    /// A value other than a string or a number: a literal, an array or an
    /// object, at `depth` (not above the limit).
    #[inline(never)]
    fn nested(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'n' => self.eat("null").map(|()| Value::Null),
            b't' => self.eat("true").map(|()| Value::Bool(true)),
            b'f' => self.eat("false").map(|()| Value::Bool(false)),
            b'[' => {
                self.eat("[")?;
                let items = self.list("]", |c| c.value(depth + 1))?;
                Some(Value::Array(items))
            }
            b'{' => {
                self.eat("{")?;
                Some(Value::Object(self.members(depth + 1)?))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        ack, broadcast, diffs_push, diffs_push_as_written, first_stop, Broadcast, Cursor, Echo,
        STOPS,
    };
    use crate::answer::{Accepted, Typed, Want};
    use crate::frame::{Envelope, Incoming, Payload};
    use serde::Serialize;
    use std::fmt::Debug;
    use tandem_core::room::{Ack, CatchUp, DroppedDiff, IncomingBatch, ServerBatch};
    use tandem_core::{
        value, Attrs, Checksum, Diff, Document, DropReason, Limits, ObjectId, Value,
    };

    const TOPIC: &str = "project:p";

    /// A frame with the refs `(join_ref, ref)` or none.
    fn frame(refs: Option<(&str, &str)>, event: &str, payload: &impl Serialize) -> String {
        let envelope = Envelope {
            join_ref: refs.map(|r| r.0),
            ref_: refs.map(|r| r.1),
            topic: TOPIC,
            event,
        };
        envelope.encode(payload)
    }

    /// A payload as the client's serde path reads it, asked `want`.
    fn typed(text: &str, want: Want) -> Option<Incoming<Typed>> {
        let seed = |head: &Envelope<'_>| {
            let event = match want {
                Want::Batch => "batch",
                Want::Answer => "phx_reply",
            };
            let answered = want == Want::Batch || head.ref_.is_some();
            (head.event == event && answered).then_some(want)
        };
        Incoming::<Typed, _>::read(text, seed).map(Incoming::into_owned)
    }

    fn batch_by_serde(text: &str) -> Option<ServerBatch> {
        let incoming = typed(text, Want::Batch).filter(|i| i.topic == TOPIC)?;
        match incoming.payload {
            Payload::Typed(Typed::Batch(batch)) => Some(batch),
            _ => None,
        }
    }

    fn ack_by_serde(text: &str) -> Option<(String, Accepted)> {
        let incoming = typed(text, Want::Answer)?;
        match incoming.payload {
            Payload::Typed(Typed::Answer(Some(accepted))) => Some((incoming.ref_?, accepted)),
            _ => None,
        }
    }

    fn ack_direct(text: &str) -> Option<(String, Accepted)> {
        ack(text).map(|(ref_, accepted)| (ref_.to_owned(), accepted))
    }

    fn push_direct(text: &str) -> Option<Incoming<IncomingBatch>> {
        diffs_push(text).map(Incoming::into_owned)
    }

    fn push_by_serde(text: &str) -> Option<Incoming<IncomingBatch>> {
        Incoming::<IncomingBatch>::parse(text, |_, event| event == "diffs")
            .filter(|i| matches!(i.payload, Payload::Typed(_)))
    }

    /// A broadcast read as a batch from someone else.
    fn batch(text: &str, topic: &str) -> Option<ServerBatch> {
        match broadcast(text, topic, |_, _| None)? {
            Broadcast::Batch(batch) => Some(batch),
            Broadcast::Echo(echo) => panic!("nothing was sent: {echo:?}"),
        }
    }

    /// What a broadcast says of its batch.
    type Said = (u64, u64, Checksum, Vec<Diff>);

    fn said_by_serde(text: &str) -> Option<Said> {
        let b = batch_by_serde(text)?;
        Some((b.seq, b.batch_id, b.checksum, b.diffs))
    }

    /// The broadcast read by a client that sent `sent` as the diffs of
    /// batch `u64::MAX` of `client-1-0` (the samples' ids).
    fn said_to_sender(text: &str, sent: &[Diff]) -> Option<Said> {
        let written = serde_json::to_string(sent).expect("diffs are JSON");
        let own = |client: &str, batch_id| {
            (client == "client-1-0" && batch_id == u64::MAX).then_some(written.as_str())
        };
        Some(match broadcast(text, TOPIC, own)? {
            Broadcast::Batch(b) => (b.seq, b.batch_id, b.checksum, b.diffs),
            Broadcast::Echo(Echo {
                seq,
                batch_id,
                checksum,
            }) => {
                // What the sent bytes mean (a `null` value is none).
                let meant = serde_json::from_str(&written).expect("diffs are JSON");
                (seq, batch_id, checksum, meant)
            }
        })
    }

    fn server_batch(diffs: Vec<Diff>) -> ServerBatch {
        ServerBatch {
            seq: 12,
            client_id: "client-1-0".into(),
            batch_id: u64::MAX,
            user_id: "user-é".into(),
            diffs,
            checksum: Checksum(0x0123_4567_89ab_cdef),
        }
    }

    fn attrs_of(pairs: &[(&str, Value)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    fn samples() -> Vec<Vec<Diff>> {
        let add = |id: &str, a: Attrs| Diff::Add {
            id: id.into(),
            attrs: a,
        };
        vec![
            vec![],
            vec![add(
                "o1",
                attrs_of(&[
                    ("color", value!({"g": 0, "r": 255})),
                    ("name", value!("layer ✓")),
                    ("parent", value!("g1")),
                    ("z", value!("80")),
                ]),
            )],
            vec![
                add("a", Attrs::new()),
                Diff::Remove { id: "b".into() },
                Diff::set("c", "x", Some(value!(0))),
                Diff::set("c", "y", None),
                Diff::set("c", "u", Some(Value::Null)),
                Diff::set("c", "w", Some(value!([1, [true, false, null], {}, []]))),
                Diff::set("c", "v", Some(value!({"a": {"b": {"c": u64::MAX}}}))),
            ],
        ]
    }

    fn batch_frames() -> Vec<String> {
        let batches = samples().into_iter().map(server_batch);
        batches.map(|b| frame(None, "batch", &b)).collect()
    }

    /// Answers to a `diffs` push, then to a join that catches up.
    fn ack_frames() -> Vec<String> {
        #[derive(Serialize)]
        struct Reply<'a, R> {
            status: &'a str,
            response: &'a R,
        }
        fn reply(response: &impl Serialize) -> String {
            let reply = Reply {
                status: "ok",
                response,
            };
            frame(Some(("3", "31")), "phx_reply", &reply)
        }
        let dropped = DroppedDiff {
            index: 1,
            reason: DropReason::MissingTarget,
        };
        let acks = [(vec![], vec![]), (vec![0, 2], vec![dropped])];
        let acks = acks.into_iter().map(|(amended, dropped)| Ack {
            seq: 5,
            checksum: Checksum(7),
            amended,
            dropped,
        });
        let batches: Vec<ServerBatch> = samples().into_iter().map(server_batch).collect();
        let catch_ups = [vec![], batches.iter().collect()].map(|batches| CatchUp {
            seq: 12,
            checksum: Checksum(7),
            snapshot: None,
            batches: Some(batches),
        });
        let documents = [vec![], snapshot_objects()]
            .map(|objects| Document::from_objects(objects, Limits::default()).expect("a document"));
        let snapshots = documents.iter().map(|document| CatchUp {
            seq: 12,
            checksum: document.checksum(),
            snapshot: Some(document),
            batches: None,
        });
        let acks = acks.map(|ack| reply(&ack));
        let catch_ups = catch_ups.iter().map(reply);
        acks.chain(catch_ups)
            .chain(snapshots.map(|s| reply(&s)))
            .collect()
    }

    /// A group holding a layer of every kind of value, and an object
    /// without attributes.
    fn snapshot_objects() -> Vec<(ObjectId, Attrs)> {
        let Diff::Add { id, attrs } = samples()[1][0].clone() else {
            unreachable!("the second sample adds a layer")
        };
        let group = attrs_of(&[("name", value!("group")), ("z", value!("80"))]);
        vec![
            (id, attrs),
            ("g1".into(), group),
            ("a".into(), Attrs::new()),
        ]
    }

    fn push_frames() -> Vec<String> {
        let pushes = samples()
            .into_iter()
            .map(|diffs| IncomingBatch { batch_id: 9, diffs });
        pushes
            .map(|p| frame(Some(("4", "12")), "diffs", &p))
            .collect()
    }

    /// `text` and every text one ASCII byte away from it, or cut short: read
    /// directly only as serde reads them.
    fn agree_near<T: PartialEq + Debug>(
        text: &str,
        direct: impl Fn(&str) -> Option<T>,
        by_serde: impl Fn(&str) -> Option<T>,
    ) {
        let agree = |t: &str| {
            if let Some(read) = direct(t) {
                assert_eq!(Some(read), by_serde(t), "{t}");
            }
        };
        let replacements = b" \"\\{}[],:.-+e0159anulltrsf\x01x";
        for at in 0..text.len() {
            if !text.as_bytes()[at].is_ascii() {
                continue;
            }
            for &r in replacements {
                let mut bytes = text.as_bytes().to_vec();
                bytes[at] = r;
                agree(&String::from_utf8(bytes).expect("ASCII for ASCII"));
            }
            agree(&text[..at]);
        }
    }

    /// Every byte at every place of a word and its tail, after bytes that
    /// are not stops and before ones that are (whose borrows could mislead
    /// a word's scan): found where the table finds it.
    #[test]
    fn a_string_ends_where_the_table_says() {
        for b in 0..=255u8 {
            for len in 1..=17 {
                for at in 0..len {
                    for (before, after) in [(b'a', b'z'), (0xc3, 0x00), (b'~', b'"')] {
                        let mut bytes = vec![before; len];
                        bytes[at] = b;
                        bytes[at + 1..].fill(after);
                        let table = bytes.iter().position(|&b| STOPS[usize::from(b)]);
                        assert_eq!(first_stop(&bytes), table, "{bytes:?}");
                    }
                }
            }
        }
    }

    /// A number is read as JSON reads a non-negative integer that fits a
    /// u64, up to where its digits end; a leading zero, no digit or an
    /// overflow is no number.
    #[test]
    fn a_number_is_read_up_to_its_last_digit_and_only_when_it_fits() {
        let cases: [(&str, Option<(u64, usize)>); 14] = [
            ("0", Some((0, 1))),
            ("7,", Some((7, 1))),
            ("1.5", Some((1, 1))),
            ("120}", Some((120, 3))),
            ("1234567890123456789", Some((1_234_567_890_123_456_789, 19))),
            (
                "9999999999999999999]",
                Some((9_999_999_999_999_999_999, 19)),
            ),
            ("18446744073709551615", Some((u64::MAX, 20))),
            ("18446744073709551616", None),
            ("99999999999999999999", None),
            ("00", None),
            ("01", None),
            ("-1", None),
            ("", None),
            ("x1", None),
        ];
        for (text, want) in cases {
            let mut cursor = Cursor { text, at: 0 };
            let got = cursor.number().map(|n| (n, cursor.at));
            assert_eq!(got, want, "{text:?}");
        }
    }

    /// Every byte at every place of 16 digits, fewer digits and more: read
    /// as a checksum exactly when `Checksum::parse` takes the string, and
    /// as the same checksum.
    #[test]
    fn a_checksum_is_read_as_checksum_parse_reads_it() {
        let read = |text: &[u8]| {
            let quoted = [b"\"", text, b"\",".as_slice()].concat();
            let quoted = String::from_utf8(quoted).ok()?;
            let mut c = Cursor {
                text: &quoted,
                at: 0,
            };
            let checksum = c.checksum()?;
            assert_eq!(c.at, text.len() + 2, "{quoted}");
            Some(checksum)
        };
        let parse = |text: &[u8]| Checksum::parse(std::str::from_utf8(text).ok()?);
        for digits in [
            b"0123456789abcdef",
            b"fedcba9876543210",
            b"ffffffffffffffff",
        ] {
            assert!(read(digits).is_some());
            for at in 0..16 {
                for b in 0..=255u8 {
                    let mut text = *digits;
                    text[at] = b;
                    assert_eq!(read(&text), parse(&text), "{text:?}");
                }
            }
            for len in 0..16 {
                assert_eq!(read(&digits[..len]), None);
            }
            assert_eq!(read(&[digits.as_slice(), b"0"].concat()), None);
        }
        for n in [0, 1, 0x0123_4567_89ab_cdef, u64::MAX, 0xa0b0_c0d0_e0f0_0102] {
            assert_eq!(read(&Checksum(n).hex()), Some(Checksum(n)));
        }
        let mut c = Cursor {
            text: "\"0123456789abcdef",
            at: 0,
        };
        assert_eq!(c.checksum(), None);
    }

    #[test]
    fn frames_as_they_are_written_are_read_as_serde_reads_them() {
        for text in batch_frames() {
            assert!(batch(&text, TOPIC).is_some(), "{text}");
            assert_eq!(batch(&text, TOPIC), batch_by_serde(&text));
            assert_eq!(batch(&text, "project:q"), None);
        }
        for text in ack_frames() {
            assert!(ack(&text).is_some(), "{text}");
            assert_eq!(ack_direct(&text), ack_by_serde(&text));
        }
        for text in push_frames() {
            assert!(diffs_push(&text).is_some(), "{text}");
            assert_eq!(push_direct(&text), push_by_serde(&text));
        }
    }

    #[test]
    fn a_push_read_here_holds_its_diffs_as_serde_json_writes_them() {
        // Every push, and every frame one byte away from one that is still
        // read here: the diffs' text is the one serde_json writes for what
        // was read.
        let mut read = 0;
        for text in push_frames() {
            for at in 0..text.len() {
                for byte in [b' ', b'0', b'9', b'a', b'"', b'\\', b'{', b'[', b',', b':'] {
                    let mut bytes = text.clone().into_bytes();
                    bytes[at] = byte;
                    let Ok(other) = String::from_utf8(bytes) else {
                        continue;
                    };
                    for candidate in [&text, &other] {
                        if let Some((incoming, Some(written))) = diffs_push_as_written(candidate) {
                            let Payload::Typed(batch) = incoming.payload else {
                                panic!("a typed push")
                            };
                            let by_serde = serde_json::to_string(&batch.diffs).expect("JSON");
                            assert_eq!(written, by_serde, "{candidate}");
                            read += 1;
                        }
                    }
                }
            }
        }
        assert!(read > 0);
    }

    /// Edits of the second sample of each kind, none of them the layout
    /// the readers take: `KIND FROM => TO`.
    const EDITS: &str = r#"
batch ,"diffs" => , "diffs"
batch [null,null => [null, null
batch layer => la\u0079er
batch "r":255 => "r":255.0
batch "g":0 => "g":-0
batch "g":0 => "g":00
batch "g":0 => "g":18446744073709551616
batch "g":0 => "g":0,"g":1
batch "parent":"g1","z":"80" => "z":"80","parent":"g1"
batch "parent":"g1", => "parent":"g1","parent":"g1",
batch "seq":12, => "seq":12,"extra":1,
batch }}], => }},{"op":"move","id":"x"}],
batch }] => }]]
batch "batch" => "batches"
ack "ok" => "error"
ack "dropped" => "other"
ack ["3","31" => ["3",null
push "batch_id":9 => "batch_id":9.5
snapshot "a":[] => "a":[],"a":[]
snapshot "parent":"g1" => "parent":"g9"
snapshot "name":"group" => "name":"group","parent":"o1"
snapshot "snapshot" => "snapshots"
push "diffs",{ => "diff",{
"#;

    #[test]
    fn other_layouts_are_left_to_serde() {
        let (batches, acks, pushes) = (batch_frames(), ack_frames(), push_frames());
        for edit in EDITS.lines().filter(|l| !l.is_empty()) {
            let (kind, change) = edit.split_once(' ').expect("KIND FROM => TO");
            let (from, to) = change.split_once(" => ").expect("FROM => TO");
            let sample = match kind {
                "batch" => &batches[1],
                "ack" => &acks[1],
                "snapshot" => acks.last().expect("a snapshot"),
                _ => &pushes[1],
            };
            let other = sample.replace(from, to);
            assert_ne!(&other, sample, "{edit}");
            let read = batch(&other, TOPIC).is_some()
                || ack(&other).is_some()
                || diffs_push(&other).is_some();
            assert!(!read, "{other}");
        }
        let spaced = format!("{} ", batches[1]);
        assert_eq!(batch(&spaced, TOPIC), None);
    }

    #[test]
    fn a_broadcast_of_the_very_diffs_sent_is_an_echo_and_any_other_a_batch() {
        let samples = samples();
        for (text, sent) in batch_frames().iter().zip(&samples) {
            let written = serde_json::to_string(sent).expect("diffs are JSON");
            let b = batch_by_serde(text).expect("a batch");
            let echo = Echo {
                seq: b.seq,
                batch_id: b.batch_id,
                checksum: b.checksum,
            };
            let mut asked = None;
            let read = broadcast(text, TOPIC, |client, batch_id| {
                asked = Some((client.to_owned(), batch_id));
                Some(written.as_str())
            });
            assert_eq!(read, Some(Broadcast::Echo(echo)));
            assert_eq!(asked, Some((b.client_id.clone(), b.batch_id)));
            for other in samples.iter().filter(|other| *other != sent) {
                let other = serde_json::to_string(other).expect("diffs are JSON");
                let read = broadcast(text, TOPIC, |_, _| Some(other.as_str()));
                assert_eq!(read, Some(Broadcast::Batch(b.clone())));
            }
        }
    }

    #[test]
    fn a_frame_read_here_means_what_serde_makes_of_it() {
        for (text, sent) in batch_frames().iter().zip(samples()) {
            agree_near(text, |t| batch(t, TOPIC), batch_by_serde);
            agree_near(text, |t| said_to_sender(t, &sent), said_by_serde);
        }
        for text in ack_frames() {
            agree_near(&text, ack_direct, ack_by_serde);
        }
        for text in push_frames() {
            agree_near(&text, push_direct, push_by_serde);
        }
    }
}
