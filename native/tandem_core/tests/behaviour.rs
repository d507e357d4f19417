//! Behaviour of the diff engine, one rule per test.

use tandem_core::room::{
    DroppedDiff, IncomingBatch, JournalEntry, LogBounds, ReplayError, Submitted,
};
use tandem_core::{value, Value};
use tandem_core::{Attrs, Diff, Document, DropReason, Limits, Outcome, Rejection, Replica, Room};

fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect()
}

fn add(id: &str, pairs: &[(&str, Value)]) -> Diff {
    Diff::Add {
        id: id.into(),
        attrs: attrs(pairs),
    }
}

fn z(doc: &Document, id: &str) -> String {
    doc.get(id)
        .unwrap()
        .get("z")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn dropped(doc: &mut Document, diff: Diff) -> DropReason {
    doc.apply(diff).expect_err("the diff should be dropped")
}

#[test]
fn nonsense_is_dropped_with_its_reason() {
    let mut doc = Document::default();
    doc.apply(add("a", &[])).unwrap();
    doc.apply(add("b", &[("parent", value!("a"))])).unwrap();
    let before = doc.clone();

    assert_eq!(dropped(&mut doc, add("a", &[])), DropReason::DuplicateAdd);
    assert_eq!(
        dropped(&mut doc, Diff::Remove { id: "x".into() }),
        DropReason::MissingTarget
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("x", "k", Some(value!(1)))),
        DropReason::MissingTarget
    );
    assert_eq!(
        dropped(&mut doc, add("c", &[("parent", value!("x"))])),
        DropReason::MissingParent
    );
    assert_eq!(
        dropped(&mut doc, add("c", &[("parent", value!(7))])),
        DropReason::InvalidParent
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "parent", Some(value!("b")))),
        DropReason::ParentCycle
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "parent", Some(value!("a")))),
        DropReason::ParentCycle
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "z", Some(value!("80 ")))),
        DropReason::MalformedZ
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "z", Some(value!("8A80")))),
        DropReason::MalformedZ
    );
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "z", Some(value!("7f")))),
        DropReason::MalformedZ
    );
    assert_eq!(
        dropped(&mut doc, add("c", &[("z", value!(1))])),
        DropReason::MalformedZ
    );
    assert_eq!(dropped(&mut doc, add("", &[])), DropReason::InvalidId);
    assert_eq!(
        dropped(&mut doc, Diff::set("a", "", Some(value!(1)))),
        DropReason::InvalidKey
    );
    assert_eq!(doc, before);
}

#[test]
fn colliding_z_is_amended_between_the_collider_and_the_next_sibling() {
    let mut doc = Document::default();
    for (id, zv) in [("a", "7f80"), ("b", "80"), ("c", "8180")] {
        doc.apply(add(id, &[("z", value!(zv))])).unwrap();
    }
    let applied = doc.apply(add("d", &[("z", value!("80"))])).unwrap();
    assert!(applied.amended);
    let fresh = z(&doc, "d");
    assert!("80" < fresh.as_str() && fresh.as_str() < "8180", "{fresh}");
    assert_eq!(doc.children(None).collect::<Vec<_>>(), ["a", "b", "d", "c"]);
    // What is broadcast is the diff as applied: it carries the fresh z.
    assert_eq!(applied.diffs, [add("d", &[("z", value!(fresh))])]);

    // Deterministic: the same collision elsewhere gets the same index.
    let mut other = Document::default();
    for (id, zv) in [("a", "7f80"), ("b", "80"), ("c", "8180")] {
        other.apply(add(id, &[("z", value!(zv))])).unwrap();
    }
    other.apply(add("d", &[("z", value!("80"))])).unwrap();
    assert_eq!(z(&other, "d"), fresh);
}

