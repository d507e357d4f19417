//! `sim` mode: a deterministic simulation on one thread. Real
//! [`tandem_client::Client`] state machines talk to a [`SimServer`] over a
//! simulated network (per-connection FIFO links with seeded latency, so
//! messages interleave differently across connections), while faults cut
//! connections, stall links past the heartbeat timeout, restart clients
//! (losing whatever was not acknowledged), restart the server (keeping
//! only what was durable) and fail journal writes (the server answers
//! `unavailable` and reloads while connections stay). Everything is drawn
//! from one seeded PRNG and virtual time, so a seed replays exactly.
//!
//! After the workload the network heals and goes quiet; the verdict is that
//! every client's confirmed document and checksum equal the server's, that
//! every batch a client saw acknowledged is in the durable history, that no
//! batch was refused whole, and that every batch a client made reached the
//! durable history exactly once (unless its client restarted before the
//! ack): the edit ledger, which catches edits dropped without a word.

use crate::ledger::Ledger;
use crate::server::{ConnId, SimServer};
use crate::timeline::Timeline;
use crate::workload::{next_operation, Operation};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::rc::Rc;
use tandem_client::{Client, Config, Event, Millis};

/// What a run is asked to do.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub clients: usize,
    pub ops: usize,
    pub faults: bool,
    /// With faults: journal writes that fail too (the server answers
    /// `unavailable` and reloads from what was durable). Off for replaying
    /// seeds found before this fault existed.
    pub journal_faults: bool,
}

/// What a run counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub operations: u64,
    pub batches: u64,
    pub acked: u64,
    pub amends: u64,
    pub drops: u64,
    pub reconnects: u64,
    pub resyncs: u64,
    pub mismatches_seen: u64,
    pub mismatches_healed: u64,
    pub client_restarts: u64,
    pub server_restarts: u64,
    pub journal_failures: u64,
    /// Batches the server refused whole (each an edit lost).
    pub refused: u64,
}

impl Counters {
    pub fn add(&mut self, other: &Counters) {
        self.operations += other.operations;
        self.batches += other.batches;
        self.acked += other.acked;
        self.amends += other.amends;
        self.drops += other.drops;
        self.reconnects += other.reconnects;
        self.resyncs += other.resyncs;
        self.mismatches_seen += other.mismatches_seen;
        self.mismatches_healed += other.mismatches_healed;
        self.client_restarts += other.client_restarts;
        self.server_restarts += other.server_restarts;
        self.journal_failures += other.journal_failures;
        self.refused += other.refused;
    }
}

/// The outcome of one seed.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub failure: Option<String>,
    pub counters: Counters,
}

#[derive(Debug)]
enum Ev {
    ToServer(ConnId, String),
    ToClient(ConnId, Rc<String>),
    Opened(usize, u64, ConnId),
    Op(usize),
    Commit,
    Cut(usize),
    Stall(usize),
    RestartClient(usize),
    RestartServer,
    JournalFails,
}

struct Peer {
    client: Client,
    /// The client's id, shared by each of its acks below.
    id: Rc<str>,
    conn: Option<ConnId>,
    generation: u64,
    ops_left: usize,
    acked: Vec<(Rc<str>, u64, u64)>,
}

/// A connection's link between a client and the server.
struct Link {
    peer: usize,
    /// When the last frame each way arrives: a frame never overtakes one
    /// sent before it on the same link.
    to_server: Millis,
    to_client: Millis,
    /// Nothing arrives before this (a stalled link).
    stalled_until: Millis,
}

/// The open links, by connection id. Ids are handed out one after another
/// from 1, so a link's place is its id: a vector, where a hash map's
/// lookups on every frame sent and delivered were 0.5 % of the run.
#[derive(Default)]
struct Links(Vec<Option<Link>>);

impl Links {
    fn open(&mut self, conn: ConnId, peer: usize) {
        let at = conn as usize;
        if self.0.len() <= at {
            self.0.resize_with(at + 1, || None);
        }
        self.0[at] = Some(Link {
            peer,
            to_server: 0,
            to_client: 0,
            stalled_until: 0,
        });
    }

