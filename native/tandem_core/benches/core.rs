//! `cargo bench -p tandem_core`: the core's costs against the targets of
//! issue 2 (one core): resolve ≥ 2 M set diffs/s; rebase 100×100 ≤ 100 µs;
//! 100,000-object snapshot encode and decode ≤ 50 ms each.

/// The allocator the NIF runs the core on.
#[global_allocator]
static ALLOCATOR: tandem_alloc::Allocator = tandem_alloc::Allocator;

use compact_str::format_compact;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tandem_core::checksum::attr_term;
use tandem_core::codec;
use tandem_core::room::{IncomingBatch, LogBounds, Submitted};
use tandem_core::value;
use tandem_core::{Attrs, Diff, Document, Limits, Replica, Room, ServerBatch};

/// Evenly spread, short z values (consecutive `zindex::after` calls grow the
/// index by a byte every 127 steps, which would measure string length).
fn spread_z(i: usize) -> String {
    format!("{:06x}80", i + 1)
}

fn layer(i: usize, z: &str) -> Diff {
    let mut attrs = Attrs::new();
    attrs.insert("name".into(), value!(format!("layer {i}")));
    attrs.insert("color".into(), value!("#3366ff"));
    attrs.insert("x".into(), value!(i % 1000));
    attrs.insert("y".into(), value!(i / 1000));
    attrs.insert("z".into(), value!(z));
    Diff::Add {
        id: format_compact!("obj-{i:06}"),
        attrs,
    }
}

fn document(n: usize) -> Document {
    let mut doc = Document::default();
    for i in 0..n {
        doc.apply(layer(i, &spread_z(i))).unwrap();
    }
    doc
}

fn sets(n: usize, objects: usize, round: usize) -> Vec<Diff> {
    (0..n)
        .map(|i| {
            Diff::set(
                format_compact!("obj-{:06}", i % objects),
                "x",
                Some(value!(i + round)),
            )
        })
        .collect()
}

