//! A crowd of idle connections, each joined to `project:ID`, `presence:ID`
//! and `cursors:ID`: what the server's memory per connection is measured on.
//! `--offset` numbers this process's clients after another process's.
//! Prints `READY ok=N failed=M` once every connection has joined (or
//! failed), holds them (a Phoenix heartbeat every 30 s, as phoenix.js
//! sends) until stdin says `close` or ends, then prints `CLOSED held=N`.

use crate::wire::Conn;
use crate::Opts;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{mpsc, watch, Semaphore};

const HEARTBEAT: Duration = Duration::from_secs(30);

pub async fn run(opts: &Opts) {
    let n = opts.number("connections", 1000);
    let projects = opts.number("projects", 100).max(1);
    let prefix = opts.text("prefix", "idle");
    // Several loadgen processes share one crowd: each numbers its clients from its offset.
    let offset = opts.number("offset", 0);
    let connecting = Arc::new(Semaphore::new(opts.number("concurrency", 64)));
    let lost = Arc::new(AtomicUsize::new(0));
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    for i in offset..offset + n {
        let url = opts.url();
        let project = format!("{prefix}-{}", i % projects);
        let client_id = format!("{prefix}-c{i}");
        let (connecting, lost, joined_tx) = (connecting.clone(), lost.clone(), joined_tx.clone());
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let permit = connecting.acquire_owned().await;
            let joined = join_three(&url, &project, &client_id).await;
            drop(permit);
            let mut conn = match joined {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = joined_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = joined_tx.send(Ok(()));
            // Spread heartbeats so that the crowd does not wake all at once.
            let first = HEARTBEAT.mul_f64((i % 1000) as f64 / 1000.0) + HEARTBEAT;
            let mut heartbeat =
                tokio::time::interval_at(tokio::time::Instant::now() + first, HEARTBEAT);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = heartbeat.tick() => {
                        if conn.push(None, "phoenix", "heartbeat", "{}").await.is_err() {
                            lost.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    read = conn.next() => if read.is_err() {
                        lost.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            conn.close().await;
        });
    }
    drop(joined_tx);

    let (mut ok, mut failed, mut first_error) = (0, 0, None);
    // Counted, not drained: the connections keep their senders while held.
    for _ in 0..n {
        let Some(result) = joined_rx.recv().await else {
            break;
        };
        match result {
            Ok(()) => ok += 1,
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        if (ok + failed) % 1000 == 0 {
            eprintln!("joined {ok}, failed {failed}");
        }
    }
    if let Some(e) = first_error {
        eprintln!("first failure: {e}");
    }
    println!("READY ok={ok} failed={failed}");

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "close" {
            break;
        }
    }
    let held = ok - lost.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    println!("CLOSED held={held}");
}

async fn join_three(url: &str, project: &str, client_id: &str) -> Result<Conn, crate::wire::Error> {
    let mut conn = Conn::connect(url).await?;
    let project_join = format!(r#"{{"protocol":1,"client_id":"{client_id}","last_seq":null}}"#);
    conn.join(&format!("project:{project}"), &project_join)
        .await?;
    let other_join = format!(r#"{{"client_id":"{client_id}"}}"#);
    conn.join(&format!("presence:{project}"), &other_join)
        .await?;
    conn.join(&format!("cursors:{project}"), &other_join)
        .await?;
    Ok(conn)
}
