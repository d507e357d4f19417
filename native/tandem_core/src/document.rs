//! The document and the one function that changes it.
//!
//! [`Document::apply`] is server resolution and client application at once:
//! it drops a diff that makes no sense, amends a `z` that collides with a
//! sibling's, and otherwise applies the diff as is, returning what it applied
//! and the inverse computed from the state it met. Because the server, every
//! client and the simulator all call this same function, a resolved batch
//! replayed anywhere produces the same document.

use crate::checksum::{attr_term, copy_short, whole_object_term, Checksum};
use crate::diff::{AttrName, Attrs, Diff, ObjectId, PARENT, Z};
use crate::limits::{Limits, ValueFault};
use crate::value::Value;
use crate::zindex;
use compact_str::CompactString;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{btree_set, BTreeSet};

/// Why a diff was dropped. On the wire: the snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    #[error("the target object does not exist")]
    MissingTarget,
    #[error("an object with this id already exists")]
    DuplicateAdd,
    #[error("the parent object does not exist")]
    MissingParent,
    #[error("the parent would make the object its own ancestor")]
    ParentCycle,
    #[error("parent must be the id of an object (a string)")]
    InvalidParent,
    #[error("z must be a canonical fractional index (lowercase hex)")]
    MalformedZ,
    #[error("ids must be 1..limit bytes without NUL")]
    InvalidId,
    #[error("attribute keys must be 1..limit bytes without NUL")]
    InvalidKey,
    #[error("the value is larger than the limit")]
    ValueTooLarge,
    #[error("the value is nested deeper than the limit")]
    ValueTooDeep,
    #[error("the object would have more attributes than the limit")]
    TooManyAttributes,
    #[error("the document would have more objects than the limit")]
    TooManyObjects,
}

/// What happened to one diff.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Applied as sent.
    Accepted,
    /// Applied with a changed `z` (see [`Applied::diffs`]).
    Amended,
    /// Not applied.
    Dropped(DropReason),
}

/// A diff as it was applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    /// What was applied: the diff itself, or its amended form (a reparent
    /// that collides also yields a second diff setting the fresh `z`).
    pub diffs: Vec<Diff>,
    /// Applying these in order undoes `diffs`.
    pub inverse: Vec<Diff>,
    /// Whether `diffs` differ from the diff that came in.
    pub amended: bool,
}

/// [`PARENT`] and [`Z`] as attribute names, made at compile time: the
/// diffs that set them (a move, a reorder and their inverses) copy the name
/// instead of encoding its text each time.
const PARENT_NAME: AttrName = AttrName::const_new(PARENT);
const Z_NAME: AttrName = AttrName::const_new(Z);

/// Key of the sibling group of root objects.
const ROOT: &str = "";

/// A string of the sibling index (a parent id, a `z`, a child id). The index
/// repeats every object's id and `z`, and restoring a snapshot builds it for
/// every object at once: stored inline (up to 24 bytes, which covers the
/// short hex `z` values and typical ids), these copies cost no allocation.
type Name = CompactString;

/// An object as the document keeps it: its attributes and, cached, its
/// whole contribution to the checksum (its object term plus every
/// attribute's term). Removing an object was mostly rehashing every
/// attribute to subtract what adding it had just computed; with the sum
/// kept, a removal hashes nothing. One u64 per object.
#[derive(Clone, Debug)]
struct Object {
    attrs: Attrs,
    /// `whole_object_term(id, attrs)`, or [`UNKNOWN_TERM`] where nothing was
    /// hashed to know it: objects changed while the checksum is not kept
    /// (see [`Document::undo_to`]) and objects of a snapshot whose checksum
    /// was vouched for.
    term: u64,
}

/// The cached term of an object whose term is not known. A real term may
/// equal it (one in 2^64); such an object is merely rehashed when it leaves.
const UNKNOWN_TERM: u64 = 0;

impl Object {
    /// The object's whole checksum term, hashing only when it is not known.
    fn term(&self, id: &str) -> u64 {
        match self.term {
            UNKNOWN_TERM => whole_object_term(id, &self.attrs),
            known => known,
        }
    }
}

/// The term is a cache of the attributes (and may be unknown on one side).
impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.attrs == other.attrs
    }
}

/// A flat map of objects plus the indices that keep resolution cheap.
#[derive(Clone, Debug)]
pub struct Document {
    objects: FxHashMap<ObjectId, Object>,
    /// Parent id (or [`ROOT`]) → its children ordered by (z, id); objects
    /// without `z` use the empty string and sort first.
    children: FxHashMap<Name, Siblings>,
    /// The running checksum: of this document, or (when `stale`) of the
    /// state under what was applied while it was not kept.
    checksum: Checksum,
    /// Whether applying diffs keeps `checksum` current; off inside
    /// [`Document::undo_to`], which returns to the state `checksum` covers,
    /// and [`Document::unsummed`] (a client's pending edits).
    summing: bool,
    /// Whether something was applied while `summing` was off since
    /// `checksum` last covered this very document.
    stale: bool,
    /// Whether the diffs being applied passed the checks that depend on
    /// nothing but the diff before (see [`Document::prechecked`]).
    prechecked: bool,
    limits: Limits,
}

impl Default for Document {
    fn default() -> Self {
        Document::new(Limits::default())
    }
}

/// The checksum is a function of the objects; two current ones that differ
/// settle it without comparing every object.
impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        let sums_differ = !self.stale && !other.stale && self.checksum != other.checksum;
        !sums_differ && self.objects == other.objects
    }
}

impl Eq for Document {}

/// An error building a document from a snapshot.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("object {0:?} has a parent that does not exist")]
    DanglingParent(ObjectId),
    #[error("object {0:?} appears twice")]
    DuplicateId(ObjectId),
    #[error("objects form a parent cycle")]
    Cycle,
    #[error("object {0:?} breaks the schema limits: {1}")]
    Limits(ObjectId, DropReason),
}

impl Document {
    /// An empty document enforcing `limits`.
    pub fn new(limits: Limits) -> Document {
        Document {
            objects: FxHashMap::default(),
            children: FxHashMap::default(),
            checksum: Checksum::default(),
            summing: true,
            stale: false,
            prechecked: false,
            limits,
        }
    }

    /// Builds a document from stored objects, checking that the tree is sound.
    pub fn from_objects(
        objects: impl IntoIterator<Item = (ObjectId, Attrs)>,
        limits: Limits,
    ) -> Result<Document, SnapshotError> {
        let objects = objects.into_iter();
        let mut builder = Builder::new(limits, objects.size_hint().0, None);
        for (id, attrs) in objects {
            builder.push(id, attrs)?;
        }
        builder.finish()
    }

    /// Whether every object hangs from the root, every group's parent
    /// existing. An object is reachable exactly when the parent of its
    /// sibling group is, so only parents (objects with children, usually
    /// few) are walked up, each chain once; a walk longer than the number of
    /// groups has met a cycle.
    fn all_reach_root(&self) -> bool {
        let mut reached = FxHashSet::default();
        reached.insert(ROOT);
        let mut path = Vec::new();
        for parent in self.children.keys() {
            let mut at = parent.as_str();
            while !reached.contains(at) {
                if path.len() > self.children.len() {
                    return false;
                }
                path.push(at);
                match self.objects.get(at) {
                    Some(object) => at = parent_of(&object.attrs).unwrap_or(ROOT),
                    None => return false,
                }
            }
            reached.extend(path.drain(..));
        }
        true
    }

    /// The limits this document enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The document's checksum: the incrementally maintained one, or, on a
    /// client's view while it holds edits applied without summing (see
    /// [`Document::unsummed`]), recomputed from scratch.
    pub fn checksum(&self) -> Checksum {
        if self.stale {
            return self.full_checksum();
        }
        self.checksum
    }

