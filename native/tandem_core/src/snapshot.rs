//! The at-rest form of a room, and why its restore is cheap.
//!
//! Format 2 is the magic `TDS2`, the XXH3-64 digest (little-endian) of
//! everything after it, then MessagePack `{format, seq, checksum, clients,
//! document}` where `document` is the MessagePack map of objects carried as
//! a byte string (so [`read_document`] can read it, and [`write_document`]
//! write it, without serde).
//!
//! Restoring verifies the digest (gigabytes per second) instead of
//! recomputing the document's checksum term by term (a canonical-JSON hash
//! per attribute, hundreds of thousands for a large document): the stored
//! checksum was the live document's, and bytes that match their digest decode
//! to that same document. A flipped bit anywhere fails the digest. The tree,
//! the limits and the sibling index are still checked and rebuilt as for any
//! document from outside.
//!
//! Format 1 (a bare MessagePack map with the document inline, no digest) is
//! still read, with the checksum recomputed and compared, so rooms stored
//! before format 2 keep loading.
//!
//! The envelope is serde's form of [`Envelope`]; it is written by hand, and
//! read by hand when it has exactly the layout written (anything else is
//! read through serde, as before), with each client's record through its
//! [`Record`] implementation: a room snapshots and restores the memory of
//! its clients on every restart, and serde's dispatch per value was most of
//! that (see [`crate::client_record`]).

use crate::checksum::Checksum;
use crate::codec;
use crate::diff::{Attrs, ObjectId};
use crate::document::Document;
use crate::limits::Limits;
use crate::msgpack_objects::{
    read_document, write_checksum, write_document, write_map_len, write_str, write_uint, Reader,
};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 4] = b"TDS2";
/// The magic and the digest.
const HEADER: usize = MAGIC.len() + 8;
const FORMAT: u32 = 2;
const LEGACY_FORMAT: u32 = 1;
/// A first reservation for a document's bytes, per object (a small layer
/// takes about 80); a larger document grows the buffer as usual.
const OBJECT_BYTES_GUESS: usize = 64;
/// The same for a client's record (a few dozen bytes an ack).
const CLIENT_BYTES_GUESS: usize = 1024;

/// A per-client record as a snapshot carries it: serde's MessagePack form
/// (with field names), written and read by hand.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// Appends exactly what `rmp_serde::to_vec_named` writes for `self`.
    fn write(&self, out: &mut Vec<u8>);
    /// Reads what [`Record::write`] writes; `None` at anything else (the
    /// whole snapshot is then read through serde).
    fn read(reader: &mut Reader<'_>) -> Option<Self>;
}

/// What a snapshot holds: the room's sequence number, its document and its
/// per-client retry records (`C`, opaque to this module).
pub(crate) struct Snapshot<C> {
    pub seq: u64,
    pub document: Document,
    pub clients: FxHashMap<String, C>,
}

#[derive(Serialize, Deserialize)]
struct Envelope<'a, C> {
    format: u32,
    seq: u64,
    checksum: Checksum,
    clients: C,
    #[serde(borrow, with = "serde_bytes")]
    document: &'a [u8],
}

#[derive(Deserialize)]
struct Legacy<C> {
    format: u32,
    seq: u64,
    checksum: Checksum,
    document: FxHashMap<ObjectId, Attrs>,
    clients: FxHashMap<String, C>,
}

/// Encodes a room's state.
pub(crate) fn encode<C: Record>(
    seq: u64,
    document: &Document,
    clients: &FxHashMap<String, C>,
) -> Vec<u8> {
    let mut objects = Vec::with_capacity(document.len() * OBJECT_BYTES_GUESS);
    write_document(document, &mut objects);
    let capacity = objects.len() + clients.len() * CLIENT_BYTES_GUESS;
    seal(capacity, |body| {
        write_envelope(body, seq, document.checksum(), clients, &objects)
    })
}

/// Writes what `rmp_serde::to_vec_named` writes for the [`Envelope`] of
/// these parts.
fn write_envelope<C: Record>(
    out: &mut Vec<u8>,
    seq: u64,
    checksum: Checksum,
    clients: &FxHashMap<String, C>,
    objects: &[u8],
) {
    write_map_len(out, 5);
    write_str(out, "format");
    write_uint(out, u64::from(FORMAT));
    write_str(out, "seq");
    write_uint(out, seq);
    write_str(out, "checksum");
    write_checksum(out, checksum);
    write_str(out, "clients");
    write_map_len(out, clients.len());
    for (client_id, record) in clients {
        write_str(out, client_id);
        record.write(out);
    }
    write_str(out, "document");
    let len = u32::try_from(objects.len()).expect("a document of fewer than 4 GiB");
    rmp::encode::write_bin_len(out, len).expect("writing to a Vec never fails");
    out.extend_from_slice(objects);
}

