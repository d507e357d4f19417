//! `net` mode: the same clients over real WebSockets against a running
//! Tandem server, through the fault-injecting [`FaultProxy`]. Unless given a
//! URL, it starts the server from this repository (`mix run --no-halt` on a
//! free port with a fresh DATA_DIR) and mints a token with `mix tandem.token`.
//!
//! The verdict also asks the server: an observer joins directly (no proxy)
//! and every client's confirmed document must equal the server's snapshot.
//! Real time makes a run unrepeatable in detail; the seed still fixes the
//! workload and the fault plans.

use crate::proxy::FaultProxy;
use crate::sim::{client_config, Counters};
use crate::workload::{next_operation, Operation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_client::driver::Shared;
use tandem_client::Client;
use tokio::sync::Notify;

/// A server for the run: started here, or given.
pub struct Server {
    pub addr: SocketAddr,
    pub token: String,
    child: Option<Child>,
    data_dir: Option<std::path::PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Server {
    /// Starts the repository's server on a free loopback port.
    pub fn start() -> Result<Server, String> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let data_dir =
            std::env::temp_dir().join(format!("tandem-fuzz-{}-{port}", std::process::id()));
        let env = [
            ("PORT", port.to_string()),
            ("DATA_DIR", data_dir.display().to_string()),
        ];
        let token = Command::new("mix")
            .args(["tandem.token", "fuzz", "--ttl", "36000"])
            .current_dir(root)
            .envs(env.clone())
            .output()
            .map_err(|e| format!("mix tandem.token: {e}"))?;
        let token = String::from_utf8_lossy(&token.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_owned();
        let child = Command::new("mix")
            .args(["run", "--no-halt"])
            .current_dir(root)
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("mix run: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Server {
            addr,
            token,
            child: Some(child),
            data_dir: Some(data_dir),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("the server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }

    /// A server already running at `url` (`ws://host:port`), with a token.
    pub fn given(url: &str, token: String) -> Result<Server, String> {
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap_or("");
        let addr = host.parse().map_err(|e| format!("{host}: {e}"))?;
        Ok(Server {
            addr,
            token,
            child: None,
            data_dir: None,
        })
    }
}

/// Runs one seed against `server`; `Err` describes a divergence.
pub fn run_seed(
    server: &Server,
    seed: u64,
    clients: usize,
    ops: usize,
) -> Result<Counters, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_seed_async(server, seed, clients, ops))
}

async fn run_seed_async(
    server: &Server,
    seed: u64,
    clients: usize,
    ops: usize,
) -> Result<Counters, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let project = format!("net-{seed}-{}", rng.random::<u32>());
    let proxy = FaultProxy::start(server.addr, seed)
        .await
        .map_err(|e| e.to_string())?;
    let stop = Arc::new(Notify::new());
    let url = |addr: SocketAddr| {
        format!(
            "ws://{addr}/socket/websocket?vsn=2.0.0&token={}",
            server.token
        )
    };
    let shared: Vec<Shared> = (0..clients)
        .map(|i| {
            Shared::new(Client::new(
                client_config(&project, format!("net-{seed}-{i}"), rng.random()),
                0,
            ))
        })
        .collect();
    let drivers: Vec<_> = shared
        .iter()
        .map(|s| tokio::spawn(s.clone().run(url(proxy.addr), stop.clone())))
        .collect();

    // The workload: every client edits at its own pace, from its own stream.
    let workers: Vec<_> = shared
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let s = s.clone();
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
            tokio::spawn(async move {
                for serial in 0..ops as u64 {
                    tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
                    let op = next_operation(&mut rng, s.lock().document(), i, serial);
                    let now = s.now();
                    {
                        let mut c = s.lock();
                        match op {
                            Operation::Edit(diffs) => drop(c.edit(now, diffs)),
                            Operation::Undo => drop(c.undo(now)),
                            Operation::Redo => drop(c.redo(now)),
                        }
                    }
                    s.wake();
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    proxy.heal();

    // The observer asks the server directly; wait until everyone agrees with it.
    let observer = Shared::new(Client::new(
        client_config(&project, format!("net-{seed}-observer"), 0),
        0,
    ));
    let observer_task = tokio::spawn(observer.clone().run(url(server.addr), stop.clone()));
    let verdict = settle(&shared, &observer, Duration::from_secs(60)).await;
    stop.notify_waiters();
    for d in drivers {
        d.abort();
    }
    observer_task.abort();

    let mut counters = Counters {
        operations: (clients * ops) as u64,
        ..Counters::default()
    };
    for s in &shared {
        let st = s.lock().stats().clone();
        counters.batches += st.batches_sent;
        counters.acked += st.acked;
        counters.amends += st.amends;
        counters.drops += st.drops;
        counters.resyncs += st.resyncs;
        counters.mismatches_seen += st.mismatches;
        counters.reconnects += st.connects.saturating_sub(1);
    }
    verdict.map(|()| counters)
}

/// Waits until every client is joined with nothing pending and holds the
/// observer's view of the server (seq and document); `Err` describes the
/// disagreement when `timeout` passes first.
pub async fn settle(
    clients: &[Shared],
    observer: &Shared,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let server_view = {
            let mut o = observer.lock();
            o.is_joined()
                .then(|| (o.replica().seq(), o.document().clone()))
        };
        let settled = server_view.as_ref().is_some_and(|(seq, doc)| {
            clients.iter().all(|s| {
                let mut c = s.lock();
                c.is_joined()
                    && c.replica().pending().len() == 0
                    && c.replica().seq() == *seq
                    && c.document() == doc
            })
        });
        if settled {
            return Ok(());
        }
        if Instant::now() > deadline {
            let states: Vec<String> = clients
                .iter()
                .map(|s| {
                    let mut c = s.lock();
                    format!(
                        "seq {} checksum {} {}",
                        c.replica().seq(),
                        c.document().checksum(),
                        c.describe()
                    )
                })
                .collect();
            let (seq, sum) =
                server_view.map_or((0, String::new()), |(s, d)| (s, d.checksum().to_string()));
            return Err(format!(
                "no agreement with the server (seq {seq}, checksum {sum}): {}",
                states.join("; ")
            ));
        }
    }
}
