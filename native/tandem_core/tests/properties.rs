//! Property tests of the diff engine. Each case is driven by one u64 seed that
//! proptest chooses and prints on failure ("minimal failing input: seed = …").
//! proptest also appends that case to `properties.proptest-regressions`
//! (commit it) and re-runs it first on every later run. To replay a
//! convergence seed by hand:
//! `REPLAY_SEED=<seed> REPLAY_CLIENTS=<k> cargo test -p tandem_core --test properties replay -- --ignored`.
//! `PROPTEST_CASES` sets the number of cases per property (default 256 here).

mod common;

use common::{batch, sibling_z_unique, Gen};
use proptest::prelude::*;
use std::collections::VecDeque;
use tandem_core::codec;
use tandem_core::document::SnapshotError;
use tandem_core::room::{IncomingBatch, LogBounds, Submitted};
use tandem_core::{Attrs, Diff, Document, Limits, ObjectId, Replica, Room, ServerBatch};

/// A document built by `steps` random batches.
fn random_document(g: &mut Gen, steps: usize) -> Document {
    let mut doc = Document::default();
    let mut serial = 0;
    for _ in 0..steps {
        let diffs = batch(g, &doc, "d", &mut serial, 4);
        doc.apply_batch(diffs);
    }
    doc
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inverse_restores_document_and_checksum(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let steps = 1 + g.below(30);
        let mut doc = random_document(&mut g, steps);
        let before = doc.clone();
        let mut serial = 1000;
        let diffs = batch(&mut g, &doc, "x", &mut serial, 8);
        let result = doc.apply_batch(diffs);
        doc.apply_batch(result.inverse);
        prop_assert_eq!(&doc, &before);
        prop_assert_eq!(doc.checksum(), before.checksum());
    }

    #[test]
    fn incremental_checksum_equals_full(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let mut doc = Document::default();
        let mut serial = 0;
        for _ in 0..40 {
            let diffs = batch(&mut g, &doc, "d", &mut serial, 3);
            doc.apply_batch(diffs);
            prop_assert_eq!(doc.checksum(), doc.full_checksum());
            prop_assert!(sibling_z_unique(&doc), "sibling z collision in {:?}", doc);
        }
    }

    #[test]
    fn resolution_is_deterministic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let steps = 1 + g.below(20);
        let doc = random_document(&mut g, steps);
        let mut serial = 500;
        let diffs = batch(&mut g, &doc, "x", &mut serial, 8);
        let (mut a, mut b) = (doc.clone(), doc.clone());
        prop_assert_eq!(a.apply_batch(diffs.clone()), b.apply_batch(diffs));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn codecs_round_trip(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let doc = random_document(&mut g, 10);
        let mut serial = 0;
        let diffs = batch(&mut g, &doc, "x", &mut serial, 8);
        let incoming = IncomingBatch { batch_id: g.next() >> 12, diffs };
        let json: IncomingBatch = codec::from_json(&codec::to_json(&incoming)).unwrap();
        let msgpack: IncomingBatch = codec::from_msgpack(&codec::to_msgpack(&incoming)).unwrap();
        prop_assert_eq!(&json, &incoming);
        prop_assert_eq!(&msgpack, &incoming);

        let mut room = Room::new(Limits::default(), LogBounds::default());
        let Ok(Submitted::Accepted { batch, ack }) = room.submit("c", "u", incoming) else {
            panic!("a fresh batch is accepted");
        };
        let back: ServerBatch = codec::from_json(&codec::to_json(batch.as_ref())).unwrap();
        prop_assert_eq!(&back, batch.as_ref());
        let back: ServerBatch = codec::from_msgpack(&codec::to_msgpack(batch.as_ref())).unwrap();
        prop_assert_eq!(&back, batch.as_ref());
        let back: tandem_core::Ack = codec::from_msgpack(&codec::to_msgpack(&ack)).unwrap();
        prop_assert_eq!(&back, &ack);
        let back: tandem_core::Ack = codec::from_json(&codec::to_json(&ack)).unwrap();
        prop_assert_eq!(back, ack);

        let restored = Room::restore(&room.snapshot(), Limits::default(), LogBounds::default()).unwrap();
        prop_assert_eq!(restored.document(), room.document());
        prop_assert_eq!(restored.seq(), room.seq());
        let doc_json: Document = serde_json::from_slice(&codec::to_json(room.document())).unwrap();
        prop_assert_eq!(&doc_json, room.document());
    }

    #[test]
    fn clients_converge_with_the_server(seed in any::<u64>(), clients in 2usize..=5) {
        converge(seed, clients, 60);
    }

    #[test]
    fn clients_converge_over_long_sessions(seed in any::<u64>()) {
        converge(seed, 4, 400);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::from_json::<IncomingBatch>(&bytes);
        let _ = codec::from_msgpack::<IncomingBatch>(&bytes);
        let _ = codec::from_msgpack::<ServerBatch>(&bytes);
        let _ = Room::restore(&bytes, Limits::default(), LogBounds::default());
    }

    #[test]
    fn hostile_diffs_never_panic(diff in hostile_diff(), seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let mut doc = random_document(&mut g, 5);
        let _ = doc.apply(diff);
        prop_assert_eq!(doc.checksum(), doc.full_checksum());
    }

    /// Objects `o0`, `o1`... each with no parent or the id of some `oN`,
    /// which may not exist, listed in any order: a document is built from
    /// them exactly when every parent exists and no chain of parents loops,
    /// and then every object is in the tree.
    #[test]
    fn built_documents_are_trees(parents in proptest::collection::vec(proptest::option::of(0usize..12), 0..10)) {
        let n = parents.len();
        let objects = parents.iter().enumerate().map(|(i, parent)| {
            let mut attrs = Attrs::new();
            if let Some(p) = parent {
                attrs.insert("parent".into(), format!("o{p}").into());
            }
            (ObjectId::from(format!("o{i}")), attrs)
        });
        let built = Document::from_objects(objects, Limits::default());
        let loops = (0..n).any(|start| {
            let mut at = Some(start);
            for _ in 0..=n {
                match at {
                    Some(i) if i < n => at = parents[i],
                    _ => return false,
                }
            }
            true
        });
        match built {
            Err(SnapshotError::DanglingParent(_)) => prop_assert!(parents.iter().flatten().any(|&p| p >= n)),
            Err(SnapshotError::Cycle) => prop_assert!(loops && parents.iter().flatten().all(|&p| p < n)),
            Err(other) => prop_assert!(false, "unexpected {other}"),
            Ok(doc) => {
                prop_assert!(!loops && parents.iter().flatten().all(|&p| p < n));
                let mut stack: Vec<Option<&str>> = vec![None];
                let mut reached = 0;
                while let Some(parent) = stack.pop() {
                    for kid in doc.children(parent) {
                        reached += 1;
                        stack.push(Some(kid));
                    }
                }
                prop_assert_eq!(reached, n);
            }
        }
    }
}