    /// The running checksum without recomputing: of this document, or of
    /// the state under what [`Document::unsummed`] applied on it.
    pub(crate) fn running_checksum(&self) -> Checksum {
        self.checksum
    }

    /// Sets the running checksum to `checksum`, which the caller knows to
    /// be that of the state under what is applied unsummed, or (`current`)
    /// of this document itself.
    pub(crate) fn set_running_checksum(&mut self, checksum: Checksum, current: bool) {
        self.checksum = checksum;
        self.stale &= !current;
    }

    /// Runs `apply` on diffs that passed, on an earlier application, the
    /// checks that depend on nothing but the diff (an id's, a name's and a
    /// value's limits, a reserved attribute's type): a client's pending
    /// batches applied again, the inverses the document wrote itself, and
    /// the server's batches, which the room checked.
    /// Those are skipped; everything that depends on the document (a
    /// missing target or parent, a cycle, a count) is judged as ever.
    pub(crate) fn prechecked<R>(&mut self, apply: impl FnOnce(&mut Document) -> R) -> R {
        self.prechecked = true;
        let result = apply(self);
        self.prechecked = false;
        result
    }

    /// Runs `apply` on this document leaving what it applies out of the
    /// running checksum: a client's pending edits on its confirmed state,
    /// which are unwound again more often than they are confirmed, and
    /// only the confirmed state's checksum is compared with the server's.
    pub(crate) fn unsummed<R>(&mut self, apply: impl FnOnce(&mut Document) -> R) -> R {
        self.summing = false;
        let result = apply(self);
        self.summing = true;
        result
    }

    /// The checksum recomputed from scratch (for verification and tests).
    pub fn full_checksum(&self) -> Checksum {
        let mut sum = Checksum::default();
        for (id, object) in &self.objects {
            sum.add(whole_object_term(id, &object.attrs));
        }
        sum
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the document has no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The attributes of `id`.
    pub fn get(&self, id: &str) -> Option<&Attrs> {
        self.objects.get(id).map(|object| &object.attrs)
    }

    /// Every object, in no particular order.
    pub fn objects(&self) -> impl Iterator<Item = (&ObjectId, &Attrs)> {
        self.objects.iter().map(|(id, object)| (id, &object.attrs))
    }

    /// The children of `parent` (roots for `None`) in sibling order, counted
    /// and walkable from both ends: the last one or the k-th of a small group
    /// is found without collecting them.
    pub fn children(&self, parent: Option<&str>) -> Children<'_> {
        match self.children.get(parent.unwrap_or(ROOT)) {
            Some(kids) => Children {
                members: kids.iter(),
                left: kids.len(),
            },
            None => Children {
                members: Members::Few([].iter()),
                left: 0,
            },
        }
    }

    /// Applies a batch in order, dropping what does not apply. Returns the
    /// outcome of each diff, what was applied, and the batch's inverse.
    pub fn apply_batch(&mut self, diffs: Vec<Diff>) -> BatchResult {
        // Sized from the start, as the other batch paths size theirs: a
        // diff nearly always applies as one diff with one inverse, and the
        // first push into an empty vector cost more than allocating it at
        // its size (a local edit paid it three times).
        let mut result = BatchResult {
            outcomes: Vec::with_capacity(diffs.len()),
            applied: Vec::with_capacity(diffs.len()),
            inverse: Vec::with_capacity(diffs.len()),
        };
        let mut sink = Sink {
            applied: Some(&mut result.applied),
            inverse: Some(&mut result.inverse),
        };
        for diff in diffs {
            result
                .outcomes
                .push(outcome(self.apply_into(diff, &mut sink)));
        }
        result.inverse.reverse();
        result
    }

    /// Applies a batch keeping only the outcomes and what was applied: the
    /// server's path, which never needs inverses.
    pub fn resolve_batch(&mut self, diffs: Vec<Diff>) -> (Vec<Outcome>, Vec<Diff>) {
        let mut applied = Vec::with_capacity(diffs.len());
        let mut sink = Sink {
            applied: Some(&mut applied),
            inverse: None,
        };
        let outcomes = diffs
            .into_iter()
            .map(|diff| outcome(self.apply_into(diff, &mut sink)))
            .collect();
        (outcomes, applied)
    }

    /// Applies diffs for their effect alone (replaying a server batch,
    /// unwinding with inverses): nothing is recorded. Takes the diffs by
    /// value, so a caller that is done with them (an unwind) copies nothing.
    pub fn apply_quietly(&mut self, diffs: impl IntoIterator<Item = Diff>) {
        let mut sink = Sink {
            applied: None,
            inverse: None,
        };
        for diff in diffs {
            let _ = self.apply_into(diff, &mut sink);
        }
    }

    /// Applies inverse batches (in the order given) that take the document
    /// back to the state its running checksum covers: a client unwinding
    /// its pending edits. Nothing is hashed on the way (an inverse restores
    /// the exact document, so the running checksum is its checksum).
    pub(crate) fn undo_to(&mut self, inverses: impl IntoIterator<Item = Vec<Diff>>) {
        self.unsummed(|doc| {
            doc.prechecked(|doc| {
                for inverse in inverses {
                    doc.apply_quietly(inverse);
                }
            })
        });
        self.stale = false;
        debug_assert_eq!(
            self.checksum,
            self.full_checksum(),
            "an unwind's kept checksum"
        );
    }

    /// Applies a batch recording outcomes and the inverse but not what was
    /// applied (a client re-applying its pending edits): values move into
    /// the document instead of being copied for a record.
    pub fn apply_with_inverse(&mut self, diffs: Vec<Diff>) -> (Vec<Outcome>, Vec<Diff>) {
        let mut inverse = Vec::with_capacity(diffs.len());
        let mut sink = Sink {
            applied: None,
            inverse: Some(&mut inverse),
        };
        let outcomes = diffs
            .into_iter()
            .map(|diff| outcome(self.apply_into(diff, &mut sink)))
            .collect();
        inverse.reverse();
        (outcomes, inverse)
    }

    /// Applies one diff with server resolution (see the module doc).
    pub fn apply(&mut self, diff: Diff) -> Result<Applied, DropReason> {
        let (mut diffs, mut inverse) = (Vec::with_capacity(1), Vec::with_capacity(1));
        let amended = self.apply_into(
            diff,
            &mut Sink {
                applied: Some(&mut diffs),
                inverse: Some(&mut inverse),
            },
        )?;
        inverse.reverse();
        Ok(Applied {
            diffs,
            inverse,
            amended,
        })
    }

    /// The one place a diff is resolved and applied. Returns whether it was
    /// amended; writes what it applied and its inverse into `sink` when asked.
    fn apply_into(&mut self, diff: Diff, sink: &mut Sink<'_>) -> Result<bool, DropReason> {
        let applied = self.resolve_into(diff, sink);
        self.stale |= !self.summing && applied.is_ok();
        applied
    }

    /// [`Document::apply_into`] but for keeping track of what the running
    /// checksum covers.
    #[inline(always)]
    fn resolve_into(&mut self, diff: Diff, sink: &mut Sink<'_>) -> Result<bool, DropReason> {
        match diff {
            Diff::Add { id, attrs } => self.add(id, attrs, sink),
            Diff::Remove { id } => self.remove(id, sink),
            Diff::Set { id, key, value } => {
                let value = value.filter(|v| !v.is_null());
                match key.as_str() {
                    PARENT => self.set_parent(id, value, sink),
                    Z => self.set_z(id, value, sink),
                    _ => self.set_plain(id, key, value, sink),
                }
            }
        }
    }

