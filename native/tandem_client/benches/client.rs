//! `cargo bench -p tandem_client`: what one incoming remote batch costs a
//! client (decode the frame, rebase, checksum check) with 0, 10 and 100
//! pending local diffs, on a 1,000-object document; and what joining a
//! project costs when the answer carries the whole document (1,000 and
//! 10,000 objects), in the layout the server writes it. On mimalloc, as the
//! core's benches, the NIF and the simulator: under glibc's allocator the
//! figures followed the heap left by the previous iteration's client (the
//! same code measured 2x apart depending on it).

#[global_allocator]
static ALLOCATOR: tandem_alloc::Allocator = tandem_alloc::Allocator;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use tandem_client::{Client, Config, Frame};
use tandem_core::room::{IncomingBatch, LogBounds, Submitted};
use tandem_core::{codec, Diff, Limits, Room};

fn set(i: usize, v: usize) -> Diff {
    Diff::set(format!("o{}", i % 1000), "x", Some(v.into()))
}

/// A room holding `objects` layers, added by one batch.
fn room_of(objects: usize) -> Room {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let adds: Vec<Diff> = (0..objects)
        .map(|i| serde_json::from_value(json!({"op": "add", "id": format!("o{i}"), "attrs": {"name": "layer", "z": format!("{:04x}80", i + 1)}})).unwrap())
        .collect();
    room.submit(
        "seed",
        "u",
        IncomingBatch {
            batch_id: 1,
            diffs: adds,
        },
    )
    .unwrap();
    room
}

/// A client that has connected and sent its join, and the join's refs.
fn joining_client() -> (Client, Frame) {
    let mut client = Client::new(Config::new("p", "me"), 0);
    client.handle_timeout(0);
    client.poll_connect();
    client.handle_connected(0);
    let join = Frame::decode(&client.poll_transmit().unwrap()).unwrap();
    (client, join)
}

/// The `ok` answer to `join` carrying `room`'s whole document, written as
/// the server writes it (the room's JSON inside the reply, fields in their
/// declared order).
fn snapshot_reply(room: &Room, join: &Frame) -> String {
    let response = String::from_utf8(codec::to_json(&room.catch_up(None))).unwrap();
    let refs = json!([join.join_ref, join.ref_, join.topic, "phx_reply"]).to_string();
    let head = refs.strip_suffix(']').unwrap();
    format!("{head},{{\"status\":\"ok\",\"response\":{response}}}]")
}

fn join(c: &mut Criterion) {
    let mut group = c.benchmark_group("join with a snapshot");
    for objects in [1_000, 10_000] {
        let room = room_of(objects);
        let reply = snapshot_reply(&room, &joining_client().1);
        group.bench_function(format!("{objects} objects"), |b| {
            b.iter_batched(
                || joining_client().0,
                |mut client| {
                    client.handle_frame(1, &reply);
                    assert_eq!(client.document().len(), objects);
                    client
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let mut room = room_of(1000);
    let state = serde_json::to_value(room.catch_up(None)).unwrap();
    let Submitted::Accepted { batch, .. } = room
        .submit(
            "other",
            "u",
            IncomingBatch {
                batch_id: 1,
                diffs: (0..10).map(|i| set(i, 7)).collect(),
            },
        )
        .unwrap()
    else {
        unreachable!()
    };
    let frame = Frame {
        join_ref: None,
        ref_: None,
        topic: "project:p".into(),
        event: "batch".into(),
        payload: json!(batch.as_ref()),
    }
    .encode();

    let joined_client = |pending: usize| {
        let (mut client, join) = joining_client();
        let reply = Frame {
            join_ref: join.join_ref.clone(),
            ref_: join.ref_.clone(),
            topic: join.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({"status": "ok", "response": state}),
        };
        client.handle_frame(0, &reply.encode());
        for k in 0..pending {
            client.edit(0, vec![set(500 + k, k)]);
        }
        while client.poll_transmit().is_some() {}
        client
    };
    let mut group = c.benchmark_group("one remote batch of 10 diffs");
    for pending in [0, 10, 100] {
        group.bench_function(format!("{pending} pending diffs"), |b| {
            b.iter_batched(
                || joined_client(pending),
                |mut client| {
                    client.handle_frame(1, &frame);
                    // The pending edits go back on when the view is read:
                    // part of handling the batch.
                    client.document();
                    client
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench, join);
criterion_main!(benches);
