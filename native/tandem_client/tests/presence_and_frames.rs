//! The presence tracker, V1 and binary frames, and the presence/cursor
//! topics of the client, through the same two-sided style as client.rs.

use serde_json::{json, Value};
use tandem_client::{BinaryFrame, Client, Config, Event, Frame, Presence, PresenceChange};

fn meta(r: &str, client: &str) -> Value {
    json!({"phx_ref": r, "client_id": client, "name": "Ann"})
}

#[test]
fn presence_merges_state_and_diffs_like_phoenix_js() {
    let mut p = Presence::default();
    // A diff before the first state is held, then applied on top of it.
    p.sync_diff(&json!({"joins": {"bo": {"metas": [meta("b1", "t")]}}, "leaves": {}}));
    assert_eq!(p.list().count(), 0);
    p.sync_state(&json!({"ann": {"metas": [meta("a1", "tab1")]}}));
    assert_eq!(
        p.list().map(|(k, m)| (k, m.len())).collect::<Vec<_>>(),
        [("ann", 1), ("bo", 1)]
    );

    // A second tab of the same user is a second meta under one key.
    p.sync_diff(&json!({"joins": {"ann": {"metas": [meta("a2", "tab2")]}}, "leaves": {}}));
    assert_eq!(p.get("ann").unwrap().len(), 2);
    // An update is a leave of the old meta and a join of the new one.
    p.sync_diff(&json!({"joins": {"ann": {"metas": [meta("a3", "tab2")]}}, "leaves": {"ann": {"metas": [meta("a2", "tab2")]}}}));
    let refs: Vec<_> = p
        .get("ann")
        .unwrap()
        .iter()
        .map(|m| m["phx_ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["a1", "a3"]);
    // The last meta leaving removes the key.
    p.sync_diff(&json!({"joins": {}, "leaves": {"bo": {"metas": [meta("b1", "t")]}}}));
    assert!(p.get("bo").is_none());
}

fn refs_of(p: &Presence, key: &str) -> Vec<String> {
    p.get(key)
        .unwrap_or_default()
        .iter()
        .map(|m| m["phx_ref"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_new_state_is_merged_as_a_diff_and_reports_joins_and_leaves_like_phoenix_js() {
    let mut p = Presence::default();
    p.sync_state(&json!({
        "ann": {"metas": [meta("a1", "t1"), meta("a2", "t2")]},
        "bo": {"metas": [meta("b1", "t")]}
    }));
    // After a rejoin: a2 gone, a3 new, bo gone, cy new with a fetched field.
    p.expect_state();
    let diff_before_state = json!({"joins": {"dee": {"metas": [meta("d1", "t")]}}, "leaves": {}});
    assert!(
        p.sync_diff(&diff_before_state).is_empty(),
        "held until the state"
    );
    assert!(p.get("dee").is_none());
    let changes = p.sync_state(&json!({
        "ann": {"metas": [meta("a3", "t3"), meta("a1", "t1")]},
        "cy": {"metas": [meta("c1", "t")], "user": {"name": "Cy"}}
    }));
    // Surviving metas keep their place; newcomers follow.
    assert_eq!(refs_of(&p, "ann"), ["a1", "a3"]);
    assert!(p.get("bo").is_none());
    assert_eq!(p.presence("cy").unwrap()["user"], json!({"name": "Cy"}));
    assert_eq!(
        refs_of(&p, "dee"),
        ["d1"],
        "the held diff applies after the state"
    );
    assert_eq!(
        changes,
        [
            PresenceChange::Join {
                key: "ann".into(),
                current: Some(json!({"metas": [meta("a1", "t1"), meta("a2", "t2")]})),
                joined: json!({"metas": [meta("a3", "t3")]}),
            },
            PresenceChange::Join {
                key: "cy".into(),
                current: None,
                joined: json!({"metas": [meta("c1", "t")], "user": {"name": "Cy"}}),
            },
            PresenceChange::Leave {
                key: "ann".into(),
                current: json!({"metas": [meta("a1", "t1"), meta("a3", "t3")]}),
                left: json!({"metas": [meta("a2", "t2")]}),
            },
            PresenceChange::Leave {
                key: "bo".into(),
                current: json!({"metas": []}),
                left: json!({"metas": [meta("b1", "t")]}),
            },
            PresenceChange::Join {
                key: "dee".into(),
                current: None,
                joined: json!({"metas": [meta("d1", "t")]}),
            },
        ]
    );
}

#[test]
fn binary_frames_encode_pushes_and_decode_replies_and_broadcasts() {
    let push = BinaryFrame {
        kind: 0,
        join_ref: Some("1".into()),
        ref_: Some("2".into()),
        topic: "project:p".into(),
        event: "diffs".into(),
        payload: vec![0x90],
    };
    let bytes = push.encode_push().unwrap();
    assert_eq!(&bytes[..5], &[0, 1, 1, 9, 5]);
    assert_eq!(bytes.last(), Some(&0x90));

    let mut reply = vec![1, 1, 1, 1, 2];
    reply.extend_from_slice(b"12tok\xff");
    let r = BinaryFrame::decode(&reply).unwrap();
    assert_eq!(
        (
            r.kind,
            r.join_ref.as_deref(),
            r.ref_.as_deref(),
            r.topic.as_str(),
            r.event.as_str()
        ),
        (1, Some("1"), Some("2"), "t", "ok")
    );
    assert_eq!(r.payload, [0xff]);

    let mut broadcast = vec![2, 1, 1];
    broadcast.extend_from_slice(b"te\x01\x02");
    let b = BinaryFrame::decode(&broadcast).unwrap();
    assert_eq!(
        (b.topic.as_str(), b.event.as_str(), b.payload.as_slice()),
        ("t", "e", &[1u8, 2][..])
    );

    let mut push_in = vec![0, 1, 1, 1];
    push_in.extend_from_slice(b"jte!");
    assert_eq!(BinaryFrame::decode(&push_in).unwrap().payload, b"!");
    assert!(BinaryFrame::decode(&[1, 9, 9, 9, 9]).is_none(), "truncated");
    assert!(BinaryFrame::decode(&[7]).is_none(), "unknown kind");
}

#[test]
fn v1_frames_are_objects() {
    let f = Frame {
        join_ref: None,
        ref_: Some("3".into()),
        topic: "phoenix".into(),
        event: "heartbeat".into(),
        payload: json!({}),
    };
    let text = f.encode_v1();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "3", "join_ref": null})
    );
    assert_eq!(Frame::decode_v1(&text), Some(f));
}

fn joined_with_presence() -> (Client, Vec<Frame>) {
    let config = Config {
        presence: true,
        ..Config::new("p", "me")
    };
    let mut c = Client::new(config, 0);
    c.handle_timeout(0);
    c.poll_connect();
    c.handle_connected(0);
    let sent: Vec<Frame> = std::iter::from_fn(|| c.poll_transmit())
        .map(|t| Frame::decode(&t).unwrap())
        .collect();
    for f in &sent {
        let response = if f.topic.starts_with("project:") {
            json!({"seq": 0, "checksum": "0000000000000000", "snapshot": {}})
        } else {
            json!({})
        };
        let reply = Frame {
            join_ref: f.join_ref.clone(),
            ref_: f.ref_.clone(),
            topic: f.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({"status": "ok", "response": response}),
        };
        c.handle_frame(0, &reply.encode());
    }
    (c, sent)
}

#[test]
fn joins_presence_and_cursors_and_surfaces_their_events() {
    let (mut c, sent) = joined_with_presence();
    let topics: Vec<_> = sent.iter().map(|f| f.topic.as_str()).collect();
    assert_eq!(topics, ["project:p", "presence:p", "cursors:p"]);
    let presence_join = sent[1].join_ref.clone();

    let push = |topic: &str, event: &str, payload: Value| {
        Frame {
            join_ref: None,
            ref_: None,
            topic: topic.into(),
            event: event.into(),
            payload,
        }
        .encode()
    };
    c.handle_frame(
        1,
        &push(
            "presence:p",
            "presence_state",
            json!({"ann": {"metas": [meta("a1", "x")]}}),
        ),
    );
    c.handle_frame(
        1,
        &push(
            "cursors:p",
            "moved",
            json!({"user_id": "ann", "client_id": "x", "x": 3, "y": 4.5}),
        ),
    );
    c.handle_frame(1, &push("project:p", "something_new", json!({"n": 1})));
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert!(events.contains(&Event::PresenceChanged));
    assert!(events.contains(&Event::CursorMoved {
        user_id: "ann".into(),
        client_id: Some("x".into()),
        x: 3.0,
        y: 4.5
    }));
    assert!(events.contains(&Event::Message {
        topic: "project:p".into(),
        event: "something_new".into(),
        payload: json!({"n": 1})
    }));
    assert_eq!(c.presence().get("ann").unwrap().len(), 1);

    // Selection updates and cursor moves go out on their topics with their join_refs.
    c.update_selection(2, vec!["r1".into()]);
    c.move_cursor(2, 10.0, 20.0);
    let out: Vec<Frame> = std::iter::from_fn(|| c.poll_transmit())
        .map(|t| Frame::decode(&t).unwrap())
        .collect();
    assert_eq!(out[0].event, "update");
    assert_eq!(out[0].join_ref, presence_join);
    assert_eq!(out[0].payload, json!({"selection": ["r1"]}));
    assert_eq!(
        (out[1].topic.as_str(), out[1].event.as_str()),
        ("cursors:p", "move")
    );

    // After a reconnect the selection is sent again once presence is rejoined.
    c.handle_disconnected(3);
    assert!(c.presence().list().next().is_none());
    c.move_cursor(3, 1.0, 1.0);
    assert!(
        c.poll_transmit().is_none(),
        "cursor moves are dropped while disconnected"
    );
}

#[test]
fn a_v1_client_speaks_objects_both_ways() {
    let config = Config {
        vsn: tandem_client::Vsn::V1,
        ..Config::new("p", "me")
    };
    let mut c = Client::new(config, 0);
    c.handle_timeout(0);
    c.poll_connect();
    c.handle_connected(0);
    let text = c.poll_transmit().unwrap();
    let join = Frame::decode_v1(&text).expect("a V1 object");
    assert!(Frame::decode(&text).is_none(), "not a V2 array");
    assert_eq!(join.event, "phx_join");
    let reply = Frame {
        join_ref: join.join_ref.clone(),
        ref_: join.ref_.clone(),
        topic: join.topic.clone(),
        event: "phx_reply".into(),
        payload: json!({"status": "ok", "response": {"seq": 0, "checksum": "0000000000000000", "snapshot": {"x": {}}}}),
    };
    c.handle_frame(0, &reply.encode_v1());
    assert!(c.is_joined());
    assert!(c.document().get("x").is_some());
}

#[test]
fn presence_joins_reach_the_app_and_a_presence_rejoin_holds_diffs_until_its_state() {
    let (mut c, sent) = joined_with_presence();
    let presence_join = sent[1].join_ref.clone();
    let frame = |join_ref: Option<String>, event: &str, payload: Value| {
        Frame {
            join_ref,
            ref_: None,
            topic: "presence:p".into(),
            event: event.into(),
            payload,
        }
        .encode()
    };
    while c.poll_event().is_some() {} // connect and join events
    let ann = json!({"ann": {"metas": [meta("a1", "x")]}});
    c.handle_frame(1, &frame(None, "presence_state", ann.clone()));
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::Presence(PresenceChange::Join {
                key: "ann".into(),
                current: None,
                joined: ann["ann"].clone()
            }),
            Event::PresenceChanged
        ]
    );

    // The presence channel errors: it is rejoined after the rejoin
    // backoff (1 s, jittered), a refused rejoin one step (2 s) later.
    c.handle_frame(2, &frame(presence_join, "phx_error", json!({})));
    let rejoin_after = |c: &mut Client, since: u64, step: u64| {
        assert!(c.poll_transmit().is_none(), "not at once");
        let at = c.poll_timeout().unwrap();
        assert!(
            (step / 2..=step).contains(&(at - since)),
            "{} ms",
            at - since
        );
        c.handle_timeout(at);
        let rejoin = Frame::decode(&c.poll_transmit().unwrap()).unwrap();
        assert_eq!(
            (rejoin.topic.as_str(), rejoin.event.as_str()),
            ("presence:p", "phx_join")
        );
        (rejoin, at)
    };
    let (rejoin, at) = rejoin_after(&mut c, 2, 1_000);
    let refusal = json!({"status": "error", "response": {"reason": "busy"}});
    let reply = |to: &Frame, payload: Value| Frame {
        event: "phx_reply".into(),
        payload,
        ..to.clone()
    };
    c.handle_frame(at, &reply(&rejoin, refusal).encode());
    let (rejoin, at) = rejoin_after(&mut c, at, 2_000);
    let ok = json!({"status": "ok", "response": {}});
    c.handle_frame(at, &reply(&rejoin, ok).encode());

    // A diff arriving before the new join's state waits for it.
    let bo = json!({"joins": {"bo": {"metas": [meta("b1", "y")]}}, "leaves": {}});
    c.handle_frame(at, &frame(None, "presence_diff", bo));
    assert!(c.poll_event().is_none());
    assert!(c.presence().get("bo").is_none());
    c.handle_frame(at, &frame(None, "presence_state", ann));
    assert_eq!(c.presence().get("bo").unwrap().len(), 1);
    assert_eq!(c.presence().get("ann").unwrap().len(), 1);
}

