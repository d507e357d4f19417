//! The frames written most, written by hand: `batch` broadcasts and the
//! answers to `diffs` pushes (by the simulated server) and the pushes (by
//! the client).
//!
//! serde_json spent about a hundred instructions on every string it wrote,
//! most of them in calls around a few bytes, and a frame is mostly short
//! strings. The text is the one serde_json writes, byte for byte (the tests
//! compare them): strings and values go through the checksum's canonical
//! JSON writer (`tandem_core::checksum`), which writes exactly that, and
//! what neither writes itself (an escaped string, a float) goes to
//! serde_json.

use crate::direct;
use crate::frame::Envelope;
use serde::Serialize;
use tandem_core::checksum::{scalar_text, write_canonical, write_str};
use tandem_core::room::{Ack, CatchUp, ServerBatch};
use tandem_core::{Attrs, Checksum, Diff, Value};

/// The V2 frame of a `batch` broadcast.
pub fn batch_frame(topic: &str, batch: &ServerBatch) -> String {
    batch_frame_with(topic, batch, |w| w.diffs(&batch.diffs))
}

/// [`batch_frame`] of a batch whose diffs are, as JSON, `diffs` (the text
/// a push gave them, for a batch the server applied exactly as pushed).
pub fn batch_frame_as_pushed(topic: &str, batch: &ServerBatch, diffs: &str) -> String {
    batch_frame_with(topic, batch, |w| w.raw(diffs))
}

fn batch_frame_with(topic: &str, batch: &ServerBatch, diffs: impl FnOnce(&mut Writer)) -> String {
    let mut w = Writer::frame(None, None, topic, "batch");
    w.batch_with(batch, diffs);
    w.raw("]");
    w.text()
}

/// The V2 frame of a reply carrying a catch-up (the answer to a join or a
/// `sync`, by the simulated server): `{"status":STATUS,"response":CATCH_UP}`.
/// A rejoin after a server restart carries the whole document.
pub fn catch_up_reply(
    join_ref: Option<&str>,
    ref_: Option<&str>,
    topic: &str,
    status: &str,
    catch_up: &CatchUp<'_>,
) -> String {
    let mut w = Writer::frame(join_ref, ref_, topic, "phx_reply");
    w.raw("{\"status\":");
    w.string(status);
    w.raw(",\"response\":{\"seq\":");
    w.number(catch_up.seq);
    w.raw(",\"checksum\":");
    w.checksum(catch_up.checksum);
    if let Some(document) = catch_up.snapshot {
        w.raw(",\"snapshot\":");
        w.separated(("{", "}"), document.in_sibling_order(), |w, (id, attrs)| {
            w.string(id);
            w.raw(":");
            w.attrs(attrs);
        });
    }
    if let Some(batches) = &catch_up.batches {
        w.raw(",\"batches\":");
        w.separated(("[", "]"), batches, |w, batch| w.batch(batch));
    }
    w.raw("}}]");
    w.text()
}

/// The V2 frame of an `ok` answer to a `diffs` push (by the simulated
/// server): `{"status":"ok","response":ACK}`.
pub fn ack_reply(join_ref: Option<&str>, ref_: Option<&str>, topic: &str, ack: &Ack) -> String {
    let mut w = Writer::frame(join_ref, ref_, topic, "phx_reply");
    w.raw("{\"status\":\"ok\",\"response\":{\"seq\":");
    w.number(ack.seq);
    w.raw(",\"checksum\":");
    w.checksum(ack.checksum);
    w.raw(",\"amended\":");
    w.separated(("[", "]"), &ack.amended, |w, &index| w.number(index as u64));
    w.raw(",\"dropped\":");
    match ack.dropped.is_empty() {
        true => w.raw("[]"),
        false => w.serde(&ack.dropped),
    }
    w.raw("}}]");
    w.text()
}

/// A written `diffs` push, and where its diffs are in it.
pub(crate) struct Push {
    pub text: String,
    diffs_at: usize,
}

impl Push {
    /// The diffs as written: their JSON array.
    pub fn diffs(&self) -> &str {
        &self.text[self.diffs_at..self.text.len() - "}]".len()]
    }
}

/// The V2 frame of a `diffs` push.
pub(crate) fn diffs_push(envelope: &Envelope<'_>, batch_id: u64, diffs: &[Diff]) -> Push {
    push_with(envelope, batch_id, |w| w.diffs(diffs))
}

