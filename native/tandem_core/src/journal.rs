//! A journal entry's MessagePack form: serde's (`rmp_serde` with field
//! names, what every journal so far holds), written by hand, and read by
//! hand when laid out as written (anything else is read through serde).
//!
//! The room journals every batch it accepts before anyone hears of it, so
//! the writer is on the path of every edit; a restart reads the entries
//! after the last snapshot back. Through serde's dispatch per value both
//! took two to three times as long: a two-diff entry encodes in 126 ns
//! against 332 and decodes in 297 ns against 615 (BENCHMARKS.md, Fuzzer).

use crate::client_record::{read_ack, write_ack};
use crate::codec::{self, DecodeError};
use crate::diff::{Attrs, Diff};
use crate::msgpack_objects::{
    write_array_len, write_checksum, write_map_len, write_str, write_uint, write_value, Reader,
};
use crate::room::{Ack, JournalEntry, ServerBatch};

/// How deep below the entry a diff's value starts (entry, batch, diffs,
/// diff, attributes), with a margin: the reader leaves values nearer the
/// decode bound ([`crate::codec::MAX_DECODE_DEPTH`]) than serde would to
/// serde, whose count of the levels is then the one that holds.
const VALUE_DEPTH: usize = 8;

impl JournalEntry {
    /// Encodes an entry from its parts without cloning them (MessagePack).
    pub fn encode(batch: &ServerBatch, ack: &Ack) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + 64 * batch.diffs.len());
        write_map_len(&mut out, 2);
        write_str(&mut out, "batch");
        write_batch(&mut out, batch);
        write_str(&mut out, "ack");
        write_ack(&mut out, ack);
        out
    }

    /// Decodes what [`JournalEntry::encode`] wrote (or any other encoding
    /// of an entry that serde reads).
    pub fn decode(bytes: &[u8]) -> Result<JournalEntry, DecodeError> {
        read_entry(bytes).map_or_else(|| codec::from_msgpack(bytes), Ok)
    }
}

fn write_batch(out: &mut Vec<u8>, batch: &ServerBatch) {
    write_map_len(out, 6);
    write_str(out, "seq");
    write_uint(out, batch.seq);
    write_str(out, "client_id");
    write_str(out, &batch.client_id);
    write_str(out, "batch_id");
    write_uint(out, batch.batch_id);
    write_str(out, "user_id");
    write_str(out, &batch.user_id);
    write_str(out, "diffs");
    write_array_len(out, batch.diffs.len());
    for diff in &batch.diffs {
        write_diff(out, diff);
    }
    write_str(out, "checksum");
    write_checksum(out, batch.checksum);
}

/// A diff as serde's internally tagged form: `op` first, then the fields.
fn write_diff(out: &mut Vec<u8>, diff: &Diff) {
    match diff {
        Diff::Add { id, attrs } => {
            write_map_len(out, 3);
            write_str(out, "op");
            write_str(out, "add");
            write_str(out, "id");
            write_str(out, id);
            write_str(out, "attrs");
            write_map_len(out, attrs.len());
            for (name, value) in attrs {
                write_str(out, name);
                write_value(out, value);
            }
        }
        Diff::Remove { id } => {
            write_map_len(out, 2);
            write_str(out, "op");
            write_str(out, "remove");
            write_str(out, "id");
            write_str(out, id);
        }
        Diff::Set { id, key, value } => {
            write_map_len(out, 3 + usize::from(value.is_some()));
            write_str(out, "op");
            write_str(out, "set");
            write_str(out, "id");
            write_str(out, id);
            write_str(out, "key");
            write_str(out, key);
            if let Some(value) = value {
                write_str(out, "value");
                write_value(out, value);
            }
        }
    }
}

fn read_entry(bytes: &[u8]) -> Option<JournalEntry> {
    let mut reader = Reader::new(bytes);
    (reader.map_len().ok()? == 2).then_some(())?;
    reader.key("batch")?;
    let batch = read_batch(&mut reader)?;
    reader.key("ack")?;
    let ack = read_ack(&mut reader)?;
    reader.is_empty().then_some(JournalEntry { batch, ack })
}

fn read_batch(reader: &mut Reader<'_>) -> Option<ServerBatch> {
    (reader.map_len().ok()? == 6).then_some(())?;
    reader.key("seq")?;
    let seq = reader.uint().ok()?;
    reader.key("client_id")?;
    let client_id = reader.str().ok()?.to_owned();
    reader.key("batch_id")?;
    let batch_id = reader.uint().ok()?;
    reader.key("user_id")?;
    let user_id = reader.str().ok()?.to_owned();
    reader.key("diffs")?;
    let len = reader.array_len().ok()?;
    let mut diffs = Vec::with_capacity(len.min(reader.remaining()));
    for _ in 0..len {
        diffs.push(read_diff(reader)?);
    }
    reader.key("checksum")?;
    let checksum = reader.checksum()?;
    Some(ServerBatch {
        seq,
        client_id,
        batch_id,
        user_id,
        diffs,
        checksum,
    })
}

