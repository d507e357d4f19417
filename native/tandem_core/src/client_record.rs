//! What a room remembers of each client so that a retried batch is answered
//! as the first time (or known never to have been sequenced), and that
//! memory's MessagePack form in a snapshot.
//!
//! The form is serde's (`rmp_serde` with field names), which every snapshot
//! so far was written in and which [`crate::snapshot`] still reads whatever
//! the bytes hold. [`Record::write`] and [`Record::read`] write and read the
//! same bytes by hand: a room's snapshot carries up to [`RETRY_WINDOW`] acks
//! per client, and through serde's visitors their reading and writing were
//! most of what a restart of the fuzzer's simulated server cost, more than
//! its document (BENCHMARKS.md, Fuzzer). The reader takes exactly the layout
//! the writer writes and gives way to serde at anything else.

use crate::document::DropReason;
use crate::msgpack_objects::{
    write_array_len, write_checksum, write_map_len, write_str, write_uint, Reader,
};
use crate::room::{Ack, DroppedDiff, Rejection, Submitted};
use crate::snapshot::Record;
use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many recent outcomes per client are kept to answer retries.
pub const RETRY_WINDOW: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClientRecord {
    pub(crate) last_batch_id: u64,
    pub(crate) recent: VecDeque<(u64, Ack)>,
}

impl ClientRecord {
    /// The answer to `batch_id` at or below the last one sequenced: its
    /// original ack; or, when it is not among the remembered ones although
    /// every id sequenced since the oldest remembered one is, the certainty
    /// that it was never sequenced (a batch refused as `unavailable` while
    /// a later one went through): the client can then send it again under a
    /// new id without any risk of applying it twice. Older ids are unknown.
    pub(crate) fn retry(&self, batch_id: u64) -> Result<Submitted, Rejection> {
        if let Some((_, ack)) = self.recent.iter().find(|(id, _)| *id == batch_id) {
            return Ok(Submitted::Duplicate(ack.clone()));
        }
        let remembers_all = self.recent.len() < RETRY_WINDOW;
        let oldest = self.recent.front().map_or(0, |(id, _)| *id);
        if remembers_all || batch_id > oldest {
            return Err(Rejection::NotSequenced { batch_id });
        }
        Err(Rejection::StaleBatch { batch_id })
    }
}

impl Record for ClientRecord {
    fn write(&self, out: &mut Vec<u8>) {
        write_map_len(out, 2);
        write_str(out, "last_batch_id");
        write_uint(out, self.last_batch_id);
        write_str(out, "recent");
        write_array_len(out, self.recent.len());
        for (batch_id, ack) in &self.recent {
            write_array_len(out, 2);
            write_uint(out, *batch_id);
            write_ack(out, ack);
        }
    }

    fn read(reader: &mut Reader<'_>) -> Option<ClientRecord> {
        (reader.map_len().ok()? == 2).then_some(())?;
        reader.key("last_batch_id")?;
        let last_batch_id = reader.uint().ok()?;
        reader.key("recent")?;
        let len = reader.array_len().ok()?;
        let mut recent = VecDeque::with_capacity(len.min(reader.remaining()));
        for _ in 0..len {
            (reader.array_len().ok()? == 2).then_some(())?;
            recent.push_back((reader.uint().ok()?, read_ack(reader)?));
        }
        Some(ClientRecord {
            last_batch_id,
            recent,
        })
    }
}

pub(crate) fn write_ack(out: &mut Vec<u8>, ack: &Ack) {
    write_map_len(out, 4);
    write_str(out, "seq");
    write_uint(out, ack.seq);
    write_str(out, "checksum");
    write_checksum(out, ack.checksum);
    write_str(out, "amended");
    write_array_len(out, ack.amended.len());
    for &index in &ack.amended {
        write_uint(out, index as u64);
    }
    write_str(out, "dropped");
    write_array_len(out, ack.dropped.len());
    // Rare, and a reason's wire name is serde's: through serde.
    for dropped in &ack.dropped {
        rmp_serde::encode::write_named(out, dropped).expect("writing to a Vec never fails");
    }
}

