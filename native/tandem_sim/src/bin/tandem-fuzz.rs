//! `tandem-fuzz`: runs the fuzzy tester. See `tandem_sim` and README.md.

/// A simulated session is mostly small allocations (diffs, frames, values),
/// all dead when its seed ends: each seed runs in a region
/// ([`tandem_sim::region`]); everything else, `net` mode included, is served
/// by mimalloc, the allocator the server's NIF runs the same core on.
#[global_allocator]
static ALLOCATOR: Region<tandem_alloc::Allocator> = Region::new(tandem_alloc::Allocator);

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::time::Instant;
use tandem_sim::region::{self, Region};
use tandem_sim::sim::{self, Counters, Report, SimConfig};

/// One seed, its allocations in the region.
fn run(config: &SimConfig) -> Report {
    region::scoped(|| sim::run(config))
}

#[derive(Parser)]
#[command(
    about = "Many Tandem clients, random edits, injected faults, and a convergence verdict from a seed"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Deterministic simulation of clients, network and server, one seed after another.
    Sim {
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        #[arg(long, default_value_t = 0)]
        seed_start: u64,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        ops: usize,
        /// Without connection cuts, stalls and restarts.
        #[arg(long)]
        no_faults: bool,
        /// Succeed only if some seed diverges (proves a broken build is caught).
        #[arg(long)]
        expect_divergence: bool,
    },
    /// The same clients over real WebSockets through a fault-injecting proxy.
    Net {
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        #[arg(long, default_value_t = 0)]
        seed_start: u64,
        #[arg(long, default_value_t = 3)]
        clients: usize,
        #[arg(long, default_value_t = 60)]
        ops: usize,
        /// A running server (ws://host:port); its token in TANDEM_TOKEN.
        /// Without it, the server is started from this repository.
        #[arg(long)]
        url: Option<String>,
    },
    /// Runs one seed again and prints its report.
    Replay {
        seed: u64,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        ops: usize,
        #[arg(long)]
        no_faults: bool,
    },
}

fn main() -> ExitCode {
    match Cli::parse().mode {
        Mode::Sim {
            seeds,
            seed_start,
            clients,
            ops,
            no_faults,
            expect_divergence,
        } => {
            let started = Instant::now();
            let mut total = Counters::default();
            let mut failed = None;
            for seed in seed_start..seed_start + seeds {
                let config = SimConfig {
                    seed,
                    clients,
                    ops,
                    faults: !no_faults,
                    journal_faults: !no_faults,
                };
                let report = run(&config);
                total.add(&report.counters);
                if let Some(failure) = report.failure {
                    failed = Some((config, failure));
                    break;
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            if region::retired() {
                println!("note: a block outlived its seed, so later seeds ran outside the region");
            }
            println!("{total:?}");
            match failed {
                Some((config, failure)) => {
                    println!("DIVERGED: seed {}: {failure}", config.seed);
                    let (c, o) = shrink(&config);
                    let faults = if config.faults { "" } else { " --no-faults" };
                    println!(
                        "replay: cargo run --release -p tandem_sim --bin tandem-fuzz -- replay {} --clients {c} --ops {o}{faults}",
                        config.seed
                    );
                    if expect_divergence {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                None => {
                    println!(
                        "every seed converged ({:.0} sessions/s)",
                        seeds as f64 / elapsed
                    );
                    println!("{seeds} passed, 0 failed");
                    if expect_divergence {
                        println!("expected a divergence and found none");
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
            }
        }
        Mode::Net {
            seeds,
            seed_start,
            clients,
            ops,
            url,
        } => net(seeds, seed_start, clients, ops, url),
        Mode::Replay {
            seed,
            clients,
            ops,
            no_faults,
        } => {
            let report = run(&SimConfig {
                seed,
                clients,
                ops,
                faults: !no_faults,
                journal_faults: !no_faults,
            });
            println!("{:?}", report.counters);
            match report.failure {
                Some(failure) => {
                    println!("DIVERGED: seed {seed}: {failure}");
                    ExitCode::FAILURE
                }
                None => {
                    println!("seed {seed} converged");
                    ExitCode::SUCCESS
                }
            }
        }
    }
}

fn net(seeds: u64, seed_start: u64, clients: usize, ops: usize, url: Option<String>) -> ExitCode {
    let server = match url {
        Some(url) => {
            tandem_sim::net::Server::given(&url, std::env::var("TANDEM_TOKEN").unwrap_or_default())
        }
        None => tandem_sim::net::Server::start(),
    };
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            println!("net: no server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut total = Counters::default();
    for seed in seed_start..seed_start + seeds {
        match tandem_sim::net::run_seed(&server, seed, clients, ops) {
            Ok(counters) => total.add(&counters),
            Err(failure) => {
                println!("{total:?}");
                println!("DIVERGED (net): seed {seed}: {failure}");
                println!("rerun: cargo run --release -p tandem_sim --bin tandem-fuzz -- net --seeds 1 --seed-start {seed} --clients {clients} --ops {ops}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{total:?}");
    println!("every net seed converged with the server");
    println!("{seeds} passed, 0 failed");
    ExitCode::SUCCESS
}

/// The smallest (clients, ops) that still fails with the same seed, found
/// by halving ops and dropping clients while the run keeps failing.
fn shrink(config: &SimConfig) -> (usize, usize) {
    let mut best = (config.clients, config.ops);
    let fails = |clients, ops| {
        run(&SimConfig {
            seed: config.seed,
            clients,
            ops,
            faults: config.faults,
            journal_faults: config.journal_faults,
        })
        .failure
        .is_some()
    };
    while best.1 > 1 && fails(best.0, best.1 / 2) {
        best.1 /= 2;
    }
    while best.0 > 2 && fails(best.0 - 1, best.1) {
        best.0 -= 1;
    }
    best
}
