//! The simulated server: the Phoenix Channels frames of the `project:ID`
//! topic (PROTOCOL.md) in front of the very [`Room`] the NIF runs, with the
//! durability rule of the real one — a batch is journaled before it is
//! acknowledged or broadcast — and a restart that keeps only what was durable
//! (snapshot + journal, through the same `snapshot`/`restore`/`replay` code
//! the BEAM uses on recovery).
//!
//! Only the frame handling is re-stated here; every decision about diffs,
//! sequence numbers and retries is `tandem_core`'s.

use crate::ledger::{fingerprint, Fingerprint};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use tandem_client::frame::{Envelope, Incoming, Payload};
use tandem_client::{direct, write};
use tandem_core::room::{
    Ack, CatchUp, IncomingBatch, JournalEntry, LogBounds, ServerBatch, Submitted,
};
use tandem_core::{Checksum, Diff, Limits, Room};

/// A connection id, unique for the life of the simulation.
pub type ConnId = u64;

/// What the server wants sent on a connection. A broadcast's frame is
/// written once and shared by every member's copy.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub conn: ConnId,
    pub frame: Rc<String>,
}

/// A batch made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    pub seq: u64,
    pub client_id: Rc<str>,
    pub batch_id: u64,
    /// The fingerprint of the diffs as the client sent them, to tell which
    /// edit this was (see [`crate::ledger`]).
    pub edit: Fingerprint,
}

/// Every batch ever made durable, by seq. What is durable survives every
/// restart and the room numbers on from it, so the seqs run 1, 2, 3, ...
/// and a batch's place is its seq: a vector, where a search tree spent
/// about 0.5 % of the fuzzer's instructions on insertions and lookups.
#[derive(Debug, Default)]
pub struct History(Vec<Durable>);

impl History {
    fn push(&mut self, durable: Durable) {
        assert_eq!(durable.seq, self.last_seq() + 1, "durable seqs run on");
        self.0.push(durable);
    }

    /// The durable batch `seq`.
    pub fn get(&self, seq: u64) -> Option<&Durable> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.0.get(index)
    }

    /// The durable batches after `seq`, in order.
    pub fn after(&self, seq: u64) -> &[Durable] {
        let seen = usize::try_from(seq).unwrap_or(usize::MAX);
        self.0.get(seen..).unwrap_or_default()
    }

    /// The last durable seq (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.0.len() as u64
    }
}

/// A frame's `join_ref` or `ref`, as its text has it: only what outlives
/// the frame (a member's join ref, a held reply's refs) is copied.
type Ref<'t> = Option<&'t str>;

/// The ids are shared, not owned: every push needs them past a borrow of
/// the members (`diffs` takes `&mut self`), and copying two Strings a push
/// cost more than counting a reference. A member's topic is the project's:
/// `receive` answers a join to any other itself.
struct Member {
    join_ref: Option<String>,
    client_id: Rc<str>,
    user_id: Rc<str>,
}

/// A reply held back until the batch it answers is durable. Its topic is
/// the project's: `receive` answers any other itself.
struct Held {
    conn: ConnId,
    join_ref: Option<String>,
    ref_: Option<String>,
    ack: Ack,
    broadcast: Option<Rc<String>>,
}

impl Held {
    fn refs(&self) -> (Ref<'_>, Ref<'_>) {
        (self.join_ref.as_deref(), self.ref_.as_deref())
    }
}

/// A journaled batch. Its MessagePack bytes are what storage holds, but only
/// a reload reads them, so they are written then (the same bytes): most
/// entries are covered by a snapshot before any reload.
struct Entry {
    batch: Arc<ServerBatch>,
    ack: Ack,
}

