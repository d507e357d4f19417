//! Shared by the property tests: a tiny seeded generator and random edits that
//! collide the way people's do (same objects, same z slots, cycles, subtrees
//! being deleted), built from a document's current state.

#![allow(dead_code)]

use tandem_core::diff::{PARENT, Z};
use tandem_core::{value, Value};
use tandem_core::{zindex, Attrs, Diff, Document, ObjectId};

/// SplitMix64: small, seedable, identical everywhere, enough for test data.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn ids(doc: &Document) -> Vec<ObjectId> {
    let mut ids: Vec<ObjectId> = doc.objects().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids
}

fn z_of(doc: &Document, id: &str) -> Option<String> {
    doc.get(id)?.get(Z)?.as_str().map(str::to_owned)
}

fn value(g: &mut Gen) -> Value {
    match g.below(4) {
        0 => value!(g.below(1000)),
        1 => value!(format!("#{:06x}", g.below(0xffffff))),
        2 => value!({"r": g.below(256), "list": [1, "two", null]}),
        _ => value!(g.chance(50)),
    }
}

/// A z near the z of a random child of `parent`: equal (a collision), just
/// after or just before; or the first index when there are no children.
fn z_near(g: &mut Gen, doc: &Document, parent: Option<&str>) -> String {
    let kids: Vec<&str> = doc.children(parent).collect();
    let base = if kids.is_empty() {
        None
    } else {
        z_of(doc, kids[g.below(kids.len())])
    };
    let base = base.unwrap_or_else(zindex::first);
    match g.below(3) {
        0 => base,
        1 => zindex::after(&base).unwrap_or(base),
        _ => zindex::before(&base).unwrap_or(base),
    }
}

/// One random diff against `doc`; `fresh` names a new object.
pub fn diff(g: &mut Gen, doc: &Document, fresh: String) -> Diff {
    let ids = ids(doc);
    if ids.is_empty() || g.chance(25) {
        let parent = (!ids.is_empty() && g.chance(40)).then(|| g.pick(&ids).clone());
        let mut attrs = Attrs::new();
        attrs.insert("name".into(), value!(fresh.clone()));
        attrs.insert("color".into(), value(g));
        if g.chance(85) {
            attrs.insert(Z.into(), value!(z_near(g, doc, parent.as_deref())));
        }
        if let Some(p) = parent {
            attrs.insert(PARENT.into(), value!(p));
        }
        return Diff::Add {
            id: fresh.into(),
            attrs,
        };
    }
    let id = g.pick(&ids).clone();
    match g.below(10) {
        0 | 1 => Diff::Remove { id },
        2 => Diff::set(
            id,
            PARENT,
            (!g.chance(20)).then(|| value!(g.pick(&ids).clone())),
        ),
        3 | 4 => {
            let parent = doc
                .get(&id)
                .and_then(|a| a.get(PARENT))
                .and_then(Value::as_str);
            let z = z_near(g, doc, parent);
            Diff::set(id, Z, (!g.chance(5)).then(|| value!(z)))
        }
        5 => Diff::Remove {
            id: format!("ghost-{}", g.below(3)).into(),
        },
        _ => {
            let key = *g.pick(&["name", "color", "x", "y"]);
            Diff::set(id, key, (!g.chance(10)).then(|| value(g)))
        }
    }
}

/// A batch of 1..=max random diffs, each drawn against the document as the
/// previous ones would leave it (applied to a scratch copy).
pub fn batch(g: &mut Gen, doc: &Document, prefix: &str, serial: &mut u64, max: usize) -> Vec<Diff> {
    let mut scratch = doc.clone();
    let mut out = Vec::new();
    for _ in 0..1 + g.below(max) {
        *serial += 1;
        let d = diff(g, &scratch, format!("{prefix}{serial}"));
        let _ = scratch.apply(d.clone());
        out.push(d);
    }
    out
}

/// Non-empty z values are unique among every group of siblings.
pub fn sibling_z_unique(doc: &Document) -> bool {
    let mut parents: Vec<Option<&str>> = vec![None];
    parents.extend(doc.objects().map(|(id, _)| Some(id.as_str())));
    parents.into_iter().all(|p| {
        let mut zs: Vec<String> = doc.children(p).filter_map(|k| z_of(doc, k)).collect();
        let n = zs.len();
        zs.sort();
        zs.dedup();
        zs.len() == n
    })
}