#[test]
fn a_v2_frame_is_read_in_one_pass_with_the_payload_typed_only_where_asked() {
    use tandem_client::frame::{Incoming, Payload};
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Batch {
        seq: u64,
    }
    let wants = |topic: &str, event: &str| topic == "project:p" && event == "batch";
    let typed = Incoming::<Batch>::parse(r#"[null,null,"project:p","batch",{"seq":4}]"#, wants);
    let typed = typed.expect("a batch frame");
    assert_eq!(typed.payload, Payload::Typed(Batch { seq: 4 }));
    assert_eq!((typed.join_ref, typed.ref_), (None, None));
    let other = Incoming::<Batch>::parse(r#"["1","2","project:q","batch",{"seq":4}]"#, wants);
    let other = other.expect("a frame of another topic");
    assert_eq!(other.payload, Payload::Json(json!({"seq": 4})));
    assert_eq!(
        (other.join_ref.as_deref(), other.ref_.as_deref()),
        (Some("1"), Some("2"))
    );
    // Strings with escapes cannot be borrowed from the text: they are copied.
    let escaped =
        Incoming::<Batch, _>::read(r#"["1\"","\u0032","project:p","batch",{"seq":4}]"#, |h| {
            wants(h.topic, h.event).then_some(std::marker::PhantomData::<Batch>)
        });
    let escaped = escaped.expect("a batch frame").into_owned();
    assert_eq!(
        (escaped.join_ref.as_deref(), escaped.ref_.as_deref()),
        (Some("1\""), Some("2"))
    );
    assert_eq!(escaped.payload, Payload::Typed(Batch { seq: 4 }));
    for bad in [
        r#"[null,null,"project:p","batch",{"seq":"four"}]"#, // does not fit the type
        r#"[null,null,"project:p","batch",{"seq":4},6]"#,    // six elements
        r#"[null,null,"project:p","batch"]"#,                // four
        r#"{"topic":"project:p"}"#,                          // not V2
        r#"[null,null,"project:p","batch",{"seq":4}] x"#,    // trailing text
    ] {
        assert!(
            Incoming::<Batch>::parse(bad, wants).is_none(),
            "{bad} was read"
        );
    }
}
