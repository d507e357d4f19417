//! The socket and the `project:ID` sync engine in one state machine.
//!
//! Socket rules (Phoenix's): a heartbeat every `heartbeat_ms`; one still
//! unanswered when the next is due means the link is dead, so the client
//! asks the embedder to close it and reconnects with [`Backoff`]. Every push
//! carries a fresh ref and waits `push_timeout_ms` for its reply.
//!
//! Sync rules (PROTOCOL.md): edits apply optimistically through
//! [`Replica`]; each pending batch is sent once per joined connection and
//! again after every (re)join, since the server answers retries with the
//! original ack; batches that arrive before the join reply are held, and
//! those at or below the held seq ignored; a sequence gap asks for `sync`,
//! a checksum mismatch for `verify`, whose snapshot replaces the confirmed
//! state. Undo and redo replay the inverses of the user's own edits.

use crate::answer::{Accepted, State, Typed, Want};
use crate::backoff::Backoff;
use crate::direct::{self, Broadcast, Echo};
use crate::frame::{BinaryFrame, Envelope, Frame, Incoming, Payload};
use crate::outstanding::Outstanding;
use crate::presence::{Presence, PresenceChange};
use crate::write;
use crate::Millis;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::{json, Value};
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tandem_core::replica::{Gap, Received};
use tandem_core::room::ServerBatch;
use tandem_core::{Diff, Document, Outcome, Replica};

/// Settings of a client.
#[derive(Clone, Debug)]
pub struct Config {
    pub project: String,
    pub client_id: String,
    pub heartbeat_ms: Millis,
    pub push_timeout_ms: Millis,
    /// The first step of the rejoin backoff (capped at `backoff_cap_ms`).
    pub rejoin_ms: Millis,
    pub backoff_base_ms: Millis,
    pub backoff_cap_ms: Millis,
    /// Seeds the jitter of reconnects.
    pub seed: u64,
    /// Also join `presence:ID` and `cursors:ID`.
    pub presence: bool,
    /// The serializer to speak (`vsn` of the URL): V2 JSON arrays or V1 objects.
    pub vsn: Vsn,
}

/// The Phoenix serializer version a client speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vsn {
    #[default]
    V2,
    V1,
}

impl Vsn {
    /// The text of a frame in this serializer.
    fn encode(self, envelope: Envelope<'_>, payload: &impl Serialize) -> String {
        match self {
            Vsn::V2 => envelope.encode(payload),
            Vsn::V1 => envelope.encode_v1(payload),
        }
    }

    /// The `vsn` query parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Vsn::V2 => "2.0.0",
            Vsn::V1 => "1.0.0",
        }
    }
}

impl Config {
    pub fn new(project: impl Into<String>, client_id: impl Into<String>) -> Config {
        Config {
            project: project.into(),
            client_id: client_id.into(),
            heartbeat_ms: 30_000,
            push_timeout_ms: 10_000,
            rejoin_ms: 1_000,
            backoff_base_ms: 100,
            backoff_cap_ms: 10_000,
            seed: 0,
            presence: false,
            vsn: Vsn::V2,
        }
    }
}

/// What the app hears about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connected,
    Disconnected,
    Joined {
        seq: u64,
    },
    JoinRefused {
        reason: Value,
    },
    /// The document changed (a local edit, a remote batch, a resync).
    Changed,
    Acked {
        batch_id: u64,
        seq: u64,
    },
    Rejected {
        batch_id: u64,
        reason: Value,
    },
    /// The confirmed state disagreed with the server's checksum.
    Mismatch {
        seq: u64,
    },
    /// The confirmed state was replaced by a server snapshot.
    Resynced {
        seq: u64,
    },
    /// Someone joined or left `presence:ID` (phoenix.js's `onJoin` and
    /// `onLeave`); one per key of a merge, before its `PresenceChanged`.
    Presence(PresenceChange),
    /// `presence:ID` changed; read it with [`Client::presence`].
    PresenceChanged,
    /// Someone else's pointer moved (`cursors:ID`).
    CursorMoved {
        user_id: String,
        client_id: Option<String>,
        x: f64,
        y: f64,
    },
    /// Any other server message on a joined topic (see [`Client::subscribe`]).
    Message {
        topic: String,
        event: String,
        payload: Value,
    },
    /// A channel of [`Client::join_channel`] was joined (again).
    ChannelJoined {
        topic: String,
        response: Value,
    },
    /// A channel join was refused; it is retried after the rejoin backoff.
    ChannelRefused {
        topic: String,
        response: Value,
    },
    /// The answer to [`Client::push_channel`].
    Reply {
        topic: String,
        ref_: String,
        ok: bool,
        response: Value,
    },
    /// A binary server message (V2 binary frame) on a joined channel.
    BinaryMessage {
        topic: String,
        event: String,
        payload: Vec<u8>,
    },
    /// A binary answer to [`Client::push_channel`].
    BinaryReply {
        topic: String,
        ref_: String,
        ok: bool,
        payload: Vec<u8>,
    },
    /// A push got no answer in time (or its connection dropped first).
    PushTimeout {
        topic: String,
        ref_: String,
    },
}

/// Counters for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connects: u64,
    pub batches_sent: u64,
    pub acked: u64,
    pub rejected: u64,
    pub amends: u64,
    pub drops: u64,
    pub resyncs: u64,
    pub mismatches: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum Conn {
    Down { retry_at: Millis, attempt: u32 },
    Connecting { attempt: u32 },
    Up,
}

#[derive(Clone, Debug, PartialEq)]
enum Join {
    Idle,
    Joining,
    Joined,
    Retry { at: Millis },
}

/// The two ephemeral topics joined beside the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Presence,
    Cursors,
}

