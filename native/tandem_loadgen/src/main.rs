//! `tandem-loadgen`: the load side of the transport benchmark
//! (bench/transport.exs runs it). Raw tokio-tungstenite on one thread by
//! default, so it takes at most one of the machine's cores and parses only
//! the fields it needs: the server's latency is measured, not a heavy
//! client's. It does not use `tandem_client` on purpose: that client runs
//! the full sync engine (a replica per connection), which is the cost we
//! want to keep out of the server's figures.
//!
//! ```text
//! tandem-loadgen idle   --url WS --connections N [--projects P] [--prefix S] [--offset K]
//! tandem-loadgen fanout --url WS [--receivers 1000] [--batches 50] [--interval-ms 40]
//! tandem-loadgen edit   --url WS [--clients 1000] [--projects 100] [--rate 2] [--seconds 10]
//! common: [--threads 1] [--concurrency 64]   (WS = ws://host:port/socket/websocket?vsn=2.0.0&token=T)
//! ```

mod edit;
mod fanout;
mod idle;
mod stats;
mod wire;

use std::collections::HashMap;

/// `--key value` options.
pub struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: impl Iterator<Item = String>) -> Result<Opts, String> {
        let mut map = HashMap::new();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or(format!("unexpected argument {arg}"))?;
            let value = args.next().ok_or(format!("--{key} needs a value"))?;
            map.insert(key.to_string(), value);
        }
        Ok(Opts(map))
    }

    pub fn number(&self, key: &str, default: usize) -> usize {
        self.0.get(key).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--{key} must be a number"))
        })
    }

    pub fn text(&self, key: &str, default: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    pub fn url(&self) -> String {
        self.0.get("url").cloned().expect("--url is required")
    }
}

/// A suffix that keeps one run's projects apart from an earlier run's.
pub fn run_id() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Marks the start of the measured part (after connecting and joining):
/// `START ticks=N`, so that the benchmark counts CPU from here.
pub fn report_start() {
    println!("START ticks={}", cpu_ticks().unwrap_or(0));
}

/// Marks the end of the measured part (before the connections close):
/// `CPU ticks=N`. With [`report_start`], the benchmark splits the machine's
/// CPU between server, loadgen and everything else.
pub fn report_end() {
    println!("CPU ticks={}", cpu_ticks().unwrap_or(0));
}

/// This process's user + system CPU time in clock ticks (Linux /proc).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().unwrap_or_default();
    let opts = Opts::parse(args).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let threads = opts.number("threads", 1);
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    }
    .enable_all()
    .build()
    .expect("tokio runtime");

    let result = runtime.block_on(async {
        match scenario.as_str() {
            "idle" => {
                idle::run(&opts).await;
                Ok(())
            }
            "fanout" => fanout::run(&opts).await,
            "edit" => edit::run(&opts).await,
            _ => Err("usage: tandem-loadgen idle|fanout|edit --url WS [options]".into()),
        }
    });
    if let Err(e) = result {
        eprintln!("tandem-loadgen: {e}");
        std::process::exit(1);
    }
}
