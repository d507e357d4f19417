//! The engine and the layer operations against tandem_core's authoritative
//! `Room` standing in for the server: edits travel as they would on the wire
//! (pending batches up, resolved batches broadcast to everyone in seq order).

use serde_json::{json, Map, Value};
use tandem_core::room::{IncomingBatch, LogBounds, Submitted};
use tandem_core::{value, Limits, Room};
use tandem_wasm::engine::Engine;
use tandem_wasm::layers;

struct Net {
    room: Room,
    engines: Vec<Engine>,
}

impl Net {
    fn new(clients: usize) -> Net {
        Net {
            room: Room::new(Limits::default(), LogBounds::default()),
            engines: (0..clients)
                .map(|i| Engine::new(&format!("c{i}")))
                .collect(),
        }
    }

    /// Sends client `i`'s pending batches and broadcasts what the room accepts.
    fn flush(&mut self, i: usize) {
        for pending in self.engines[i].pending() {
            let batch = IncomingBatch {
                batch_id: pending["batch_id"].as_u64().unwrap(),
                diffs: serde_json::from_value(pending["diffs"].clone()).unwrap(),
            };
            let client = format!("c{i}");
            match self.room.submit(&client, &client, batch).expect("accepted") {
                Submitted::Accepted { batch, .. } => {
                    for engine in &mut self.engines {
                        let reaction = engine.receive([batch.as_ref()]);
                        assert_eq!(reaction.mismatch, None, "checksum mismatch");
                        assert!(!reaction.gap);
                    }
                }
                Submitted::Duplicate(ack) => {
                    self.engines[i].acknowledged(pending["batch_id"].as_u64().unwrap(), ack.seq)
                }
            }
        }
    }

    fn assert_converged(&mut self) {
        for engine in &mut self.engines {
            assert_eq!(engine.pending().len(), 0);
            assert_eq!(engine.document(), self.room.document());
            assert_eq!(engine.checksum(), self.room.document().checksum());
        }
    }