    fn add(
        &mut self,
        id: ObjectId,
        mut attrs: Attrs,
        sink: &mut Sink<'_>,
    ) -> Result<bool, DropReason> {
        if !self.prechecked && !Limits::name_ok(&id, self.limits.max_id_bytes) {
            return Err(DropReason::InvalidId);
        }
        // Every other check comes before the one lookup of the id, which
        // finds a duplicate or else is where the object goes in (a check
        // that the id is free looked it up once more); the reasons are
        // still given in the checks' order.
        let full = self.objects.len() >= self.limits.max_objects;
        attrs.retain(|_, v| !v.is_null());
        let key = match self.prechecked {
            true => Ok(sibling_key(&attrs)),
            false => check_attrs(&self.limits, &attrs),
        };
        let key = key.and_then(|(parent, z)| {
            if parent != ROOT && !self.objects.contains_key(parent) {
                return Err(DropReason::MissingParent);
            }
            Ok((parent, z))
        });
        let Entry::Vacant(slot) = self.objects.entry(id) else {
            return Err(DropReason::DuplicateAdd);
        };
        if full {
            return Err(DropReason::TooManyObjects);
        }
        let (parent, z) = key?;
        let id = slot.key();
        let fresh_z = link(&mut self.children, parent, z, id);
        let amended = fresh_z.is_some();
        if let Some(fresh) = fresh_z {
            attrs.insert(Z_NAME, Value::from(fresh));
        }
        sink.invert(|| Diff::Remove { id: id.clone() });
        let mut term = UNKNOWN_TERM;
        if self.summing {
            term = whole_object_term(id, &attrs);
            self.checksum.add(term);
        }
        match &mut sink.applied {
            Some(applied) => {
                let id = id.clone();
                slot.insert(Object {
                    attrs: attrs.clone(),
                    term,
                });
                applied.push(Diff::Add { id, attrs });
            }
            None => {
                slot.insert(Object { attrs, term });
            }
        }
        Ok(amended)
    }

    fn remove(&mut self, id: ObjectId, sink: &mut Sink<'_>) -> Result<bool, DropReason> {
        // The object leaves the map at once (looking it up to check that
        // it exists was a lookup more); nothing below reads it.
        let text = id.as_str();
        let (oid, object) = self
            .objects
            .remove_entry(text)
            .ok_or(DropReason::MissingTarget)?;
        // The descendants in pre-order, so that the inverse re-adds every
        // parent before its children (none, and no allocation, for a leaf).
        let kids_of = |name: &str| {
            let kids = self.children.get(name).into_iter().flatten();
            kids.rev().map(|(_, _, kid)| kid.clone())
        };
        let (mut below, mut stack) = (Vec::new(), Vec::new());
        stack.extend(kids_of(text));
        while let Some(kid) = stack.pop() {
            stack.extend(kids_of(&kid));
            below.push(kid);
        }
        // Inverse groups are written in reverse (see `Sink`): children first.
        for name in below.iter().rev() {
            self.take_out(name, sink);
        }
        self.leave(oid, object, sink);
        sink.record(|| Diff::Remove { id });
        Ok(false)
    }

    /// Removes one descendant of an object being removed (see [`Document::leave`]).
    fn take_out(&mut self, name: &str, sink: &mut Sink<'_>) {
        let (oid, object) = self
            .objects
            .remove_entry(name)
            .expect("indexed objects exist");
        self.leave(oid, object, sink);
    }

    /// Takes out the index entries and the share of the checksum of an
    /// object of a subtree being removed, which has left the map, writing
    /// its re-add into the inverse.
    fn leave(&mut self, oid: ObjectId, object: Object, sink: &mut Sink<'_>) {
        debug_assert!(
            object.term == UNKNOWN_TERM || object.term == whole_object_term(&oid, &object.attrs),
            "the cached term of {oid:?}"
        );
        if self.summing {
            self.checksum.sub(object.term(&oid));
        }
        let attrs = object.attrs;
        let (parent, z) = sibling_key(&attrs);
        unlink(&mut self.children, parent, z, &oid);
        // Its children left before it (see `remove`), and the last to leave
        // a group removes it.
        debug_assert!(!self.children.contains_key(&oid), "{oid:?} has children");
        if let Some(inverse) = &mut sink.inverse {
            inverse.push(Diff::Add { id: oid, attrs });
        }
    }

    fn set_parent(
        &mut self,
        id: ObjectId,
        value: Option<Value>,
        sink: &mut Sink<'_>,
    ) -> Result<bool, DropReason> {
        // The new parent's checks read the document first; then one lookup
        // of the object serves the index's key and the writes (a missing
        // object is still the reason given first).
        let text = id.as_str();
        let new_parent = match &value {
            None => Ok(None),
            Some(Value::String(p)) => self.parent_fault(p, text).map(|()| Some(p.as_str())),
            Some(_) => Err(DropReason::InvalidParent),
        };
        let object = self
            .objects
            .get_mut(text)
            .ok_or(DropReason::MissingTarget)?;
        let new_parent = new_parent?;
        let (old_parent, z) = sibling_key(&object.attrs);
        // Out of the old group before entering the new one: a group is
        // never entered by one of its members.
        unlink(&mut self.children, old_parent, z, &id);
        let fresh_z = link(&mut self.children, new_parent.unwrap_or(ROOT), z, &id);
        let amended = fresh_z.is_some();
        let mut sum = self.summing.then_some(&mut self.checksum);
        let old_parent_value = put(
            object,
            sum.as_deref_mut(),
            text,
            &PARENT_NAME,
            value.clone(),
        );
        sink.record(|| Diff::set(id.clone(), PARENT_NAME, value));
        // Undo goes back to the old parent first, where the old z is still
        // free, then restores the z (written in reverse, see `Sink`).
        if let Some(fresh) = &fresh_z {
            let fresh = Some(Value::from(fresh.as_str()));
            let old_z = put(object, sum, text, &Z_NAME, fresh.clone());
            sink.record(|| Diff::set(id.clone(), Z_NAME, fresh));
            sink.invert(|| Diff::set(id.clone(), Z_NAME, old_z));
        }
        sink.invert(|| Diff::set(id.clone(), PARENT_NAME, old_parent_value));
        Ok(amended)
    }

    fn set_z(
        &mut self,
        id: ObjectId,
        value: Option<Value>,
        sink: &mut Sink<'_>,
    ) -> Result<bool, DropReason> {
        // One lookup of the object for the index's key and the write.
        let text = id.as_str();
        let object = self
            .objects
            .get_mut(text)
            .ok_or(DropReason::MissingTarget)?;
        let wanted = match &value {
            None => CompactString::default(),
            Some(Value::String(z)) if zindex::is_canonical(z) => z.clone(),
            Some(_) => return Err(DropReason::MalformedZ),
        };
        let (parent, old_z) = sibling_key(&object.attrs);
        let fresh_z = relink(&mut self.children, parent, old_z, &wanted, &id);
        let amended = fresh_z.is_some();
        let new_z = fresh_z.map_or(wanted, CompactString::from);
        let value = (!new_z.is_empty()).then_some(Value::String(new_z));
        let sum = self.summing.then_some(&mut self.checksum);
        let old = put(object, sum, text, &Z_NAME, value.clone());
        sink.invert(|| Diff::set(id.clone(), Z_NAME, old));
        sink.record(|| Diff::set(id, Z_NAME, value));
        Ok(amended)
    }