/// Reads an envelope laid out as [`write_envelope`] writes it.
fn read_envelope<C: Record>(body: &[u8]) -> Option<Envelope<'_, FxHashMap<String, C>>> {
    let mut reader = Reader::new(body);
    (reader.map_len().ok()? == 5).then_some(())?;
    reader.key("format")?;
    let format = u32::try_from(reader.uint().ok()?).ok()?;
    reader.key("seq")?;
    let seq = reader.uint().ok()?;
    reader.key("checksum")?;
    let checksum = reader.checksum()?;
    reader.key("clients")?;
    let len = reader.map_len().ok()?;
    let mut clients = FxHashMap::default();
    clients.reserve(len.min(reader.remaining()));
    for _ in 0..len {
        let client_id = reader.str().ok()?.to_owned();
        clients.insert(client_id, C::read(&mut reader)?);
    }
    reader.key("document")?;
    let document = reader.bin().ok()?;
    reader.is_empty().then_some(Envelope {
        format,
        seq,
        checksum,
        clients,
        document,
    })
}

/// Frames the body that `write_body` writes with the magic and the
/// digest of those bytes (written in place: the body is not copied).
fn seal(capacity: usize, write_body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + capacity);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[0; 8]);
    write_body(&mut bytes);
    let digest = xxh3_64(&bytes[HEADER..]);
    bytes[MAGIC.len()..HEADER].copy_from_slice(&digest.to_le_bytes());
    bytes
}

/// Decodes and verifies a snapshot, rebuilding the document under `limits`.
pub(crate) fn decode<C: Record>(bytes: &[u8], limits: Limits) -> Result<Snapshot<C>, String> {
    match bytes.strip_prefix(MAGIC) {
        Some(rest) => decode_current(rest, limits),
        None => decode_legacy(bytes, limits),
    }
}

fn decode_current<C: Record>(rest: &[u8], limits: Limits) -> Result<Snapshot<C>, String> {
    let Some((stored, body)) = rest.split_first_chunk::<8>() else {
        return Err("truncated snapshot".into());
    };
    let (stored, digest) = (u64::from_le_bytes(*stored), xxh3_64(body));
    if digest != stored {
        return Err(format!(
            "snapshot digest {digest:016x} does not match the stored {stored:016x}"
        ));
    }
    let envelope: Envelope<'_, FxHashMap<String, C>> = match read_envelope(body) {
        Some(envelope) => envelope,
        None => codec::from_msgpack(body).map_err(|e| format!("unreadable snapshot: {e}"))?,
    };
    if envelope.format != FORMAT {
        return Err(format!("unknown snapshot format {}", envelope.format));
    }
    let document = read_document(envelope.document, limits, Some(envelope.checksum))
        .map_err(|e| format!("unreadable snapshot document: {e}"))?;
    Ok(Snapshot {
        seq: envelope.seq,
        document,
        clients: envelope.clients,
    })
}

