//! Two Rust clients over real WebSockets against the real server started
//! from this repository, editing the same project at the same time with
//! scripted conflicts: both move the same layers to the same z slots, and
//! one deletes a group the other is editing inside. Both must end with the
//! server's document and checksum. Needs `mix` (run by scripts/test-fuzz):
//! `cargo test --release -p tandem_sim --test integration -- --ignored`.

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tandem_client::driver::Shared;
use tandem_client::{Client, Config};
use tandem_core::Diff;
use tandem_sim::net::{settle, Server};
use tokio::sync::Notify;

fn diff(v: serde_json::Value) -> Vec<Diff> {
    serde_json::from_value(v).unwrap()
}

#[test]
#[ignore = "starts the real server with mix; run by scripts/test-fuzz"]
fn two_clients_with_conflicting_edits_converge_with_the_server() {
    let server = Server::start().expect("server");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!(
            "ws://{}/socket/websocket?vsn=2.0.0&token={}",
            server.addr, server.token
        );
        let stop = Arc::new(Notify::new());
        let project = format!("it-{}", std::process::id());
        let make = |id: &str| Shared::new(Client::new(Config::new(project.clone(), id), 0));
        let (ana, ben, observer) = (make("ana"), make("ben"), make("observer"));
        for s in [&ana, &ben, &observer] {
            tokio::spawn(s.clone().run(url.clone(), stop.clone()));
        }
        let edit = |s: &Shared, v: serde_json::Value| {
            let now = s.now();
            s.lock().edit(now, diff(v));
            s.wake();
        };

        edit(
            &ana,
            json!([
                {"op": "add", "id": "group", "attrs": {"name": "group", "z": "80"}},
                {"op": "add", "id": "a", "attrs": {"parent": "group", "z": "80"}},
                {"op": "add", "id": "b", "attrs": {"parent": "group", "z": "8180"}},
                {"op": "add", "id": "c", "attrs": {"name": "c", "z": "8180"}},
                {"op": "add", "id": "d", "attrs": {"name": "d", "z": "8280"}}
            ]),
        );
        settle(
            &[ana.clone(), ben.clone()],
            &observer,
            Duration::from_secs(30),
        )
        .await
        .unwrap();

        // Both move the same layers onto the same slots at the same time,
        // and ana deletes the group while ben edits inside it.
        edit(
            &ana,
            json!([{"op": "set", "id": "c", "key": "z", "value": "8280"}]),
        );
        edit(
            &ben,
            json!([{"op": "set", "id": "d", "key": "z", "value": "8180"}]),
        );
        edit(
            &ben,
            json!([{"op": "set", "id": "c", "key": "z", "value": "8280"}]),
        );
        edit(&ana, json!([{"op": "remove", "id": "group"}]));
        edit(
            &ben,
            json!([{"op": "set", "id": "a", "key": "color", "value": "red"},
                           {"op": "add", "id": "e", "attrs": {"parent": "group", "z": "8280"}}]),
        );
        edit(
            &ben,
            json!([{"op": "set", "id": "b", "key": "parent", "value": null}]),
        );
        settle(
            &[ana.clone(), ben.clone()],
            &observer,
            Duration::from_secs(30),
        )
        .await
        .unwrap();

        let doc = observer.lock().document().clone();
        assert!(
            doc.get("group").is_none() && doc.get("a").is_none(),
            "the delete won over edits inside"
        );
        let zs: Vec<String> = doc
            .children(None)
            .filter_map(|id| {
                doc.get(id)
                    .unwrap()
                    .get("z")
                    .and_then(|z| z.as_str())
                    .map(str::to_owned)
            })
            .collect();
        let mut unique = zs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            zs.len(),
            unique.len(),
            "sibling z values stay unique: {zs:?}"
        );
        assert_eq!(ana.lock().document().checksum(), doc.checksum());
        assert_eq!(ben.lock().document().checksum(), doc.checksum());
        stop.notify_waiters();
    });
}
