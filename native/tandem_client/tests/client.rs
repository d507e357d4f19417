//! The client through a harness that stands on both of its sides: the test
//! plays the app (edits, undo) and the server (frames in, frames out, time).
//! No network, no clock: every test runs in microseconds.

use serde_json::{json, Value};
use tandem_client::backoff::Backoff;
use tandem_client::{Client, Config, Event, Frame};
use tandem_core::room::{IncomingBatch, LogBounds, Submitted};
use tandem_core::{Diff, Limits, Room};

struct Harness {
    client: Client,
    now: u64,
    room: Room,
}

fn add(id: &str) -> Diff {
    serde_json::from_value(json!({"op": "add", "id": id, "attrs": {"z": "80"}})).unwrap()
}

/// The batch ids of the `diffs` pushes among `frames`, in order.
fn batch_ids(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f.event == "diffs")
        .map(|f| f.payload["batch_id"].as_u64().unwrap())
        .collect()
}

impl Harness {
    fn new() -> Harness {
        let config = Config {
            seed: 7,
            ..Config::new("p", "me")
        };
        Harness {
            client: Client::new(config, 0),
            now: 0,
            room: Room::new(Limits::default(), LogBounds::default()),
        }
    }

    fn sent(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.client.poll_transmit())
            .map(|t| Frame::decode(&t).unwrap())
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn reply(&mut self, to: &Frame, status: &str, response: Value) {
        let frame = Frame {
            join_ref: to.join_ref.clone(),
            ref_: to.ref_.clone(),
            topic: to.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({"status": status, "response": response}),
        };
        self.client.handle_frame(self.now, &frame.encode());
    }

    fn broadcast(&mut self, batch: &tandem_core::ServerBatch) {
        let frame = Frame {
            join_ref: None,
            ref_: None,
            topic: "project:p".into(),
            event: "batch".into(),
            payload: json!(batch),
        };
        self.client.handle_frame(self.now, &frame.encode());
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
            self.client.handle_timeout(self.now);
        }
    }

    /// A harness whose client is connected and joined.
    fn joined() -> Harness {
        let mut h = Harness::new();
        h.join();
        h
    }

    /// Connects and answers the join with the room's state.
    fn join(&mut self) -> Frame {
        self.client.handle_timeout(self.now);
        assert!(self.client.poll_connect(), "asks to connect");
        self.client.handle_connected(self.now);
        let join = self
            .sent()
            .into_iter()
            .find(|f| f.event == "phx_join")
            .expect("joins");
        let state =
            serde_json::to_value(self.room.catch_up(join.payload["last_seq"].as_u64())).unwrap();
        self.reply(&join, "ok", state);
        join
    }

    /// Submits one `diffs` push to the room, which must sequence it.
    fn sequence(
        &mut self,
        push: &Frame,
    ) -> (
        tandem_core::room::Ack,
        std::sync::Arc<tandem_core::ServerBatch>,
    ) {
        let batch: IncomingBatch = serde_json::from_value(push.payload.clone()).unwrap();
        match self.room.submit("me", "u", batch) {
            Ok(Submitted::Accepted { ack, batch }) => (ack, batch),
            other => panic!("not sequenced: {other:?}"),
        }
    }

    /// Two edits go out; the server refuses the first with `reason` and
    /// sequences, broadcasts and acknowledges the second.
    fn overtaken(&mut self, reason: &str) {
        self.client.edit(self.now, vec![add("a")]);
        self.client.edit(self.now, vec![add("b")]);
        let sent = self.sent();
        assert_eq!(batch_ids(&sent), [1, 2]);
        self.reply(&sent[0], "error", json!({"reason": reason}));
        let (ack, batch) = self.sequence(&sent[1]);
        self.broadcast(&batch);
        self.reply(&sent[1], "ok", json!(ack));
    }

    /// Moves time to the client's next timer and fires it.
    fn wait_for_timer(&mut self) {
        let wait = self.client.poll_timeout().unwrap() - self.now;
        self.advance(wait);
    }

    /// The client converged with the room and refused nothing.
    fn assert_converged_without_refusals(&mut self) {
        assert_eq!(self.client.document(), self.room.document());
        let events = self.events();
        assert!(!events.iter().any(|e| matches!(e, Event::Rejected { .. })));
    }

    /// Plays the server for every `diffs` push sent: submit, broadcast, ack.
    fn serve(&mut self) -> Vec<Frame> {
        let frames = self.sent();
        for f in frames.iter().filter(|f| f.event == "diffs") {
            let batch: IncomingBatch = serde_json::from_value(f.payload.clone()).unwrap();
            match self.room.submit("me", "u", batch) {
                Ok(Submitted::Accepted { ack, batch }) => {
                    self.broadcast(&batch);
                    self.reply(f, "ok", json!(ack));
                }
                Ok(Submitted::Duplicate(ack)) => self.reply(f, "ok", json!(ack)),
                Err(refused) => self.reply(f, "error", json!({"reason": refused.reason()})),
            }
        }
        frames
    }

    fn remote(
        &mut self,
        client: &str,
        batch_id: u64,
        diffs: Vec<Diff>,
    ) -> tandem_core::ServerBatch {
        match self
            .room
            .submit(client, "them", IncomingBatch { batch_id, diffs })
            .unwrap()
        {
            Submitted::Accepted { batch, .. } => batch.as_ref().clone(),
            Submitted::Duplicate(_) => unreachable!(),
        }
    }
}