fn decode_legacy<C: DeserializeOwned>(bytes: &[u8], limits: Limits) -> Result<Snapshot<C>, String> {
    let legacy: Legacy<C> =
        codec::from_msgpack(bytes).map_err(|e| format!("unreadable snapshot: {e}"))?;
    if legacy.format != LEGACY_FORMAT {
        return Err(format!("unknown snapshot format {}", legacy.format));
    }
    let document = Document::from_objects(legacy.document, limits).map_err(|e| e.to_string())?;
    if document.checksum() != legacy.checksum {
        return Err(format!(
            "snapshot checksum {} does not match its contents ({})",
            legacy.checksum,
            document.checksum()
        ));
    }
    Ok(Snapshot {
        seq: legacy.seq,
        document,
        clients: legacy.clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Clients = FxHashMap<String, u64>;

    impl Record for u64 {
        fn write(&self, out: &mut Vec<u8>) {
            write_uint(out, *self);
        }
        fn read(reader: &mut Reader<'_>) -> Option<u64> {
            reader.uint().ok()
        }
    }

    fn document() -> Document {
        let objects = [
            ("frame", json!({"name": "Frame", "z": "80"})),
            (
                "a",
                json!({"parent": "frame", "z": "80", "x": -1.5, "tags": ["x", {"k": null}]}),
            ),
            (
                "b",
                json!({"parent": "frame", "z": "8080", "label": "ünïcødé"}),
            ),
        ];
        Document::from_objects(
            objects.map(|(id, attrs)| (id.into(), serde_json::from_value(attrs).unwrap())),
            Limits::default(),
        )
        .unwrap()
    }

    fn clients() -> Clients {
        FxHashMap::from_iter([("c1".to_owned(), 7)])
    }

    fn restore(bytes: &[u8]) -> Result<Snapshot<u64>, String> {
        decode(bytes, Limits::default())
    }

    #[test]
    fn a_snapshot_restores_the_same_room() {
        let doc = document();
        let back = restore(&encode(9, &doc, &clients())).unwrap();
        assert_eq!(back.document, doc);
        assert_eq!(back.document.checksum(), doc.full_checksum());
        assert_eq!((back.seq, back.clients), (9, clients()));
    }

    #[test]
    fn any_flipped_bit_or_truncation_is_refused() {
        let bytes = encode(9, &document(), &clients());
        for at in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= bit;
                assert!(restore(&bad).is_err(), "flipping {bit:#x} at byte {at}");
            }
            assert!(restore(&bytes[..at]).is_err(), "truncated to {at} bytes");
        }
    }

    fn sealed(body: &impl Serialize) -> Vec<u8> {
        seal(0, |out| out.extend(codec::to_msgpack(body)))
    }

    fn sealed_document(objects: &[u8]) -> Vec<u8> {
        sealed(&Envelope {
            format: FORMAT,
            seq: 1,
            checksum: Checksum::default(),
            clients: &Clients::default(),
            document: objects,
        })
    }

    fn many_clients() -> Clients {
        let sizes = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, u64::MAX];
        let ids = (0..40).map(|n| "c".repeat(n % 3 + 1) + &n.to_string());
        ids.zip(sizes.iter().cycle())
            .map(|(id, &n)| (id, n))
            .collect()
    }

    #[test]
    fn the_envelope_is_written_byte_for_byte_as_serde_writes_it() {
        let doc = document();
        for (seq, clients) in [(0, Clients::default()), (u64::MAX, many_clients())] {
            let bytes = encode(seq, &doc, &clients);
            let objects = codec::to_msgpack(&doc);
            let by_serde = codec::to_msgpack(&Envelope {
                format: FORMAT,
                seq,
                checksum: doc.checksum(),
                clients: &clients,
                document: &objects,
            });
            assert_eq!(bytes[HEADER..], by_serde[..]);
            let back = restore(&bytes).unwrap();
            assert_eq!((back.seq, back.clients), (seq, clients));
        }
    }

    #[test]
    fn an_envelope_laid_out_otherwise_is_read_through_serde() {
        #[derive(Serialize)]
        struct Reordered<'a> {
            document: &'a serde_bytes::Bytes,
            clients: Clients,
            checksum: Checksum,
            seq: u64,
            format: u32,
        }
        let doc = document();
        let objects = codec::to_msgpack(&doc);
        let bytes = sealed(&Reordered {
            document: serde_bytes::Bytes::new(&objects),
            clients: many_clients(),
            checksum: doc.checksum(),
            seq: 3,
            format: FORMAT,
        });
        let back = restore(&bytes).unwrap();
        assert_eq!((back.seq, back.clients), (3, many_clients()));
        assert_eq!(back.document, doc);
    }

    #[test]
    fn a_sealed_but_malformed_document_is_refused_with_its_reason() {
        let mut twice = Vec::new();
        rmp::encode::write_map_len(&mut twice, 2).unwrap();
        for _ in 0..2 {
            rmp::encode::write_str(&mut twice, "a").unwrap();
            rmp::encode::write_map_len(&mut twice, 0).unwrap();
        }
        let error = restore(&sealed_document(&twice)).err().unwrap();
        assert!(error.contains("\"a\" appears twice"), "{error}");

        let mut orphan = Vec::new();
        rmp::encode::write_map_len(&mut orphan, 1).unwrap();
        rmp::encode::write_str(&mut orphan, "a").unwrap();
        rmp::encode::write_map_len(&mut orphan, 1).unwrap();
        rmp::encode::write_str(&mut orphan, "parent").unwrap();
        rmp::encode::write_str(&mut orphan, "gone").unwrap();
        let error = restore(&sealed_document(&orphan)).err().unwrap();
        assert!(error.contains("parent that does not exist"), "{error}");

        let mut trailing = codec::to_msgpack(&document());
        trailing.push(0xc0);
        let error = restore(&sealed_document(&trailing)).err().unwrap();
        assert!(error.contains("trailing bytes"), "{error}");
    }

    #[derive(Serialize)]
    struct LegacyOut<'a> {
        format: u32,
        seq: u64,
        checksum: Checksum,
        document: &'a Document,
        clients: Clients,
    }

    #[test]
    fn format_1_snapshots_still_load_and_their_checksum_is_checked() {
        let doc = document();
        let legacy = |checksum| {
            codec::to_msgpack(&LegacyOut {
                format: LEGACY_FORMAT,
                seq: 4,
                checksum,
                document: &doc,
                clients: clients(),
            })
        };
        let back = restore(&legacy(doc.checksum())).unwrap();
        assert_eq!(
            (back.seq, back.document, back.clients),
            (4, doc.clone(), clients())
        );
        let lie = Checksum::default();
        assert!(restore(&legacy(lie))
            .err()
            .unwrap()
            .contains("does not match"));
    }
}
