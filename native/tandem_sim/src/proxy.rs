//! The fault-injecting TCP proxy of `net` mode: it sits between real clients
//! and a real server on loopback and, while faults are on, delays data, cuts
//! connections, stalls them, and leaves some half-open (silent but not
//! closed, so only heartbeats can find out). The fault plan of each
//! connection is drawn from the seed; real timing still varies from run to
//! run, which is why `net` mode reports the seed but cannot replay exactly.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What the proxy did, for the report.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub cuts: AtomicU64,
    pub stalls: AtomicU64,
    pub half_open: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    pub addr: SocketAddr,
    faults: Arc<AtomicBool>,
    pub stats: Arc<ProxyStats>,
}

#[derive(Clone, Copy, Debug)]
enum Plan {
    Clean,
    CutAfter(Duration),
    StallAt(Duration, Duration),
    HalfOpenAfter(Duration),
}

impl FaultProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let faults = Arc::new(AtomicBool::new(true));
        let stats = Arc::new(ProxyStats::default());
        let rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)));
        let (f, s) = (Arc::clone(&faults), Arc::clone(&stats));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::Relaxed);
                let plan = if f.load(Ordering::Relaxed) {
                    draw_plan(&mut *rng.lock().await)
                } else {
                    Plan::Clean
                };
                let delay_ms = if f.load(Ordering::Relaxed) {
                    rng.lock().await.random_range(0..15)
                } else {
                    0
                };
                tokio::spawn(relay(
                    client,
                    upstream,
                    plan,
                    Duration::from_millis(delay_ms),
                    Arc::clone(&f),
                    Arc::clone(&s),
                ));
            }
        });
        Ok(FaultProxy {
            addr,
            faults,
            stats,
        })
    }

    /// Stops injecting faults into new connections and new data (the heal).
    pub fn heal(&self) {
        self.faults.store(false, Ordering::Relaxed);
    }
}

fn draw_plan(rng: &mut ChaCha8Rng) -> Plan {
    let ms = |rng: &mut ChaCha8Rng, lo, hi| Duration::from_millis(rng.random_range(lo..hi));
    match rng.random_range(0..10) {
        0..=3 => Plan::Clean,
        4..=6 => Plan::CutAfter(ms(rng, 100, 1_500)),
        7..=8 => Plan::StallAt(ms(rng, 100, 1_000), ms(rng, 100, 800)),
        _ => Plan::HalfOpenAfter(ms(rng, 200, 1_500)),
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    plan: Plan,
    delay: Duration,
    faults: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let started = tokio::time::Instant::now();
    let up = pump(
        cr,
        sw,
        plan,
        delay,
        started,
        Arc::clone(&faults),
        Arc::clone(&stats),
    );
    let down = pump(sr, cw, plan, delay, started, faults, Arc::clone(&stats));
    let lifetime = async {
        tokio::join!(up, down);
    };
    match plan {
        Plan::CutAfter(after) => {
            if tokio::time::timeout(after, lifetime).await.is_err() {
                stats.cuts.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => lifetime.await,
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    plan: Plan,
    delay: Duration,
    started: tokio::time::Instant,
    faults: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut stalled = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if faults.load(Ordering::Relaxed) {
            let age = started.elapsed();
            match plan {
                Plan::StallAt(at, length) if age >= at && !stalled => {
                    stalled = true;
                    stats.stalls.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(length).await;
                }
                Plan::HalfOpenAfter(after) if age >= after => {
                    stats.half_open.fetch_add(1, Ordering::Relaxed);
                    // Swallow everything from now on, keep the socket open.
                    while let Ok(n) = from.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    break;
                }
                _ => {}
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