fn read_diff(reader: &mut Reader<'_>) -> Option<Diff> {
    let len = reader.map_len().ok()?;
    reader.key("op")?;
    let op = reader.str().ok()?;
    reader.key("id")?;
    let id = reader.str().ok()?.into();
    match (op, len) {
        ("add", 3) => {
            reader.key("attrs")?;
            let len = reader.map_len().ok()?;
            let mut attrs = Attrs::with_capacity(len.min(reader.remaining()));
            for _ in 0..len {
                let name = reader.str().ok()?.into();
                let value = reader.value(VALUE_DEPTH).ok()?;
                // As serde builds the map: in order appended, else inserted.
                if let Some((name, value)) = attrs.try_append(name, value) {
                    attrs.insert(name, value);
                }
            }
            Some(Diff::Add { id, attrs })
        }
        ("remove", 2) => Some(Diff::Remove { id }),
        ("set", 3 | 4) => {
            reader.key("key")?;
            let key = reader.str().ok()?.into();
            let value = match len {
                // A nil value is no value, as serde reads an `Option`.
                4 => {
                    reader.key("value")?;
                    Some(reader.value(VALUE_DEPTH).ok()?).filter(|v| !v.is_null())
                }
                _ => None,
            };
            Some(Diff::Set { id, key, value })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::document::DropReason;
    use crate::room::DroppedDiff;
    use serde::Serialize;
    use serde_json::json;

    fn entry() -> JournalEntry {
        let attrs: Attrs = serde_json::from_value(json!({
            "name": "layer ünï", "z": "80", "n": -3, "big": u64::MAX, "f": 1.5,
            "nested": {"r": [1, null, true, {"deep": "x".repeat(40)}]},
        }))
        .unwrap();
        JournalEntry {
            batch: ServerBatch {
                seq: 300,
                client_id: "client-1".into(),
                batch_id: 70_000,
                user_id: "u".repeat(40),
                diffs: vec![
                    Diff::Add {
                        id: "a".into(),
                        attrs,
                    },
                    Diff::Add {
                        id: "empty".into(),
                        attrs: Attrs::new(),
                    },
                    Diff::Remove { id: "b".into() },
                    Diff::set("a", "x", Some(json!(12).into())),
                    Diff::set("a", "x", None),
                ],
                checksum: Checksum(0x0123_4567_89ab_cdef),
            },
            ack: Ack {
                seq: 300,
                checksum: Checksum(7),
                amended: vec![0, 3],
                dropped: vec![DroppedDiff {
                    index: 2,
                    reason: DropReason::MissingTarget,
                }],
            },
        }
    }

    #[test]
    fn an_entry_is_written_as_serde_writes_it_and_read_back() {
        let entry = entry();
        let bytes = JournalEntry::encode(&entry.batch, &entry.ack);
        assert_eq!(bytes, codec::to_msgpack(&entry));
        assert_eq!(read_entry(&bytes), Some(entry.clone()));
        assert_eq!(JournalEntry::decode(&bytes), Ok(entry));
    }

    #[test]
    fn an_entry_laid_out_otherwise_is_read_through_serde() {
        #[derive(Serialize)]
        struct Reordered<'a> {
            ack: &'a Ack,
            batch: &'a ServerBatch,
        }
        let entry = entry();
        let bytes = codec::to_msgpack(&Reordered {
            ack: &entry.ack,
            batch: &entry.batch,
        });
        assert_eq!(read_entry(&bytes), None);
        assert_eq!(JournalEntry::decode(&bytes), Ok(entry));
    }

    #[test]
    fn no_truncation_or_altered_byte_is_read_otherwise_than_serde_reads_it() {
        let entry = entry();
        let bytes = JournalEntry::encode(&entry.batch, &entry.ack);
        let agree = |candidate: &[u8]| {
            if let Some(read) = read_entry(candidate) {
                let by_serde: JournalEntry = codec::from_msgpack(candidate).unwrap();
                assert_eq!(read, by_serde, "{candidate:?}");
            }
        };
        for at in 0..bytes.len() {
            agree(&bytes[..at]);
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xa0, 0xc0, 0xcc, 0xd9, 0xff] {
                let mut altered = bytes.clone();
                altered[at] = byte;
                agree(&altered);
            }
        }
    }
}
