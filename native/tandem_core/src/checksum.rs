//! The document checksum: a 64-bit hash that does not depend on the order in
//! which objects or attributes were created, so that a client can compare its
//! confirmed document with the server's after every batch.
//!
//! Algorithm (normative; PROTOCOL.md repeats it for other languages):
//! - every object contributes `xxh64(0x01 ‖ id, seed 0)`;
//! - every attribute contributes `xxh64(0x02 ‖ id ‖ 0x00 ‖ key ‖ 0x00 ‖ canonical_json(value), seed 0)`;
//! - the checksum is the sum of all contributions modulo 2^64.
//!
//! Addition makes the hash order-independent and lets a diff update it in
//! O(1): subtract the old contribution, add the new one. `canonical_json` is
//! compact JSON with object keys sorted by their UTF-8 bytes, strings escaped
//! as serde_json escapes them and numbers as serde_json prints them.

use crate::diff::{Attrs, Diff};
use crate::value::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::Hasher;
use std::io::{self, Write};
use twox_hash::XxHash64;

/// A document checksum. On the wire: 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Checksum(pub u64);

impl Checksum {
    /// Adds a contribution (an object or attribute coming into the document).
    pub fn add(&mut self, term: u64) {
        self.0 = self.0.wrapping_add(term);
    }

    /// Removes a contribution (an object or attribute leaving the document).
    pub fn sub(&mut self, term: u64) {
        self.0 = self.0.wrapping_sub(term);
    }

    /// The 16-lowercase-hex-digit wire form, without a formatter (a
    /// checksum goes out with every acknowledgement and broadcast, and frame
    /// writers put these digits between quotes themselves). Eight digits at
    /// a time, as [`hex_word`] reads them: a loop over the digits spent
    /// about ten instructions a digit.
    pub fn hex(self) -> [u8; 16] {
        let mut digits = [0u8; 16];
        let (high, low) = digits.split_at_mut(8);
        high.copy_from_slice(&hex_digits((self.0 >> 32) as u32));
        low.copy_from_slice(&hex_digits(self.0 as u32));
        digits
    }

    /// Parses the wire form: exactly 16 lowercase hex digits (no sign, no
    /// uppercase, which `u64::from_str_radix` would let through). Every
    /// batch a client reads carries one.
    pub fn parse(text: &str) -> Option<Checksum> {
        Checksum::from_hex(text.as_bytes().try_into().ok()?)
    }

    /// [`Checksum::parse`] of the digits alone, for a reader that has them
    /// in place (a frame's bytes between two quotes).
    pub fn from_hex(digits: &[u8; 16]) -> Option<Checksum> {
        let (high, low) = digits.split_at(8);
        let high = hex_word(high.try_into().expect("8 digits"))?;
        let low = hex_word(low.try_into().expect("8 digits"))?;
        Some(Checksum(high << 32 | low))
    }
}

/// The eight lowercase hex digits of `half`, highest first.
fn hex_digits(half: u32) -> [u8; 8] {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    // Each four bits of `half` spread into a byte of their own, the
    // highest into the highest byte.
    let mut n = u64::from(half);
    n = (n | n << 16) & 0x0000_ffff_0000_ffff;
    n = (n | n << 8) & 0x00ff_00ff_00ff_00ff;
    n = (n | n << 4) & (ONES * 0x0f);
    // Bytes of 10 and more reach 16 with 6 added: they become letters,
    // `'a'` being 39 past `'0' + 10`. No byte carries into the next.
    let letters = ((n + ONES * 6) >> 4) & ONES;
    (n + ONES * u64::from(b'0') + letters * 39).to_be_bytes()
}

/// The value of eight lowercase hex digits, first digit highest, or none if
/// any byte is something else, eight bytes at a time: a loop over the
/// digits spent about twelve instructions a digit, on every batch read.
fn hex_word(digits: [u8; 8]) -> Option<u64> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let word = u64::from_be_bytes(digits);
    // The high bit of each byte that is at least `low`. No byte has its
    // own high bit (checked below), so no sum carries into the next byte.
    let at_least = |low: u8| word.wrapping_add(ONES * u64::from(0x80 - low)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    if word & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // A digit's low four bits are its value, a letter's its value less 9;
    // then each byte's four bits are packed next to their neighbour's.
    let mut n = (word & (ONES * 0x0f)) + (letter >> 7) * 9;
    n = (n | n >> 4) & 0x00ff_00ff_00ff_00ff;
    n = (n | n >> 8) & 0x0000_ffff_0000_ffff;
    n = (n | n >> 16) & 0xffff_ffff;
    Some(n)
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
    }
}