/// The simulated server of one project.
pub struct SimServer {
    room: Room,
    project: String,
    members: BTreeMap<ConnId, Member>,
    /// Journal entries on "disk", and the room as of the last snapshot: its
    /// bytes are written when a reload reads them (the same bytes), since
    /// most snapshots are replaced before any reload, and writing one costs
    /// several times more than copying the room.
    journal: Vec<Entry>,
    snapshot: Option<Room>,
    /// Sequenced but not yet durable: their replies wait for `commit`.
    held: Vec<Held>,
    unjournaled: Vec<(Durable, Entry)>,
    history: History,
    pub snapshot_every: usize,
    pub restarts: u64,
    /// The next commit with something to write fails (see `commit`).
    fail_next_commit: bool,
    pub journal_failures: u64,
}

fn bounds() -> LogBounds {
    // Small, so that catch-up by snapshot is exercised as well as by log.
    LogBounds {
        max_batches: 64,
        max_diffs: 2_000,
    }
}

impl SimServer {
    pub fn new(project: &str) -> SimServer {
        SimServer {
            room: Room::new(Limits::default(), bounds()),
            project: format!("project:{project}"),
            members: BTreeMap::new(),
            journal: Vec::new(),
            snapshot: None,
            held: Vec::new(),
            unjournaled: Vec::new(),
            history: History::default(),
            snapshot_every: 50,
            restarts: 0,
            fail_next_commit: false,
            journal_failures: 0,
        }
    }

