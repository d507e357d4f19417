//! Generic Phoenix channels of the client: any topic, pushes with replies
//! and timeouts, buffering until joined, rejoin, leave, subscriptions and
//! stale join_ref filtering. The test plays the server.

use serde_json::{json, Value};
use tandem_client::{Client, Config, Event, Frame};

fn sent(c: &mut Client) -> Vec<Frame> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|t| Frame::decode(&t).unwrap())
        .collect()
}

fn events(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn answer(c: &mut Client, now: u64, to: &Frame, status: &str, response: Value) {
    let f = Frame {
        join_ref: to.join_ref.clone(),
        ref_: to.ref_.clone(),
        topic: to.topic.clone(),
        event: "phx_reply".into(),
        payload: json!({"status": status, "response": response}),
    };
    c.handle_frame(now, &f.encode());
}

fn server_push(c: &mut Client, topic: &str, event: &str, join_ref: Option<&str>, payload: Value) {
    let f = Frame {
        join_ref: join_ref.map(str::to_owned),
        ref_: None,
        topic: topic.into(),
        event: event.into(),
        payload,
    };
    c.handle_frame(1, &f.encode());
}

/// A connected client whose project join is answered, with `room:1` joined.
fn connected() -> (Client, Frame) {
    let mut c = Client::new(Config::new("p", "me"), 0);
    c.join_channel(0, "room:1", json!({"hello": true}));
    c.handle_timeout(0);
    c.poll_connect();
    c.handle_connected(0);
    let frames = sent(&mut c);
    let project = frames
        .iter()
        .find(|f| f.topic == "project:p")
        .unwrap()
        .clone();
    answer(
        &mut c,
        0,
        &project,
        "ok",
        json!({"seq": 0, "checksum": "0000000000000000", "snapshot": {}}),
    );
    let join = frames.into_iter().find(|f| f.topic == "room:1").unwrap();
    assert_eq!(
        (join.event.as_str(), &join.payload),
        ("phx_join", &json!({"hello": true}))
    );
    (c, join)
}

#[test]
fn pushes_wait_for_the_join_then_go_out_in_order_and_get_their_replies() {
    let (mut c, join) = connected();
    let r1 = c
        .push_channel(0, "room:1", "ping", json!({"n": 1}))
        .unwrap();
    let r2 = c
        .push_channel(0, "room:1", "ping", json!({"n": 2}))
        .unwrap();
    assert!(sent(&mut c).is_empty(), "buffered until joined");
    answer(&mut c, 1, &join, "ok", json!({"welcome": 1}));
    let out = sent(&mut c);
    assert_eq!(
        out.iter()
            .map(|f| f.payload["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(out.iter().all(|f| f.join_ref == join.join_ref));
    answer(&mut c, 2, &out[1], "ok", json!({"pong": 2}));
    answer(&mut c, 2, &out[0], "error", json!({"reason": "nope"}));
    let ev = events(&mut c);
    assert!(ev.contains(&Event::ChannelJoined {
        topic: "room:1".into(),
        response: json!({"welcome": 1})
    }));
    assert!(ev.contains(&Event::Reply {
        topic: "room:1".into(),
        ref_: r2,
        ok: true,
        response: json!({"pong": 2})
    }));
    assert!(ev.contains(&Event::Reply {
        topic: "room:1".into(),
        ref_: r1,
        ok: false,
        response: json!({"reason": "nope"})
    }));
}

#[test]
fn a_push_without_an_answer_times_out() {
    let (mut c, join) = connected();
    answer(&mut c, 0, &join, "ok", json!({}));
    let r = c.push_channel(0, "room:1", "ask", json!({})).unwrap();
    sent(&mut c);
    c.handle_timeout(10_000);
    assert!(events(&mut c).contains(&Event::PushTimeout {
        topic: "room:1".into(),
        ref_: r
    }));
}

#[test]
fn subscriptions_filter_events_and_stale_join_refs_are_dropped() {
    let (mut c, join) = connected();
    answer(&mut c, 0, &join, "ok", json!({}));
    c.subscribe("room:1", "wanted");
    events(&mut c);
    let jr = join.join_ref.as_deref();
    server_push(&mut c, "room:1", "wanted", jr, json!({"a": 1}));
    server_push(&mut c, "room:1", "ignored", jr, json!({"a": 2}));
    server_push(&mut c, "room:1", "wanted", Some("stale"), json!({"a": 3}));
    server_push(&mut c, "room:1", "wanted", None, json!({"a": 4})); // broadcasts carry no join_ref
    let got: Vec<Value> = events(&mut c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(got, [json!({"a": 1}), json!({"a": 4})]);
}

#[test]
fn a_channel_error_or_a_refused_join_rejoins_and_a_reconnect_rejoins_with_buffered_pushes() {
    let (mut c, join) = connected();
    answer(&mut c, 0, &join, "ok", json!({}));
    server_push(
        &mut c,
        "room:1",
        "phx_error",
        join.join_ref.as_deref(),
        json!({}),
    );
    c.handle_timeout(1_500);
    let rejoin = sent(&mut c)
        .into_iter()
        .find(|f| f.event == "phx_join" && f.topic == "room:1")
        .expect("rejoined");
    answer(&mut c, 1_500, &rejoin, "error", json!({"reason": "busy"}));
    assert!(events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::ChannelRefused { .. })));
    // The second failure in a row waits one backoff step longer:
    // 2 s with jitter in its upper half.
    let retry_in = c.poll_timeout().unwrap() - 1_500;
    assert!((1_000..=2_000).contains(&retry_in), "{retry_in} ms");
    c.handle_timeout(3_500);
    assert!(
        sent(&mut c)
            .iter()
            .any(|f| f.event == "phx_join" && f.topic == "room:1"),
        "retried after a refusal"
    );

    // Disconnected: pushes are buffered and go out after the next join.
    c.handle_disconnected(3_500);
    c.push_channel(3_500, "room:1", "later", json!({"k": 1}));
    let retry = c.poll_timeout().unwrap();
    c.handle_timeout(retry);
    c.poll_connect();
    c.handle_connected(retry);
    let frames = sent(&mut c);
    let join = frames.iter().find(|f| f.topic == "room:1").unwrap().clone();
    assert!(frames.iter().all(|f| f.event != "later"));
    answer(&mut c, retry, &join, "ok", json!({}));
    assert!(sent(&mut c).iter().any(|f| f.event == "later"));
}

#[test]
fn leave_sends_phx_leave_and_forgets_the_channel() {
    let (mut c, join) = connected();
    answer(&mut c, 0, &join, "ok", json!({}));
    c.leave_channel(1, "room:1");
    let leave = sent(&mut c).pop().unwrap();
    assert_eq!(
        (leave.event.as_str(), leave.join_ref.clone()),
        ("phx_leave", join.join_ref.clone())
    );
    assert!(c.push_channel(2, "room:1", "x", json!({})).is_none());
    server_push(&mut c, "room:1", "anything", None, json!({}));
    assert!(!events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::Message { .. })));
}

/// A server frame of the V2 binary serializer: kind, one length byte per
/// field, the fields, then the raw payload.
fn server_binary(c: &mut Client, now: u64, kind: u8, fields: &[&str], payload: &[u8]) {
    let mut bytes = vec![kind];
    bytes.extend(fields.iter().map(|f| u8::try_from(f.len()).unwrap()));
    for f in fields {
        bytes.extend_from_slice(f.as_bytes());
    }
    bytes.extend_from_slice(payload);
    c.handle_binary(now, &bytes);
}

#[test]
fn binary_messages_and_replies_reach_the_app_filtered_like_text_ones() {
    let (mut c, join) = connected();
    answer(&mut c, 0, &join, "ok", json!({}));
    c.subscribe("room:1", "blob");
    let r = c.push_channel(0, "room:1", "ask", json!({})).unwrap();
    sent(&mut c);
    events(&mut c);
    let jr = join.join_ref.clone().unwrap();

    server_binary(&mut c, 1, 0, &[&jr, "room:1", "blob"], b"\x01push");
    server_binary(&mut c, 1, 0, &["stale", "room:1", "blob"], b"\x02");
    server_binary(&mut c, 1, 2, &["room:1", "other"], b"\x03");
    server_binary(&mut c, 1, 2, &["room:1", "blob"], b"\x04cast");
    server_binary(&mut c, 1, 2, &["room:9", "blob"], b"\x05");
    server_binary(&mut c, 1, 1, &[&jr, &r, "room:1", "ok"], b"\xffanswer");
    let got = events(&mut c);
    assert_eq!(
        got,
        [
            Event::BinaryMessage {
                topic: "room:1".into(),
                event: "blob".into(),
                payload: b"\x01push".to_vec()
            },
            Event::BinaryMessage {
                topic: "room:1".into(),
                event: "blob".into(),
                payload: b"\x04cast".to_vec()
            },
            Event::BinaryReply {
                topic: "room:1".into(),
                ref_: r,
                ok: true,
                payload: b"\xffanswer".to_vec()
            },
        ]
    );
    // The binary reply settled the push: no timeout follows.
    c.handle_timeout(10_000);
    assert!(!events(&mut c)
        .iter()
        .any(|e| matches!(e, Event::PushTimeout { .. })));
}