impl Serialize for Checksum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
    }
}

impl<'de> Deserialize<'de> for Checksum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Checksum::parse(&text).ok_or_else(|| serde::de::Error::custom("checksum: 16 hex digits"))
    }
}

/// The contribution of object `id` itself.
pub fn object_term(id: &str) -> u64 {
    let mut h = HashWriter::new();
    h.feed(&[0x01]);
    h.feed(id.as_bytes());
    h.digest()
}

/// The contribution of object `id` together with all its attributes: what
/// the object adds to a document's checksum, or takes away when it leaves.
/// The attributes' terms share one buffer holding `0x02 ‖ id ‖ 0x00`, each
/// rewinding to it (an object entering the document hashes all its
/// attributes; zeroing a buffer and copying the id for each cost a third of
/// a term).
pub fn whole_object_term(id: &str, attrs: &Attrs) -> u64 {
    let mut h = HashWriter::new();
    attr_prefix(&mut h, id);
    let prefix = h.len;
    attrs.iter().fold(object_term(id), |sum, (k, v)| {
        let term = if prefix <= STACK {
            h.rewind(prefix);
            attr_rest(&mut h, k, v);
            h.digest()
        } else {
            attr_term(id, k, v)
        };
        sum.wrapping_add(term)
    })
}

/// What `diff`, as a document recorded it applied, puts into the checksum:
/// an added object's whole term, a set value's attribute term, nothing for
/// a removal or an unset. A batch changes the checksum by this over its
/// applied diffs less this over its inverse (whose re-adds and old values
/// are what the batch took out).
pub fn entering_term(diff: &Diff) -> u64 {
    match diff {
        Diff::Add { id, attrs } => whole_object_term(id, attrs),
        Diff::Set {
            id,
            key,
            value: Some(value),
        } => attr_term(id, key, value),
        Diff::Set { value: None, .. } | Diff::Remove { .. } => 0,
    }
}

/// The contribution of attribute `key` = `value` of object `id`.
pub fn attr_term(id: &str, key: &str, value: &Value) -> u64 {
    let mut h = HashWriter::new();
    attr_prefix(&mut h, id);
    attr_rest(&mut h, key, value);
    h.digest()
}

/// The bytes an attribute's term hashes before its key: `0x02 ‖ id ‖ 0x00`.
#[inline(always)]
fn attr_prefix(h: &mut HashWriter, id: &str) {
    h.feed(&[0x02]);
    h.feed(id.as_bytes());
    h.feed(&[0x00]);
}

/// The rest: `key ‖ 0x00 ‖ canonical_json(value)`.
#[inline(always)]
fn attr_rest(h: &mut HashWriter, key: &str, value: &Value) {
    h.feed(key.as_bytes());
    h.feed(&[0x00]);
    let string = |h: &mut HashWriter, text: &str| {
        h.string(text);
        Ok(())
    };
    // A string value, the most common, is matched here so that its copy
    // stays inlined; through `canonical` it became a call (+1.9 M over the
    // simulator's 20 seeds).
    match value {
        Value::String(text) => h.string(text),
        _ => canonical(h, value, string).expect("hashing never fails"),
    }
}

/// Writes `value` as canonical JSON (see the module doc), which is the text
/// serde_json writes for it (`tandem_client` writes frames' values with
/// it). Inlined, so that
/// hashing the usual scalar costs no call; arrays and objects take
/// `write_nested`.
#[inline(always)]
pub fn write_canonical<W: Write>(out: &mut W, value: &Value) -> io::Result<()> {
    canonical(out, value, write_str::<W>)
}

/// [`write_canonical`] with every string, an object's keys included,
/// written by `string`: the checksum hashes them through its one-pass copy
/// into the hash buffer ([`HashWriter::string`]) instead of a scan and three
/// writes each.
#[inline(always)]
fn canonical<W, S>(out: &mut W, value: &Value, string: S) -> io::Result<()>
where
    W: Write,
    S: Fn(&mut W, &str) -> io::Result<()> + Copy,
{
    match value {
        Value::Array(_) | Value::Object(_) => write_nested(out, value, string),
        Value::String(text) => string(out, text),
        _ => match scalar_text(value, &mut itoa::Buffer::new()) {
            Some(text) => out.write_all(text.as_bytes()),
            None => serde_json::to_writer(out, value).map_err(io::Error::other),
        },
    }
}

