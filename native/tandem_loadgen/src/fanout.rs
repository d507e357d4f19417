//! Fan-out: one sender and `receivers` members of one fresh project. The
//! sender pushes `batches` batches, one every `interval-ms`; every receiver
//! records, per batch, the time from the sender's push to the moment the
//! `batch` broadcast was read. Prints `FANOUT count=.. p50=.. p99=..`, the
//! first batch alone (it wakes every hibernating receiver) as `FIRST_BATCH`,
//! and the sender's own push → ack latency as `ACK ...`.

use crate::stats::Latencies;
use crate::wire::{Conn, Error};
use crate::Opts;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, Semaphore};

pub async fn run(opts: &Opts) -> Result<(), Error> {
    let receivers = opts.number("receivers", 1000);
    let batches = opts.number("batches", 50);
    let interval = Duration::from_millis(opts.number("interval-ms", 40) as u64);
    let topic = format!("project:fan-{}", crate::run_id());
    let sent: Arc<Vec<OnceLock<Instant>>> =
        Arc::new((0..=batches).map(|_| OnceLock::new()).collect());
    let all_joined = Arc::new(Barrier::new(receivers + 1));
    let connecting = Arc::new(Semaphore::new(opts.number("concurrency", 64)));
    let deadline = interval * batches as u32 + Duration::from_secs(10);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..receivers {
        let (url, topic, sent) = (opts.url(), topic.clone(), sent.clone());
        let (all_joined, connecting) = (all_joined.clone(), connecting.clone());
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await;
            let mut conn = Conn::connect(&url).await?;
            conn.join(&topic, &project_join(&format!("r{i}"))).await?;
            drop(permit);
            all_joined.wait().await;
            let (mut latencies, mut first) = (Latencies::default(), Latencies::default());
            let receive = async {
                while latencies.len() < batches {
                    let frame = conn.next().await?;
                    let p = &frame.payload;
                    if frame.event == "batch" && p.client_id.as_deref() == Some("sender") {
                        let at = p.batch_id.and_then(|b| sent.get(b as usize)?.get());
                        if let Some(at) = at {
                            latencies.record(frame.at - *at);
                            if p.batch_id == Some(1) {
                                first.record(frame.at - *at);
                            }
                        }
                    }
                }
                Ok::<_, Error>(())
            };
            let _ = tokio::time::timeout(deadline, receive).await;
            Ok::<_, Error>((latencies, first, conn))
        });
    }

    let mut sender = Conn::connect(&opts.url()).await?;
    let join_ref = sender.join(&topic, &project_join("sender")).await?;
    all_joined.wait().await;
    eprintln!("{receivers} receivers joined {topic}");
    crate::report_start();
    let mut acks = Latencies::default();
    let mut pushed = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(interval);
    let mut next_batch = 1;
    let end = tokio::time::Instant::now() + deadline;
    while next_batch <= batches || !pushed.is_empty() {
        tokio::select! {
            _ = tick.tick(), if next_batch <= batches => {
                let payload = format!(
                    r#"{{"batch_id":{next_batch},"diffs":[{{"op":"add","id":"f{next_batch}","attrs":{{"name":"x"}}}}]}}"#
                );
                let now = Instant::now();
                let _ = sent[next_batch].set(now);
                let reference = sender.push(Some(join_ref), &topic, "diffs", &payload).await?;
                pushed.insert(reference, now);
                next_batch += 1;
            }
            frame = sender.next() => {
                let frame = frame?;
                if let Some(at) = frame.reference.and_then(|r| pushed.remove(&r)) {
                    acks.record(frame.at - at);
                }
            }
            _ = tokio::time::sleep_until(end) => break,
        }
    }

    let (mut deliveries, mut first) = (Latencies::default(), Latencies::default());
    // Connections close only after the figures: leaving is not part of the measurement.
    let mut open = vec![sender];
    let mut failed = 0;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok((latencies, first_batch, conn))) => {
                open.push(conn);
                deliveries.extend(latencies);
                first.extend(first_batch);
            }
            _ => failed += 1,
        }
    }
    println!(
        "FANOUT receivers={receivers} batches={batches} failed={failed} {}",
        deliveries.summary()
    );
    // The first batch wakes every hibernating receiver: its cost shown apart.
    println!("FIRST_BATCH {}", first.summary());
    println!("ACK {}", acks.summary());
    crate::report_end();
    for conn in open {
        conn.close().await;
    }
    Ok(())
}

pub fn project_join(client_id: &str) -> String {
    format!(r#"{{"protocol":1,"client_id":"{client_id}","last_seq":null}}"#)
}