    fn set_plain(
        &mut self,
        id: ObjectId,
        key: AttrName,
        mut value: Option<Value>,
        sink: &mut Sink<'_>,
    ) -> Result<bool, DropReason> {
        // One lookup of the object for the checks and the write.
        let text = id.as_str();
        let object = self
            .objects
            .get_mut(text)
            .ok_or(DropReason::MissingTarget)?;
        let attrs = &object.attrs;
        if let Some(v) = &value {
            if !self.prechecked {
                check_attr(&self.limits, &key, v)?;
            }
            if attrs.len() >= self.limits.max_attrs_per_object && !attrs.contains_key(key.as_str())
            {
                return Err(DropReason::TooManyAttributes);
            }
        } else if !self.prechecked && !Limits::name_ok(&key, self.limits.max_key_bytes) {
            return Err(DropReason::InvalidKey);
        }
        let sum = self.summing.then_some(&mut self.checksum);
        if sink.applied.is_some() {
            let old = put(object, sum, text, &key, value.clone());
            sink.invert(|| Diff::Set {
                id: id.clone(),
                key: key.clone(),
                value: old,
            });
            sink.record(|| Diff::Set { id, key, value });
        } else {
            // Nothing recorded as applied: the id and key move into the
            // inverse instead of being copied.
            let old = put(object, sum, text, &key, value.take());
            sink.invert(|| Diff::Set {
                id,
                key,
                value: old,
            });
        }
        Ok(false)
    }

    /// Why `candidate` cannot become the parent of object `id`: it does not
    /// exist, or it is `id` or lies below it. The walk up from `candidate`
    /// starts with the lookup that finds it (the existence check looked it
    /// up a second time).
    fn parent_fault(&self, candidate: &str, id: &str) -> Result<(), DropReason> {
        let mut at = candidate;
        let mut object = self.objects.get(at).ok_or(DropReason::MissingParent)?;
        for _ in 0..=self.objects.len() {
            if at == id {
                return Err(DropReason::ParentCycle);
            }
            let parent = parent_of(&object.attrs).and_then(|p| Some((p, self.objects.get(p)?)));
            match parent {
                Some(parent) => (at, object) = parent,
                None => return Ok(()),
            }
        }
        Err(DropReason::ParentCycle)
    }
}

/// Builds a document from stored objects in bulk: a room's cold start, a
/// client's snapshot. Each object is checked, summed and entered in its
/// sibling group while it is fresh in the cache; the sibling sets are then
/// built from whole groups at once, parents are checked once per group, and
/// the tree once at the end.
pub(crate) struct Builder {
    objects: FxHashMap<ObjectId, Object>,
    /// Sibling groups by parent, in the order they first appear. Encoders
    /// write a group's members one after the other, so an object's group is
    /// nearly always the last one, found by comparing one name instead of
    /// hashing it; `group_at` finds the others.
    groups: Vec<(Name, Vec<Member>)>,
    group_at: FxHashMap<Name, usize>,
    checksum: Checksum,
    /// The checksum the caller vouches for (a snapshot whose bytes matched
    /// their digest); `None` computes it from the objects.
    known: Option<Checksum>,
    limits: Limits,
}

impl Builder {
    pub(crate) fn new(limits: Limits, capacity: usize, known: Option<Checksum>) -> Builder {
        let mut objects = FxHashMap::default();
        objects.reserve(capacity);
        Builder {
            objects,
            groups: Vec::new(),
            group_at: FxHashMap::default(),
            checksum: Checksum::default(),
            known,
            limits,
        }
    }

    /// The limits the document is built under.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Adds one object.
    pub(crate) fn push(&mut self, id: ObjectId, attrs: Attrs) -> Result<(), SnapshotError> {
        let reserved = check_each_attr(&self.limits, &attrs);
        self.push_checked(id, attrs, reserved)
    }

    /// Adds one object whose attribute count, names and values were checked
    /// already (a reader that checked them as it read them); `reserved` is
    /// that check's outcome.
    pub(crate) fn push_checked(
        &mut self,
        id: ObjectId,
        attrs: Attrs,
        reserved: Result<Reserved, DropReason>,
    ) -> Result<(), SnapshotError> {
        if !Limits::name_ok(&id, self.limits.max_id_bytes) {
            return Err(SnapshotError::Limits(id, DropReason::InvalidId));
        }
        let (parent, z) = match reserved.and_then(|r| r.key(&attrs)) {
            Ok(key) => key,
            Err(reason) => return Err(SnapshotError::Limits(id, reason)),
        };
        let mut term = UNKNOWN_TERM;
        if self.known.is_none() {
            term = whole_object_term(&id, &attrs);
            self.checksum.add(term);
        }
        let at = match self.groups.last() {
            Some((last, _)) if last == parent => self.groups.len() - 1,
            _ => match self.group_at.get(parent) {
                Some(&at) => at,
                None => {
                    self.group_at.insert(Name::from(parent), self.groups.len());
                    // Sibling groups tend to be alike: start the new one
                    // the size of the last (bounded by what was read).
                    let like = self.groups.last().map_or(0, |(_, last)| last.len());
                    self.groups
                        .push((Name::from(parent), Vec::with_capacity(like)));
                    self.groups.len() - 1
                }
            },
        };
        self.groups[at].1.push(Key::new(z, &id).member());
        match self.objects.entry(id) {
            Entry::Occupied(taken) => Err(SnapshotError::DuplicateId(taken.key().clone())),
            Entry::Vacant(slot) => {
                slot.insert(Object { attrs, term });
                Ok(())
            }
        }
    }

    pub(crate) fn finish(self) -> Result<Document, SnapshotError> {
        let mut children = FxHashMap::default();
        children.reserve(self.groups.len());
        for (parent, kids) in self.groups {
            if parent != ROOT && !self.objects.contains_key(parent.as_str()) {
                let (_, _, child) = &kids[0];
                return Err(SnapshotError::DanglingParent(child.clone()));
            }
            children.insert(parent, Siblings::new(kids));
        }
        let doc = Document {
            checksum: self.known.unwrap_or(self.checksum),
            summing: true,
            stale: false,
            prechecked: false,
            objects: self.objects,
            children,
            limits: self.limits,
        };
        if !doc.all_reach_root() {
            return Err(SnapshotError::Cycle);
        }
        Ok(doc)
    }
}

/// Replaces attribute `name` of object `id`, keeping `sum` and the object's
/// cached term current when `sum` is given (the term becomes unknown when
/// not); returns the old value. A new attribute's name is a copy of `name`.
fn put(
    object: &mut Object,
    sum: Option<&mut Checksum>,
    id: &str,
    name: &AttrName,
    value: Option<Value>,
) -> Option<Value> {
    let key = name.as_str();
    let new_term = match (&sum, &value) {
        (Some(_), Some(v)) => attr_term(id, key, v),
        _ => 0,
    };
    let attrs = &mut object.attrs;
    let old = match value {
        Some(v) => match attr_index(attrs, key) {
            Ok(at) => {
                let (_, slot) = attrs.iter_mut().nth(at).expect("a found index");
                Some(std::mem::replace(slot, v))
            }
            Err(_) => attrs.insert(name.clone(), v),
        },
        None => attrs.remove(key),
    };
    match sum {
        Some(sum) => {
            let old_term = old.as_ref().map_or(0, |o| attr_term(id, key, o));
            sum.add(new_term);
            sum.sub(old_term);
            if object.term != UNKNOWN_TERM {
                object.term = object.term.wrapping_add(new_term).wrapping_sub(old_term);
            }
        }
        None => object.term = UNKNOWN_TERM,
    }
    old
}

/// Where attribute `key` is among `attrs` (as `LiteMap::find_index`), by
/// bisection comparing the names' first eight bytes as numbers
/// ([`cmp_names`]): the map's own search called `memcmp` for every
/// comparison, nearly four a write.
fn attr_index(attrs: &Attrs, key: &str) -> Result<usize, usize> {
    let word = leading_word(key.as_bytes());
    let (mut low, mut high) = (0, attrs.len());
    while low < high {
        let mid = low + (high - low) / 2;
        let (name, _) = attrs.get_indexed(mid).expect("an index below the length");
        match cmp_names(leading_word(name.as_bytes()), name, word, key) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => return Ok(mid),
        }
    }
    Err(low)
}

