//! Fractional `z` indices (the `fractional_index` crate): validation and the
//! deterministic amendment of a colliding index.
//!
//! On the wire a `z` is the crate's lowercase hex form, which sorts as a
//! plain string in the same order as the indices themselves. Only that
//! canonical form is accepted, so two spellings of one index cannot exist.

use fractional_index::FractionalIndex;

/// Whether `z` is a canonical index: lowercase hex pairs ending in the
/// terminator byte `80`. Checked without allocating: it runs for every `z`
/// of every snapshot loaded.
pub fn is_canonical(z: &str) -> bool {
    let bytes = z.as_bytes();
    bytes.len() >= 2
        && bytes.len() % 2 == 0
        && bytes.ends_with(b"80")
        && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses a canonical `z`; `None` when malformed.
pub fn parse(z: &str) -> Option<FractionalIndex> {
    if !is_canonical(z) {
        return None;
    }
    FractionalIndex::from_string(z).ok()
}

/// A fresh index strictly between `low` and `high` (or after `low` when there
/// is nothing above it). Both must be canonical.
pub fn between(low: &str, high: Option<&str>) -> String {
    let low = parse(low).expect("stored z is canonical");
    match high.and_then(parse) {
        Some(high) => FractionalIndex::new_between(&low, &high)
            .expect("sibling z values are distinct and ordered")
            .to_string(),
        None => FractionalIndex::new_after(&low).to_string(),
    }
}

/// An index before every other (handy for clients building a first z).
pub fn first() -> String {
    FractionalIndex::default().to_string()
}

/// An index right after `z`.
pub fn after(z: &str) -> Option<String> {
    parse(z).map(|i| FractionalIndex::new_after(&i).to_string())
}

/// An index right before `z`.
pub fn before(z: &str) -> Option<String> {
    parse(z).map(|i| FractionalIndex::new_before(&i).to_string())
}