/// The V2 frame of a `diffs` push again (a resend), its diffs as an earlier
/// push wrote them ([`Push::diffs`]): the same batch has the same diffs.
pub(crate) fn diffs_push_again(envelope: &Envelope<'_>, batch_id: u64, written: &str) -> String {
    push_with(envelope, batch_id, |w| w.raw(written)).text
}

fn push_with(envelope: &Envelope<'_>, batch_id: u64, diffs: impl FnOnce(&mut Writer)) -> Push {
    let Envelope {
        join_ref,
        ref_,
        topic,
        event,
    } = *envelope;
    let mut w = Writer::frame(join_ref, ref_, topic, event);
    w.raw("{\"batch_id\":");
    w.number(batch_id);
    w.raw(",\"diffs\":");
    let diffs_at = w.out.len();
    diffs(&mut w);
    w.raw("}]");
    Push {
        text: w.text(),
        diffs_at,
    }
}

/// Writing into a `String` cannot fail, so neither can a writer's steps.
/// A `String`, not bytes: the frame is then text as written, where turning
/// bytes into it checked every byte again (2.4 M instructions over the
/// simulator's 20 seeds). Only what the byte writers of serde_json and the
/// checksum write (an escaped string, an array or object value, a float)
/// and the checksum's 16 digits are checked, each on its own.
struct Writer {
    out: String,
}

impl Writer {
    /// With room for a typical frame: nine in ten of the simulator's fit
    /// in 256 bytes, the room most of them would end with anyway, and a
    /// vector grown from nothing was reallocated five times to get there.
    fn new() -> Writer {
        Writer {
            out: String::with_capacity(256),
        }
    }

    /// `[JOIN_REF,REF,TOPIC,EVENT,`.
    fn frame(join_ref: Option<&str>, ref_: Option<&str>, topic: &str, event: &str) -> Writer {
        let mut w = Writer::new();
        w.raw("[");
        for part in [join_ref, ref_] {
            match part {
                Some(text) => w.string(text),
                None => w.raw("null"),
            }
            w.raw(",");
        }
        for part in [topic, event] {
            w.string(part);
            w.raw(",");
        }
        w
    }

    fn text(self) -> String {
        self.out
    }

    /// What a byte writer writes, checked to be text (it is JSON). With
    /// room for a usual nested value: grown from nothing, the vector cost
    /// more than the check.
    fn bytes(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = Vec::with_capacity(64);
        write(&mut bytes);
        self.raw(std::str::from_utf8(&bytes).expect("JSON is text"));
    }

    /// Its 16 hex digits between quotes, as its `Serialize` writes them,
    /// without serde's string writer (which scans them for escapes).
    fn checksum(&mut self, checksum: Checksum) {
        let digits = checksum.hex();
        self.out.reserve(18);
        self.out.push('"');
        self.out
            .push_str(std::str::from_utf8(&digits).expect("hex digits"));
        self.out.push('"');
    }

    fn raw(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn number(&mut self, n: u64) {
        self.raw(itoa::Buffer::new().format(n));
    }

    /// Through serde_json: what this module does not write itself.
    fn serde(&mut self, value: &impl Serialize) {
        self.bytes(|out| serde_json::to_writer(out, value).expect("JSON values always serialize"));
    }

    /// A string that needs no escape is copied between quotes here, in
    /// one reservation: the checksum's writer, which takes any `Write`,
    /// spent a hundred instructions on each of a frame's short strings,
    /// mostly in three writes of their own. The bytes that end a string
    /// read directly are those JSON escapes. Inlined, the escaping kept
    /// out of line ([`Writer::escaped`]): as a call, which saved and
    /// restored the registers of that rare path too, a string cost about
    /// fifteen instructions more, a sixth of the whole.
    #[inline(always)]
    fn string(&mut self, text: &str) {
        if direct::first_stop(text.as_bytes()).is_some() {
            return self.escaped(text);
        }
        self.out.reserve(text.len() + 2);
        self.out.push('"');
        self.out.push_str(text);
        self.out.push('"');
    }

    /// A string that needs escapes, through the checksum's writer: rare,
    /// and kept out of the strings written inline.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, text: &str) {
        self.bytes(|out| write_str(out, text).expect("a Vec takes any bytes"));
    }

