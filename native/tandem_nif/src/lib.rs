//! The BEAM's handle on [`tandem_core::Room`]. A room is a resource owned by
//! one `Tandem.Room` GenServer. Every call takes and returns binaries (the
//! client's JSON or MessagePack as it arrived; JSON ready to splice into a
//! frame; MessagePack for the journal and snapshots), so the Elixir side never
//! decodes or re-encodes a diff.
//!
//! No panic or Rust error crosses the boundary as a crash: every failure is
//! `{:error, reason}`. Work that can grow with the document (snapshots,
//! catch-up, large batches) runs on dirty schedulers; normal-scheduler calls
//! stay well under a millisecond.

/// Documents are many small allocations (ids, attribute names, values);
/// mimalloc makes building and freeing them, a room's cold start and its
/// shutdown, markedly cheaper than the system allocator (BENCHMARKS.md,
/// Core). It serves this library's Rust allocations only; the BEAM keeps
/// its own allocators.
#[global_allocator]
static ALLOCATOR: tandem_alloc::Allocator = tandem_alloc::Allocator;

use rustler::{Atom, Binary, Encoder, Env, NifResult, OwnedBinary, ResourceArc, Term};
use std::sync::{Mutex, MutexGuard};
use tandem_core::codec::{self, Format};
use tandem_core::room::{IncomingBatch, JournalEntry, LogBounds, Submitted};
use tandem_core::{Checksum, Limits, Rejection, Room};

mod atoms {
    rustler::atoms! { ok, error, duplicate, json, msgpack, poisoned, seq, checksum, objects }
}

/// A room behind a mutex: the owning GenServer serialises calls, so the lock
/// is never contended; it exists to make the resource `Sync`.
struct RoomResource(Mutex<Room>);

#[rustler::resource_impl]
impl rustler::Resource for RoomResource {}

impl RoomResource {
    fn lock(&self) -> NifResult<MutexGuard<'_, Room>> {
        // A panic while locked (a bug) poisons the lock: report it, never unwrap.
        self.0
            .lock()
            .map_err(|_| rustler::Error::Term(Box::new(atoms::poisoned())))
    }
}

type RoomRef = ResourceArc<RoomResource>;

fn bounds(max_batches: usize, max_diffs: usize) -> LogBounds {
    let default = LogBounds::default();
    LogBounds {
        max_batches: if max_batches == 0 {
            default.max_batches
        } else {
            max_batches
        },
        max_diffs: if max_diffs == 0 {
            default.max_diffs
        } else {
            max_diffs
        },
    }
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut owned = OwnedBinary::new(bytes.len());
    owned.as_mut_slice().copy_from_slice(bytes);
    owned.release(env).encode(env)
}

fn error_json<'a>(env: Env<'a>, reason: &str, message: &str) -> Term<'a> {
    let body = serde_json::json!({ "reason": reason, "message": message });
    (atoms::error(), binary(env, &codec::to_json(&body))).encode(env)
}

/// A new empty room. `max_batches`/`max_diffs` bound the catch-up log (0 = default).
#[rustler::nif]
fn room_new(max_batches: usize, max_diffs: usize) -> RoomRef {
    let room = Room::new(Limits::default(), bounds(max_batches, max_diffs));
    ResourceArc::new(RoomResource(Mutex::new(room)))
}

/// A room rebuilt from `room_snapshot/1` bytes: `{:ok, room}` or `{:error, message}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn room_load(snapshot: Binary, max_batches: usize, max_diffs: usize) -> Result<RoomRef, String> {
    let room = Room::restore(
        snapshot.as_slice(),
        Limits::default(),
        bounds(max_batches, max_diffs),
    )?;
    Ok(ResourceArc::new(RoomResource(Mutex::new(room))))
}

/// The room's durable form (MessagePack).
#[rustler::nif(schedule = "DirtyCpu")]
fn room_snapshot<'a>(env: Env<'a>, room: RoomRef) -> NifResult<Term<'a>> {
    let bytes = room.lock()?.snapshot();
    Ok(binary(env, &bytes))
}

fn submit<'a>(
    env: Env<'a>,
    room: RoomRef,
    client_id: &str,
    user_id: &str,
    format: Atom,
    payload: Binary,
) -> NifResult<Term<'a>> {
    let format = if format == atoms::msgpack() {
        Format::MsgPack
    } else {
        Format::Json
    };
    let batch: IncomingBatch = match codec::decode(format, payload.as_slice()) {
        Ok(batch) => batch,
        Err(e) => return Ok(error_json(env, "malformed", &e.0)),
    };
    let outcome = room.lock()?.submit(client_id, user_id, batch);
    Ok(match outcome {
        Ok(Submitted::Accepted { ack, batch }) => (
            atoms::ok(),
            ack.seq,
            binary(env, &codec::to_json(&ack)),
            binary(env, &codec::to_json(batch.as_ref())),
            binary(env, &JournalEntry::encode(&batch, &ack)),
        )
            .encode(env),
        Ok(Submitted::Duplicate(ack)) => {
            (atoms::duplicate(), binary(env, &codec::to_json(&ack))).encode(env)
        }
        Err(rejection) => rejection_term(env, &rejection),
    })
}