fn hostile_value() -> impl Strategy<Value = tandem_core::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(48, 256, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
    .prop_map(tandem_core::Value::from)
}

fn hostile_diff() -> impl Strategy<Value = Diff> {
    let id = prop_oneof![Just("d1".to_string()), Just(String::new()), ".{0,200}"];
    let key = prop_oneof![
        Just("parent".to_string()),
        Just("z".to_string()),
        Just("name".to_string()),
        ".{0,200}"
    ];
    prop_oneof![
        (
            id.clone(),
            proptest::collection::btree_map(key.clone(), hostile_value(), 0..6)
        )
            .prop_map(|(id, attrs)| Diff::Add {
                id: id.into(),
                attrs: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect()
            }),
        id.clone().prop_map(|id| Diff::Remove { id: id.into() }),
        (id, key, proptest::option::of(hostile_value())).prop_map(|(id, key, value)| Diff::Set {
            id: id.into(),
            key: key.into(),
            value
        }),
    ]
}

/// K clients edit concurrently (with undo), their batches reach the server in
/// a random interleaving (each client's own in order, as over one socket),
/// server batches reach each client with random delays; after the quiet
/// period every replica equals the server.
fn converge(seed: u64, k: usize, steps: usize) {
    let mut g = Gen::new(seed);
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut replicas: Vec<Replica> = (0..k)
        .map(|i| Replica::new(format!("client-{i}"), 0, Document::default(), 1))
        .collect();
    let mut to_server: Vec<VecDeque<IncomingBatch>> = vec![VecDeque::new(); k];
    let mut inbox: Vec<VecDeque<ServerBatch>> = vec![VecDeque::new(); k];
    let mut undo: Vec<Vec<Vec<Diff>>> = vec![Vec::new(); k];
    let mut serial = 0u64;

    let serve = |room: &mut Room,
                 q: &mut VecDeque<IncomingBatch>,
                 c: usize,
                 inbox: &mut Vec<VecDeque<ServerBatch>>| {
        if let Some(b) = q.pop_front() {
            if let Ok(Submitted::Accepted { batch, .. }) =
                room.submit(&format!("client-{c}"), "u", b)
            {
                inbox
                    .iter_mut()
                    .for_each(|i| i.push_back(batch.as_ref().clone()));
            }
        }
    };

    for _ in 0..steps {
        let c = g.below(k);
        match g.below(10) {
            0..=3 => {
                let diffs = batch(
                    &mut g,
                    replicas[c].document(),
                    &format!("c{c}-"),
                    &mut serial,
                    3,
                );
                let edit = replicas[c].edit(diffs);
                if let Some(id) = edit.batch_id {
                    let p = replicas[c].pending().find(|p| p.batch_id == id).unwrap();
                    to_server[c].push_back(IncomingBatch {
                        batch_id: id,
                        diffs: p.diffs.clone(),
                    });
                    undo[c].push(edit.inverse);
                }
            }
            4 => {
                if let Some(inverse) = undo[c].pop() {
                    let edit = replicas[c].edit(inverse);
                    if let Some(id) = edit.batch_id {
                        let p = replicas[c].pending().find(|p| p.batch_id == id).unwrap();
                        to_server[c].push_back(IncomingBatch {
                            batch_id: id,
                            diffs: p.diffs.clone(),
                        });
                    }
                }
            }
            5..=7 => serve(&mut room, &mut to_server[c], c, &mut inbox),
            _ => {
                let n = g.below(inbox[c].len() + 1);
                let batches: Vec<ServerBatch> = inbox[c].drain(..n).collect();
                let received = replicas[c]
                    .receive(&batches)
                    .expect("in-order delivery has no gap");
                assert!(
                    received.mismatch.is_none(),
                    "seed {seed}: {:?}",
                    received.mismatch
                );
            }
        }
    }
    // Quiet period: everything in flight arrives.
    for (c, queue) in to_server.iter_mut().enumerate() {
        while !queue.is_empty() {
            serve(&mut room, queue, c, &mut inbox);
        }
    }
    for c in 0..k {
        let batches: Vec<ServerBatch> = inbox[c].drain(..).collect();
        let received = replicas[c].receive(&batches).expect("no gap");
        assert!(
            received.mismatch.is_none(),
            "seed {seed}: {:?}",
            received.mismatch
        );
        let r = &mut replicas[c];
        assert_eq!(r.seq(), room.seq(), "seed {seed}: client {c} seq");
        assert_eq!(r.pending().len(), 0, "seed {seed}: client {c} pending");
        let view = r.document();
        assert_eq!(view, room.document(), "seed {seed}: client {c} diverged");
        assert_eq!(view.checksum(), view.full_checksum());
    }
}

/// Replays one seed by hand: `cargo test -p tandem_core --test properties replay -- --ignored`
/// after setting `REPLAY_SEED`.
#[test]
#[ignore]
fn replay() {
    let seed = std::env::var("REPLAY_SEED")
        .expect("REPLAY_SEED")
        .parse()
        .unwrap();
    let clients = std::env::var("REPLAY_CLIENTS").map_or(3, |c| c.parse().unwrap());
    converge(seed, clients, 60);
}