    /// `items` between `open` and `close`, separated by commas.
    fn separated<I>(
        &mut self,
        (open, close): (&str, &str),
        items: impl IntoIterator<Item = I>,
        mut each: impl FnMut(&mut Self, I),
    ) {
        self.raw(open);
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            each(self, item);
        }
        self.raw(close);
    }

    /// A server batch as its `Serialize` writes it.
    fn batch(&mut self, batch: &ServerBatch) {
        self.batch_with(batch, |w| w.diffs(&batch.diffs));
    }

    /// A server batch with its diffs written by `diffs`.
    fn batch_with(&mut self, batch: &ServerBatch, diffs: impl FnOnce(&mut Self)) {
        self.raw("{\"seq\":");
        self.number(batch.seq);
        self.raw(",\"client_id\":");
        self.string(&batch.client_id);
        self.raw(",\"batch_id\":");
        self.number(batch.batch_id);
        self.raw(",\"user_id\":");
        self.string(&batch.user_id);
        self.raw(",\"diffs\":");
        diffs(self);
        self.raw(",\"checksum\":");
        self.checksum(batch.checksum);
        self.raw("}");
    }

    fn diffs(&mut self, diffs: &[Diff]) {
        self.separated(("[", "]"), diffs, Self::diff);
    }

    fn diff(&mut self, diff: &Diff) {
        match diff {
            Diff::Add { id, attrs } => {
                self.raw("{\"op\":\"add\",\"id\":");
                self.string(id);
                self.raw(",\"attrs\":");
                self.attrs(attrs);
            }
            Diff::Remove { id } => {
                self.raw("{\"op\":\"remove\",\"id\":");
                self.string(id);
            }
            Diff::Set { id, key, value } => {
                self.raw("{\"op\":\"set\",\"id\":");
                self.string(id);
                self.raw(",\"key\":");
                self.string(key);
                if let Some(value) = value {
                    self.raw(",\"value\":");
                    self.value(value);
                }
            }
        }
        self.raw("}");
    }

    /// An object's attributes as their map's `Serialize` writes them: with
    /// no first name to show that names are strings, none are a list.
    fn attrs(&mut self, attrs: &Attrs) {
        match attrs.is_empty() {
            true => self.raw("[]"),
            false => self.object(attrs.iter().map(|(name, value)| (name.as_str(), value))),
        }
    }

    fn object<'v>(&mut self, entries: impl Iterator<Item = (&'v str, &'v Value)>) {
        self.separated(("{", "}"), entries, |w, (key, value)| {
            w.string(key);
            w.raw(":");
            w.value(value);
        });
    }

    /// The checksum's canonical JSON, which is serde_json's text. The
    /// values frames carry most, scalars other than floats, are written
    /// here with no check (strings by `string`, the others as the
    /// checksum's `scalar_text` gives them).
    fn value(&mut self, value: &Value) {
        if let Value::String(text) = value {
            return self.string(text);
        }
        match scalar_text(value, &mut itoa::Buffer::new()) {
            Some(text) => self.raw(text),
            None => self.canonical(value),
        }
    }

    fn canonical(&mut self, value: &Value) {
        self.bytes(|out| write_canonical(out, value).expect("a Vec takes any bytes"));
    }
}

#[cfg(test)]
mod tests {
    use super::{ack_reply, batch_frame, catch_up_reply, diffs_push, diffs_push_again};
    use crate::frame::Envelope;
    use serde::Serialize;
    use tandem_core::room::{Ack, CatchUp, DroppedDiff, IncomingBatch, ServerBatch};
    use tandem_core::{value, Attrs, Checksum, Diff, Document, DropReason, Value};