/// Enters `id` among the children of `parent` at `z`, or at a fresh index
/// when another sibling holds `z`; returns the fresh index. The group is
/// looked up once for the collision check and the entry (it was twice),
/// and its key allocated only for a parent's first child. Given the index
/// alone (as is [`unlink`]), so that a move may pass the parent and z it
/// reads from the object's attributes instead of copies of them.
fn link(
    children: &mut FxHashMap<Name, Siblings>,
    parent: &str,
    z: &str,
    id: &ObjectId,
) -> Option<String> {
    let key = Key::new(z, id);
    let Some(kids) = children.get_mut(parent) else {
        children.insert(Name::from(parent), Siblings::Few(vec![key.member()]));
        return None;
    };
    kids.enter(&key)
}

/// [`unlink`] from `old_z` then [`link`] at `z` within one group, the
/// children of `parent`: a reorder. The group is looked up once (it was
/// twice), and kept even when `id` is its only member (which removed it
/// and built it again).
fn relink(
    children: &mut FxHashMap<Name, Siblings>,
    parent: &str,
    old_z: &str,
    z: &str,
    id: &ObjectId,
) -> Option<String> {
    let Some(kids) = children.get_mut(parent) else {
        return link(children, parent, z, id);
    };
    kids.remove(&Key::new(old_z, id));
    kids.enter(&Key::new(z, id))
}

/// Takes `id` at `z` out of the children of `parent`, and the group out of
/// the index when it was the last.
fn unlink(children: &mut FxHashMap<Name, Siblings>, parent: &str, z: &str, id: &ObjectId) {
    if let Some(kids) = children.get_mut(parent) {
        kids.remove(&Key::new(z, id));
        if kids.is_empty() {
            children.remove(parent);
        }
    }
}

/// The rule for a colliding z, for a key entering a sibling group (it is
/// no member yet): `from` are the group's members from the first whose z is
/// not below the key's. When some of them hold the key's z, the key takes a
/// fresh index between that z and the next member's. Returns how many hold
/// it (the key's place is past them) and the fresh z, if one is needed.
fn collision<'a>(
    from: impl IntoIterator<Item = &'a Member>,
    key: &Key<'_>,
) -> (usize, Option<String>) {
    let mut holding = 0;
    let mut next = None;
    for kid in from {
        if key.cmp_z(kid).is_ne() {
            next = Some(kid.1.as_str());
            break;
        }
        debug_assert!(kid.2 != *key.id, "{:?} is a member already", key.id);
        holding += 1;
    }
    let fresh_z = (holding > 0).then(|| zindex::between(key.z, next));
    (holding, fresh_z)
}

/// Where in a small group's members the first whose z is not below
/// `key`'s is.
fn first_not_below(kids: &[Member], key: &Key<'_>) -> usize {
    kids.partition_point(|kid| key.cmp_z(kid).is_lt())
}

/// A member of a sibling group: the leading word of its z (see
/// [`leading_word`]), its z and its id. Members order as their (z, id):
/// the words order as the z values do wherever they differ, and the z
/// values decide where they tie. The word is 8 bytes per object that make
/// nearly every comparison of a search one integer comparison (comparing
/// the z values cost a call to `memcmp` each).
type Member = (u64, Name, Name);

/// One sibling group: its members in sibling order.
///
/// A group nearly always has a few dozen members at most, and a B-tree was
/// most of the cost of entering, moving and removing an object: a node
/// allocated for every new group, each comparison on the way through
/// `memcmp`. Such a group is a sorted vector, searched by bisection; one
/// that outgrows [`FEW`] becomes a B-tree for good, so that a flat document
/// of 100,000 objects still enters and removes one in O(log n).
#[derive(Clone, Debug)]
enum Siblings {
    Few(Vec<Member>),
    Many(BTreeSet<Member>),
}

/// The most members a [`Siblings::Few`] holds: entering one in the middle
/// moves half of them, a few hundred bytes, cheaper than a B-tree insertion.
const FEW: usize = 128;

impl Siblings {
    /// A group of the members `kids` (as a snapshot lists them: in sibling
    /// order, which sorting checks in one linear pass).
    fn new(mut kids: Vec<Member>) -> Siblings {
        if kids.len() > FEW {
            return Siblings::Many(BTreeSet::from_iter(kids));
        }
        kids.sort_unstable();
        Siblings::Few(kids)
    }

    fn is_empty(&self) -> bool {
        match self {
            Siblings::Few(kids) => kids.is_empty(),
            Siblings::Many(kids) => kids.is_empty(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Siblings::Few(kids) => kids.len(),
            Siblings::Many(kids) => kids.len(),
        }
    }

    /// Every member in sibling order.
    #[inline]
    fn iter(&self) -> Members<'_> {
        match self {
            Siblings::Few(kids) => Members::Few(kids.iter()),
            Siblings::Many(kids) => Members::Many(kids.range::<Member, _>(..)),
        }
    }

    /// The members from the first whose z is not below `key`'s on.
    fn not_below(&self, key: &Key<'_>) -> Members<'_> {
        match self {
            Siblings::Few(kids) => Members::Few(kids[first_not_below(kids, key)..].iter()),
            Siblings::Many(kids) => {
                let first = (key.word, Name::from(key.z), Name::default());
                Members::Many(kids.range(first..))
            }
        }
    }

    /// Enters `key` (not a member yet) at its z, or at a fresh one when
    /// another member holds it (see [`collision`]); returns the fresh z.
    fn enter(&mut self, key: &Key<'_>) -> Option<String> {
        if key.z.is_empty() {
            self.insert(key);
            return None;
        }
        let Siblings::Few(kids) = self else {
            let (_, fresh_z) = collision(self.not_below(key), key);
            self.insert(&key.or_fresh(&fresh_z));
            return fresh_z;
        };
        // A small group is searched once: the key's place is past the
        // members holding its z, whether it keeps that z or takes a fresh
        // one.
        let at = first_not_below(kids, key);
        let (holding, fresh_z) = collision(&kids[at..], key);
        kids.insert(at + holding, key.or_fresh(&fresh_z).member());
        self.outgrow();
        fresh_z
    }

    /// Makes a small group that outgrew [`FEW`] a B-tree, for good.
    fn outgrow(&mut self) {
        if let Siblings::Few(kids) = self {
            if kids.len() > FEW {
                *self = Siblings::Many(BTreeSet::from_iter(std::mem::take(kids)));
            }
        }
    }

    /// Enters `key` (not a member yet).
    fn insert(&mut self, key: &Key<'_>) {
        match self {
            Siblings::Few(kids) => {
                let at = kids.partition_point(|kid| key.cmp_member(kid).is_lt());
                kids.insert(at, key.member());
                self.outgrow();
            }
            Siblings::Many(kids) => {
                kids.insert(key.member());
            }
        }
    }

    /// Removes the member `key`, if there is one.
    fn remove(&mut self, key: &Key<'_>) {
        match self {
            Siblings::Few(kids) => {
                if let Ok(at) = kids.binary_search_by(|kid| key.cmp_member(kid)) {
                    kids.remove(at);
                }
            }
            Siblings::Many(kids) => {
                kids.remove(&key.member());
            }
        }
    }
}

impl<'a> IntoIterator for &'a Siblings {
    type Item = &'a Member;
    type IntoIter = Members<'a>;

    fn into_iter(self) -> Members<'a> {
        self.iter()
    }
}