    pub fn room(&self) -> &Room {
        &self.room
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Connection ids of the joined members.
    pub fn member_conns(&self) -> Vec<ConnId> {
        self.members.keys().copied().collect()
    }

    /// Whether replies are waiting for a commit.
    pub fn has_uncommitted(&self) -> bool {
        !self.held.is_empty()
    }

    /// The connection closed: forget its channel. Its batches waiting for
    /// the commit stay: they are durable and broadcast all the same (found
    /// by seed 370); only the reply has nowhere to go.
    pub fn disconnected(&mut self, conn: ConnId) {
        self.members.remove(&conn);
    }

    /// Makes everything sequenced durable, then releases its replies and
    /// broadcasts in seq order.
    pub fn commit(&mut self) -> Vec<Outgoing> {
        if self.fail_next_commit && !self.unjournaled.is_empty() {
            return self.journal_failed();
        }
        for (durable, entry) in self.unjournaled.drain(..) {
            self.history.push(durable);
            self.journal.push(entry);
        }
        if self.journal.len() >= self.snapshot_every {
            self.snapshot = Some(self.room.clone());
            self.journal.clear();
        }
        // Room for each reply and each member's copy of each broadcast:
        // grown a frame at a time, it was reallocated several times a commit.
        let mut out = Vec::with_capacity(self.held.len() * (1 + self.members.len()));
        // Drained, not taken, so that the queue keeps its room.
        let mut waiting = std::mem::take(&mut self.held);
        for held in waiting.drain(..) {
            if let Some(batch) = &held.broadcast {
                self.broadcast(batch, &mut out);
            }
            let (join_ref, ref_) = held.refs();
            let frame = write::ack_reply(join_ref, ref_, &self.project, &held.ack);
            out.push(Outgoing {
                conn: held.conn,
                frame: Rc::new(frame),
            });
        }
        self.held = waiting;
        out
    }

    /// Arms (or, when the faults stop, disarms) a storage failure: the next
    /// commit that has something to write fails.
    pub fn fail_next_commit(&mut self, armed: bool) {
        self.fail_next_commit = armed;
    }

    /// As the real room when a journal write fails: every batch waiting for
    /// it is answered `unavailable`, and the room starts again from what was
    /// durable while connections and channels stay, so batches sent after
    /// the failed ones may be sequenced before their resend.
    fn journal_failed(&mut self) -> Vec<Outgoing> {
        self.fail_next_commit = false;
        self.journal_failures += 1;
        self.unjournaled.clear();
        self.reload();
        let failed = Response::refusal("unavailable", Some("the journal write failed"));
        let (held, topic) = (std::mem::take(&mut self.held), &self.project);
        held.into_iter()
            .map(|held| {
                let (join_ref, ref_) = held.refs();
                Outgoing {
                    conn: held.conn,
                    frame: reply(join_ref, ref_, topic, "error", &failed),
                }
            })
            .collect()
    }

    /// A crash and restart: whatever was not durable is gone, every
    /// connection drops, and the room comes back from snapshot + journal.
    pub fn restart(&mut self) {
        self.restarts += 1;
        self.members.clear();
        self.held.clear();
        self.unjournaled.clear();
        self.reload();
    }

    /// The room as storage has it: the snapshot plus the journal after it.
    fn reload(&mut self) {
        let mut room = match &self.snapshot {
            Some(taken) => {
                let bytes = taken.snapshot();
                Room::restore(&bytes, Limits::default(), bounds()).expect("own snapshot")
            }
            None => Room::new(Limits::default(), bounds()),
        };
        for Entry { batch, ack } in &self.journal {
            let bytes = JournalEntry::encode(batch, ack);
            let entry = JournalEntry::decode(&bytes).expect("own journal");
            room.replay(entry).expect("journal replays");
        }
        self.room = room;
    }

    /// Handles one text frame from `conn`.
    pub fn receive(&mut self, conn: ConnId, frame: &str) -> Vec<Outgoing> {
        let diffs = |head: &Envelope<'_>| (head.event == "diffs").then_some(PhantomData);
        // Most frames are pushes of diffs written as the client writes them.
        let (incoming, pushed) = match direct::diffs_push_as_written(frame) {
            Some((incoming, pushed)) => (Some(incoming), pushed),
            None => (None, None),
        };
        let Some(Incoming {
            join_ref,
            ref_,
            topic,
            event,
            payload,
        }) = incoming.or_else(|| Incoming::<IncomingBatch, Cow<str>>::read(frame, diffs))
        else {
            return Vec::new();
        };
        let (join_ref, ref_, topic, event) =
            (join_ref.as_deref(), ref_.as_deref(), &*topic, &*event);
        let respond = |status: &str, response: Response| {
            vec![Outgoing {
                conn,
                frame: reply(join_ref, ref_, topic, status, &response),
            }]
        };
        if topic == "phoenix" && event == "heartbeat" {
            return respond("ok", Response::Empty {});
        }
        if topic != self.project {
            return respond("error", Response::refusal("unmatched topic", None));
        }
        // As the real room does: answers that show state flush first, so no
        // client ever sees a batch that a restart could take back.
        let mut out = if matches!(event, "phx_join" | "sync" | "verify") {
            self.commit()
        } else {
            Vec::new()
        };
        let payload = (payload, pushed);
        let answer = self.dispatch(conn, join_ref, ref_, topic, event, payload);
        if out.is_empty() {
            return answer;
        }
        out.extend(answer);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        conn: ConnId,
        join_ref: Ref<'_>,
        ref_: Ref<'_>,
        topic: &str,
        event: &str,
        (payload, pushed): (Payload<IncomingBatch>, Option<&str>),
    ) -> Vec<Outgoing> {
        let respond = |status: &str, response: Response| {
            vec![Outgoing {
                conn,
                frame: reply(join_ref, ref_, topic, status, &response),
            }]
        };
        match event {
            "phx_join" => self.join(conn, join_ref, &value(payload), respond),
            "phx_leave" => {
                self.members.remove(&conn);
                respond("ok", Response::Empty {})
            }
            _ => {
                let Some(member) = self
                    .members
                    .get(&conn)
                    .filter(|m| m.join_ref.as_deref() == join_ref)
                else {
                    return Vec::new(); // stale join_ref: dropped, as Phoenix does
                };
                let (client_id, user_id) =
                    (Rc::clone(&member.client_id), Rc::clone(&member.user_id));
                match event {
                    "diffs" => {
                        let Payload::Typed(batch) = payload else {
                            return respond("error", Response::refusal("malformed", None));
                        };
                        let who = (&client_id, &*user_id);
                        self.diffs(conn, join_ref, ref_, topic, who, (batch, pushed))
                    }
                    "sync" => {
                        let since = value(payload).get("since").and_then(Value::as_u64);
                        respond("ok", Response::CatchUp(self.room.catch_up(since)))
                    }
                    "verify" => respond("ok", self.verify(&value(payload))),
                    _ => respond("error", Response::refusal("unknown_event", None)),
                }
            }
        }
    }

    fn join(
        &mut self,
        conn: ConnId,
        join_ref: Ref<'_>,
        payload: &Value,
        respond: impl Fn(&str, Response) -> Vec<Outgoing>,
    ) -> Vec<Outgoing> {
        let protocol = payload.get("protocol").and_then(Value::as_u64).unwrap_or(0);
        if !tandem_core::protocol_supported(protocol as u32) {
            return respond("error", Response::refusal("unsupported_protocol", None));
        }
        let Some(client_id) = payload.get("client_id").and_then(Value::as_str) else {
            return respond("error", Response::refusal("invalid_client_id", None));
        };
        let since = payload.get("last_seq").and_then(Value::as_u64);
        self.members.insert(
            conn,
            Member {
                join_ref: join_ref.map(str::to_owned),
                client_id: client_id.into(),
                user_id: format!("user-{client_id}").into(),
            },
        );
        respond("ok", Response::CatchUp(self.room.catch_up(since)))
    }

    #[allow(clippy::too_many_arguments)]
    fn diffs(
        &mut self,
        conn: ConnId,
        join_ref: Ref<'_>,
        ref_: Ref<'_>,
        topic: &str,
        (client_id, user_id): (&Rc<str>, &str),
        (batch, pushed): (IncomingBatch, Option<&str>),
    ) -> Vec<Outgoing> {
        // Taken before the room resolves (and so changes) the diffs.
        let edit = fingerprint(&batch.diffs);
        let pushed = pushed.filter(|_| batch.diffs.iter().all(keeps_its_text));
        let (ack, broadcast) = match self.room.submit(client_id, user_id, batch) {
            Ok(Submitted::Accepted { ack, batch }) => {
                let durable = Durable {
                    seq: batch.seq,
                    client_id: Rc::clone(client_id),
                    batch_id: batch.batch_id,
                    edit,
                };
                // Applied exactly as pushed, the diffs are the pushed text.
                let as_pushed = ack.amended.is_empty() && ack.dropped.is_empty();
                let frame = match pushed.filter(|_| as_pushed) {
                    Some(diffs) => write::batch_frame_as_pushed(topic, &batch, diffs),
                    None => write::batch_frame(topic, &batch),
                };
                debug_assert_eq!(frame, write::batch_frame(topic, &batch));
                let entry = Entry {
                    batch,
                    ack: ack.clone(),
                };
                self.unjournaled.push((durable, entry));
                (ack, Some(Rc::new(frame)))
            }
            Ok(Submitted::Duplicate(ack)) => (ack, None),
            Err(rejection) => {
                let message = rejection.to_string();
                let response = Response::refusal(rejection.reason(), Some(&message));
                return vec![Outgoing {
                    conn,
                    frame: reply(join_ref, ref_, topic, "error", &response),
                }];
            }
        };
        // Duplicates wait too: their original may not be durable yet.
        self.held.push(Held {
            conn,
            join_ref: join_ref.map(str::to_owned),
            ref_: ref_.map(str::to_owned),
            ack,
            broadcast,
        });
        Vec::new()
    }

    fn verify(&self, payload: &Value) -> Response<'_> {
        let seq = payload
            .get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let claimed = payload
            .get("checksum")
            .and_then(Value::as_str)
            .and_then(Checksum::parse);
        if claimed.is_some() && self.room.checksum_at(seq) == claimed {
            return Response::Verified { ok: true };
        }
        Response::Mismatched {
            ok: false,
            state: self.room.catch_up(None),
        }
    }