    fn samples() -> Vec<Vec<Diff>> {
        let odd = [
            value!("é \" \\ \n \u{1} \u{7f} ✓"),
            value!(-7),
            value!(0.5),
            value!(1e300),
            value!(u64::MAX),
            value!(i64::MIN),
            value!(null),
            value!([true, false, [], {}, [null]]),
            value!({"b": {"a\"": [1.25, "x"]}, "a": 0}),
        ];
        let attrs: Attrs = odd
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}").into(), v.clone()))
            .collect();
        let sets = odd
            .iter()
            .map(|v| Diff::set("o\t1", "k\"ey", Some(v.clone())));
        vec![
            vec![],
            vec![Diff::Add {
                id: "a".into(),
                attrs: Attrs::new(),
            }],
            vec![
                Diff::Add {
                    id: "o1000-2".into(),
                    attrs,
                },
                Diff::Remove { id: "\u{0}".into() },
                Diff::set("c", "x", None),
                Diff::set("c", "x", Some(Value::Null)),
            ],
            sets.collect(),
        ]
    }

    #[test]
    fn frames_are_written_as_serde_json_writes_them() {
        for sample in samples() {
            let batch = ServerBatch {
                seq: 3,
                client_id: "client-0-0".into(),
                batch_id: u64::MAX,
                user_id: "user\u{2028}".into(),
                diffs: sample.clone(),
                checksum: Checksum(0xab),
            };
            let envelope = Envelope {
                join_ref: None,
                ref_: None,
                topic: "project:\"p\"",
                event: "batch",
            };
            assert_eq!(batch_frame(envelope.topic, &batch), envelope.encode(&batch));
            let envelope = Envelope {
                join_ref: Some("1"),
                ref_: Some("2\\"),
                topic: "project:p",
                event: "diffs",
            };
            let push = IncomingBatch {
                batch_id: 9,
                diffs: sample,
            };
            let written = diffs_push(&envelope, push.batch_id, &push.diffs);
            assert_eq!(written.text, envelope.encode(&push));
            let diffs = serde_json::to_string(&push.diffs).expect("diffs are JSON");
            assert_eq!(written.diffs(), diffs);
            let again = diffs_push_again(&envelope, push.batch_id, written.diffs());
            assert_eq!(again, written.text);
        }
    }

    #[test]
    fn answers_are_written_as_serde_json_writes_them() {
        #[derive(Serialize)]
        struct Reply<'a> {
            status: &'a str,
            response: &'a Ack,
        }
        let dropped = |index| DroppedDiff {
            index,
            reason: DropReason::MissingTarget,
        };
        let acks = [
            (vec![], vec![]),
            (vec![0, usize::MAX], vec![dropped(0), dropped(3)]),
        ];
        for (amended, dropped) in acks {
            let ack = Ack {
                seq: 41,
                checksum: Checksum(u64::MAX),
                amended,
                dropped,
            };
            let envelope = Envelope {
                join_ref: Some("1"),
                ref_: None,
                topic: "project:p",
                event: "phx_reply",
            };
            let reply = Reply {
                status: "ok",
                response: &ack,
            };
            let written = ack_reply(envelope.join_ref, envelope.ref_, envelope.topic, &ack);
            assert_eq!(written, envelope.encode(&reply));
        }
    }

    #[test]
    fn catch_ups_are_written_as_serde_json_writes_them() {
        #[derive(Serialize)]
        struct Reply<'a> {
            status: &'a str,
            response: &'a CatchUp<'a>,
        }
        // Every sample's adds as a document (the ones it can hold), in
        // groups under a parent too, and every sample as a batch.
        let mut document = Document::default();
        let _ = document.apply(Diff::Add {
            id: "frame".into(),
            attrs: Attrs::new(),
        });
        for (n, diff) in samples().into_iter().flatten().enumerate() {
            if let Diff::Add { id, mut attrs } = diff {
                if n % 2 == 0 {
                    attrs.insert("parent".into(), value!("frame"));
                }
                let _ = document.apply(Diff::Add { id, attrs });
            }
        }
        assert!(document.len() > 2, "the samples hold adds");
        let batches: Vec<ServerBatch> = samples()
            .into_iter()
            .enumerate()
            .map(|(n, diffs)| ServerBatch {
                seq: n as u64 + 1,
                client_id: "c\u{7}".into(),
                batch_id: 7,
                user_id: "u".into(),
                diffs,
                checksum: Checksum(n as u64),
            })
            .collect();
        let catch_ups = [
            (None, None),
            (Some(&document), None),
            (None, Some(batches.iter().collect())),
            (None, Some(vec![])),
        ];
        for (snapshot, batches) in catch_ups {
            let catch_up = CatchUp {
                seq: 12,
                checksum: document.checksum(),
                snapshot,
                batches,
            };
            let envelope = Envelope {
                join_ref: Some("3"),
                ref_: Some("3"),
                topic: "project:p",
                event: "phx_reply",
            };
            let reply = Reply {
                status: "ok",
                response: &catch_up,
            };
            let written = catch_up_reply(
                envelope.join_ref,
                envelope.ref_,
                envelope.topic,
                "ok",
                &catch_up,
            );
            assert_eq!(written, envelope.encode(&reply));
        }
    }
}