#[test]
fn frames_round_trip_through_the_v2_json_codec() {
    let frame = Frame {
        join_ref: Some("1".into()),
        ref_: None,
        topic: "t".into(),
        event: "e".into(),
        payload: json!({"a": [1]}),
    };
    assert_eq!(frame.encode(), r#"["1",null,"t","e",{"a":[1]}]"#);
    assert_eq!(Frame::decode(&frame.encode()), Some(frame));
    assert_eq!(Frame::decode(r#"{"not":"an array"}"#), None);
    assert_eq!(Frame::decode(r#"[null,null,"t"]"#), None);
}

#[test]
fn joins_with_protocol_and_client_id_then_applies_the_snapshot() {
    let mut h = Harness::new();
    h.remote("other", 1, vec![add("x")]);
    let join = h.join();
    assert_eq!(join.topic, "project:p");
    assert_eq!(join.join_ref, join.ref_);
    assert_eq!(
        join.payload,
        json!({"protocol": 1, "client_id": "me", "last_seq": null})
    );
    assert!(h.client.is_joined());
    assert!(h.client.document().get("x").is_some());
    assert!(h.events().contains(&Event::Joined { seq: 1 }));
}

#[test]
fn edits_apply_at_once_and_are_acknowledged() {
    let mut h = Harness::joined();
    assert_eq!(h.client.edit(h.now, vec![add("a")]), Some(1));
    assert!(h.client.document().get("a").is_some(), "optimistic");
    let frames = h.serve();
    assert_eq!(frames[0].payload["batch_id"], 1);
    assert_eq!(h.client.replica().pending().len(), 0);
    assert!(h.events().contains(&Event::Acked {
        batch_id: 1,
        seq: 1
    }));
}

#[test]
fn edits_made_while_disconnected_are_sent_after_the_join_in_order() {
    let mut h = Harness::new();
    h.client.edit(0, vec![add("a")]);
    h.client.edit(0, vec![add("b")]);
    assert!(h.sent().is_empty(), "nothing is sent before joining");
    h.join();
    let frames = h.serve();
    assert_eq!(batch_ids(&frames), [1, 2]);
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn rebases_over_concurrent_remote_batches_and_converges() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("mine")]);
    let mine = h.sent();
    let theirs = h.remote("other", 1, vec![add("theirs")]);
    h.broadcast(&theirs);
    assert!(
        h.client.document().get("mine").is_some() && h.client.document().get("theirs").is_some()
    );
    // Now the server takes ours: same z as theirs, so it is amended.
    let batch: IncomingBatch = serde_json::from_value(mine[0].payload.clone()).unwrap();
    let Submitted::Accepted { ack, batch } = h.room.submit("me", "u", batch).unwrap() else {
        panic!()
    };
    assert_eq!(ack.amended, vec![0]);
    h.broadcast(&batch);
    h.reply(&mine[0], "ok", json!(ack));
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn a_dropped_own_diff_disappears_and_a_refused_batch_is_rolled_back() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    let gone = h.remote("other", 1, vec![add("a")]); // someone adds "a" first
    h.broadcast(&gone);
    h.serve(); // ours is resolved: duplicate_add, dropped
    assert_eq!(h.client.document(), h.room.document());

    h.client.edit(h.now, vec![add("b")]);
    let f = h.sent().pop().unwrap();
    h.reply(&f, "error", json!({"reason": "too_many_diffs"}));
    assert!(h.client.document().get("b").is_none());
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, Event::Rejected { batch_id: 2, .. })));
}