    fn names(&mut self, i: usize) -> Vec<String> {
        layers::paint_order(self.engines[i].document())
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn add(&mut self, i: usize, id: &str) {
        let doc = self.engines[i].document();
        let diffs = layers::add(
            doc,
            id,
            attrs(json!({"name": id, "x": 0, "y": 0, "w": 10, "h": 10})),
        );
        self.engines[i].edit(diffs).expect("applies");
    }

    fn reorder(&mut self, i: usize, id: &str, up: bool) {
        let diffs = layers::reorder(self.engines[i].document(), id, up);
        self.engines[i].edit(diffs);
    }
}

fn attrs(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn reorder_moves_one_step_and_stops_at_the_ends() {
    let mut net = Net::new(1);
    for id in ["a", "b", "c"] {
        net.add(0, id);
    }
    net.reorder(0, "a", true);
    assert_eq!(net.names(0), ["b", "a", "c"]);
    net.reorder(0, "a", true);
    assert_eq!(net.names(0), ["b", "c", "a"]);
    assert!(layers::reorder(net.engines[0].document(), "a", true).is_empty());
    net.reorder(0, "b", false);
    assert_eq!(net.names(0), ["b", "c", "a"], "already at the bottom");
    net.reorder(0, "a", false);
    net.reorder(0, "a", false);
    assert_eq!(net.names(0), ["a", "b", "c"]);
    net.flush(0);
    net.assert_converged();
}

#[test]
fn both_reordering_the_same_layers_concurrently_converge() {
    let mut net = Net::new(2);
    for id in ["a", "b", "c", "d"] {
        net.add(0, id);
    }
    net.flush(0);
    // Concurrent: both move "a" up and "d" down, from the same state.
    net.reorder(0, "a", true);
    net.reorder(0, "d", false);
    net.reorder(1, "a", true);
    net.reorder(1, "a", true);
    net.reorder(1, "d", false);
    net.flush(1);
    net.flush(0);
    net.assert_converged();
    assert_eq!(net.names(0).len(), 4);
}

#[test]
fn group_puts_the_members_under_a_group_in_paint_order() {
    let mut net = Net::new(1);
    for id in ["a", "b", "c"] {
        net.add(0, id);
    }
    let diffs = layers::group(net.engines[0].document(), "g", &["a".into(), "c".into()]);
    net.engines[0].edit(diffs);
    let order = layers::paint_order(net.engines[0].document());
    let summary: Vec<(String, u64)> = order
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_owned(),
                l["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("b".into(), 0),
            ("g".into(), 0),
            ("a".into(), 1),
            ("c".into(), 1)
        ]
    );
    // Moving the group moves its members.
    let diffs = layers::translate(net.engines[0].document(), "g", 5.0, 7.0);
    net.engines[0].edit(diffs);
    assert_eq!(
        net.engines[0]
            .document()
            .get("c")
            .unwrap()
            .get("x")
            .unwrap(),
        &value!(5.0)
    );
    net.flush(0);
    net.assert_converged();
}

#[test]
fn undo_reverts_only_ones_own_edit_and_redo_reapplies_it() {
    let mut net = Net::new(2);
    net.add(0, "a");
    net.flush(0);
    net.engines[0].edit(layers::set("a", attrs(json!({"color": "red"}))));
    net.flush(0);
    net.add(1, "b");
    net.flush(1);
    net.engines[0].undo().expect("something to undo");
    net.flush(0);
    net.assert_converged();
    let doc = net.engines[1].document();
    assert_eq!(doc.get("a").unwrap().get("color"), None);
    assert!(doc.get("b").is_some(), "the other client's edit stays");
    net.engines[1]
        .undo()
        .expect("client 1 has its own add to undo");
    net.flush(1);
    assert!(
        net.engines[1].document().get("b").is_none(),
        "client 1 undid its own add"
    );
    net.engines[0].redo().expect("something to redo");
    net.flush(0);
    net.assert_converged();
    assert_eq!(
        net.engines[0]
            .document()
            .get("a")
            .unwrap()
            .get("color")
            .unwrap(),
        &value!("red")
    );
}

#[test]
fn offline_edits_show_at_once_and_converge_when_sent() {
    let mut net = Net::new(2);
    net.add(0, "a");
    net.flush(0);
    // Client 1 is offline: it edits, the others go on.
    net.add(1, "offline");
    net.engines[1].edit(layers::set("a", attrs(json!({"color": "green"}))));
    assert_eq!(net.engines[1].pending().len(), 2);
    assert!(net.engines[1].document().get("offline").is_some());
    net.engines[0].edit(layers::set("a", attrs(json!({"name": "renamed"}))));
    net.add(0, "online");
    net.flush(0);
    net.flush(1);
    net.assert_converged();
    let a = net.room.document().get("a").unwrap();
    assert_eq!(
        (a.get("name").cloned(), a.get("color").cloned()),
        (Some(value!("renamed")), Some(value!("green")))
    );
}

#[test]
fn a_rate_limited_batch_resent_under_a_fresh_id_is_not_lost() {
    let mut net = Net::new(1);
    net.add(0, "a");
    net.add(0, "b");
    // The server refused batch 1 before the room saw it; batch 2 went through.
    let first = net.engines[0].pending()[0]["batch_id"].as_u64().unwrap();
    let fresh = net.engines[0].rekey(first).expect("still pending");
    assert!(fresh > first);
    net.flush(0);
    net.assert_converged();
    assert_eq!(net.names(0), ["a", "b"], "both edits reached the server");
}

#[test]
fn a_join_snapshot_replaces_the_state_and_keeps_pending_edits() {
    let mut engine = Engine::new("c0");
    engine.edit(layers::set("x", attrs(json!({"name": "gone"}))));
    assert_eq!(
        engine.pending().len(),
        0,
        "a set on a missing layer does not apply"
    );
    let diffs = layers::add(engine.document(), "mine", attrs(json!({"name": "mine"})));
    engine.edit(diffs);
    let snapshot =
        json!({"seq": 7, "checksum": "0", "snapshot": {"theirs": {"name": "theirs", "z": "80"}}});
    engine.install(&snapshot).unwrap();
    assert_eq!(engine.seq(), 7);
    assert!(engine.document().get("theirs").is_some());
    assert!(engine.document().get("mine").is_some());
    assert_eq!(engine.pending().len(), 1);
}