/// Found by `inverse_restores_document_and_checksum`, seed 6437427866128813698:
/// the inverse of a reparent that collided set the old z under the NEW parent
/// first, where it could collide again.
#[test]
fn reparent_into_colliding_z_seed_6437427866128813698() {
    let mut doc = Document::default();
    doc.apply(add("p", &[("z", value!("80"))])).unwrap();
    doc.apply(add("q", &[("z", value!("8180"))])).unwrap();
    doc.apply(add(
        "kid",
        &[("parent", value!("q")), ("z", value!("7f80"))],
    ))
    .unwrap();
    doc.apply(add("x", &[("parent", value!("p")), ("z", value!("7f80"))]))
        .unwrap();
    doc.apply(add("y", &[("parent", value!("q")), ("z", value!("80"))]))
        .unwrap();
    let before = doc.clone();

    let applied = doc
        .apply(Diff::set("x", "parent", Some(value!("q"))))
        .unwrap();
    assert!(applied.amended);
    assert_eq!(applied.diffs.len(), 2, "the move and the fresh z");
    assert_ne!(z(&doc, "x"), "7f80");
    assert_eq!(
        applied.diffs,
        [
            Diff::set("x", "parent", Some(value!("q"))),
            Diff::set("x", "z", Some(value!(z(&doc, "x")))),
        ]
    );
    doc.apply_batch(applied.inverse);
    assert_eq!(doc, before);
}

#[test]
fn remove_takes_the_subtree_and_its_inverse_brings_it_back() {
    let mut doc = Document::default();
    doc.apply(add("root", &[])).unwrap();
    doc.apply(add("g", &[("parent", value!("root"))])).unwrap();
    doc.apply(add(
        "k1",
        &[("parent", value!("g")), ("name", value!("one"))],
    ))
    .unwrap();
    doc.apply(add("k2", &[("parent", value!("k1"))])).unwrap();
    let before = doc.clone();

    let applied = doc.apply(Diff::Remove { id: "g".into() }).unwrap();
    assert_eq!(doc.len(), 1);
    assert_eq!(applied.inverse.len(), 3);
    doc.apply_batch(applied.inverse);
    assert_eq!(doc, before);
    assert_eq!(doc.checksum(), before.checksum());
}

#[test]
fn null_and_absent_values_unset() {
    let mut doc = Document::default();
    doc.apply(add("a", &[("name", value!("x")), ("gone", Value::Null)]))
        .unwrap();
    assert!(!doc.get("a").unwrap().contains_key("gone"));
    doc.apply(Diff::set("a", "name", Some(Value::Null)))
        .unwrap();
    assert!(!doc.get("a").unwrap().contains_key("name"));
    doc.apply(Diff::set("a", "name", Some(value!(1)))).unwrap();
    doc.apply(Diff::set("a", "name", None)).unwrap();
    assert_eq!(doc.get("a").unwrap().len(), 0);
    assert_eq!(doc.checksum(), doc.full_checksum());
}

#[test]
fn limits_are_typed_drops_and_rejections() {
    let limits = Limits {
        max_id_bytes: 8,
        max_attrs_per_object: 2,
        max_value_bytes: 64,
        max_value_depth: 3,
        max_objects: 2,
        max_diffs_per_batch: 3,
        ..Limits::default()
    };
    let mut doc = Document::new(limits.clone());
    assert_eq!(
        dropped(&mut doc, add("much-too-long", &[])),
        DropReason::InvalidId
    );
    let three = [("a", value!(1)), ("b", value!(2)), ("c", value!(3))];
    assert_eq!(
        dropped(&mut doc, add("o", &three)),
        DropReason::TooManyAttributes
    );
    assert_eq!(
        dropped(&mut doc, add("o", &[("big", value!("x".repeat(100)))])),
        DropReason::ValueTooLarge
    );
    assert_eq!(
        dropped(&mut doc, add("o", &[("deep", value!([[[[1]]]]))])),
        DropReason::ValueTooDeep
    );
    doc.apply(add("o1", &[("a", value!(1)), ("b", value!(2))]))
        .unwrap();
    assert_eq!(
        dropped(&mut doc, Diff::set("o1", "c", Some(value!(3)))),
        DropReason::TooManyAttributes
    );
    doc.apply(Diff::set("o1", "a", Some(value!(9)))).unwrap();
    doc.apply(add("o2", &[])).unwrap();
    assert_eq!(
        dropped(&mut doc, add("o3", &[])),
        DropReason::TooManyObjects
    );

    let mut room = Room::new(limits, LogBounds::default());
    let four = (0..4).map(|_| Diff::Remove { id: "o".into() }).collect();
    let refused = room.submit(
        "c",
        "u",
        IncomingBatch {
            batch_id: 1,
            diffs: four,
        },
    );
    assert_eq!(refused, Err(Rejection::TooManyDiffs { max: 3 }));
    assert_eq!(room.seq(), 0);
}