#[derive(Clone, Debug, PartialEq)]
enum Awaiting {
    Join,
    SideJoin(Side),
    SideReply,
    ChannelJoin(String),
    ChannelReply(String),
    Heartbeat,
    Diffs { batch_id: u64 },
    Sync,
    Verify,
}

impl Awaiting {
    /// A push of the `project:ID` sync engine, whose `ok` answer
    /// [`Accepted`] holds all the client needs.
    fn is_own(&self) -> bool {
        matches!(
            self,
            Awaiting::Join | Awaiting::Diffs { .. } | Awaiting::Sync | Awaiting::Verify
        )
    }
}

/// A channel the app joined by topic ([`Client::join_channel`]).
#[derive(Clone, Debug, Default)]
struct Channel {
    payload: Value,
    join_ref: Option<String>,
    joined: bool,
    retry_at: Option<Millis>,
    /// Failed joins in a row (the rejoin backoff step).
    failed_joins: u32,
    /// Pushes waiting for the join, in order: (ref, event, payload).
    buffer: VecDeque<(String, String, Value)>,
    /// Events the app subscribed to; empty means all.
    subscriptions: std::collections::BTreeSet<String>,
}

/// A Tandem client for one project.
pub struct Client {
    config: Config,
    /// `project:ID`, written once.
    topic: Arc<str>,
    conn: Conn,
    join: Join,
    join_ref: Option<String>,
    next_ref: u64,
    replica: Replica,
    /// Whether the replica holds server state yet (decides `last_seq`).
    synced: bool,
    outbox: VecDeque<String>,
    events: VecDeque<Event>,
    connect_requested: bool,
    close_requested: bool,
    backoff: Backoff,
    /// Delays between rejoins of a channel the server refused or closed.
    rejoin_backoff: Backoff,
    /// Failed joins of `project:ID` in a row.
    failed_joins: u32,
    heartbeat_at: Option<Millis>,
    awaiting: Outstanding<Awaiting>,
    /// Batches held while joining or resyncing.
    held: Vec<ServerBatch>,
    /// The diffs of pending batches as their first push wrote them, by
    /// batch id: a broadcast of one with those very bytes is read without
    /// them (`direct::broadcast`), and a resend copies them (a batch's
    /// diffs never change under its id).
    sent_diffs: FxHashMap<u64, Box<str>>,
    resyncing: bool,
    /// Highest batch id sent on the current join.
    sent_upto: u64,
    /// After a transient refusal (`rate_limited`, `unavailable`): when the
    /// refused batch and everything after it go out again. Nothing is sent
    /// before, so the server still sees batch ids in order.
    resend_at: Option<Millis>,
    /// Transient refusals since the last acknowledgement (the backoff step).
    transient_refusals: u32,
    undo: Vec<Vec<Diff>>,
    redo: Vec<Vec<Diff>>,
    stats: Stats,
    /// join_ref of each joined side topic.
    sides: BTreeMap<Side, String>,
    /// When a refused or failed side topic joins again.
    side_retry: BTreeMap<Side, Millis>,
    /// Failed joins in a row of each side topic.
    side_failed_joins: BTreeMap<Side, u32>,
    presence: Presence,
    selection: Vec<String>,
    channels: BTreeMap<String, Channel>,
}

impl Client {
    /// A client that will ask to connect at once.
    pub fn new(config: Config, now: Millis) -> Client {
        let backoff = Backoff::new(config.backoff_base_ms, config.backoff_cap_ms, config.seed);
        let rejoin_seed = config.seed ^ 0x9e37_79b9_7f4a_7c15;
        let rejoin_backoff = Backoff::new(config.rejoin_ms, config.backoff_cap_ms, rejoin_seed);
        let replica = Replica::new(config.client_id.clone(), 0, Document::default(), 1);
        Client {
            topic: format!("project:{}", config.project).into(),
            config,
            conn: Conn::Down {
                retry_at: now,
                attempt: 0,
            },
            join: Join::Idle,
            join_ref: None,
            next_ref: 0,
            replica,
            synced: false,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            connect_requested: false,
            close_requested: false,
            backoff,
            rejoin_backoff,
            failed_joins: 0,
            heartbeat_at: None,
            awaiting: Outstanding::default(),
            held: Vec::new(),
            sent_diffs: FxHashMap::default(),
            resyncing: false,
            sent_upto: 0,
            resend_at: None,
            transient_refusals: 0,
            undo: Vec::new(),
            redo: Vec::new(),
            stats: Stats::default(),
            sides: BTreeMap::new(),
            side_retry: BTreeMap::new(),
            side_failed_joins: BTreeMap::new(),
            presence: Presence::default(),
            selection: Vec::new(),
            channels: BTreeMap::new(),
        }
    }

    // ---- outputs -------------------------------------------------------

    /// The next text frame to send.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the embedder should open a connection now.
    pub fn poll_connect(&mut self) -> bool {
        std::mem::take(&mut self.connect_requested)
    }

    /// Whether the embedder should close the connection (dead link).
    pub fn poll_close(&mut self) -> bool {
        std::mem::take(&mut self.close_requested)
    }