    fn get_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.0.get_mut(conn as usize)?.as_mut()
    }

    fn remove(&mut self, conn: ConnId) {
        if let Some(link) = self.0.get_mut(conn as usize) {
            *link = None;
        }
    }
}

struct World {
    now: Millis,
    rng: ChaCha8Rng,
    queue: Timeline<Ev>,
    server: SimServer,
    peers: Vec<Peer>,
    links: Links,
    next_conn: ConnId,
    commit_scheduled: bool,
    faults: bool,
    journal_faults: bool,
    counters: Counters,
    mismatch_open: bool,
    /// Each refused batch, as `client/batch: reason`.
    refusals: Vec<String>,
    /// Batches made by clients minus batches made durable.
    ledger: Ledger,
    /// Client ids of restarted clients.
    dead: BTreeSet<String>,
    /// How much of the server's history the ledger has seen.
    ledger_seq: u64,
    /// Clients pumped since their timer was last read.
    touched: Vec<bool>,
}

const PROJECT: &str = "fuzz";

/// Client timings for fuzzing: short, so that stalls and cuts are noticed
/// and healed within a run (shared by `sim` and `net`).
pub fn client_config(project: &str, id: String, seed: u64) -> Config {
    Config {
        heartbeat_ms: 2_000,
        push_timeout_ms: 3_000,
        rejoin_ms: 200,
        backoff_base_ms: 50,
        backoff_cap_ms: 2_000,
        seed,
        ..Config::new(project, id)
    }
}

impl World {
    fn latency(&mut self) -> Millis {
        if self.rng.random_bool(0.1) {
            self.rng.random_range(20..200)
        } else {
            self.rng.random_range(1..20)
        }
    }

    /// Schedules a frame on a link, keeping each direction FIFO.
    fn send(&mut self, conn: ConnId, frame: Ev) {
        let lat = self.latency();
        let now = self.now;
        let Some(link) = self.links.get_mut(conn) else {
            return;
        };
        let last = match frame {
            Ev::ToServer(..) => &mut link.to_server,
            _ => &mut link.to_client,
        };
        let at = (now + lat).max(*last).max(link.stalled_until);
        *last = at;
        self.queue.at(at, frame);
    }

    fn cut(&mut self, peer: usize) {
        if let Some(conn) = self.peers[peer].conn.take() {
            self.links.remove(conn);
            self.server.disconnected(conn);
            self.peers[peer].client.handle_disconnected(self.now);
            self.counters.reconnects += 1;
        }
    }

    /// Drains what a client wants done.
    /// Every input to a client is followed by this, so it also marks the
    /// client's timer to be read again.
    fn pump(&mut self, peer: usize) {
        if let Some(touched) = self.touched.get_mut(peer) {
            *touched = true;
        }
        let now = self.now;
        if self.peers[peer].client.poll_close() {
            // The client already considers itself disconnected.
            if let Some(conn) = self.peers[peer].conn.take() {
                self.links.remove(conn);
                self.server.disconnected(conn);
                self.counters.reconnects += 1;
            }
        }
        if self.peers[peer].client.poll_connect() {
            self.next_conn += 1;
            let conn = self.next_conn;
            let lat = self.latency();
            let generation = self.peers[peer].generation;
            self.queue.at(now + lat, Ev::Opened(peer, generation, conn));
        }
        while let Some(frame) = self.peers[peer].client.poll_transmit() {
            if let Some(conn) = self.peers[peer].conn {
                self.send(conn, Ev::ToServer(conn, frame));
            }
        }
        while let Some(event) = self.peers[peer].client.poll_event() {
            match event {
                Event::Acked { batch_id, seq } => {
                    let p = &mut self.peers[peer];
                    p.acked.push((Rc::clone(&p.id), batch_id, seq));
                }
                Event::Mismatch { .. } => {
                    self.counters.mismatches_seen += 1;
                    self.mismatch_open = true;
                }
                Event::Resynced { .. } if self.mismatch_open => {
                    self.counters.mismatches_healed += 1;
                    self.mismatch_open = false;
                }
                Event::Rejected { batch_id, reason } => {
                    // The workload only sends valid batches: a refusal is
                    // an edit lost.
                    self.counters.refused += 1;
                    let client = self.peers[peer].client.config().client_id.clone();
                    self.refusals.push(format!("{client}/{batch_id}: {reason}"));
                }
                _ => {}
            }
        }
    }

