//! `tandem`: a scriptable command-line Tandem client.
//!
//!     tandem --url ws://localhost:4000/socket/websocket --token T --project P [DIFFS_JSON...]
//!
//! Once the project is joined, each argument, then each line of stdin, is
//! one operation: a JSON array of diffs (or one diff object), `undo`, `redo`
//! or `print`. At the end of the input it waits until every edit is
//! acknowledged and prints the document.

use std::sync::Arc;
use std::time::Duration;
use tandem_client::driver::{entropy_seed, Shared};
use tandem_client::{Client, Config};
use tandem_core::Diff;
use tokio::io::AsyncBufReadExt;
use tokio::sync::Notify;

fn usage() -> ! {
    eprintln!("usage: tandem --url URL --token TOKEN --project ID [OPERATION...]  (operations also from stdin)");
    std::process::exit(2)
}

fn parse(line: &str) -> Result<Vec<Diff>, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let value = if value.is_array() {
        value
    } else {
        serde_json::Value::Array(vec![value])
    };
    serde_json::from_value(value).map_err(|e| e.to_string())
}

fn apply(shared: &Shared, line: &str) {
    let line = line.trim();
    let now = shared.now();
    match line {
        "" => {}
        "undo" => drop(shared.lock().undo(now)),
        "redo" => drop(shared.lock().redo(now)),
        "print" => println!(
            "{}",
            serde_json::to_string(shared.lock().document()).unwrap_or_default()
        ),
        _ => match parse(line) {
            Ok(diffs) => drop(shared.lock().edit(now, diffs)),
            Err(e) => eprintln!("tandem: not an operation ({e}): {line}"),
        },
    }
    shared.wake();
}

/// Polls `done` on the client every 50 ms for up to 15 s.
async fn wait_until(shared: &Shared, done: impl Fn(&Client) -> bool) -> bool {
    for _ in 0..300 {
        if done(&shared.lock()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut token, mut project, mut ops) = (None, None, None, Vec::new());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = args.next(),
            "--token" => token = args.next(),
            "--project" => project = args.next(),
            "-h" | "--help" => usage(),
            _ => ops.push(arg),
        }
    }
    let (Some(url), Some(token), Some(project)) = (url, token, project) else {
        usage()
    };
    let client_id = format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let config = Config {
        seed: entropy_seed(),
        ..Config::new(project, client_id)
    };
    let shared = Shared::new(Client::new(config, 0));
    let stop = Arc::new(Notify::new());
    let url = format!("{url}?vsn=2.0.0&token={token}");
    let driver = tokio::spawn(shared.clone().run(url, stop.clone()));

    // Operations resolve against the document they see, as the server's
    // would: wait for the project's state before the first one.
    if !wait_until(&shared, |c| c.is_joined()).await {
        eprintln!("tandem: not joined after 15 s; operations apply to an empty document");
    }
    for op in &ops {
        apply(&shared, op);
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        apply(&shared, &line);
    }
    // Wait for every edit to be acknowledged.
    if !wait_until(&shared, |c| {
        c.is_joined() && c.replica().pending().len() == 0
    })
    .await
    {
        eprintln!("tandem: some edits are still unacknowledged after 15 s");
    }
    println!(
        "{}",
        serde_json::to_string(shared.lock().document()).unwrap_or_default()
    );
    stop.notify_one();
    let _ = driver.await;
}