#[test]
fn after_a_reconnect_unacknowledged_batches_are_resent_and_not_duplicated() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    let f = h.sent().pop().unwrap();
    // The server sequences it, but the connection drops before the ack.
    let batch: IncomingBatch = serde_json::from_value(f.payload).unwrap();
    h.room.submit("me", "u", batch).unwrap();
    h.client.handle_disconnected(h.now);
    assert!(h.events().contains(&Event::Disconnected));
    h.advance(20_000);
    let join = h.join();
    assert_eq!(join.payload["last_seq"], 0, "catches up from what it held");
    h.serve(); // the resend is answered as a duplicate
    assert_eq!(h.room.seq(), 1, "never applied twice");
    assert_eq!(h.client.replica().pending().len(), 0);
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn batches_before_the_join_reply_are_held_and_old_ones_ignored() {
    let mut h = Harness::new();
    h.client.handle_timeout(0);
    h.client.poll_connect();
    h.client.handle_connected(0);
    let join = h.sent().pop().unwrap();
    let b1 = h.remote("other", 1, vec![add("x")]);
    let state = serde_json::to_value(h.room.catch_up(None)).unwrap();
    let b2 = h.remote("other", 2, vec![add("y")]);
    h.broadcast(&b1); // arrives before the join reply, already in the snapshot
    h.broadcast(&b2);
    h.reply(&join, "ok", state);
    assert_eq!(h.client.replica().seq(), 2);
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn a_gap_asks_for_sync_and_a_checksum_mismatch_resyncs_from_a_snapshot() {
    let mut h = Harness::joined();
    let _b1 = h.remote("other", 1, vec![add("x")]);
    let b2 = h.remote("other", 2, vec![add("y")]);
    h.broadcast(&b2); // b1 was never delivered
    let sync = h.sent().pop().unwrap();
    assert_eq!(
        (sync.event.as_str(), &sync.payload),
        ("sync", &json!({"since": 0}))
    );
    let state = serde_json::to_value(h.room.catch_up(Some(0))).unwrap();
    h.reply(&sync, "ok", state);
    assert_eq!(h.client.document(), h.room.document());

    let mut lie = h.remote("other", 3, vec![add("z")]);
    lie.checksum = tandem_core::Checksum(12345);
    h.broadcast(&lie);
    let verify = h.sent().pop().unwrap();
    assert_eq!(verify.event, "verify");
    assert!(h.events().contains(&Event::Mismatch { seq: 3 }));
    let mut answer = serde_json::to_value(h.room.catch_up(None)).unwrap();
    answer["ok"] = json!(false);
    h.reply(&verify, "ok", answer);
    assert!(h.events().contains(&Event::Resynced { seq: 3 }));
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn undo_and_redo_replay_own_edits_only_across_remote_edits() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("mine")]);
    h.serve();
    let theirs = h.remote("other", 1, vec![add("theirs")]);
    h.broadcast(&theirs);
    h.client.undo(h.now);
    h.serve();
    assert!(h.client.document().get("mine").is_none());
    assert!(
        h.client.document().get("theirs").is_some(),
        "only own edits are undone"
    );
    h.client.redo(h.now);
    h.serve();
    assert!(h.client.document().get("mine").is_some());
    assert!(!h.client.can_redo());
    assert_eq!(h.client.document(), h.room.document());
}

#[test]
fn an_unanswered_heartbeat_resets_the_connection() {
    let mut h = Harness::joined();
    h.advance(30_000);
    let hb = h.sent().pop().unwrap();
    assert_eq!(
        (hb.topic.as_str(), hb.event.as_str()),
        ("phoenix", "heartbeat")
    );
    h.reply(&hb, "ok", json!({}));
    h.advance(30_000);
    assert!(h.sent().iter().any(|f| f.event == "heartbeat"));
    // This one is never answered: at the next beat the link is declared dead.
    h.advance(30_000);
    assert!(h.client.poll_close());
    assert!(h.events().contains(&Event::Disconnected));
    assert!(!h.client.is_joined());
}

#[test]
fn a_channel_error_rejoins_and_a_push_timeout_resends() {
    let mut h = Harness::new();
    let join = h.join();
    let err = Frame {
        join_ref: join.join_ref.clone(),
        ref_: join.ref_.clone(),
        topic: "project:p".into(),
        event: "phx_error".into(),
        payload: json!({}),
    };
    h.client.handle_frame(h.now, &err.encode());
    assert!(!h.client.is_joined());
    h.advance(1_000);
    assert!(
        h.sent().iter().any(|f| f.event == "phx_join"),
        "rejoins after rejoin_ms"
    );

    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    assert_eq!(h.sent().len(), 1);
    h.advance(10_000);
    let resent = h.sent();
    assert!(
        resent
            .iter()
            .any(|f| f.event == "diffs" && f.payload["batch_id"] == 1),
        "resent after the push timeout"
    );
}

#[test]
fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
    let mut b = Backoff::new(100, 10_000, 42);
    for attempt in 0..12 {
        let step = (100u64 << attempt).min(10_000);
        for _ in 0..50 {
            let d = b.delay(attempt);
            assert!(
                d >= step / 2 && d <= step,
                "attempt {attempt}: {d} not in [{}, {step}]",
                step / 2
            );
        }
    }
    let spread: std::collections::BTreeSet<u64> = (0..50).map(|_| b.delay(6)).collect();
    assert!(spread.len() > 10, "jittered, not constant");
    // Reconnects follow the schedule.
    let mut h = Harness::joined();
    h.client.handle_disconnected(h.now);
    let first = h.client.poll_timeout().unwrap() - h.now;
    assert!((50..=100).contains(&first), "{first}");
}