/// Members of a [`Siblings`] group, in sibling order.
#[derive(Clone)]
enum Members<'a> {
    Few(std::slice::Iter<'a, Member>),
    Many(btree_set::Range<'a, Member>),
}

impl<'a> Iterator for Members<'a> {
    type Item = &'a Member;

    // Inlined (as is `Siblings::iter`): writing a snapshot walks every
    // member, and as a call this made the compiler call the object lookup
    // beside it too (a flat 100,000-object snapshot: 7% more instructions).
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Members::Few(kids) => kids.next(),
            Members::Many(kids) => kids.next(),
        }
    }

    /// A small group's vector skips to the k-th member at once.
    fn nth(&mut self, n: usize) -> Option<Self::Item> {
        match self {
            Members::Few(kids) => kids.nth(n),
            Members::Many(kids) => kids.nth(n),
        }
    }
}

impl DoubleEndedIterator for Members<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Members::Few(kids) => kids.next_back(),
            Members::Many(kids) => kids.next_back(),
        }
    }
}

/// The ids of one sibling group in sibling order (see
/// [`Document::children`]). It knows how many are left, and a small group
/// (a vector) skips to the k-th at once.
#[derive(Clone)]
pub struct Children<'a> {
    members: Members<'a>,
    left: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.nth(0)
    }

    fn nth(&mut self, n: usize) -> Option<&'a str> {
        self.left = self.left.saturating_sub(n + 1);
        self.members.nth(n).map(|(_, _, id)| id.as_str())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }

    fn last(mut self) -> Option<&'a str> {
        self.next_back()
    }
}

impl DoubleEndedIterator for Children<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.left = self.left.saturating_sub(1);
        self.members.next_back().map(|(_, _, id)| id.as_str())
    }
}

impl ExactSizeIterator for Children<'_> {}

/// A sibling key (z, id) being looked up, borrowed (finding a member
/// copies nothing), with the leading word of its z computed once per
/// search. The id is borrowed as the object's own [`ObjectId`]: entering
/// the key copies it as it is (an inline id is 24 bytes copied) instead of
/// encoding its text again.
#[derive(Clone, Copy)]
struct Key<'a> {
    word: u64,
    z: &'a str,
    id: &'a ObjectId,
}

impl<'a> Key<'a> {
    fn new(z: &'a str, id: &'a ObjectId) -> Key<'a> {
        Key {
            word: leading_word(z.as_bytes()),
            z,
            id,
        }
    }

    fn member(&self) -> Member {
        (self.word, Name::from(self.z), self.id.clone())
    }

    /// This key's id at `fresh_z` when there is one, else this key.
    fn or_fresh(&self, fresh_z: &'a Option<String>) -> Key<'a> {
        match fresh_z {
            Some(fresh) => Key::new(fresh, self.id),
            None => *self,
        }
    }

    /// The order of `kid`'s z to this key's z ([`cmp_names`]).
    #[inline]
    fn cmp_z(&self, (word, z, _): &Member) -> Ordering {
        cmp_names(*word, z, self.word, self.z)
    }

    /// The order of member `kid` to this key: by z, then id.
    #[inline]
    fn cmp_member(&self, kid: &Member) -> Ordering {
        self.cmp_z(kid)
            .then_with(|| kid.2.as_str().cmp(self.id.as_str()))
    }
}

/// The order of name `a` to name `b`, given their [`leading_word`]s: the
/// words decide where they differ; where they tie, names of eight bytes at
/// most differ only in length (names hold no NUL), longer ones are
/// compared in full. The names are read only on a tie (dereferencing a
/// `Name` for nothing cost more than sharing this function saved).
#[inline(always)]
fn cmp_names<A, B>(a_word: u64, a: &A, b_word: u64, b: &B) -> Ordering
where
    A: AsRef<str> + ?Sized,
    B: AsRef<str> + ?Sized,
{
    a_word.cmp(&b_word).then_with(|| {
        let (a, b) = (a.as_ref(), b.as_ref());
        if a.len().max(b.len()) <= 8 {
            a.len().cmp(&b.len())
        } else {
            a.cmp(b)
        }
    })
}

/// The first eight bytes of `bytes`, zero-padded, as a big-endian number:
/// where two names' words differ, they order as the names do (at the first
/// byte that differs, both names have a byte, or only the longer one has
/// one, above the shorter's zero).
#[inline]
fn leading_word(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(word) => u64::from_be_bytes(*word),
        None => {
            let mut word = [0; 8];
            copy_short(&mut word[..bytes.len()], bytes);
            u64::from_be_bytes(word)
        }
    }
}

/// Where [`Document::apply_into`] writes what it applied and, when asked,
/// the inverse. Each diff writes its inverse diffs in REVERSE order; callers
/// reverse the whole inverse once at the end, which reverses the order of
/// the diffs' groups and restores each group's own order in one pass.
struct Sink<'a> {
    applied: Option<&'a mut Vec<Diff>>,
    inverse: Option<&'a mut Vec<Diff>>,
}

impl Sink<'_> {
    fn record(&mut self, diff: impl FnOnce() -> Diff) {
        if let Some(applied) = &mut self.applied {
            applied.push(diff());
        }
    }

    fn invert(&mut self, diff: impl FnOnce() -> Diff) {
        if let Some(inverse) = &mut self.inverse {
            inverse.push(diff());
        }
    }
}

fn outcome(result: Result<bool, DropReason>) -> Outcome {
    match result {
        Ok(false) => Outcome::Accepted,
        Ok(true) => Outcome::Amended,
        Err(reason) => Outcome::Dropped(reason),
    }
}

/// The outcome of [`Document::apply_batch`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchResult {
    /// One outcome per diff that came in.
    pub outcomes: Vec<Outcome>,
    /// The diffs as applied, in order.
    pub applied: Vec<Diff>,
    /// Applying these in order undoes the whole batch.
    pub inverse: Vec<Diff>,
}

/// Checks a new object's attributes and returns its sibling key (see
/// [`sibling_key`]), looking each reserved attribute up once.
fn check_attrs<'a>(limits: &Limits, attrs: &'a Attrs) -> Result<(&'a str, &'a str), DropReason> {
    check_each_attr(limits, attrs)?.key(attrs)
}

/// Where an object's reserved attributes sit among its attributes (by
/// index), once every name and value passed its own check. Judging the
/// object as a whole is [`Reserved::key`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reserved {
    pub parent: Option<usize>,
    pub z: Option<usize>,
}

impl Reserved {
    /// Notes that the attribute at `index` is called `name`.
    #[inline]
    pub(crate) fn note(&mut self, index: usize, name: &str) {
        match name {
            PARENT => self.parent = Some(index),
            Z => self.z = Some(index),
            _ => {}
        }
    }

    /// The object's sibling key (see [`sibling_key`]) after the checks of
    /// the reserved attributes' values: `parent`, then `z`.
    fn key(self, attrs: &Attrs) -> Result<(&str, &str), DropReason> {
        let at = |index: Option<usize>| index.and_then(|i| attrs.get_indexed(i)).map(|(_, v)| v);
        let parent = match at(self.parent) {
            None => ROOT,
            Some(p) => p.as_str().ok_or(DropReason::InvalidParent)?,
        };
        let z = match at(self.z) {
            None => "",
            Some(z) => z
                .as_str()
                .filter(|z| zindex::is_canonical(z))
                .ok_or(DropReason::MalformedZ)?,
        };
        Ok((parent, z))
    }
}