/// The canonical JSON of `null`, a boolean or an integer (integers through
/// `itoa`, as serde_json prints them, without its serializer), written into
/// `digits` where needed; `None` for anything else (strings, floats, arrays
/// and objects), which the caller writes its own way. Frame writers share
/// it with the checksum, so a frame's scalars are the checksum's text.
#[inline(always)]
pub fn scalar_text<'a>(value: &Value, digits: &'a mut itoa::Buffer) -> Option<&'a str> {
    match value {
        Value::Null => Some("null"),
        Value::Bool(true) => Some("true"),
        Value::Bool(false) => Some("false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Some(digits.format(u)),
            (None, Some(i)) => Some(digits.format(i)),
            _ => None,
        },
        _ => None,
    }
}

/// [`canonical`] of an array or object.
fn write_nested<W, S>(out: &mut W, value: &Value, string: S) -> io::Result<()>
where
    W: Write,
    S: Fn(&mut W, &str) -> io::Result<()> + Copy,
{
    match value {
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                canonical(out, item, string)?;
            }
            out.write_all(b"]")
        }
        Value::Object(map) => {
            out.write_all(b"{")?;
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                string(out, k)?;
                out.write_all(b":")?;
                canonical(out, v, string)?;
            }
            out.write_all(b"}")
        }
        scalar => canonical(out, scalar, string),
    }
}

/// A JSON string as serde_json writes it; the common string that needs no
/// escaping is written as is. (Also how `tandem_client` writes its frames'
/// strings.)
#[inline]
pub fn write_str<W: Write>(out: &mut W, text: &str) -> io::Result<()> {
    if needs_escape(text.as_bytes()) {
        return serde_json::to_writer(out, text).map_err(io::Error::other);
    }
    out.write_all(b"\"")?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\"")
}

/// Whether a JSON string needs an escape (a control byte, `"` or `\`),
/// eight bytes at a time: most strings hashed are a word or two long.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        if word_needs_escape(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
            return true;
        }
    }
    // The tail, padded with spaces (which need no escape).
    let rest = words.remainder();
    let mut last = [b' '; 8];
    copy_short(&mut last[..rest.len()], rest);
    word_needs_escape(u64::from_le_bytes(last))
}

/// Whether any byte of `word` is below 0x20 or is `"` or `\`.
#[inline(always)]
fn word_needs_escape(word: u64) -> bool {
    escape_flags(word) != 0
}

/// The high bit of each byte of `word` (little-endian) that JSON escapes in
/// a string: below 0x20, `"` or `\`. Each test is the classic "some byte is
/// less than n" bit trick (exact for whether any byte matches, n <= 0x80),
/// an equality being "xor is less than 1". A byte's borrow can flag bytes
/// above it wrongly, never below, so the lowest flag is always right: the
/// client's frame reader finds a string's end with it.
#[inline(always)]
pub fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash
}

/// The longest term input hashed from the stack. Every term the simulator
/// hashes is under 40 bytes; a longer one spills into a streaming hasher.
const STACK: usize = 120;

/// Collects the hashed bytes on the stack and hashes them in one shot (much
/// faster than streaming many tiny pieces); long inputs spill into a
/// streaming hasher. Both give the same xxh64, from `twox-hash`: on terms of
/// 20-40 bytes its one-shot xxh64 takes about 15 % fewer instructions than
/// `xxhash-rust`'s (0.4 % of the fuzzer's), which the tests keep as an
/// independent reference.
struct HashWriter {
    /// `STACK` bytes and a word of slack, which [`HashWriter::string`]
    /// stores whole words into.
    buf: [u8; STACK + 8],
    /// The bytes in `buf`, or more than `STACK` once spilled, so that
    /// [`HashWriter::feed`] tests one number and the spilled path is cold.
    len: usize,
    stream: Option<Box<XxHash64>>,
}

impl HashWriter {
    #[inline(always)]
    fn new() -> Self {
        HashWriter {
            buf: [0; STACK + 8],
            len: 0,
            stream: None,
        }
    }

    #[inline(always)]
    fn feed(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end <= STACK {
            copy_short(&mut self.buf[self.len..end], bytes);
            self.len = end;
        } else {
            self.spill(bytes);
        }
    }

    #[cold]
    #[inline(never)]
    fn spill(&mut self, bytes: &[u8]) {
        let len = self.len;
        let stream = self.stream.get_or_insert_with(|| {
            let mut stream = Box::new(XxHash64::with_seed(0));
            stream.write(&self.buf[..len]);
            stream
        });
        self.len = STACK + 1;
        stream.write(bytes);
    }