pub(crate) fn read_ack(reader: &mut Reader<'_>) -> Option<Ack> {
    (reader.map_len().ok()? == 4).then_some(())?;
    reader.key("seq")?;
    let seq = reader.uint().ok()?;
    reader.key("checksum")?;
    let checksum = reader.checksum()?;
    reader.key("amended")?;
    let len = reader.array_len().ok()?;
    let mut amended = Vec::with_capacity(len.min(reader.remaining()));
    for _ in 0..len {
        amended.push(usize::try_from(reader.uint().ok()?).ok()?);
    }
    reader.key("dropped")?;
    let len = reader.array_len().ok()?;
    let mut dropped = Vec::with_capacity(len.min(reader.remaining()));
    for _ in 0..len {
        (reader.map_len().ok()? == 2).then_some(())?;
        reader.key("index")?;
        let index = usize::try_from(reader.uint().ok()?).ok()?;
        reader.key("reason")?;
        let name = StrDeserializer::<ValueError>::new(reader.str().ok()?);
        let reason = DropReason::deserialize(name).ok()?;
        dropped.push(DroppedDiff { index, reason });
    }
    Some(Ack {
        seq,
        checksum,
        amended,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use proptest::prelude::*;

    fn ack(seq: u64, amended: Vec<usize>, dropped: Vec<DroppedDiff>) -> Ack {
        Ack {
            seq,
            checksum: Checksum(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            amended,
            dropped,
        }
    }

    fn records() -> impl Strategy<Value = ClientRecord> {
        let reasons = prop::sample::select(vec![
            DropReason::MissingTarget,
            DropReason::ParentCycle,
            DropReason::TooManyObjects,
        ]);
        let dropped =
            (any::<usize>(), reasons).prop_map(|(index, reason)| DroppedDiff { index, reason });
        let acks = (
            any::<u64>(),
            prop::collection::vec(any::<usize>(), 0..3),
            prop::collection::vec(dropped, 0..3),
        )
            .prop_map(|(seq, amended, dropped)| ack(seq, amended, dropped));
        let recent = prop::collection::vec((any::<u64>(), acks), 0..20);
        (any::<u64>(), recent).prop_map(|(last_batch_id, recent)| ClientRecord {
            last_batch_id,
            recent: recent.into(),
        })
    }

    fn written(record: &ClientRecord) -> Vec<u8> {
        let mut out = Vec::new();
        record.write(&mut out);
        out
    }

    proptest! {
        #[test]
        fn a_record_is_written_as_serde_writes_it_and_read_back(record in records()) {
            let bytes = written(&record);
            prop_assert_eq!(&bytes, &rmp_serde::to_vec_named(&record).unwrap());
            let mut reader = Reader::new(&bytes);
            prop_assert_eq!(ClientRecord::read(&mut reader), Some(record));
            prop_assert!(reader.is_empty());
        }

        #[test]
        fn a_truncated_or_altered_record_is_never_misread(
            record in records(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            // Whatever the hand-written reader accepts, serde reads the same.
            let mut bytes = written(&record);
            let at = at.index(bytes.len());
            for candidate in [bytes[..at].to_vec(), { bytes[at] = byte; bytes }] {
                let mut reader = Reader::new(&candidate);
                if let Some(read) = ClientRecord::read(&mut reader) {
                    let rest = reader.remaining();
                    let by_serde: ClientRecord =
                        rmp_serde::from_slice(&candidate[..candidate.len() - rest]).unwrap();
                    prop_assert_eq!(read, by_serde);
                }
            }
        }
    }

    #[test]
    fn retries_are_answered_from_the_window_or_refused_as_never_sequenced_or_stale() {
        let mut record = ClientRecord::default();
        for batch_id in 1..=RETRY_WINDOW as u64 + 10 {
            record.last_batch_id = batch_id;
            record
                .recent
                .push_back((batch_id, ack(batch_id, vec![], vec![])));
            if record.recent.len() > RETRY_WINDOW {
                record.recent.pop_front();
            }
        }
        let newest = RETRY_WINDOW as u64 + 10;
        assert_eq!(
            record.retry(newest),
            Ok(Submitted::Duplicate(ack(newest, vec![], vec![])))
        );
        assert_eq!(record.retry(3), Err(Rejection::StaleBatch { batch_id: 3 }));
        record.recent.retain(|(id, _)| *id != newest - 1);
        assert_eq!(
            record.retry(newest - 1),
            Err(Rejection::NotSequenced {
                batch_id: newest - 1
            })
        );
    }
}