fn submit(room: &mut Room, client: &str, batch_id: u64, diffs: Vec<Diff>) -> Submitted {
    room.submit(client, "u", IncomingBatch { batch_id, diffs })
        .unwrap()
}

#[test]
fn room_answers_retries_with_the_original_ack() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let Submitted::Accepted { ack, .. } =
        submit(&mut room, "c", 5, vec![add("a", &[]), add("a", &[])])
    else {
        panic!("new batch")
    };
    assert_eq!(ack.dropped.len(), 1);
    assert_eq!(submit(&mut room, "c", 5, vec![]), Submitted::Duplicate(ack));
    submit(&mut room, "c", 9, vec![]);
    assert!(matches!(
        submit(&mut room, "c", 5, vec![]),
        Submitted::Duplicate(_)
    ));
    assert_eq!(
        room.submit(
            "c",
            "u",
            IncomingBatch {
                batch_id: 7,
                diffs: vec![]
            }
        ),
        Err(Rejection::NotSequenced { batch_id: 7 }),
        "every id of this client since its first is remembered: 7 never was"
    );
    assert_eq!(room.seq(), 2);
}

#[test]
fn a_skipped_id_is_known_never_sequenced_only_inside_the_retry_window() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let retry = |room: &mut Room, batch_id| {
        let batch = IncomingBatch {
            batch_id,
            diffs: vec![],
        };
        room.submit("c", "u", batch)
    };
    let window = tandem_core::room::RETRY_WINDOW as u64;
    // Ids 2, 4, 6, ...: the odd ones are never sequenced.
    for n in 1..=window + 10 {
        submit(&mut room, "c", 2 * n, vec![]);
    }
    // The window holds the last `window` even ids, from 22 up.
    assert!(matches!(retry(&mut room, 22), Ok(Submitted::Duplicate(_))));
    assert_eq!(
        retry(&mut room, 23),
        Err(Rejection::NotSequenced { batch_id: 23 })
    );
    for forgotten in [1, 20, 21] {
        assert_eq!(
            retry(&mut room, forgotten),
            Err(Rejection::StaleBatch {
                batch_id: forgotten
            }),
            "{forgotten} may or may not have been sequenced"
        );
    }
    assert_eq!(room.seq(), window + 10);
}

/// A batch the server skipped (answered `unavailable`, an answer that may
/// even be lost with the connection) while a later one went through: the
/// later one's acknowledgement must not take it out of the view.
#[test]
fn replica_keeps_a_skipped_batch_until_its_own_answer() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut me = Replica::new("me", 0, Document::default(), 1);
    let first = me.edit(vec![add("a", &[])]).batch_id.unwrap();
    let second = me.edit(vec![add("b", &[])]).batch_id.unwrap();
    let diffs: Vec<Vec<Diff>> = me.pending().map(|p| p.diffs.clone()).collect();
    let send = |room: &mut Room, batch_id, diffs: &Vec<Diff>| {
        let diffs = diffs.clone();
        room.submit("me", "u", IncomingBatch { batch_id, diffs })
    };
    let Ok(Submitted::Accepted { batch, ack }) = send(&mut room, second, &diffs[1]) else {
        panic!("sequenced")
    };
    me.receive([batch.as_ref()]).unwrap();
    me.acknowledged(second, ack.seq);
    let pending: Vec<u64> = me.pending().map(|p| p.batch_id).collect();
    assert_eq!(pending, [first]);
    assert!(me.document().get("a").is_some());
    // Its resend is answered: never sequenced. Under a fresh id it lands.
    let refused = send(&mut room, first, &diffs[0]);
    assert_eq!(refused, Err(Rejection::NotSequenced { batch_id: first }));
    let fresh = me.rekey(first).unwrap();
    let Ok(Submitted::Accepted { batch, .. }) = send(&mut room, fresh, &diffs[0]) else {
        panic!("sequenced under the fresh id")
    };
    me.receive([batch.as_ref()]).unwrap();
    assert_eq!(me.pending().len(), 0);
    assert_eq!(me.document(), room.document());
}