    /// [`write_str`] for the common string that needs no escape, checked
    /// and copied in one pass of word loads and stores (the scan and the
    /// three pieces' copies cost about 120 instructions a string).
    #[inline(always)]
    fn string(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let start = self.len;
        if start + bytes.len() + 2 > STACK {
            return write_str(self, text).expect("hashing never fails");
        }
        self.buf[start] = b'"';
        let mut at = start + 1;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let word: [u8; 8] = word.try_into().expect("8 bytes");
            if word_needs_escape(u64::from_le_bytes(word)) {
                return self.escaped(start, text);
            }
            self.buf[at..at + 8].copy_from_slice(&word);
            at += 8;
        }
        // The tail, padded with spaces (which need no escape), then its
        // closing quote; the word goes whole into the slack.
        let rest = words.remainder();
        let mut last = [b' '; 8];
        copy_short(&mut last[..rest.len()], rest);
        if word_needs_escape(u64::from_le_bytes(last)) {
            return self.escaped(start, text);
        }
        last[rest.len()] = b'"';
        self.buf[at..at + 8].copy_from_slice(&last);
        self.len = at + rest.len() + 1;
    }

    /// [`HashWriter::string`] of a string that needs escapes: rewinds to
    /// `start` and writes it as serde_json does.
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize, text: &str) {
        self.len = start;
        write_str(self, text).expect("hashing never fails");
    }

    /// Forgets all but the first `len` bytes (at most `STACK`, so never
    /// spilled ones).
    #[inline(always)]
    fn rewind(&mut self, len: usize) {
        debug_assert!(len <= STACK);
        self.len = len;
        self.stream = None;
    }

    #[inline(always)]
    fn digest(&self) -> u64 {
        match &self.stream {
            Some(stream) => stream.finish(),
            None => XxHash64::oneshot(0, &self.buf[..self.len]),
        }
    }
}