    fn deliver_outgoing(&mut self, out: Vec<crate::server::Outgoing>) {
        for o in out {
            self.send(o.conn, Ev::ToClient(o.conn, o.frame));
        }
        if self.server.has_uncommitted() && !self.commit_scheduled {
            self.commit_scheduled = true;
            let delay = self.rng.random_range(1..5);
            self.queue.at(self.now + delay, Ev::Commit);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::ToServer(conn, frame) => {
                if self.links.get_mut(conn).is_some() {
                    let out = self.server.receive(conn, &frame);
                    self.deliver_outgoing(out);
                }
            }
            Ev::ToClient(conn, frame) => {
                if let Some(&mut Link { peer, .. }) = self.links.get_mut(conn) {
                    self.peers[peer].client.handle_frame(self.now, &frame);
                    self.pump(peer);
                }
            }
            Ev::Opened(peer, generation, conn) => {
                // A connection opened for a client that has since restarted is dropped.
                if self.peers[peer].conn.is_none() && self.peers[peer].generation == generation {
                    self.links.open(conn, peer);
                    self.peers[peer].conn = Some(conn);
                    self.peers[peer].client.handle_connected(self.now);
                    self.pump(peer);
                }
            }
            Ev::Op(peer) => {
                if self.peers[peer].ops_left == 0 {
                    return;
                }
                self.peers[peer].ops_left -= 1;
                self.counters.operations += 1;
                let serial = self.counters.operations;
                let generation = self.peers[peer].generation;
                let op = next_operation(
                    &mut self.rng,
                    self.peers[peer].client.document(),
                    peer * 1000 + generation as usize,
                    serial,
                );
                let now = self.now;
                let client = &mut self.peers[peer].client;
                let batch_id = match op {
                    Operation::Edit(diffs) => client.edit(now, diffs),
                    Operation::Undo => client.undo(now),
                    Operation::Redo => client.redo(now),
                };
                if let Some(batch_id) = batch_id {
                    self.ledger_edit(peer, batch_id);
                }
                self.pump(peer);
                let next = self.rng.random_range(5..60);
                self.queue.at(now + next, Ev::Op(peer));
            }
            Ev::Commit => {
                self.commit_scheduled = false;
                let out = self.server.commit();
                self.deliver_outgoing(out);
                self.ledger_durable();
            }
            Ev::Cut(peer) => {
                self.cut(peer);
                self.pump(peer);
            }
            Ev::Stall(peer) => {
                let length = self.rng.random_range(500..5_000);
                if let Some(conn) = self.peers[peer].conn {
                    if let Some(link) = self.links.get_mut(conn) {
                        link.stalled_until = self.now + length;
                    }
                }
            }
            Ev::RestartClient(peer) => {
                self.cut(peer);
                self.counters.client_restarts += 1;
                let p = &mut self.peers[peer];
                self.counters.add(&stats_of(&p.client));
                self.dead.insert(p.client.config().client_id.clone());
                p.generation += 1;
                let id = format!("client-{peer}-{}", p.generation);
                p.id = id.as_str().into();
                let seed = self.rng.random();
                p.client = Client::new(client_config(PROJECT, id, seed), self.now);
                self.pump(peer);
            }
            Ev::JournalFails => self.server.fail_next_commit(true),
            Ev::RestartServer => {
                self.counters.server_restarts += 1;
                self.commit_scheduled = false;
                self.server.restart();
                for peer in 0..self.peers.len() {
                    self.cut(peer);
                    self.pump(peer);
                }
            }
        }
    }

    /// Counts a batch a client just made.
    fn ledger_edit(&mut self, peer: usize, batch_id: u64) {
        let client = &self.peers[peer].client;
        let made = client.replica().pending().find(|p| p.batch_id == batch_id);
        let diffs = &made.expect("a new batch is pending").diffs;
        self.ledger
            .made(&client.config().client_id, batch_id, diffs);
    }

    /// Counts the batches made durable since the last look.
    fn ledger_durable(&mut self) {
        let history = self.server.history();
        for durable in history.after(self.ledger_seq) {
            self.ledger.durable(&durable.client_id, durable.edit);
        }
        self.ledger_seq = history.last_seq();
    }