#[test]
fn catch_up_uses_the_log_while_it_reaches_and_a_snapshot_after() {
    let mut room = Room::new(
        Limits::default(),
        LogBounds {
            max_batches: 3,
            max_diffs: 100,
        },
    );
    for n in 1..=5 {
        submit(&mut room, "c", n, vec![add(&format!("o{n}"), &[])]);
    }
    let recent = room.catch_up(Some(3));
    assert_eq!(
        recent
            .batches
            .unwrap()
            .iter()
            .map(|b| b.seq)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    assert!(room.catch_up(Some(2)).batches.is_some());
    assert!(room.catch_up(Some(1)).snapshot.is_some());
    assert!(room.catch_up(Some(99)).snapshot.is_some());
    assert_eq!(room.catch_up(Some(5)).batches.unwrap().len(), 0);
}

#[test]
fn journal_replay_rebuilds_the_room_and_refuses_gaps() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut journal = Vec::new();
    for n in 1..=4 {
        if let Submitted::Accepted { ack, batch } =
            submit(&mut room, "c", n, vec![add(&format!("o{n}"), &[])])
        {
            journal.push(JournalEntry::encode(&batch, &ack));
        }
    }
    let entry = |i: usize| tandem_core::codec::from_msgpack::<JournalEntry>(&journal[i]).unwrap();
    let mut copy = Room::new(Limits::default(), LogBounds::default());
    copy.replay(entry(0)).unwrap();
    assert_eq!(
        copy.replay(entry(2)),
        Err(ReplayError::Gap {
            expected: 2,
            found: 3
        })
    );
    for i in 1..4 {
        copy.replay(entry(i)).unwrap();
    }
    copy.replay(entry(1)).unwrap(); // already applied: skipped
    assert_eq!(copy.document(), room.document());
    // Retries are recognised after a replay too.
    assert!(matches!(
        submit(&mut copy, "c", 4, vec![]),
        Submitted::Duplicate(_)
    ));
}

#[test]
fn restore_refuses_a_snapshot_whose_checksum_lies() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    submit(&mut room, "c", 1, vec![add("a", &[("name", value!("x"))])]);
    let mut bytes = room.snapshot();
    let at = bytes.windows(1).position(|w| w == b"x").unwrap();
    bytes[at] = b'y';
    assert!(Room::restore(&bytes, Limits::default(), LogBounds::default()).is_err());
}

#[test]
fn replica_rebases_its_pending_edits_over_server_batches() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut me = Replica::new("me", 0, Document::default(), 1);
    let mine = me.edit(vec![add("a", &[("z", value!("80"))])]);
    assert_eq!(mine.batch_id, Some(1));
    assert!(me.document().get("a").is_some(), "applied optimistically");

    // Someone else's batch lands first and takes the same z.
    let Submitted::Accepted { batch: theirs, .. } =
        submit(&mut room, "them", 1, vec![add("b", &[("z", value!("80"))])])
    else {
        panic!()
    };
    let received = me.receive([theirs.as_ref()]).unwrap();
    assert!(received.mismatch.is_none());
    assert_eq!(me.seq(), 1);
    assert!(me.document().get("a").is_some() && me.document().get("b").is_some());

    // Then mine, amended by the server: the ack removes it from pending.
    let sent = me.pending().next().unwrap().diffs.clone();
    let Submitted::Accepted { batch: acked, ack } = submit(&mut room, "me", 1, sent) else {
        panic!()
    };
    assert_eq!(ack.amended, vec![0]);
    let received = me.receive([acked.as_ref()]).unwrap();
    assert_eq!(received.acked, vec![1]);
    assert_eq!(me.pending().len(), 0);
    assert_eq!(me.document(), room.document());
}