    /// Queues `frame` for every member (all of the project).
    fn broadcast(&self, frame: &Rc<String>, out: &mut Vec<Outgoing>) {
        out.extend(self.members.keys().map(|&conn| Outgoing {
            conn,
            frame: Rc::clone(frame),
        }));
    }
}

/// Whether `diff`, applied as is, is recorded as it came: a `null` value at
/// the top (an unset, an attribute left out) is not.
fn keeps_its_text(diff: &Diff) -> bool {
    match diff {
        Diff::Add { attrs, .. } => attrs.values().all(|value| !value.is_null()),
        Diff::Set {
            value: Some(value), ..
        } => !value.is_null(),
        Diff::Set { value: None, .. } | Diff::Remove { .. } => true,
    }
}

/// A payload that is not a batch.
fn value(payload: Payload<IncomingBatch>) -> Value {
    match payload {
        Payload::Json(value) => value,
        Payload::Typed(_) => Value::Null,
    }
}

/// The `response` of a reply, written straight into its frame.
#[derive(Serialize)]
#[serde(untagged)]
enum Response<'a> {
    Empty {},
    /// Keys in the order a JSON object's keys sort, as the real server's.
    Refusal {
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a str>,
        reason: &'a str,
    },
    CatchUp(CatchUp<'a>),
    Verified {
        ok: bool,
    },
    Mismatched {
        ok: bool,
        #[serde(flatten)]
        state: CatchUp<'a>,
    },
}