#[test]
fn a_rate_limited_batch_is_resent_with_later_ones_in_order_after_a_backoff() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    let first = h.sent();
    assert_eq!(first[0].payload["batch_id"], 1);
    h.reply(&first[0], "error", json!({"reason": "rate_limited"}));
    assert!(
        h.client.document().get("a").is_some(),
        "a transient refusal keeps the edit"
    );
    // Nothing goes out until the backoff ends, not even a newer edit.
    h.client.edit(h.now, vec![add("b")]);
    assert!(h.sent().is_empty(), "held behind the refused batch");
    let wait = h.client.poll_timeout().unwrap() - h.now;
    assert!((50..=100).contains(&wait), "first backoff step: {wait} ms");
    h.advance(wait);
    let resent = h.sent();
    assert_eq!(
        batch_ids(&resent),
        [2, 3],
        "the refused batch (under a fresh id), then the later one"
    );
}

/// A rate-limited batch never reached the room, but a later one did: resent
/// under its old id it would be refused and the edit rolled back.
#[test]
fn a_rate_limited_batch_overtaken_by_a_later_one_is_not_lost() {
    let mut h = Harness::joined();
    h.overtaken("rate_limited");
    h.wait_for_timer();
    h.serve();
    assert!(
        h.room.document().get("a").is_some(),
        "the limited edit reached the server"
    );
    h.assert_converged_without_refusals();
}

/// The journal failed on a batch (`unavailable`) and a later one went through
/// once the room recovered. The first stays in the view when the second is
/// acknowledged; resent under its old id the server answers that it was never
/// sequenced, so it goes again under a fresh id: neither lost nor applied
/// twice.
#[test]
fn an_unavailable_batch_overtaken_by_a_later_one_is_not_lost() {
    let mut h = Harness::joined();
    h.overtaken("unavailable");
    assert!(
        h.client.document().get("a").is_some(),
        "kept while its fate is unknown"
    );
    h.wait_for_timer();
    assert_eq!(batch_ids(&h.serve()), [1], "resent under its old id first");
    h.wait_for_timer();
    assert_eq!(batch_ids(&h.serve()), [3], "then under a fresh one");
    assert!(h.room.document().get("a").is_some(), "the edit landed");
    assert_eq!(h.room.seq(), 2, "once");
    h.assert_converged_without_refusals();
}

/// The same refusal, but the journal did make the batch durable: its resend
/// is answered as a duplicate and nothing is applied twice.
#[test]
fn an_unavailable_batch_that_was_sequenced_after_all_is_acknowledged_once() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    let sent = h.sent();
    let (_, batch) = h.sequence(&sent[0]);
    h.reply(&sent[0], "error", json!({"reason": "unavailable"}));
    h.broadcast(&batch);
    h.wait_for_timer();
    h.serve();
    assert_eq!(h.room.seq(), 1);
    assert_eq!(h.client.replica().pending().len(), 0);
    h.assert_converged_without_refusals();
}

/// A refusal pushes the refused batch and every later one again after the
/// backoff, while the first pushes of the later ones may still await their
/// answers. Such an answer tells what the server knew before the newer push:
/// the client must wait for the newer push's answer instead of acting on it.
/// Taking a stale `not_sequenced` at its word would move the batch under a
/// fresh id although its newer push gets sequenced, and the edit would be
/// applied twice (the fuzzer's seed 3001059, two journal failures in a row).
#[test]
fn a_refusal_of_an_earlier_push_does_not_decide_a_batch_pushed_again() {
    let mut h = Harness::joined();
    h.client.edit(h.now, vec![add("a")]);
    h.client.edit(h.now, vec![add("b")]);
    let first = h.sent();
    assert_eq!(batch_ids(&first), [1, 2]);
    h.reply(&first[0], "error", json!({"reason": "unavailable"}));
    h.wait_for_timer();
    let again = h.sent();
    assert_eq!(batch_ids(&again), [1, 2], "both pushed again");
    // The first push of batch 2 is answered late: at the time, the room had
    // not sequenced it.
    h.reply(&first[1], "error", json!({"reason": "not_sequenced"}));
    for push in &again {
        let (ack, batch) = h.sequence(push);
        h.broadcast(&batch);
        h.reply(push, "ok", json!(ack));
    }
    for _ in 0..3 {
        h.wait_for_timer();
        h.serve();
    }
    assert_eq!(h.room.seq(), 2, "each edit sequenced once");
    assert_eq!(h.client.replica().pending().len(), 0);
    h.assert_converged_without_refusals();
}
