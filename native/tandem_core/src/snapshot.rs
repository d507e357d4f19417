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

use crate::checksum::Checksum;
use crate::codec;
use crate::diff::{Attrs, ObjectId};
use crate::document::Document;
use crate::limits::Limits;
use crate::msgpack_objects::{read_document, write_document};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 4] = b"TDS2";
const FORMAT: u32 = 2;
const LEGACY_FORMAT: u32 = 1;
/// A first reservation for a document's bytes, per object (a small layer
/// takes about 80); a larger document grows the buffer as usual.
const OBJECT_BYTES_GUESS: usize = 64;

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
pub(crate) fn encode<C: Serialize>(
    seq: u64,
    document: &Document,
    clients: &FxHashMap<String, C>,
) -> Vec<u8> {
    let mut objects = Vec::with_capacity(document.len() * OBJECT_BYTES_GUESS);
    write_document(document, &mut objects);
    seal(&Envelope {
        format: FORMAT,
        seq,
        checksum: document.checksum(),
        clients,
        document: &objects,
    })
}

/// Frames an envelope with the magic and the digest of its encoding.
fn seal<C: Serialize>(envelope: &Envelope<'_, C>) -> Vec<u8> {
    let body = codec::to_msgpack(envelope);
    let mut bytes = Vec::with_capacity(MAGIC.len() + 8 + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&xxh3_64(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Decodes and verifies a snapshot, rebuilding the document under `limits`.
pub(crate) fn decode<C>(bytes: &[u8], limits: Limits) -> Result<Snapshot<C>, String>
where
    C: for<'de> Deserialize<'de>,
{
    match bytes.strip_prefix(MAGIC) {
        Some(rest) => decode_current(rest, limits),
        None => decode_legacy(bytes, limits),
    }
}

fn decode_current<C>(rest: &[u8], limits: Limits) -> Result<Snapshot<C>, String>
where
    C: for<'de> Deserialize<'de>,
{
    let Some((stored, body)) = rest.split_first_chunk::<8>() else {
        return Err("truncated snapshot".into());
    };
    let (stored, digest) = (u64::from_le_bytes(*stored), xxh3_64(body));
    if digest != stored {
        return Err(format!(
            "snapshot digest {digest:016x} does not match the stored {stored:016x}"
        ));
    }
    let envelope: Envelope<'_, FxHashMap<String, C>> =
        codec::from_msgpack(body).map_err(|e| format!("unreadable snapshot: {e}"))?;
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

fn decode_legacy<C>(bytes: &[u8], limits: Limits) -> Result<Snapshot<C>, String>
where
    C: for<'de> Deserialize<'de>,
{
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

    fn sealed_document(objects: &[u8]) -> Vec<u8> {
        seal(&Envelope {
            format: FORMAT,
            seq: 1,
            checksum: Checksum::default(),
            clients: &Clients::default(),
            document: objects,
        })
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