fn rejection_term<'a>(env: Env<'a>, rejection: &Rejection) -> Term<'a> {
    error_json(env, rejection.reason(), &rejection.to_string())
}

/// Resolves and sequences a `"diffs"` payload (`{"batch_id":N,"diffs":[...]}`
/// as JSON or MessagePack bytes). Returns
/// `{:ok, seq, ack_json, batch_json, journal_entry}`, `{:duplicate, ack_json}`
/// or `{:error, reason_json}`.
#[rustler::nif]
fn room_submit<'a>(
    env: Env<'a>,
    room: RoomRef,
    client_id: &str,
    user_id: &str,
    format: Atom,
    payload: Binary,
) -> NifResult<Term<'a>> {
    submit(env, room, client_id, user_id, format, payload)
}

/// [`room_submit`] on a dirty scheduler, for large payloads.
#[rustler::nif(schedule = "DirtyCpu", name = "room_submit_dirty")]
fn room_submit_dirty<'a>(
    env: Env<'a>,
    room: RoomRef,
    client_id: &str,
    user_id: &str,
    format: Atom,
    payload: Binary,
) -> NifResult<Term<'a>> {
    submit(env, room, client_id, user_id, format, payload)
}

/// Re-applies journal entries in order on recovery (one dirty call for the
/// whole journal): `:ok` or `{:error, message}` at the first that fails.
#[rustler::nif(schedule = "DirtyCpu")]
fn room_replay<'a>(env: Env<'a>, room: RoomRef, entries: Vec<Binary>) -> NifResult<Term<'a>> {
    let mut room = room.lock()?;
    for entry in entries {
        let outcome = match JournalEntry::decode(entry.as_slice()) {
            Ok(entry) => room.replay(entry).map_err(|e| e.to_string()),
            Err(e) => Err(format!("unreadable journal entry: {e}")),
        };
        if let Err(message) = outcome {
            return Ok((atoms::error(), message).encode(env));
        }
    }
    Ok(atoms::ok().encode(env))
}

/// The join/sync reply for a client holding `last_seq` (`nil` for none):
/// the missed batches, or a snapshot when the log no longer has them.
#[rustler::nif(schedule = "DirtyCpu")]
fn room_join<'a>(env: Env<'a>, room: RoomRef, last_seq: Option<u64>) -> NifResult<Term<'a>> {
    let room = room.lock()?;
    Ok(binary(env, &codec::to_json(&room.catch_up(last_seq))))
}

/// The `"verify"` reply: `{"ok":true}` when `checksum` is the server's at
/// `seq`; otherwise `{"ok":false,...}` with a snapshot to resync from.
#[rustler::nif(schedule = "DirtyCpu")]
fn room_verify<'a>(env: Env<'a>, room: RoomRef, seq: u64, checksum: &str) -> NifResult<Term<'a>> {
    let room = room.lock()?;
    let claimed = Checksum::parse(checksum);
    if claimed.is_some() && room.checksum_at(seq) == claimed {
        return Ok(binary(env, br#"{"ok":true}"#));
    }
    #[derive(serde::Serialize)]
    struct Mismatch<'r> {
        ok: bool,
        #[serde(flatten)]
        state: tandem_core::room::CatchUp<'r>,
    }
    let reply = Mismatch {
        ok: false,
        state: room.catch_up(None),
    };
    Ok(binary(env, &codec::to_json(&reply)))
}

/// `%{seq: n, checksum: "hex", objects: n}`.
#[rustler::nif]
fn room_info<'a>(env: Env<'a>, room: RoomRef) -> NifResult<Term<'a>> {
    let room = room.lock()?;
    let doc = room.document();
    Term::map_from_pairs(
        env,
        &[
            (atoms::seq().encode(env), room.seq().encode(env)),
            (
                atoms::checksum().encode(env),
                doc.checksum().to_string().encode(env),
            ),
            (atoms::objects().encode(env), doc.len().encode(env)),
        ],
    )
}

/// The protocol versions this build accepts: `{min, max}`.
#[rustler::nif]
fn protocol_range() -> (u32, u32) {
    (
        tandem_core::MIN_PROTOCOL_VERSION,
        tandem_core::PROTOCOL_VERSION,
    )
}

rustler::init!("Elixir.Tandem.Native");