    fn schedule_faults(&mut self, horizon: Millis) {
        let n = self.peers.len();
        for _ in 0..self.rng.random_range(2..8) {
            let at = self.rng.random_range(0..horizon.max(1));
            let peer = self.rng.random_range(0..n);
            let ev = match self.rng.random_range(0..10) {
                0..=4 => Ev::Cut(peer),
                5..=7 => Ev::Stall(peer),
                8 => Ev::RestartClient(peer),
                _ => Ev::RestartServer,
            };
            self.queue.at(at, ev);
        }
        // Drawn after the others, so that seeds run without them replay as
        // they did before this fault existed.
        if self.journal_faults {
            for _ in 0..self.rng.random_range(0..3) {
                let at = self.rng.random_range(0..horizon.max(1));
                self.queue.at(at, Ev::JournalFails);
            }
        }
    }

    /// Runs until `until`, or until nothing is left to do. Each step knows
    /// every client's next timer: handling one client's timer or queued event
    /// never moves another client's (their frames travel through the queue),
    /// and only a client something was done to (see [`World::pump`]) is
    /// asked again.
    fn run_until(&mut self, until: Millis) {
        // Each client's next timer, `NEVER` for none: a plain minimum
        // over numbers, where one over options cost about a quarter of the
        // loop's own instructions.
        const NEVER: Millis = Millis::MAX;
        let timer_of = |p: &Peer| p.client.poll_timeout().unwrap_or(NEVER);
        let mut timers: Vec<Millis> = vec![NEVER; self.peers.len()];
        self.touched.clear();
        self.touched.resize(self.peers.len(), true);
        loop {
            // One pass reads the touched clients' timers and finds the
            // earliest, so that a step whose timers are all later (most are:
            // most steps are a queued frame) skips the pass that fires them.
            let mut earliest = NEVER;
            for (peer, timer) in timers.iter_mut().enumerate() {
                if std::mem::take(&mut self.touched[peer]) {
                    *timer = timer_of(&self.peers[peer]);
                }
                earliest = earliest.min(*timer);
            }
            debug_assert!(self.peers.iter().map(timer_of).eq(timers.iter().copied()));
            let queued = self.queue.next_time().unwrap_or(NEVER);
            let t = earliest.min(queued);
            if t == NEVER || t > until {
                break;
            }
            self.now = self.now.max(t);
            if earliest <= self.now {
                for (peer, &timer) in timers.iter().enumerate() {
                    if timer <= self.now {
                        self.peers[peer].client.handle_timeout(self.now);
                        self.pump(peer);
                    }
                }
            }
            if let Some(ev) = self.queue.pop_due(self.now) {
                self.handle(ev);
            }
        }
        self.now = self.now.max(until);
    }

    fn describe(&self) -> String {
        let peers: Vec<String> = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "client {i}: link={:?} seq={} {}",
                    p.conn,
                    p.client.replica().seq(),
                    p.client.describe()
                )
            })
            .collect();
        format!(
            "server seq {} members {:?}; {}",
            self.server.room().seq(),
            self.server.member_conns(),
            peers.join("; ")
        )
    }

    /// Nothing left to happen but heartbeats, which never stop: a check at
    /// a fixed cadence could otherwise meet one in flight every time (seed
    /// 30013642 never looked settled).
    fn quiet(&self) -> bool {
        !self.server.has_uncommitted()
            && self.queue.iter().all(|ev| match ev {
                Ev::Op(_) => true,
                Ev::ToServer(_, frame) => is_heartbeat(frame),
                Ev::ToClient(_, frame) => is_heartbeat(frame),
                _ => false,
            })
            && self
                .peers
                .iter()
                .all(|p| p.client.is_joined() && p.client.replica().pending().len() == 0)
    }
}

/// Whether `frame` is a heartbeat or its answer: every frame on the topic
/// `phoenix` is (`[null,"REF","phoenix",...`).
fn is_heartbeat(frame: &str) -> bool {
    frame
        .strip_prefix("[null,\"")
        .and_then(|rest| rest.split_once('"'))
        .is_some_and(|(_, after)| after.starts_with(",\"phoenix\","))
}