impl<'a> Response<'a> {
    fn refusal(reason: &'a str, message: Option<&'a str>) -> Response<'a> {
        Response::Refusal { message, reason }
    }
}

/// A V2 frame written straight from its payload (no `Value` tree between).
fn frame(join_ref: Ref, ref_: Ref, topic: &str, event: &str, payload: &impl Serialize) -> String {
    let envelope = Envelope {
        join_ref,
        ref_,
        topic,
        event,
    };
    envelope.encode(payload)
}

/// A reply; a catch-up (every join's, a document's worth after a restart)
/// written by hand, the rest through serde.
fn reply(join_ref: Ref, ref_: Ref, topic: &str, status: &str, response: &Response) -> Rc<String> {
    #[derive(Serialize)]
    struct Reply<'a, R> {
        status: &'a str,
        response: &'a R,
    }
    Rc::new(match response {
        Response::CatchUp(catch_up) => {
            write::catch_up_reply(join_ref, ref_, topic, status, catch_up)
        }
        _ => frame(
            join_ref,
            ref_,
            topic,
            "phx_reply",
            &Reply { status, response },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::{Durable, History};

    fn durable(seq: u64) -> Durable {
        Durable {
            seq,
            client_id: "c".into(),
            batch_id: seq * 10,
            edit: seq,
        }
    }

    #[test]
    fn a_durable_batch_is_found_by_its_seq_and_the_rest_after_a_seq() {
        let mut history = History::default();
        assert_eq!(history.last_seq(), 0);
        assert!(history.after(0).is_empty());
        (1..=3).for_each(|seq| history.push(durable(seq)));
        assert_eq!(history.get(0), None);
        assert_eq!(history.get(2).map(|d| d.batch_id), Some(20));
        assert_eq!(history.get(4), None);
        let after = |seq| history.after(seq).iter().map(|d| d.seq).collect::<Vec<_>>();
        assert_eq!(after(0), [1, 2, 3]);
        assert_eq!(after(2), [3]);
        assert!(after(3).is_empty() && after(u64::MAX).is_empty());
        assert_eq!(history.last_seq(), 3);
    }

    #[test]
    #[should_panic(expected = "durable seqs run on")]
    fn a_seq_out_of_turn_is_a_bug_of_the_simulator() {
        let mut history = History::default();
        history.push(durable(1));
        history.push(durable(3));
    }
}