/// Copies `src` into `dst` (of the same length). The pieces of a checksum
/// term (and the z values the sibling index compares) are a few bytes
/// each: two overlapping fixed-size moves copy them without a call to
/// `memcpy`, which costs more than the copy itself.
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    match n {
        0 => {}
        1..=3 => {
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        }
        8..=16 => {
            dst[..8].copy_from_slice(&src[..8]);
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

impl Write for HashWriter {
    #[inline(always)]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    #[inline(always)]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.feed(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{attr_term, object_term, whole_object_term, write_canonical, Checksum};
    use serde_json::json;
    use xxhash_rust::xxh64::xxh64;

    #[test]
    fn strings_are_written_as_serde_json_writes_them_whatever_byte_is_where() {
        // Each ASCII byte and a few multi-byte characters, at every position
        // of strings across the word boundaries the escape scan uses.
        let mut specials: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        specials.extend(["é", "✓", "\u{7f}", "\u{80}", "\u{ffff}", "😀"].map(String::from));
        for len in 1..20 {
            for at in 0..len {
                for special in &specials {
                    let text: String = (0..len)
                        .map(|i| if i == at { special.as_str() } else { "x" })
                        .collect();
                    let value = json!(text);
                    let mut written = Vec::new();
                    write_canonical(&mut written, &value.clone().into()).unwrap();
                    assert_eq!(written, serde_json::to_vec(&value).unwrap(), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn terms_hash_exactly_the_bytes_the_algorithm_names_at_every_length() {
        // Every piece length the short copies distinguish, and inputs long
        // enough to spill out of the stack buffer into the streaming hasher.
        for n in 0..300 {
            let text: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let mut object = vec![0x01];
            object.extend_from_slice(text.as_bytes());
            assert_eq!(object_term(&text), xxh64(&object, 0), "id of {n} bytes");

            let value = json!(text);
            let mut attr = vec![0x02];
            attr.extend_from_slice(format!("id{text}").as_bytes());
            attr.push(0x00);
            attr.extend_from_slice(text.as_bytes());
            attr.push(0x00);
            attr.extend_from_slice(serde_json::to_string(&value).unwrap().as_bytes());
            let term = attr_term(&format!("id{text}"), &text, &value.into());
            assert_eq!(term, xxh64(&attr, 0), "pieces of {n} bytes");
        }
    }

    /// The plain definition of an attribute's term (see the module doc).
    fn plain_attr_term(id: &str, key: &str, value: &serde_json::Value) -> u64 {
        let mut input = vec![0x02];
        input.extend_from_slice(id.as_bytes());
        input.push(0x00);
        input.extend_from_slice(key.as_bytes());
        input.push(0x00);
        input.extend_from_slice(&serde_json::to_vec(value).unwrap());
        xxh64(&input, 0)
    }

    #[test]
    fn string_terms_are_the_plain_definition_with_escapes_anywhere_and_near_the_spill() {
        // Strings across the word boundaries the one-pass copy uses, with a
        // byte to escape (or not) at every position, after ids that put the
        // term just below, at and just above the stack buffer's end.
        let specials = ["x", "\"", "\\", "\n", "\u{0}", "\u{1f}", " ", "é", "😀"];
        for id_len in [0, 1, 7, 8, 9, 60, 100, 101, 102, 103, 104, 105, 110, 118] {
            let id = "i".repeat(id_len);
            for len in 0..20 {
                for at in 0..len.max(1) {
                    for special in specials {
                        let text: String = (0..len)
                            .map(|i| if i == at { special } else { "y" })
                            .collect();
                        let value = json!(text);
                        assert_eq!(
                            attr_term(&id, "k", &value.clone().into()),
                            plain_attr_term(&id, "k", &value),
                            "id of {id_len} bytes, {text:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn whole_object_terms_are_the_plain_definition_whatever_spills() {
        // Attributes short and long (spilling, then rewound from), each value
        // at each position, after ids short and long (the prefix spilling
        // itself).
        let long = "v".repeat(150);
        let values = [
            json!("a"),
            json!(long),
            json!(7),
            json!({"r": 1, "g": 2}),
            json!("é\n"),
            // Keys and strings inside hashed through the buffer's own
            // string copy, escapes included.
            json!({"q\"": ["x\n", {"é": 1, "": "\u{0}"}], "a": null, "b\\": [true, -2]}),
        ];
        for id_len in [0, 3, 50, 117, 118, 119, 120, 130] {
            let id = "i".repeat(id_len);
            for shift in 0..values.len() {
                let mut attrs = crate::diff::Attrs::default();
                let mut plain = object_term(&id);
                for (i, value) in values
                    .iter()
                    .cycle()
                    .skip(shift)
                    .take(values.len())
                    .enumerate()
                {
                    let key = format!("k{i}");
                    plain = plain.wrapping_add(plain_attr_term(&id, &key, value));
                    attrs.insert(key.into(), value.clone().into());
                }
                assert_eq!(
                    whole_object_term(&id, &attrs),
                    plain,
                    "id of {id_len} bytes"
                );
            }
        }
    }

    #[test]
    fn canonical_json_is_compact_serde_json_with_keys_in_byte_order() {
        let value = json!({
            "b": ["plain", "quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7f}", "é✓/"],
            "a": {"z": 1.5, "é": -3, "Z": null, "": true},
            "n": [u64::MAX, i64::MIN, i64::MAX, 0, -1, 0.1, -0.0, 1e300, false],
        });
        let mut written = Vec::new();
        write_canonical(&mut written, &value.clone().into()).unwrap();
        // Without serde_json's preserve_order feature its maps iterate in
        // byte order, so its compact output is the canonical form.
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn the_wire_form_is_sixteen_lowercase_hex_digits_and_parses_back() {
        for n in [0, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef, 1 << 63] {
            let text = Checksum(n).to_string();
            assert_eq!(text, format!("{n:016x}"));
            assert_eq!(
                serde_json::to_string(&Checksum(n)).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(Checksum::parse(&text), Some(Checksum(n)));
        }
        // Every digit at every place, on a background of zeros and of `f`s
        // (both ways go eight digits at a time).
        for place in 0..16 {
            for digit in 0..16u64 {
                for background in [0, u64::MAX] {
                    let n = background & !(0xf << (4 * place)) | digit << (4 * place);
                    let text = format!("{n:016x}");
                    assert_eq!(Checksum(n).to_string(), text);
                    assert_eq!(Checksum::parse(&text), Some(Checksum(n)), "{text}");
                }
            }
        }
    }

    #[test]
    fn only_the_wire_form_parses() {
        let good = "0123456789abcdef";
        assert_eq!(Checksum::parse(good), Some(Checksum(0x0123_4567_89ab_cdef)));
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789ABCDEF",
            "+123456789abcdef",
            "-123456789abcdef",
            "0123456789abcdeg",
            " 123456789abcdef",
            "0123456789abcd\u{e9}",
        ] {
            assert_eq!(Checksum::parse(bad), None, "{bad:?}");
        }
        // Every byte that is not a lowercase hex digit, at every position.
        for at in 0..16 {
            for byte in (0u8..128).filter(|b| !b"0123456789abcdef".contains(b)) {
                let mut text = good.as_bytes().to_vec();
                text[at] = byte;
                let text = String::from_utf8(text).unwrap();
                assert_eq!(Checksum::parse(&text), None, "{text:?}");
            }
        }
    }
}