fn stats_of(client: &Client) -> Counters {
    let s = client.stats();
    Counters {
        batches: s.batches_sent,
        acked: s.acked,
        amends: s.amends,
        drops: s.drops,
        resyncs: s.resyncs,
        ..Counters::default()
    }
}

/// Runs one seed to its verdict.
pub fn run(config: &SimConfig) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let peers = (0..config.clients)
        .map(|i| {
            let id = format!("client-{i}-0");
            Peer {
                id: id.as_str().into(),
                client: Client::new(client_config(PROJECT, id, rng.random()), 0),
                conn: None,
                generation: 0,
                ops_left: config.ops,
                acked: Vec::new(),
            }
        })
        .collect();
    let mut world = World {
        now: 0,
        rng,
        queue: Timeline::default(),
        server: SimServer::new(PROJECT),
        peers,
        links: Links::default(),
        next_conn: 0,
        commit_scheduled: false,
        faults: config.faults,
        journal_faults: config.journal_faults,
        counters: Counters::default(),
        mismatch_open: false,
        refusals: Vec::new(),
        ledger: Ledger::default(),
        dead: BTreeSet::new(),
        ledger_seq: 0,
        touched: Vec::new(),
    };
    for peer in 0..config.clients {
        world.pump(peer);
        let start = world.rng.random_range(0..50);
        world.queue.at(start, Ev::Op(peer));
    }
    let horizon = config.ops as Millis * 35;
    if world.faults {
        world.schedule_faults(horizon);
    }
    world.run_until(horizon + 1_000);
    // Heal: no more faults are scheduled; let everything settle.
    world.queue.retain(|ev| {
        !matches!(
            ev,
            Ev::Cut(_) | Ev::Stall(_) | Ev::RestartClient(_) | Ev::RestartServer | Ev::JournalFails
        )
    });
    world.server.fail_next_commit(false);
    let mut settled = false;
    for _ in 0..600 {
        let until = world.now + 1_000;
        world.run_until(until);
        if world.quiet() {
            settled = true;
            break;
        }
    }
    for p in &world.peers {
        world.counters.add(&stats_of(&p.client));
    }
    world.counters.journal_failures = world.server.journal_failures;
    let failure = if settled {
        verdict(&mut world)
    } else {
        Some(format!(
            "the network healed but the clients never settled: {}",
            world.describe()
        ))
    };
    Report {
        seed: config.seed,
        failure,
        counters: world.counters,
    }
}

fn verdict(world: &mut World) -> Option<String> {
    world.ledger_durable();
    if let Some(fault) = world.ledger.fault(&world.dead) {
        return Some(fault);
    }
    if let Some(first) = world.refusals.first() {
        return Some(format!(
            "{} batch(es) refused whole, their edits lost (first: {first})",
            world.refusals.len()
        ));
    }
    // Nothing here corrupts state, so a checksum mismatch means the shared
    // core diverged somewhere, even if the client then healed itself.
    if world.counters.mismatches_seen > 0 {
        return Some(format!(
            "{} checksum mismatch(es) seen (healed {}): replicas diverged from the server",
            world.counters.mismatches_seen, world.counters.mismatches_healed
        ));
    }
    let room = world.server.room();
    for (i, p) in world.peers.iter().enumerate() {
        let r = p.client.replica();
        if r.seq() != room.seq() {
            return Some(format!(
                "client {i} is at seq {} but the server at {}: {}",
                r.seq(),
                room.seq(),
                world.describe()
            ));
        }
    }
    for (i, p) in world.peers.iter_mut().enumerate() {
        let doc = p.client.document();
        if doc != room.document() {
            return Some(format!(
                "client {i} diverged: checksum {} vs server {} ({} vs {} objects)",
                doc.checksum(),
                room.document().checksum(),
                doc.len(),
                room.document().len()
            ));
        }
        for (client_id, batch_id, seq) in &p.acked {
            let durable = world.server.history().get(*seq);
            if durable.is_none_or(|d| d.client_id != *client_id || d.batch_id != *batch_id) {
                return Some(format!(
                    "acknowledged batch {client_id}/{batch_id} (seq {seq}) was lost"
                ));
            }
        }
    }
    None
}
