//! Random user operations, drawn from the seeded PRNG against a client's
//! current local view, so that edits collide the way people's do: the same
//! objects, the same z slots, subtrees others are deleting.

use compact_str::CompactString;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use tandem_core::diff::{PARENT, Z};
use tandem_core::document::Children;
use tandem_core::value::Map;
use tandem_core::{zindex, Attrs, Diff, Document, ObjectId, Value};

/// One thing a simulated user does.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    Edit(Vec<Diff>),
    Undo,
    Redo,
}

const KEYS: [&str; 5] = ["name", "color", "x", "y", "w"];

/// Draws the next operation of user `who` (its `serial`-th) against `view`.
pub fn next_operation(rng: &mut ChaCha8Rng, view: &Document, who: usize, serial: u64) -> Operation {
    // The k-th smallest id for a random k: a HashMap's order is not part of
    // the seed, and selecting is cheaper than sorting every time. Ids are
    // compared by their first eight bytes as a number first, which orders
    // them as strings do, and most often settles it. They are gathered only
    // for an operation that picks one (not an undo, a redo or most adds).
    let (mut ids, mut keys) = (Vec::with_capacity(view.len()), Vec::new());
    let none = view.is_empty();
    let mut pick = |rng: &mut ChaCha8Rng| {
        if ids.is_empty() {
            // Each id's text read once (an inline id is decoded to read it).
            let all = view
                .objects()
                .map(|(id, _)| id.as_str())
                .map(|id| (leading(id), id));
            ids.extend(all);
        }
        let k = rng.random_range(0..ids.len());
        ObjectId::from(kth_smallest(&ids, &mut keys, k))
    };
    let roll = rng.random_range(0..100);
    if none || roll < 25 {
        let parent = (!none && rng.random_bool(0.4)).then(|| pick(rng));
        let id = object_id('o', who, serial);
        return Operation::Edit(vec![add(rng, view, parent, id)]);
    }
    match roll {
        25..=34 => Operation::Edit(vec![Diff::Remove { id: pick(rng) }]),
        35..=59 => {
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let value = (!rng.random_bool(0.05)).then(|| random_value(rng));
            Operation::Edit(vec![Diff::set(pick(rng), key, value)])
        }
        60..=69 => {
            let parent = (!rng.random_bool(0.2)).then(|| Value::from(pick(rng)));
            Operation::Edit(vec![Diff::set(pick(rng), PARENT, parent)])
        }
        70..=81 => {
            let id = pick(rng);
            Operation::Edit(vec![Diff::set(
                id.clone(),
                Z,
                Some(Value::from(z_near_sibling(rng, view, &id))),
            )])
        }
        82..=86 => {
            // A group: a new parent and a child in one batch.
            let parent = object_id('g', who, serial);
            let id = object_id('c', who, serial);
            let child = add(rng, view, Some(parent.clone()), id);
            Operation::Edit(vec![add(rng, view, None, parent), child])
        }
        87..=94 => Operation::Undo,
        _ => Operation::Redo,
    }
}

/// The `k`-th smallest of `ids` (each keyed by [`leading`]), selected among
/// the keys alone: eight-byte keys move and compare several times cheaper
/// than the pairs (a third of the cost of an operation that picks an
/// object went to selecting among pairs). The ids sharing the selected key,
/// usually that one alone, are then ordered by their text.
fn kth_smallest<'a>(ids: &[(u64, &'a str)], keys: &mut Vec<u64>, k: usize) -> &'a str {
    keys.clear();
    keys.reserve(ids.len());
    keys.extend(ids.iter().map(|(key, _)| key));
    let key = *keys.select_nth_unstable(k).1;
    let (mut below, mut tied, mut last_tied) = (0, 0, "");
    for &(other, id) in ids {
        below += usize::from(other < key);
        if other == key {
            tied += 1;
            last_tied = id;
        }
    }
    if tied == 1 {
        return last_tied;
    }
    let mut tied: Vec<&str> = ids
        .iter()
        .filter(|(other, _)| *other == key)
        .map(|(_, id)| *id)
        .collect();
    tied.sort_unstable();
    tied[k - below]
}

/// The first eight bytes of `id`, zero-padded, big-endian: a number whose
/// order is that of the ids' (a shorter id that the other starts with has
/// zeros where the other has bytes). A shorter id is read as two
/// overlapping words, each byte landing where the padded copy would put it
/// (the copy of a length known only here was a call to `memcpy` per id).
fn leading(id: &str) -> u64 {
    let bytes = id.as_bytes();
    let len = bytes.len();
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    match len {
        8.. => u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes")),
        4..=7 => u64::from(word(0)) << 32 | u64::from(word(len - 4)) << (8 * (8 - len)),
        _ => bytes
            .iter()
            .enumerate()
            .fold(0, |key, (i, &b)| key | u64::from(b) << (8 * (7 - i))),
    }
}

/// `{kind}{who}-{serial}`, written without the formatting machinery, which
/// took 1.7 % of the fuzzer's instructions for the workload's few strings.
fn object_id(kind: char, who: usize, serial: u64) -> ObjectId {
    let mut id = CompactString::default();
    id.push(kind);
    id.push_str(itoa::Buffer::new().format(who));
    id.push('-');
    id.push_str(itoa::Buffer::new().format(serial));
    id
}