    /// When [`Client::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let mut next: Option<Millis> = None;
        let mut at = |t: Millis| next = Some(next.map_or(t, |n| n.min(t)));
        match self.conn {
            Conn::Down { retry_at, .. } => at(retry_at),
            Conn::Up => {
                if let Some(t) = self.heartbeat_at {
                    at(t);
                }
                if let Join::Retry { at: t } = self.join {
                    at(t);
                }
                if let Some(t) = self.resend_at {
                    at(t);
                }
                self.channels
                    .values()
                    .filter_map(|c| c.retry_at)
                    .chain(self.side_retry.values().copied())
                    .for_each(&mut at);
                if let Some(deadline) = self.awaiting.next_deadline() {
                    at(deadline);
                }
            }
            Conn::Connecting { .. } => {}
        }
        next
    }

    // ---- state for the app -----------------------------------------------

    /// The local view: confirmed state plus pending edits.
    pub fn document(&mut self) -> &Document {
        self.replica.document()
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn is_joined(&self) -> bool {
        self.join == Join::Joined && !self.resyncing
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A one-line account of the internal state, for diagnostics.
    pub fn describe(&self) -> String {
        let pending: Vec<u64> = self.replica.pending().map(|p| p.batch_id).collect();
        format!(
            "conn={:?} join={:?} resyncing={} pending={pending:?} sent_upto={} awaiting={:?}",
            self.conn, self.join, self.resyncing, self.sent_upto, self.awaiting
        )
    }

    // ---- inputs: transport -------------------------------------------------

    /// The connection the client asked for is open.
    pub fn handle_connected(&mut self, now: Millis) {
        self.conn = Conn::Up;
        self.stats.connects += 1;
        self.events.push_back(Event::Connected);
        self.heartbeat_at = Some(now + self.config.heartbeat_ms);
        self.send_join(now);
        if self.config.presence {
            self.join_side(now, Side::Presence);
            self.join_side(now, Side::Cursors);
        }
        let topics: Vec<String> = self.channels.keys().cloned().collect();
        for topic in topics {
            self.join_generic(now, &topic);
        }
    }

    /// The connection closed or could not be opened.
    pub fn handle_disconnected(&mut self, now: Millis) {
        let attempt = match self.conn {
            Conn::Up => 0,
            Conn::Connecting { attempt } | Conn::Down { attempt, .. } => attempt + 1,
        };
        if self.conn == Conn::Up {
            self.events.push_back(Event::Disconnected);
        }
        self.conn = Conn::Down {
            retry_at: now + self.backoff.delay(attempt),
            attempt,
        };
        self.join = Join::Idle;
        self.join_ref = None;
        self.heartbeat_at = None;
        for (ref_, what) in self.awaiting.drain() {
            if let Awaiting::ChannelReply(topic) = what {
                self.events.push_back(Event::PushTimeout { topic, ref_ });
            }
        }
        for channel in self.channels.values_mut() {
            channel.joined = false;
            channel.join_ref = None;
            channel.retry_at = None;
        }
        self.outbox.clear();
        self.held.clear();
        self.resyncing = false;
        self.sides.clear();
        self.side_retry.clear();
        self.side_failed_joins.clear();
        self.presence = Presence::default();
    }

    /// A text frame arrived.
    pub fn handle_frame(&mut self, now: Millis, text: &str) {
        let decoded = match self.config.vsn {
            Vsn::V2 => {
                let up = self.conn == Conn::Up;
                // The frames read most: first as the server writes them.
                if up {
                    let applies = self.applies_batches();
                    let sent = |client_id: &str, batch_id| {
                        let own = applies && client_id == self.replica.client_id();
                        own.then(|| self.sent_diffs.get(&batch_id))
                            .flatten()
                            .map(|d| &**d)
                    };
                    match direct::broadcast(text, &self.topic, sent) {
                        Some(Broadcast::Batch(batch)) => return self.on_batch(now, batch),
                        Some(Broadcast::Echo(echo)) if self.on_echo(now, &echo) => return,
                        // No longer pending: only the batch's diffs will do.
                        Some(Broadcast::Echo(_)) => {
                            if let Some(Broadcast::Batch(batch)) =
                                direct::broadcast(text, &self.topic, |_, _| None)
                            {
                                return self.on_batch(now, batch);
                            }
                        }
                        None => {}
                    }
                }
                let own = |r: &str| self.awaiting.get(r).is_some_and(Awaiting::is_own);
                if let Some((ref_, accepted)) = direct::ack(text).filter(|(r, _)| own(r)) {
                    return self.on_own_answer(now, ref_, accepted);
                }
                let asked = Cell::new(None);
                let want = |head: &Envelope<'_>| {
                    let batches = up && self.is_own_topic(head.topic);
                    let answered = |r: &str| self.awaiting.get(r).is_some_and(Awaiting::is_own);
                    let want = Want::of(head, batches, answered);
                    asked.set(want);
                    want
                };
                match Incoming::<Typed, _>::read(text, want) {
                    // A reply that is not a plain acceptance: read as JSON.
                    None if asked.get() == Some(Want::Answer) => Frame::decode(text),
                    None => None,
                    Some(incoming) => match incoming.payload {
                        Payload::Json(_) => incoming.into_owned().into_frame_or_typed().ok(),
                        Payload::Typed(Typed::Batch(batch)) => return self.on_batch(now, batch),
                        Payload::Typed(Typed::Answer(Some(accepted))) => {
                            let ref_ = incoming.ref_.as_deref().unwrap_or_default();
                            return self.on_own_answer(now, ref_, accepted);
                        }
                        Payload::Typed(Typed::Answer(None)) => Frame::decode(text),
                    },
                }
            }
            Vsn::V1 => Frame::decode_v1(text),
        };
        let Some(frame) = decoded else {
            return;
        };
        if let Some((status, _)) = frame.reply() {
            let ok = status == "ok";
            let waited = frame.ref_.as_ref().and_then(|r| self.awaiting.remove(r));
            if let Some(what) = waited {
                let Frame {
                    ref_, mut payload, ..
                } = frame;
                // Moved out, not copied: a join's answer may hold the document.
                let response = payload.get_mut("response").map(Value::take);
                self.on_reply(now, ref_, what, ok, response.unwrap_or_default());
            }
            return;
        }
        if self.conn != Conn::Up {
            return;
        }
        if !self.is_own_topic(&frame.topic) {
            self.handle_side_frame(now, frame);
            return;
        }
        match frame.event.as_str() {
            "batch" => {
                if let Ok(batch) = serde_json::from_value::<ServerBatch>(frame.payload) {
                    self.on_batch(now, batch);
                }
            }
            "phx_error" | "phx_close" if frame.join_ref == self.join_ref => {
                self.join = Join::Retry {
                    at: self.rejoin_at(now),
                };
                self.join_ref = None;
            }
            _ => self.events.push_back(Event::Message {
                topic: frame.topic,
                event: frame.event,
                payload: frame.payload,
            }),
        }
    }

    /// An `ok` answer read directly (see [`Awaiting::is_own`]).
    fn on_own_answer(&mut self, now: Millis, ref_: &str, accepted: Accepted) {
        if let Some(what) = self.awaiting.remove(ref_) {
            self.on_accepted(now, what, accepted);
        }
    }

    fn on_batch(&mut self, now: Millis, batch: ServerBatch) {
        if self.applies_batches() {
            self.apply_batches(now, [batch]);
        } else {
            self.held.push(batch);
        }
    }

    /// Whether a batch received now is applied at once (else it is held).
    fn applies_batches(&self) -> bool {
        self.join == Join::Joined && !self.resyncing
    }

    /// A broadcast of an own batch applied as sent (see
    /// `direct::broadcast`), applied without its diffs. False when that
    /// batch is not pending any more.
    fn on_echo(&mut self, now: Millis, echo: &Echo) -> bool {
        let Echo {
            seq,
            batch_id,
            checksum,
        } = *echo;
        let Some(received) = self.replica.receive_echo(seq, batch_id, checksum) else {
            return false;
        };
        self.sent_diffs.remove(&batch_id);
        self.after_receiving(now, 1, received);
        true
    }

    fn side_topic(&self, side: Side) -> String {
        match side {
            Side::Presence => format!("presence:{}", self.config.project),
            Side::Cursors => format!("cursors:{}", self.config.project),
        }
    }

    fn join_side(&mut self, now: Millis, side: Side) {
        let topic = self.side_topic(side);
        if side == Side::Presence {
            self.presence.expect_state();
        }
        let join_ref = (self.next_ref + 1).to_string();
        let payload = json!({"client_id": self.config.client_id});
        self.push(
            now,
            &topic,
            "phx_join",
            payload,
            Awaiting::SideJoin(side),
            Some(join_ref.clone()),
        );
        self.sides.insert(side, join_ref);
    }

    /// Leaves `side` until the rejoin backoff says to join it again.
    fn schedule_side_rejoin(&mut self, now: Millis, side: Side) {
        self.sides.remove(&side);
        let failed = self.side_failed_joins.entry(side).or_default();
        let delay = self.rejoin_backoff.delay(*failed);
        *failed += 1;
        self.side_retry.insert(side, now + delay);
    }

    fn handle_side_frame(&mut self, now: Millis, frame: Frame) {
        let side = [Side::Presence, Side::Cursors]
            .into_iter()
            .find(|&s| self.side_topic(s) == frame.topic);
        let Some(side) = side else {
            self.handle_channel_frame(now, frame);
            return;
        };
        match (side, frame.event.as_str()) {
            (Side::Presence, "presence_state" | "presence_diff") => {
                let changes = if frame.event == "presence_state" {
                    self.presence.sync_state(&frame.payload)
                } else {
                    self.presence.sync_diff(&frame.payload)
                };
                if !changes.is_empty() {
                    self.events.extend(changes.into_iter().map(Event::Presence));
                    self.events.push_back(Event::PresenceChanged);
                }
            }
            (Side::Cursors, "moved") => {
                let p = &frame.payload;
                if let (Some(user_id), Some(x), Some(y)) =
                    (p["user_id"].as_str(), p["x"].as_f64(), p["y"].as_f64())
                {
                    self.events.push_back(Event::CursorMoved {
                        user_id: user_id.to_owned(),
                        client_id: p["client_id"].as_str().map(str::to_owned),
                        x,
                        y,
                    });
                }
            }
            (_, "phx_error" | "phx_close") if frame.join_ref.as_ref() == self.sides.get(&side) => {
                self.schedule_side_rejoin(now, side);
            }
            _ => self.events.push_back(Event::Message {
                topic: frame.topic,
                event: frame.event,
                payload: frame.payload,
            }),
        }
    }

    /// Joins any topic as a Phoenix channel: joined on every connect and
    /// rejoined after errors; pushes wait for the join and go out in order.
    pub fn join_channel(&mut self, now: Millis, topic: &str, payload: Value) {
        self.channels.insert(
            topic.to_owned(),
            Channel {
                payload,
                ..Channel::default()
            },
        );
        if self.conn == Conn::Up {
            self.join_generic(now, topic);
        }
    }

    /// Leaves a channel of [`Client::join_channel`].
    pub fn leave_channel(&mut self, now: Millis, topic: &str) {
        if let Some(channel) = self.channels.remove(topic) {
            if channel.joined {
                let push = (topic, "phx_leave", json!({}), channel.join_ref);
                self.push(
                    now,
                    push.0,
                    push.1,
                    push.2,
                    Awaiting::ChannelReply(topic.to_owned()),
                    push.3,
                );
            }
        }
    }

    /// Only these events of `topic` become [`Event::Message`] (all when none).
    pub fn subscribe(&mut self, topic: &str, event: &str) {
        if let Some(channel) = self.channels.get_mut(topic) {
            channel.subscriptions.insert(event.to_owned());
        }
    }

    /// Pushes `event` on a joined (or joining) channel; the answer comes as
    /// [`Event::Reply`] or [`Event::PushTimeout`] with the returned ref.
    pub fn push_channel(
        &mut self,
        now: Millis,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> Option<String> {
        let joined = self.channels.get(topic)?.joined;
        self.next_ref += 1;
        let ref_ = self.next_ref.to_string();
        if joined {
            self.send_channel_push(now, topic, ref_.clone(), event, payload);
        } else {
            let channel = self.channels.get_mut(topic)?;
            channel
                .buffer
                .push_back((ref_.clone(), event.to_owned(), payload));
        }
        Some(ref_)
    }

    fn send_channel_push(
        &mut self,
        now: Millis,
        topic: &str,
        ref_: String,
        event: &str,
        payload: Value,
    ) {
        let join_ref = self.channels.get(topic).and_then(|c| c.join_ref.clone());
        let what = Awaiting::ChannelReply(topic.to_owned());
        self.send_with_ref(now, ref_, topic, event, payload, what, join_ref);
    }

    fn join_generic(&mut self, now: Millis, topic: &str) {
        let Some(payload) = self.channels.get(topic).map(|c| c.payload.clone()) else {
            return;
        };
        let join_ref = (self.next_ref + 1).to_string();
        self.push(
            now,
            topic,
            "phx_join",
            payload,
            Awaiting::ChannelJoin(topic.to_owned()),
            Some(join_ref.clone()),
        );
        if let Some(channel) = self.channels.get_mut(topic) {
            channel.join_ref = Some(join_ref);
            channel.joined = false;
            channel.retry_at = None;
        }
    }

    fn on_channel_joined(&mut self, now: Millis, topic: String, ok: bool, response: Value) {
        let Some(channel) = self.channels.get_mut(&topic) else {
            return;
        };
        if !ok {
            let delay = self.rejoin_backoff.delay(channel.failed_joins);
            channel.failed_joins += 1;
            channel.retry_at = Some(now + delay);
            self.events
                .push_back(Event::ChannelRefused { topic, response });
            return;
        }
        channel.joined = true;
        channel.failed_joins = 0;
        let buffered: Vec<_> = channel.buffer.drain(..).collect();
        self.events.push_back(Event::ChannelJoined {
            topic: topic.clone(),
            response,
        });
        for (ref_, event, payload) in buffered {
            self.send_channel_push(now, &topic, ref_, &event, payload);
        }
    }

    fn handle_channel_frame(&mut self, now: Millis, frame: Frame) {
        let Some(channel) = self.channels.get_mut(&frame.topic) else {
            return;
        };
        // Messages for an earlier join of this topic are stale.
        if frame.join_ref.is_some() && frame.join_ref != channel.join_ref {
            return;
        }
        if matches!(frame.event.as_str(), "phx_error" | "phx_close") {
            let delay = self.rejoin_backoff.delay(channel.failed_joins);
            channel.failed_joins += 1;
            channel.joined = false;
            channel.retry_at = Some(now + delay);
        } else if self.wants(&frame.topic, None, &frame.event) {
            self.events.push_back(Event::Message {
                topic: frame.topic,
                event: frame.event,
                payload: frame.payload,
            });
        }
    }

    /// Whether a server message on `topic` reaches the app: the topic is a
    /// channel of [`Client::join_channel`], the message is not from an
    /// earlier join, and the app subscribed to its event (or to all).
    fn wants(&self, topic: &str, join_ref: Option<&String>, event: &str) -> bool {
        self.channels.get(topic).is_some_and(|channel| {
            let fresh = join_ref.is_none() || join_ref == channel.join_ref.as_ref();
            let subscribed =
                channel.subscriptions.is_empty() || channel.subscriptions.contains(event);
            fresh && subscribed
        })
    }

    /// A binary frame arrived (the V2 binary serializer): a reply to a push
    /// of [`Client::push_channel`], or a push or broadcast on a channel of
    /// [`Client::join_channel`]. Payloads reach the app as raw bytes; the
    /// `project:ID`, presence and cursor topics speak JSON only.
    pub fn handle_binary(&mut self, _now: Millis, bytes: &[u8]) {
        let Some(frame) = BinaryFrame::decode(bytes) else {
            return;
        };
        if self.conn != Conn::Up {
            return;
        }
        if frame.kind == 1 {
            let Some(ref_) = frame.ref_ else {
                return;
            };
            if let Some(Awaiting::ChannelReply(topic)) = self.awaiting.get(&ref_) {
                let topic = topic.clone();
                self.awaiting.remove(&ref_);
                self.events.push_back(Event::BinaryReply {
                    topic,
                    ref_,
                    ok: frame.event == "ok",
                    payload: frame.payload,
                });
            }
        } else if self.wants(&frame.topic, frame.join_ref.as_ref(), &frame.event) {
            self.events.push_back(Event::BinaryMessage {
                topic: frame.topic,
                event: frame.event,
                payload: frame.payload,
            });
        }
    }

    /// Who is present in the project (after joining with `presence: true`).
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Shares this connection's selection with the others (kept and resent
    /// after a reconnect).
    pub fn update_selection(&mut self, now: Millis, ids: Vec<String>) {
        self.selection = ids;
        self.send_selection(now);
    }

    fn send_selection(&mut self, now: Millis) {
        if let Some(join_ref) = self.sides.get(&Side::Presence).cloned() {
            let topic = self.side_topic(Side::Presence);
            let payload = json!({"selection": self.selection});
            self.push(
                now,
                &topic,
                "update",
                payload,
                Awaiting::SideReply,
                Some(join_ref),
            );
        }
    }

    /// Moves this user's pointer; dropped while not connected (ephemeral).
    pub fn move_cursor(&mut self, now: Millis, x: f64, y: f64) {
        if let Some(join_ref) = self.sides.get(&Side::Cursors).cloned() {
            let topic = self.side_topic(Side::Cursors);
            self.next_ref += 1;
            let frame = Frame {
                join_ref: Some(join_ref),
                ref_: Some(self.next_ref.to_string()),
                topic,
                event: "move".into(),
                payload: json!({"x": x, "y": y}),
            };
            let _ = now;
            self.transmit(&frame);
        }
    }

    /// Time passed: heartbeats, reconnects, rejoins and push timeouts.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.conn {
            Conn::Down { retry_at, attempt } if retry_at <= now => {
                self.conn = Conn::Connecting { attempt };
                self.connect_requested = true;
            }
            Conn::Up => {
                if self.heartbeat_at.is_some_and(|t| t <= now) {
                    if self.awaiting.values().any(|w| *w == Awaiting::Heartbeat) {
                        // The last heartbeat was never answered: the link is dead.
                        self.close_requested = true;
                        self.handle_disconnected(now);
                        return;
                    }
                    self.push(
                        now,
                        "phoenix",
                        "heartbeat",
                        json!({}),
                        Awaiting::Heartbeat,
                        None,
                    );
                    self.heartbeat_at = Some(now + self.config.heartbeat_ms);
                }
                if matches!(self.join, Join::Retry { at } if at <= now) {
                    self.send_join(now);
                }
                let due: Vec<Side> = self
                    .side_retry
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(side, _)| *side)
                    .collect();
                for side in due {
                    self.side_retry.remove(&side);
                    self.join_side(now, side);
                }
                if self.resend_at.is_some_and(|t| t <= now) {
                    self.resend_at = None;
                    if self.is_joined() {
                        self.send_pending(now);
                    }
                }
                let due: Vec<String> = self
                    .channels
                    .iter()
                    .filter(|(_, c)| c.retry_at.is_some_and(|t| t <= now))
                    .map(|(t, _)| t.clone())
                    .collect();
                for topic in due {
                    self.join_generic(now, &topic);
                }
                let expired = self
                    .awaiting
                    .take_expired(now, |w| *w != Awaiting::Heartbeat);
                for (r, what) in expired {
                    self.on_timeout(now, Some(r), what);
                }
            }
            _ => {}
        }
    }

    // ---- inputs: the app ----------------------------------------------------

    /// Applies the app's operation now and sends it when joined.
    pub fn edit(&mut self, now: Millis, diffs: Vec<Diff>) -> Option<u64> {
        let batch_id = self.apply_local(now, diffs, Stack::Undo)?;
        self.redo.clear();
        Some(batch_id)
    }

    /// Undoes the latest own edit (as a new edit).
    pub fn undo(&mut self, now: Millis) -> Option<u64> {
        let inverse = self.undo.pop()?;
        self.apply_local(now, inverse, Stack::Redo)
    }

    /// Redoes the latest undone edit.
    pub fn redo(&mut self, now: Millis) -> Option<u64> {
        let diffs = self.redo.pop()?;
        self.apply_local(now, diffs, Stack::Undo)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    // ---- internals ------------------------------------------------------------

    /// `project:ID`, shared with the pushes that name it.
    fn topic(&self) -> Arc<str> {
        Arc::clone(&self.topic)
    }

    /// Whether `topic` is [`Client::topic`] (asked of every frame, so
    /// without building the string).
    fn is_own_topic(&self, topic: &str) -> bool {
        topic.strip_prefix("project:") == Some(self.config.project.as_str())
    }

    fn apply_local(&mut self, now: Millis, diffs: Vec<Diff>, stack: Stack) -> Option<u64> {
        let edit = self.replica.edit(diffs);
        for outcome in &edit.outcomes {
            match outcome {
                Outcome::Amended => self.stats.amends += 1,
                Outcome::Dropped(_) => self.stats.drops += 1,
                Outcome::Accepted => {}
            }
        }
        let batch_id = edit.batch_id?;
        match stack {
            Stack::Undo => self.undo.push(edit.inverse),
            Stack::Redo => self.redo.push(edit.inverse),
        }
        self.events.push_back(Event::Changed);
        if self.is_joined() {
            self.send_pending(now);
        }
        Some(batch_id)
    }

    fn transmit(&mut self, frame: &Frame) {
        self.transmit_parts(frame.envelope(), &frame.payload);
    }

    /// Queues a frame written straight from `payload`, with no `Value` copy.
    fn transmit_parts(&mut self, envelope: Envelope<'_>, payload: &impl Serialize) {
        let text = self.config.vsn.encode(envelope, payload);
        self.outbox.push_back(text);
    }

    fn push(
        &mut self,
        now: Millis,
        topic: &str,
        event: &str,
        payload: impl Serialize,
        what: Awaiting,
        join_ref: Option<String>,
    ) -> String {
        let ref_ = fresh_ref(&mut self.next_ref);
        self.send_with_ref(now, ref_.clone(), topic, event, payload, what, join_ref);
        ref_
    }

    #[allow(clippy::too_many_arguments)]
    fn send_with_ref(
        &mut self,
        now: Millis,
        ref_: String,
        topic: &str,
        event: &str,
        payload: impl Serialize,
        what: Awaiting,
        join_ref: Option<String>,
    ) {
        let envelope = Envelope {
            join_ref: join_ref.as_deref(),
            ref_: Some(&ref_),
            topic,
            event,
        };
        self.transmit_parts(envelope, &payload);
        self.await_reply(now, ref_, what);
    }

    fn await_reply(&mut self, now: Millis, ref_: String, what: Awaiting) {
        self.awaiting
            .insert(ref_, what, now + self.config.push_timeout_ms);
    }

    /// When to join `project:ID` again after a refusal or an error: the
    /// rejoin backoff, one step further for every failure in a row.
    fn rejoin_at(&mut self, now: Millis) -> Millis {
        let delay = self.rejoin_backoff.delay(self.failed_joins);
        self.failed_joins += 1;
        now + delay
    }

    fn send_join(&mut self, now: Millis) {
        let last_seq = self.synced.then(|| self.replica.seq());
        let payload = json!({"protocol": tandem_core::PROTOCOL_VERSION, "client_id": self.config.client_id, "last_seq": last_seq});
        let topic = self.topic();
        // A join's own ref is its join_ref: the ref `push` is about to take.
        let join_ref = (self.next_ref + 1).to_string();
        self.push(
            now,
            &topic,
            "phx_join",
            payload,
            Awaiting::Join,
            Some(join_ref.clone()),
        );
        self.join_ref = Some(join_ref);
        self.join = Join::Joining;
        self.held.clear();
        // The join reply sends every pending batch again.
        self.sent_upto = 0;
        self.resend_at = None;
    }

    /// Sends every pending batch not yet sent on this join, in order
    /// (unless a resend after a transient refusal is waiting). Written
    /// straight from the pending diffs: a copy of them cost as much as the
    /// writing.
    fn send_pending(&mut self, now: Millis) {
        if self.resend_at.is_some() {
            return;
        }
        let Client {
            replica,
            config,
            topic,
            join_ref,
            next_ref,
            sent_upto,
            sent_diffs,
            ..
        } = self;
        let unsent: Vec<(u64, String, String)> = replica
            .pending()
            .filter(|p| p.batch_id > *sent_upto)
            .map(|p| {
                let ref_ = fresh_ref(next_ref);
                let envelope = Envelope {
                    join_ref: join_ref.as_deref(),
                    ref_: Some(&ref_),
                    topic,
                    event: "diffs",
                };
                let text = match config.vsn {
                    // A resend copies the diffs its first push wrote.
                    Vsn::V2 => match sent_diffs.get(&p.batch_id) {
                        Some(written) => write::diffs_push_again(&envelope, p.batch_id, written),
                        None => {
                            let push = write::diffs_push(&envelope, p.batch_id, &p.diffs);
                            sent_diffs.insert(p.batch_id, push.diffs().into());
                            push.text
                        }
                    },
                    Vsn::V1 => envelope.encode_v1(&SentBatch {
                        batch_id: p.batch_id,
                        diffs: &p.diffs,
                    }),
                };
                (p.batch_id, ref_, text)
            })
            .collect();
        // Batches that left otherwise (refused, answered as already
        // applied, moved under a fresh id) are let go now and then.
        if sent_diffs.len() > 2 * replica.pending().len() + 16 {
            sent_diffs.retain(|id, _| replica.pending().any(|p| p.batch_id == *id));
        }
        for (batch_id, ref_, text) in unsent {
            self.outbox.push_back(text);
            self.await_reply(now, ref_, Awaiting::Diffs { batch_id });
            self.stats.batches_sent += 1;
            self.sent_upto = self.sent_upto.max(batch_id);
        }
    }

    fn on_reply(
        &mut self,
        now: Millis,
        ref_: Option<String>,
        what: Awaiting,
        ok: bool,
        response: Value,
    ) {
        match what {
            Awaiting::Heartbeat | Awaiting::SideReply => {}
            Awaiting::SideJoin(side) if ok => {
                self.side_failed_joins.remove(&side);
                if side == Side::Presence && !self.selection.is_empty() {
                    self.send_selection(now);
                }
            }
            Awaiting::SideJoin(side) => self.schedule_side_rejoin(now, side),
            Awaiting::ChannelJoin(topic) => self.on_channel_joined(now, topic, ok, response),
            Awaiting::ChannelReply(topic) => self.events.push_back(Event::Reply {
                topic,
                ref_: ref_.unwrap_or_default(),
                ok,
                response,
            }),
            what if ok && what.is_own() => {
                self.on_accepted(now, what, Accepted::from_json(response))
            }
            Awaiting::Join => {
                self.events
                    .push_back(Event::JoinRefused { reason: response });
                self.join = Join::Retry {
                    at: self.rejoin_at(now),
                };
            }
            // A refusal of an earlier push of a batch pushed again since
            // says what the server knew then, and the newer push may already
            // be sequenced (`not_sequenced` taken at its word would rekey
            // the batch and have the edit applied twice). The newer push's
            // own answer settles the batch.
            Awaiting::Diffs { batch_id } if self.pushed_again(batch_id) => {}
            Awaiting::Diffs { batch_id } => {
                let reason = response.get("reason").and_then(Value::as_str).unwrap_or("");
                // Never sequenced for certain: goes last under a fresh id.
                let rekey = reason == "rate_limited" || reason == "not_sequenced";
                if reason != "unavailable" && !rekey {
                    self.replica.rejected(batch_id);
                    self.stats.rejected += 1;
                    self.events.push_back(Event::Changed);
                    self.events.push_back(Event::Rejected {
                        batch_id,
                        reason: response,
                    });
                } else {
                    // Transient: send it and the later ones again on this
                    // join after a backoff, so as not to feed a flood. A
                    // rate-limited batch never reached the room while later
                    // ones may have: it goes last under a fresh id, or its
                    // old id would be refused and the edit lost. An
                    // unavailable one may have been sequenced: it keeps its
                    // id until the server says (`not_sequenced` or its ack).
                    let rekeyed = rekey && self.replica.rekey(batch_id).is_some();
                    if !rekeyed {
                        self.sent_upto = self.sent_upto.min(batch_id - 1);
                    }
                    if self.resend_at.is_none() {
                        let delay = self.backoff.delay(self.transient_refusals);
                        self.resend_at = Some(now + delay);
                        self.transient_refusals += 1;
                    }
                }
            }
            Awaiting::Sync | Awaiting::Verify => self.resync_from(now, None),
        }
    }

    /// Whether a push of `batch_id` still awaits its answer (called once
    /// the answer to another push of it came).
    fn pushed_again(&self, batch_id: u64) -> bool {
        let pushed = Awaiting::Diffs { batch_id };
        self.awaiting.values().any(|what| *what == pushed)
    }

    /// An `ok` answer to a push of the sync engine ([`Awaiting::is_own`]).
    fn on_accepted(&mut self, now: Millis, what: Awaiting, accepted: Accepted) {
        match what {
            Awaiting::Join => {
                self.join = Join::Joined;
                self.failed_joins = 0;
                self.apply_state(now, accepted);
                let held = std::mem::take(&mut self.held);
                self.apply_batches(now, held);
                self.events.push_back(Event::Joined {
                    seq: self.replica.seq(),
                });
                self.send_pending(now);
            }
            Awaiting::Diffs { batch_id } => {
                if let Some(seq) = accepted.seq {
                    self.replica.acknowledged(batch_id, seq);
                    self.transient_refusals = 0;
                    self.stats.acked += 1;
                    self.events.push_back(Event::Acked { batch_id, seq });
                }
            }
            Awaiting::Sync | Awaiting::Verify => {
                if accepted.ok == Some(true) {
                    return;
                }
                self.resyncing = false;
                self.apply_state(now, accepted);
                let held = std::mem::take(&mut self.held);
                self.apply_batches(now, held);
                // Edits made while resyncing were held back, and a snapshot may
                // have swallowed the broadcast of a batch already answered:
                // send every pending batch again (the server answers the ones
                // it has as duplicates, which acknowledges them).
                if self.is_joined() {
                    self.sent_upto = 0;
                    self.send_pending(now);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(&mut self, now: Millis, ref_: Option<String>, what: Awaiting) {
        match what {
            Awaiting::Join => self.send_join(now),
            Awaiting::Diffs { batch_id } => {
                self.sent_upto = self.sent_upto.min(batch_id.saturating_sub(1));
                self.send_pending(now);
            }
            Awaiting::Sync | Awaiting::Verify => self.resync_from(now, None),
            Awaiting::SideJoin(side) => self.join_side(now, side),
            Awaiting::ChannelJoin(topic) => self.join_generic(now, &topic),
            Awaiting::ChannelReply(topic) => self.events.push_back(Event::PushTimeout {
                topic,
                ref_: ref_.unwrap_or_default(),
            }),
            Awaiting::Heartbeat | Awaiting::SideReply => {}
        }
    }

    /// Installs a join/sync/verify answer: a snapshot or missed batches.
    fn apply_state(&mut self, now: Millis, accepted: Accepted) {
        let seq = accepted.seq.unwrap_or(0);
        match accepted.state {
            State::Snapshot(Some(doc)) => {
                if self.synced {
                    self.stats.resyncs += 1;
                    self.events.push_back(Event::Resynced { seq });
                }
                self.replica.reset(seq, doc);
                self.synced = true;
                self.events.push_back(Event::Changed);
            }
            State::Snapshot(None) => self.resyncing = true,
            State::Batches(batches) => {
                self.synced = true;
                self.apply_batches(now, batches);
            }
            State::Nothing => {}
        }
    }

    /// Rebases over server batches just read, which move into the replica.
    fn apply_batches<B>(&mut self, now: Millis, batches: B)
    where
        B: IntoIterator<Item = ServerBatch>,
        B::IntoIter: ExactSizeIterator,
    {
        let batches = batches.into_iter();
        let count = batches.len();
        if count == 0 {
            return;
        }
        let received = self.replica.receive(batches);
        self.after_receiving(now, count, received);
    }

    /// What receiving `count` server batches leads to: an app event when
    /// something new came, a verify on a mismatch, a sync on a gap.
    fn after_receiving(&mut self, now: Millis, count: usize, received: Result<Received, Gap>) {
        match received {
            Ok(received) => {
                if received.ignored < count {
                    self.events.push_back(Event::Changed);
                }
                if let Some(m) = received.mismatch {
                    self.stats.mismatches += 1;
                    self.events.push_back(Event::Mismatch { seq: m.seq });
                    self.verify(now, m.seq, m.actual.to_string());
                }
            }
            Err(_gap) => self.resync_from(now, Some(self.replica.seq())),
        }
    }

    fn verify(&mut self, now: Millis, seq: u64, checksum: String) {
        let (topic, join_ref) = (self.topic(), self.join_ref.clone());
        self.resyncing = true;
        let payload = json!({"seq": seq, "checksum": checksum});
        self.push(now, &topic, "verify", payload, Awaiting::Verify, join_ref);
    }

    fn resync_from(&mut self, now: Millis, since: Option<u64>) {
        let (topic, join_ref) = (self.topic(), self.join_ref.clone());
        self.resyncing = true;
        self.push(
            now,
            &topic,
            "sync",
            json!({"since": since}),
            Awaiting::Sync,
            join_ref,
        );
    }
}

enum Stack {
    Undo,
    Redo,
}

/// The payload of a `diffs` push: a `tandem_core::room::IncomingBatch`
/// that borrows its diffs.
#[derive(Serialize)]
struct SentBatch<'a> {
    batch_id: u64,
    diffs: &'a [Diff],
}

/// The next push's ref, printed by `itoa` (the same digits): `to_string`
/// went through the formatting machinery, two hundred instructions more
/// for every push.
fn fresh_ref(next_ref: &mut u64) -> String {
    *next_ref += 1;
    itoa::Buffer::new().format(*next_ref).to_owned()
}

#[cfg(test)]
mod tests {
    use super::SentBatch;
    use tandem_core::room::IncomingBatch;
    use tandem_core::Diff;

    #[test]
    fn a_sent_batch_is_written_as_the_server_reads_an_incoming_batch() {
        let diffs = vec![
            Diff::set("a", "x", Some(tandem_core::value!({"r": 1}))),
            Diff::Remove { id: "b".into() },
        ];
        let sent = SentBatch {
            batch_id: 7,
            diffs: &diffs,
        };
        let text = serde_json::to_string(&sent).unwrap();
        let incoming = IncomingBatch { batch_id: 7, diffs };
        assert_eq!(text, serde_json::to_string(&incoming).unwrap());
    }
}
