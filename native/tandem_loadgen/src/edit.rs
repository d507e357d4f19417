//! Edit latency: `clients` editors spread over `projects` projects, each
//! pushing `rate` batches per second for `seconds` (open loop: a batch goes
//! out on time whether or not the previous one was acknowledged). Records
//! push → reply (the ack, sent once the batch is durable). Prints
//! `EDIT count=.. p50=.. p99=.. errors=..`.

use crate::fanout::project_join;
use crate::stats::Latencies;
use crate::wire::{Conn, Error};
use crate::Opts;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, Semaphore};

pub async fn run(opts: &Opts) -> Result<(), Error> {
    let clients = opts.number("clients", 1000);
    let projects = opts.number("projects", 100).max(1);
    let rate = opts.number("rate", 2).max(1);
    let seconds = opts.number("seconds", 10) as u64;
    let period = Duration::from_secs(1) / rate as u32;
    let run = crate::run_id();
    let all_joined = Arc::new(Barrier::new(clients));
    let connecting = Arc::new(Semaphore::new(opts.number("concurrency", 64)));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let url = opts.url();
        let topic = format!("project:edit-{run}-{}", i % projects);
        let (all_joined, connecting) = (all_joined.clone(), connecting.clone());
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await;
            let client_id = format!("e{i}");
            let mut conn = Conn::connect(&url).await?;
            let join_ref = conn.join(&topic, &project_join(&client_id)).await?;
            drop(permit);
            if all_joined.wait().await.is_leader() {
                crate::report_start();
            }
            // Editors start evenly spread over one period.
            let start = tokio::time::Instant::now() + period.mul_f64(i as f64 / clients as f64);
            let stop = start + Duration::from_secs(seconds);
            let mut tick = tokio::time::interval_at(start, period);
            let (mut acks, mut errors) = (Latencies::default(), 0usize);
            let mut pushed: HashMap<u64, Instant> = HashMap::new();
            let mut batch_id = 0u64;
            let drain_until = stop + Duration::from_secs(3);
            loop {
                let sending = tokio::time::Instant::now() < stop;
                tokio::select! {
                    _ = tick.tick(), if sending => {
                        batch_id += 1;
                        let payload = edit(&client_id, batch_id);
                        let now = Instant::now();
                        let reference = conn.push(Some(join_ref), &topic, "diffs", &payload).await?;
                        pushed.insert(reference, now);
                    }
                    frame = conn.next() => {
                        let frame = frame?;
                        if let Some(at) = frame.reference.and_then(|r| pushed.remove(&r)) {
                            match frame.payload.status.as_deref() {
                                Some("ok") => acks.record(frame.at - at),
                                _ => errors += 1,
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(drain_until) => break,
                }
                if tokio::time::Instant::now() >= stop && pushed.is_empty() {
                    break;
                }
            }
            Ok::<_, Error>((acks, errors + pushed.len(), conn))
        });
    }

    let (mut acks, mut errors, mut failed) = (Latencies::default(), 0, 0);
    // Connections close only after the figures: leaving is not part of the measurement.
    let mut open = Vec::with_capacity(clients);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok((latencies, e, conn))) => {
                acks.extend(latencies);
                errors += e;
                open.push(conn);
            }
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("editor failed: {e}");
            }
            Err(_) => failed += 1,
        }
    }
    println!("EDIT clients={clients} projects={projects} rate={rate} seconds={seconds} errors={errors} failed={failed} {}", acks.summary());
    crate::report_end();
    for conn in open {
        conn.close().await;
    }
    Ok(())
}

/// The first batch adds the editor's own object; later ones move it.
fn edit(client_id: &str, batch_id: u64) -> String {
    let diff = if batch_id == 1 {
        format!(r#"{{"op":"add","id":"o-{client_id}","attrs":{{"name":"box","x":0}}}}"#)
    } else {
        format!(r#"{{"op":"set","id":"o-{client_id}","key":"x","value":{batch_id}}}"#)
    };
    format!(r#"{{"batch_id":{batch_id},"diffs":[{diff}]}}"#)
}