/// Checks each attribute's name and value, noting the reserved ones on the
/// way (two binary searches comparing names cost more than the comparisons
/// here).
pub(crate) fn check_each_attr(limits: &Limits, attrs: &Attrs) -> Result<Reserved, DropReason> {
    if attrs.len() > limits.max_attrs_per_object {
        return Err(DropReason::TooManyAttributes);
    }
    let mut reserved = Reserved::default();
    for (i, (k, v)) in attrs.iter().enumerate() {
        check_attr(limits, k, v)?;
        reserved.note(i, k);
    }
    Ok(reserved)
}

#[inline]
fn check_attr(limits: &Limits, key: &str, value: &Value) -> Result<(), DropReason> {
    if !Limits::name_ok(key, limits.max_key_bytes) {
        return Err(DropReason::InvalidKey);
    }
    limits.check_value(value).map_err(|fault| match fault {
        ValueFault::TooLarge => DropReason::ValueTooLarge,
        ValueFault::TooDeep => DropReason::ValueTooDeep,
    })
}

fn parent_of(attrs: &Attrs) -> Option<&str> {
    attrs.get(PARENT).and_then(Value::as_str)
}

/// (parent key, z) of an object's entry in the children index, in one pass
/// over the attributes: objects have a handful, and comparing each name's
/// length first cost less than two binary searches comparing names (every
/// removal, move and reorder looks the key up). Inlined into its two
/// callers: as a call it cost 0.5 M more instructions over the simulator's
/// 20 seeds.
#[inline]
fn sibling_key(attrs: &Attrs) -> (&str, &str) {
    let (mut parent, mut z) = (ROOT, "");
    for (key, value) in attrs.iter() {
        match key.as_str() {
            PARENT => parent = value.as_str().unwrap_or(ROOT),
            Z => z = value.as_str().unwrap_or(""),
            _ => {}
        }
    }
    (parent, z)
}

/// Objects are written sibling group by sibling group, each group in sibling
/// order, so that `Builder` receives every group already sorted and builds
/// its index without sorting (sorting 100,000 root objects whose strings lie
/// all over the heap was most of a flat document's restore).
impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.objects.len()))?;
        for (id, attrs) in self.in_sibling_order() {
            map.serialize_entry(id, attrs)?;
        }
        map.end()
    }
}

impl Document {
    /// Every object, sibling group by sibling group, each group in sibling
    /// order: the order documents are written in (see `Serialize`).
    pub fn in_sibling_order(&self) -> impl Iterator<Item = (&str, &Attrs)> {
        self.children.values().flat_map(move |kids| {
            kids.iter()
                .map(move |(_, _, id)| (id.as_str(), &self.objects[id.as_str()].attrs))
        })
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let objects = FxHashMap::<ObjectId, Attrs>::deserialize(d)?;
        Document::from_objects(objects, Limits::default()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        attr_index, whole_object_term, Builder, Document, Key, Member, Name, Siblings, FEW, ROOT,
        UNKNOWN_TERM,
    };
    use crate::diff::{Attrs, Diff};
    use crate::value;
    use crate::zindex;
    use compact_str::format_compact;
    use std::collections::BTreeSet;

    impl Document {
        /// Whether every cached term that is known is the object's term
        /// recomputed.
        fn cached_terms_hold(&self) -> bool {
            self.objects.iter().all(|(id, object)| {
                object.term == UNKNOWN_TERM || object.term == whole_object_term(id, &object.attrs)
            })
        }
    }

    /// A small xorshift stream of diffs over a dozen ids, so that adds
    /// collide, parents exist, z values clash and removes take subtrees.
    struct Diffs(u64);

    impl Diffs {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn next(&mut self) -> Diff {
            let id = format_compact!("o{}", self.below(12));
            let other = value!(format!("o{}", self.below(12)));
            let z = value!(["80", "7f80", "8180", "a080"][self.below(4) as usize]);
            let number = value!(self.below(100));
            match self.below(6) {
                0 => {
                    let mut attrs = Attrs::new();
                    attrs.insert("name".into(), number);
                    attrs.insert("z".into(), z);
                    if self.below(2) == 0 {
                        attrs.insert("parent".into(), other);
                    }
                    Diff::Add { id, attrs }
                }
                1 => Diff::Remove { id },
                2 => Diff::set(id, "name", Some(number)),
                3 => Diff::set(id, "name", None),
                4 => Diff::set(id, "parent", (self.below(2) == 0).then_some(other)),
                _ => Diff::set(id, "z", Some(z)),
            }
        }
    }

    /// Names around the eight bytes a member's word holds: prefixes of one
    /// another, ending in a NUL, a digit or a high byte where the word ends
    /// or past it.
    fn names() -> Vec<String> {
        let mut names = vec![String::new()];
        for len in [1, 2, 7, 8, 9, 10, 17] {
            for last in ["\0", "0", "8", "f", "\u{ff}"] {
                names.push(format!("{}{last}", &"7f807f807f807f807f80"[..len - 1]));
            }
        }
        names
    }

    #[test]
    fn members_order_as_their_z_then_id() {
        let names = names();
        for z in &names {
            for kid_z in &names {
                for (id, kid_id) in [("a", "a"), ("a", "b"), ("b", "a")] {
                    let want = (kid_z.as_str(), kid_id).cmp(&(z.as_str(), id));
                    let (id, kid_id) = (Name::from(id), Name::from(kid_id));
                    let kid: Member = Key::new(kid_z, &kid_id).member();
                    assert_eq!(Key::new(z, &id).cmp_member(&kid), want, "{kid_z:?} {z:?}");
                    // The B-tree's order.
                    assert_eq!(kid.cmp(&Key::new(z, &id).member()), want, "{kid_z:?} {z:?}");
                }
            }
        }
    }

    #[test]
    fn sibling_groups_keep_sibling_order_small_and_large() {
        let names = names();
        let mut diffs = Diffs(0x2545_f491_4f6c_dd1d);
        let (mut kids, mut model) = (Siblings::new(Vec::new()), BTreeSet::new());
        let mut grew = false;
        // Mostly entries up past the vector's bound, then mostly removals.
        for round in 0..3000 {
            let entering = (round < 1500) == (diffs.below(4) > 0);
            let z = names[diffs.below(names.len() as u64) as usize].clone();
            let id = format!("o{}", diffs.below(400));
            match model.iter().find(|(_, kid)| *kid == id).cloned() {
                None if entering => {
                    kids.insert(&Key::new(&z, &id.as_str().into()));
                    model.insert((z.clone(), id));
                }
                Some((kz, id)) if !entering => {
                    kids.remove(&Key::new(&kz, &id.as_str().into()));
                    model.remove(&(kz, id));
                }
                _ => {}
            }
            match &kids {
                Siblings::Few(few) => assert!(few.len() <= FEW && !grew, "round {round}"),
                Siblings::Many(_) => grew = true,
            }
            let pairs = |kids: super::Members<'_>| -> Vec<(String, String)> {
                kids.map(|(_, z, id)| (z.to_string(), id.to_string()))
                    .collect()
            };
            assert!(pairs(kids.iter()).iter().eq(&model), "round {round}");
            let from = model.iter().filter(|(kz, _)| *kz >= z);
            assert!(
                pairs(kids.not_below(&Key::new(&z, &Name::default())))
                    .iter()
                    .eq(from),
                "round {round}"
            );
        }
        assert!(grew, "the group outgrew the vector");
    }

    #[test]
    fn attributes_are_found_where_the_map_finds_them() {
        // Names in a document hold no NUL (their check refuses it).
        let mut names = names();
        names.retain(|name| !name.contains('\0'));
        for n in [0, 1, 2, 5, 9, names.len()] {
            for skip in [0, 1, 3] {
                let attrs: Attrs = names
                    .iter()
                    .skip(skip)
                    .step_by(2)
                    .take(n)
                    .map(|name| (name.as_str().into(), value!(null)))
                    .collect();
                for name in &names {
                    assert_eq!(
                        attr_index(&attrs, name),
                        attrs.find_index(name.as_str()),
                        "{name:?} among {n}"
                    );
                }
            }
        }
    }