fn bench_apply_and_resolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("set diffs");
    group.throughput(Throughput::Elements(1_000));
    let mut doc = document(1_000);
    let mut round = 0;
    group.bench_function("Document::apply_batch (1,000 sets)", |b| {
        b.iter_batched(
            || {
                round += 1;
                sets(1_000, 1_000, round)
            },
            |diffs| black_box(doc.apply_batch(diffs)),
            BatchSize::SmallInput,
        )
    });
    let mut room = Room::new(Limits::default(), LogBounds::default());
    let mut setup = Room::new(Limits::default(), LogBounds::default());
    std::mem::swap(&mut room, &mut setup);
    let adds: Vec<Diff> = (0..1_000).map(|i| layer(i, &spread_z(i))).collect();
    room.submit(
        "c",
        "u",
        IncomingBatch {
            batch_id: 1,
            diffs: adds,
        },
    )
    .unwrap();
    let mut batch_id = 1;
    group.bench_function("Room::submit (1,000 sets)", |b| {
        b.iter_batched(
            || {
                batch_id += 1;
                IncomingBatch {
                    batch_id,
                    diffs: sets(1_000, 1_000, batch_id as usize),
                }
            },
            |batch| black_box(room.submit("c", "u", batch).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// 100 pending local diffs (10 batches of 10) over 100 incoming diffs,
/// delivered as one server batch and as 100 single-diff batches.
fn bench_rebase(c: &mut Criterion) {
    let mut server = Room::new(Limits::default(), LogBounds::default());
    let adds: Vec<Diff> = (0..500)
        .map(|i| layer(i, &format!("{:02x}80", 1 + i % 200)))
        .collect();
    server
        .submit(
            "seed",
            "u",
            IncomingBatch {
                batch_id: 1,
                diffs: adds,
            },
        )
        .unwrap();
    let seeded: Document = serde_json::from_slice(&codec::to_json(server.document())).unwrap();

    let incoming = |per_batch: usize| -> Vec<ServerBatch> {
        let mut room = server.clone();
        sets(100, 500, 7)
            .chunks(per_batch)
            .enumerate()
            .map(|(i, chunk)| {
                let s = room.submit(
                    "other",
                    "u",
                    IncomingBatch {
                        batch_id: i as u64 + 1,
                        diffs: chunk.to_vec(),
                    },
                );
                match s.unwrap() {
                    Submitted::Accepted { batch, .. } => batch.as_ref().clone(),
                    Submitted::Duplicate(_) => unreachable!(),
                }
            })
            .collect()
    };
    let replica_with_pending = || {
        let mut r = Replica::new("me", server.seq(), seeded.clone(), 1);
        for b in 0..10 {
            r.edit(sets(10, 500, 1000 + b * 10));
        }
        r
    };
    let mut group = c.benchmark_group("rebase 100 pending diffs");
    for per_batch in [100, 1] {
        let batches = incoming(per_batch);
        group.bench_function(
            format!("over {} batch(es) of {per_batch}", 100 / per_batch),
            |b| {
                b.iter_batched(
                    replica_with_pending,
                    |mut r| {
                        let received = r.receive(&batches).unwrap();
                        // The pending edits go back on when the view is
                        // next read: part of the rebase.
                        r.document();
                        // Returned, so that dropping the replica is not timed.
                        (r, received)
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

fn bench_checksum(c: &mut Criterion) {
    let value = value!("#3366ff");
    c.bench_function("checksum term of one attribute", |b| {
        b.iter(|| {
            black_box(attr_term(
                black_box("obj-000123"),
                black_box("color"),
                &value,
            ))
        })
    });
}

fn bench_decode(c: &mut Criterion) {
    let batch = IncomingBatch {
        batch_id: 1,
        diffs: sets(1_000, 1_000, 3),
    };
    let json_bytes = codec::to_json(&batch);
    let msgpack_bytes = codec::to_msgpack(&batch);
    let mut group = c.benchmark_group("decode a 1,000-diff batch");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function(format!("JSON ({} bytes)", json_bytes.len()), |b| {
        b.iter(|| black_box(codec::from_json::<IncomingBatch>(&json_bytes).unwrap()))
    });
    group.bench_function(
        format!("MessagePack ({} bytes)", msgpack_bytes.len()),
        |b| b.iter(|| black_box(codec::from_msgpack::<IncomingBatch>(&msgpack_bytes).unwrap())),
    );
    group.finish();
}

fn bench_snapshot(c: &mut Criterion) {
    let mut room = Room::new(Limits::default(), LogBounds::default());
    // A tree like a design's: every 100th object is a frame at the root, the
    // others its children (parent, z and four more attributes each).
    let diffs: Vec<Diff> = (0..100_000)
        .map(|i| {
            let mut diff = layer(i, &spread_z(i));
            if let (Diff::Add { attrs, .. }, 1..) = (&mut diff, i % 100) {
                attrs.insert("parent".into(), value!(format!("obj-{:06}", i - i % 100)));
            }
            diff
        })
        .collect();
    for (n, chunk) in diffs.chunks(10_000).enumerate() {
        room.submit(
            "c",
            "u",
            IncomingBatch {
                batch_id: n as u64 + 1,
                diffs: chunk.to_vec(),
            },
        )
        .unwrap();
    }
    let bytes = room.snapshot();
    let mut group = c.benchmark_group(format!(
        "snapshot of 100,000 objects ({} bytes)",
        bytes.len()
    ));
    group.sample_size(10);
    group.bench_function("encode", |b| b.iter(|| black_box(room.snapshot())));
    // Decoding only: each restored room is dropped outside the timed part.
    group.bench_function("decode", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let room = Room::restore(&bytes, Limits::default(), LogBounds::default());
                spent += started.elapsed();
                drop(black_box(room.unwrap()));
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_apply_and_resolve,
    bench_rebase,
    bench_checksum,
    bench_decode,
    bench_snapshot
);
criterion_main!(benches);
