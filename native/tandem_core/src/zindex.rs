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

/// Parses a canonical `z`; `None` when malformed. The hex is read here and
/// the bytes handed to the crate: its own reading (and writing, see
/// [`text`]) made a string of every byte, about a fifth of the cost of an
/// amendment.
pub fn parse(z: &str) -> Option<FractionalIndex> {
    if !is_canonical(z) {
        return None;
    }
    let nibble = |digit: u8| match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit - b'a' + 10,
    };
    let bytes = z.as_bytes().chunks_exact(2);
    let bytes = bytes.map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]));
    FractionalIndex::from_bytes(bytes.collect()).ok()
}

/// The canonical text of `index`: its bytes in lowercase hex.
fn text(index: &FractionalIndex) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = index.as_bytes();
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// A fresh index strictly between `low` and `high` (or after `low` when there
/// is nothing above it). Both must be canonical.
pub fn between(low: &str, high: Option<&str>) -> String {
    let low = parse(low).expect("stored z is canonical");
    match high.and_then(parse) {
        Some(high) => text(
            &FractionalIndex::new_between(&low, &high)
                .expect("sibling z values are distinct and ordered"),
        ),
        None => text(&FractionalIndex::new_after(&low)),
    }
}

/// An index before every other (handy for clients building a first z).
pub fn first() -> String {
    text(&FractionalIndex::default())
}

/// An index right after `z`.
pub fn after(z: &str) -> Option<String> {
    parse(z).map(|i| text(&FractionalIndex::new_after(&i)))
}

/// An index right before `z`.
pub fn before(z: &str) -> Option<String> {
    parse(z).map(|i| text(&FractionalIndex::new_before(&i)))
}

#[cfg(test)]
mod tests {
    use super::{parse, text};
    use fractional_index::FractionalIndex;

    #[test]
    fn indices_read_and_written_here_are_the_crates_own_text() {
        // Indices of many lengths and bytes: runs after, before and
        // between each other.
        let mut indices = vec![FractionalIndex::default()];
        for i in 0..300 {
            let last = &indices[indices.len() - 1];
            let next = match i % 3 {
                0 => FractionalIndex::new_after(last),
                1 => FractionalIndex::new_before(last),
                _ => FractionalIndex::new_between(&indices[i / 2], last)
                    .unwrap_or_else(|| FractionalIndex::new_after(last)),
            };
            indices.push(next);
        }
        for index in &indices {
            let written = index.to_string();
            assert_eq!(text(index), written);
            assert_eq!(parse(&written).as_ref(), Some(index), "{written}");
        }
        for bad in ["", "8", "80 ", "0x80", "AB80", "ab8", "abc80", "ab00"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