/// `#` and six lowercase hex digits, zero-padded, of `rgb` (below 2^24).
fn colour_hex(rgb: i32) -> CompactString {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = CompactString::const_new("#");
    for shift in (0..6).rev() {
        let digit = (rgb >> (4 * shift)) & 0xf;
        text.push(char::from(DIGITS[digit as usize]));
    }
    text
}

fn add(rng: &mut ChaCha8Rng, view: &Document, parent: Option<ObjectId>, id: ObjectId) -> Diff {
    let mut attrs = Attrs::new();
    let mut name = CompactString::const_new("layer ");
    name.push_str(&id);
    attrs.insert("name".into(), name.into());
    attrs.insert("color".into(), random_value(rng));
    let siblings = view.children(parent.as_deref());
    let z = match siblings.clone().last() {
        // Often the very z of an existing sibling, to force amendments.
        Some(last) if rng.random_bool(0.5) => {
            sibling_z(view, random_sibling(rng, siblings)).or_else(|| sibling_z(view, last))
        }
        Some(last) => sibling_z(view, last).and_then(|z| zindex::after(&z)),
        None => Some(zindex::first()),
    };
    if let Some(z) = z {
        attrs.insert(Z.into(), z.into());
    }
    if let Some(p) = parent {
        attrs.insert(PARENT.into(), p.into());
    }
    Diff::Add { id, attrs }
}

fn sibling_z(view: &Document, id: &str) -> Option<String> {
    view.get(id)?.get(Z)?.as_str().map(str::to_owned)
}

/// A z that collides with a sibling's, or lands just before or after one.
fn z_near_sibling(rng: &mut ChaCha8Rng, view: &Document, id: &str) -> String {
    let parent = view
        .get(id)
        .and_then(|a| a.get(PARENT))
        .and_then(Value::as_str);
    let other = random_sibling(rng, view.children(parent));
    let base = sibling_z(view, other).unwrap_or_else(zindex::first);
    match rng.random_range(0..3) {
        0 => base,
        1 => zindex::after(&base).unwrap_or(base),
        _ => zindex::before(&base).unwrap_or(base),
    }
}

/// One of a non-empty sibling group, uniformly.
fn random_sibling<'a>(rng: &mut ChaCha8Rng, mut siblings: Children<'a>) -> &'a str {
    let k = rng.random_range(0..siblings.len());
    siblings.nth(k).expect("k is below the group's length")
}

/// A number, a colour's hex string or a colour's components. The ranges
/// are `i32`, the type the draws had when they were written through
/// `json!` (another type would draw other numbers from the same seed).
fn random_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..3) {
        0 => rng.random_range(0..1000i32).into(),
        1 => colour_hex(rng.random_range(0..0xffffffi32)).into(),
        _ => {
            let r = rng.random_range(0..256i32);
            let g = rng.random_range(0..256i32);
            Value::Object(Map::from_iter([
                ("g".into(), g.into()),
                ("r".into(), r.into()),
            ]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{colour_hex, kth_smallest, leading, object_id};

    #[test]
    fn the_kth_smallest_id_is_the_kth_in_string_order() {
        // Ids sharing their first eight bytes, and ones that do not, in an
        // order of their own.
        let names = [
            "o1000-12",
            "o1000-123",
            "o1000-124",
            "o1-5",
            "g2-7",
            "o1000-1",
            "o1000-125",
            "c3-3",
        ];
        let ids: Vec<(u64, &str)> = names.iter().map(|id| (leading(id), *id)).collect();
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        let mut keys = Vec::new();
        for (k, expected) in sorted.iter().enumerate() {
            assert_eq!(kth_smallest(&ids, &mut keys, k), *expected, "k = {k}");
        }
    }

    #[test]
    fn ids_keyed_by_their_leading_bytes_keep_their_order() {
        let ids = [
            "",
            "a",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgi",
            "o0-45",
            "o1000-12",
            "o1000-123",
            "o1000-13",
            "é",
            "z",
        ];
        for a in ids {
            for b in ids {
                assert_eq!((leading(a), a).cmp(&(leading(b), b)), a.cmp(b), "{a} {b}");
            }
        }
    }

    #[test]
    fn an_ids_key_is_its_first_eight_bytes_zero_padded() {
        for text in ["abcdefghij", "o1-2345ab", "\u{ff}\u{1}é-\u{7f}x"] {
            for len in (0..=text.len()).filter(|&len| text.is_char_boundary(len)) {
                let id = &text[..len];
                let mut padded = [0; 8];
                let n = len.min(8);
                padded[..n].copy_from_slice(&id.as_bytes()[..n]);
                assert_eq!(leading(id), u64::from_be_bytes(padded), "{id:?}");
            }
        }
    }

    #[test]
    fn ids_and_colours_are_written_as_the_format_strings_write_them() {
        for (who, serial) in [(0, 1), (3, 45), (1_002, 999_999), (usize::MAX, u64::MAX)] {
            for kind in ['o', 'g', 'c'] {
                assert_eq!(
                    object_id(kind, who, serial),
                    format!("{kind}{who}-{serial}")
                );
            }
        }
        for rgb in [0, 1, 0xabc, 0x0f_0f0f, 0xff_fffe] {
            assert_eq!(colour_hex(rgb), format!("#{rgb:06x}"));
        }
    }
}