#[test]
fn replica_applies_what_the_room_accepted_even_beyond_its_own_limits() {
    // A room with roomier limits than the replica's own document: the
    // replica takes the room's judgement of each diff, and converges.
    let roomy = Limits {
        max_id_bytes: 64,
        max_key_bytes: 64,
        max_value_bytes: 4_096,
        ..Limits::default()
    };
    let strict = Limits {
        max_id_bytes: 8,
        max_key_bytes: 8,
        max_value_bytes: 64,
        ..Limits::default()
    };
    let mut room = Room::new(roomy, LogBounds::default());
    let mut me = Replica::new("me", 0, Document::new(strict.clone()), 1);
    let mut strict_doc = Document::new(strict);
    strict_doc.apply_batch(vec![add("o", &[])]);
    let big = Value::from("v".repeat(200));
    let beyond = [
        (
            add("an-id-of-more-than-eight-bytes", &[]),
            DropReason::InvalidId,
        ),
        (Diff::set("o", "name", Some(big)), DropReason::ValueTooLarge),
        (
            Diff::set("o", "a-long-key", Some(1.into())),
            DropReason::InvalidKey,
        ),
    ];
    let beyond = beyond.into_iter().map(|(diff, reason)| {
        assert_eq!(dropped(&mut strict_doc, diff.clone()), reason, "{diff:?}");
        diff
    });
    for (batch_id, diff) in (1..).zip([add("o", &[])].into_iter().chain(beyond)) {
        let Submitted::Accepted { batch, .. } = submit(&mut room, "them", batch_id, vec![diff])
        else {
            panic!("the room accepts it")
        };
        let received = me.receive([batch.as_ref()]).unwrap();
        assert_eq!(received.mismatch, None);
    }
    assert_eq!(me.document(), room.document());
}

#[test]
fn replica_drops_refused_batches_and_acks_after_a_resync() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut me = Replica::new("me", 0, Document::default(), 1);
    me.edit(vec![add("a", &[])]);
    me.edit(vec![add("b", &[])]);
    me.rejected(1);
    assert!(me.document().get("a").is_none() && me.document().get("b").is_some());

    // Batch 2 is sequenced but its broadcast is lost; a snapshot includes it.
    let sent = me.pending().next().unwrap().diffs.clone();
    submit(&mut room, "me", 2, sent);
    let snapshot: Document =
        serde_json::from_slice(&tandem_core::codec::to_json(room.document())).unwrap();
    me.reset(room.seq(), snapshot);
    assert_eq!(
        me.pending().len(),
        1,
        "kept until the server answers the resend"
    );
    let Submitted::Duplicate(ack) = submit(&mut room, "me", 2, vec![]) else {
        panic!()
    };
    me.acknowledged(2, ack.seq);
    assert_eq!(me.pending().len(), 0);
    assert_eq!(me.document(), room.document());
}

#[test]
fn outcomes_say_what_happened_to_each_diff() {
    let mut doc = Document::default();
    let result = doc.apply_batch(vec![
        add("a", &[("z", value!("80"))]),
        add("b", &[("z", value!("80"))]),
        Diff::Remove { id: "nope".into() },
    ]);
    assert_eq!(
        result.outcomes,
        vec![
            Outcome::Accepted,
            Outcome::Amended,
            Outcome::Dropped(DropReason::MissingTarget)
        ]
    );
}

#[test]
fn an_own_batch_coming_back_unchanged_is_taken_as_is_and_still_checked() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut me = Replica::new("me", 0, Document::default(), 1);
    me.edit(vec![add("a", &[("z", value!("80"))])]);
    me.edit(vec![add("b", &[("z", value!("8180"))])]);
    let first = me.pending().next().unwrap().diffs.clone();
    let Submitted::Accepted { batch, .. } = submit(&mut room, "me", 1, first) else {
        panic!()
    };
    let received = me.receive([batch.as_ref()]).unwrap();
    assert_eq!(received.acked, vec![1]);
    assert!(received.mismatch.is_none());
    assert_eq!(
        me.pending().len(),
        1,
        "the second edit stays pending, applied"
    );
    assert!(me.document().get("b").is_some());

    // Same path, but the server says its state differs: reported.
    let second = me.pending().next().unwrap().diffs.clone();
    let Submitted::Accepted { batch, .. } = submit(&mut room, "me", 2, second) else {
        panic!()
    };
    let mut lying = batch.as_ref().clone();
    lying.checksum = tandem_core::Checksum(42);
    let received = me.receive([&lying]).unwrap();
    assert_eq!(received.mismatch.map(|m| m.seq), Some(2));
    assert_eq!(me.document(), room.document());
}