    #[test]
    fn entering_a_held_z_takes_the_one_between_it_and_the_next_in_groups_small_and_large() {
        // Members two to a z (so a held z may be held twice), a group under
        // FEW (a vector) and one past it (a B-tree), each entered by a new
        // key at every z held, at ones no member holds and at none.
        let zs: Vec<String> = std::iter::successors(Some(zindex::first()), |z| zindex::after(z))
            .take(FEW)
            .collect();
        for size in [6, FEW + 20] {
            let held: Vec<(String, String)> = (0..size)
                .map(|i| (zs[i / 2 + 1].clone(), format!("m{i}")))
                .collect();
            let members = held
                .iter()
                .map(|(z, id)| Key::new(z, &Name::from(id.as_str())).member())
                .collect();
            let group = Siblings::new(members);
            assert_eq!(matches!(group, Siblings::Many(_)), size > FEW);
            let probes = zs.iter().take(size / 2 + 3).map(String::as_str);
            for z in probes.chain([""]) {
                let held_z = !z.is_empty() && held.iter().any(|(kz, _)| kz == z);
                let next = held.iter().map(|(kz, _)| kz.as_str()).find(|kz| *kz > z);
                let want = held_z.then(|| zindex::between(z, next));
                let mut kids = group.clone();
                let id = Name::from("new");
                assert_eq!(kids.enter(&Key::new(z, &id)), want, "{size} {z:?}");
                let mut model: BTreeSet<(String, String)> = held.iter().cloned().collect();
                let entered = want.clone().unwrap_or_else(|| z.to_owned());
                model.insert((entered, "new".to_owned()));
                let members = kids
                    .iter()
                    .map(|(_, kz, kid)| (kz.to_string(), kid.to_string()));
                assert!(members.eq(model), "{size} {z:?}");
            }
        }
    }

    #[test]
    fn children_are_counted_and_walked_from_both_ends() {
        // 200 roots (past FEW: a B-tree group), entered from the highest z
        // down, and three children of r5 (a vector group) in reverse z order.
        let zs: Vec<String> = std::iter::successors(Some(zindex::first()), |z| zindex::after(z))
            .take(200)
            .collect();
        let add = |id: String, z: &str, parent: Option<&str>| {
            let mut attrs = Attrs::new();
            attrs.insert("z".into(), value!(z));
            if let Some(parent) = parent {
                attrs.insert("parent".into(), value!(parent));
            }
            Diff::Add {
                id: id.into(),
                attrs,
            }
        };
        let mut diffs: Vec<Diff> = (0..200)
            .rev()
            .map(|i| add(format!("r{i}"), &zs[i], None))
            .collect();
        diffs.extend((0..3).map(|i| add(format!("k{i}"), &zs[2 - i], Some("r5"))));
        let mut doc = Document::default();
        doc.apply_batch(diffs);
        assert!(matches!(doc.children.get(ROOT), Some(Siblings::Many(_))));
        assert!(matches!(doc.children.get("r5"), Some(Siblings::Few(_))));
        let roots: Vec<String> = (0..200).map(|i| format!("r{i}")).collect();
        let kids = ["k2", "k1", "k0"].map(String::from).to_vec();
        for (parent, want) in [(None, roots), (Some("r5"), kids), (Some("r6"), Vec::new())] {
            let children = doc.children(parent);
            assert_eq!(children.len(), want.len(), "{parent:?}");
            assert_eq!(children.clone().last(), want.last().map(String::as_str));
            assert!(children.clone().rev().eq(want.iter().rev()), "{parent:?}");
            for k in [0, 1, 2, 3, 150, 199, 200, 201] {
                let mut rest = children.clone();
                assert_eq!(
                    rest.nth(k),
                    want.get(k).map(String::as_str),
                    "{parent:?} {k}"
                );
                let after = want.iter().skip(k + 1);
                assert_eq!(rest.len(), after.len(), "{parent:?} {k}");
                assert!(rest.clone().eq(after.clone()), "{parent:?} {k}");
                assert!(rest.rev().eq(after.rev()), "{parent:?} {k}");
            }
        }
    }

    #[test]
    fn prechecked_diffs_are_still_judged_against_the_document() {
        use crate::{DropReason, Limits};
        let limits = Limits {
            max_attrs_per_object: 2,
            ..Limits::default()
        };
        let mut doc = Document::new(limits);
        let add = |id: &str, parent: Option<&str>| {
            let mut attrs = Attrs::new();
            if let Some(parent) = parent {
                attrs.insert("parent".into(), value!(parent));
            }
            Diff::Add {
                id: id.into(),
                attrs,
            }
        };
        let set = |id: &str, key: &str| Diff::set(id, key, Some(value!(1)));
        doc.prechecked(|doc| {
            assert_eq!(
                doc.apply(add("a", Some("gone"))),
                Err(DropReason::MissingParent)
            );
            assert!(doc.apply(add("a", None)).is_ok());
            assert_eq!(doc.apply(add("a", None)), Err(DropReason::DuplicateAdd));
            assert_eq!(doc.apply(set("b", "x")), Err(DropReason::MissingTarget));
            assert!(doc.apply(set("a", "x")).is_ok());
            assert!(doc.apply(set("a", "y")).is_ok());
            assert_eq!(doc.apply(set("a", "w")), Err(DropReason::TooManyAttributes));
            assert!(doc.apply(add("b", Some("a"))).is_ok());
            let cycle = Diff::set("a", "parent", Some(value!("b")));
            assert_eq!(doc.apply(cycle), Err(DropReason::ParentCycle));
        });
        assert_sound(&doc);
    }

    fn assert_sound(doc: &Document) {
        assert!(doc.cached_terms_hold(), "{doc:?}");
        assert_eq!(doc.checksum(), doc.full_checksum());
    }

    #[test]
    fn cached_terms_stay_current_through_applies_unwinds_and_restores() {
        let mut diffs = Diffs(0x9e37_79b9_7f4a_7c15);
        let mut doc = Document::default();
        for round in 0..300 {
            match round % 3 {
                // Applied with the checksum kept.
                0 => {
                    let _ = doc.apply(diffs.next());
                    doc.apply_batch((0..4).map(|_| diffs.next()).collect());
                }
                // Applied and unwound without hashing (a client's pending
                // edits and its rebase): the objects touched are left with
                // unknown terms, and the running checksum stays the one of
                // the state under them, where the unwind returns.
                1 => {
                    let (before, kept) = (doc.clone(), doc.checksum());
                    let (first, second) = doc.unsummed(|doc| {
                        let mut next = || (0..4).map(|_| diffs.next()).collect();
                        (doc.apply_batch(next()), doc.apply_with_inverse(next()).1)
                    });
                    assert_eq!(doc.running_checksum(), kept);
                    assert_eq!(doc.checksum(), doc.full_checksum());
                    doc.undo_to([second, first.inverse]);
                    assert_eq!(doc, before);
                    assert_eq!(doc.checksum(), kept);
                }
                // Restored from a snapshot whose checksum is vouched for:
                // every term unknown.
                _ => {
                    let mut builder =
                        Builder::new(doc.limits().clone(), doc.len(), Some(doc.checksum()));
                    for (id, attrs) in doc.objects() {
                        builder.push(id.clone(), attrs.clone()).unwrap();
                    }
                    doc = builder.finish().unwrap();
                    doc.apply_batch((0..4).map(|_| diffs.next()).collect());
                }
            }
            assert_sound(&doc);
        }
        assert!(doc.len() > 3, "the stream keeps a few objects alive");
    }
}