/// Replica `me` takes the server's batch for its own pending `batch_id` in
/// full and, in a copy, as an echo (its diffs unread): both must end alike.
fn received_both_ways(me: &mut Replica, room: &mut Room, batch_id: u64) {
    let diffs = me
        .pending()
        .find(|p| p.batch_id == batch_id)
        .unwrap()
        .diffs
        .clone();
    let Submitted::Accepted { batch, ack } = submit(room, "me", batch_id, diffs) else {
        panic!()
    };
    assert!(
        ack.amended.is_empty() && ack.dropped.is_empty(),
        "applied as sent"
    );
    let mut echoed = me.clone();
    let by_echo = echoed.receive_echo(batch.seq, batch_id, batch.checksum);
    let in_full = me.receive([batch.as_ref()]);
    assert_eq!(by_echo, Some(in_full));
    assert_eq!(echoed.seq(), me.seq());
    assert_eq!(echoed.document(), me.document());
    assert!(echoed.pending().eq(me.pending()));
}

#[test]
fn an_echo_of_an_own_batch_rebases_as_the_batch_itself_would() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut me = Replica::new("me", 0, Document::default(), 1);
    for id in ["a", "b", "c", "d"] {
        me.edit(vec![add(id, &[("name", value!(id))])]);
    }
    // The front batch on the view as it is.
    received_both_ways(&mut me, &mut room, 1);
    // After someone else's batch: on the confirmed state.
    let Submitted::Accepted { batch: theirs, .. } =
        submit(&mut room, "them", 1, vec![add("t", &[])])
    else {
        panic!()
    };
    me.receive([theirs.as_ref()]).unwrap();
    received_both_ways(&mut me, &mut room, 2);
    // Not the front one (batch 3 was skipped, as after a lost answer), on
    // the view again.
    me.document();
    received_both_ways(&mut me, &mut room, 4);
    assert_eq!(me.pending().map(|p| p.batch_id).collect::<Vec<_>>(), [3]);

    // What is not new is ignored; what is not next is a gap; a batch not
    // pending is left to the batch itself; a checksum that differs is told.
    let checksum = room.document().checksum();
    let ignored = me.receive_echo(room.seq(), 3, checksum).unwrap().unwrap();
    assert_eq!(ignored.ignored, 1);
    assert!(me
        .receive_echo(room.seq() + 2, 3, checksum)
        .unwrap()
        .is_err());
    assert_eq!(me.receive_echo(room.seq() + 1, 9, checksum), None);
    let lying = me.receive_echo(room.seq() + 1, 3, tandem_core::Checksum(42));
    let mismatch = lying.unwrap().unwrap().mismatch.unwrap();
    assert_eq!((mismatch.seq, mismatch.expected.0), (room.seq() + 1, 42));
    assert_eq!(me.pending().len(), 0);
}

#[test]
fn a_pending_diff_whose_target_was_removed_remotely_is_dropped_like_the_server_does() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    submit(&mut room, "them", 1, vec![add("a", &[])]);
    let mut me = Replica::new("me", room.seq(), room.document().clone(), 1);
    me.edit(vec![
        Diff::set("a", "color", Some(value!("red"))),
        add("b", &[]),
    ]);
    let sent = me.pending().next().unwrap().diffs.clone();

    let Submitted::Accepted { batch: removal, .. } =
        submit(&mut room, "them", 2, vec![Diff::Remove { id: "a".into() }])
    else {
        panic!()
    };
    me.receive([removal.as_ref()]).unwrap();
    assert!(me.document().get("a").is_none(), "the remote remove wins");
    assert!(me.document().get("b").is_some(), "the rest still applies");

    let Submitted::Accepted { batch: mine, ack } = submit(&mut room, "me", 1, sent) else {
        panic!()
    };
    assert_eq!(
        ack.dropped,
        [DroppedDiff {
            index: 0,
            reason: DropReason::MissingTarget
        }]
    );
    let received = me.receive([mine.as_ref()]).unwrap();
    assert!(received.mismatch.is_none());
    assert_eq!(received.acked, vec![1]);
    assert_eq!(me.document(), room.document());
}

#[test]
fn a_restored_room_still_answers_retries_with_the_original_ack() {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let Submitted::Accepted { ack, .. } =
        submit(&mut room, "c", 1, vec![add("a", &[("z", value!("80"))])])
    else {
        panic!()
    };
    let mut restored =
        Room::restore(&room.snapshot(), Limits::default(), LogBounds::default()).unwrap();
    assert_eq!(
        submit(&mut restored, "c", 1, vec![add("b", &[])]),
        Submitted::Duplicate(ack)
    );
    assert!(
        restored.document().get("b").is_none(),
        "never applied twice"
    );
}
