//! Reading a snapshot's document straight from MessagePack bytes, and
//! writing it.
//!
//! Written by hand on top of `rmp`'s marker table because this is a room's
//! cold start and serde's generic path (a visitor per value, a dispatch per
//! marker through `deserialize_any`) was most of its cost: reading the
//! objects of a 100,000-object document this way takes about half the time.
//! It accepts exactly what `rmp_serde` into [`Value`] (or `serde_json::Value`)
//! accepts (strings as keys, no binary or extension types, non-finite floats
//! become `null`), bounds nesting at [`MAX_DECODE_DEPTH`], and fails on
//! truncated or trailing bytes instead of panicking.
//!
//! Where a restore's time went, and what this module does about it (measured
//! on the 100,000-object bench, BENCHMARKS.md):
//! - Every object repeats the same few attribute names in the same order.
//!   [`Names`] keeps the previous object's names: a name whose bytes match is
//!   cloned (an inline copy, see [`AttrName`]) without a UTF-8 check, a new
//!   string or an order check, and a sorted object becomes its `Attrs` as is.
//!   Anything else (new names, unsorted or duplicated names) takes the
//!   general path, with the same result as inserting one by one.
//! - Strings are checked as ASCII first (a word at a time) before the general
//!   UTF-8 validation, which goes byte by byte over short strings.
//! - Names and values are checked against the limits as they are read (a
//!   cached name once, when cached), and the reserved attributes are located
//!   on the way, so the builder does not walk the attributes a second time.
//!   An object that fails a check is checked again the general way, so that
//!   the refusal is the one any other build gives.
//! - The scalar path of a value and the string readers are inlined; arrays
//!   and maps (rare in attributes) take a call.
//!
//! The remaining cost is mostly memory: each object still allocates its id,
//! its attribute vector and each string value longer than 24 bytes (shorter
//! ones are inline), and a restored document's ~60 MB are fresh pages the
//! kernel zeroes.

use crate::checksum::Checksum;
use crate::codec::{DecodeError, MAX_DECODE_DEPTH};
use crate::diff::{AttrName, Attrs, ObjectId};
use crate::document::{check_each_attr, Builder, Document, Reserved, SnapshotError};
use crate::limits::Limits;
use crate::value::{Members, Value};
use crate::DropReason;
use rmp::Marker;
use serde_json::Number;

/// Builds a document from a MessagePack map of object ids to attribute maps.
pub(crate) fn read_document(
    bytes: &[u8],
    limits: Limits,
    known: Option<Checksum>,
) -> Result<Document, DecodeError> {
    let mut reader = Reader::new(bytes);
    let count = reader.map_len()?;
    // Every entry takes at least two bytes, so the input bounds the reservation.
    let mut builder = Builder::new(limits, count.min(reader.rest.len() / 2), known);
    let mut names = Names::default();
    for _ in 0..count {
        let id = ObjectId::from(reader.str()?);
        let len = reader.map_len()?;
        let (attrs, reserved) = names.read_attrs(&mut reader, len, builder.limits())?;
        builder.push_checked(id, attrs, reserved).map_err(invalid)?;
    }
    if !reader.rest.is_empty() {
        return Err(error("trailing bytes after the objects"));
    }
    builder.finish().map_err(invalid)
}

/// Appends `doc` as the MessagePack map of its objects, in sibling order:
/// byte for byte what `rmp_serde` writes for it through `Serialize`, without
/// serde's dispatch per value (a room's snapshot writes every object).
pub(crate) fn write_document(doc: &Document, out: &mut Vec<u8>) {
    write_map_len(out, doc.len());
    for (id, attrs) in doc.in_sibling_order() {
        write_str(out, id);
        write_map_len(out, attrs.len());
        for (name, value) in attrs {
            write_str(out, name);
            write_value(out, value);
        }
    }
}

/// A value as `rmp_serde` writes it (and a `serde_json::Value`): integers in their
/// shortest form, floats as 64 bits.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => written(rmp::encode::write_nil(out)),
        Value::Bool(b) => written(rmp::encode::write_bool(out, *b)),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => written(rmp::encode::write_uint(out, u)),
            (None, Some(i), _) => written(rmp::encode::write_sint(out, i)),
            (None, None, f) => written(rmp::encode::write_f64(out, f.unwrap_or(f64::NAN))),
        },
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            write_len(out, items.len(), rmp::encode::write_array_len);
            items.iter().for_each(|item| write_value(out, item));
        }
        Value::Object(map) => {
            write_map_len(out, map.len());
            for (key, item) in map.iter() {
                write_str(out, key);
                write_value(out, item);
            }
        }
    }
}

/// Writing into a `Vec` cannot fail.
fn written<T, E: std::fmt::Debug>(result: Result<T, E>) {
    result.expect("writing to a Vec never fails");
}

/// A string; the usual short one (a fixstr) without a call into `rmp`.
#[inline(always)]
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    if text.len() < 32 {
        out.push(0xa0 | text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    } else {
        written(rmp::encode::write_str(out, text));
    }
}

pub(crate) fn write_map_len(out: &mut Vec<u8>, len: usize) {
    write_len(out, len, rmp::encode::write_map_len);
}

pub(crate) fn write_array_len(out: &mut Vec<u8>, len: usize) {
    write_len(out, len, rmp::encode::write_array_len);
}

/// A checksum as its `Serialize` writes it: its 16 hex digits as a string
/// (what [`Reader::checksum`] reads).
pub(crate) fn write_checksum(out: &mut Vec<u8>, checksum: Checksum) {
    let digits = checksum.hex();
    write_str(
        out,
        std::str::from_utf8(&digits).expect("hex digits are ASCII"),
    );
}

/// An unsigned integer in its shortest form, as `rmp_serde` writes one.
pub(crate) fn write_uint(out: &mut Vec<u8>, n: u64) {
    match u8::try_from(n) {
        Ok(small) if small < 0x80 => out.push(small),
        _ => written(rmp::encode::write_uint(out, n)),
    }
}

/// A collection's length through `rmp`'s writer for it. Lengths come from
/// a document, which the limits keep far below 2^32.
fn write_len<E: std::fmt::Debug>(
    out: &mut Vec<u8>,
    len: usize,
    write: fn(&mut Vec<u8>, u32) -> Result<Marker, E>,
) {
    let len = u32::try_from(len).expect("a collection of fewer than 2^32 entries");
    written(write(out, len));
}

/// The attribute names of the object read last, as long as they were in
/// strictly increasing order and passed the limits. Objects of a document
/// mostly repeat the same names in the same order, so a name is usually the
/// bytes of the one at the same position in the previous object: it is then
/// cloned from here (an inline copy) instead of being checked as UTF-8,
/// against the limits and built again, and it needs no order check either
/// (see [`Names::read_attrs`]).
#[derive(Default)]
struct Names {
    sorted: Vec<AttrName>,
}

impl Names {
    /// Reads an object's `len` attributes, checking their count and each
    /// name and value against `limits` on the way, and says where the reserved ones are
    /// (what `Builder::push_checked` takes). Encoders write attributes
    /// sorted by name; anything else (unsorted, duplicated) is accepted as
    /// before, through `LiteMap::insert`, the last duplicate winning, and
    /// checked afterwards like any object, as is an object with too many
    /// attributes or a name or value that fails the limits (so that the
    /// reason is the one the general check gives).
    fn read_attrs(
        &mut self,
        reader: &mut Reader<'_>,
        len: usize,
        limits: &Limits,
    ) -> Result<(Attrs, Result<Reserved, DropReason>), DecodeError> {
        let names = &mut self.sorted;
        let mut pairs = Vec::with_capacity(len.min(reader.rest.len() / 2));
        let mut reserved = Reserved::default();
        let mut faulty_value = false;
        // Invariant while `usual`: `names[..i]` equals the names read so
        // far, which are strictly increasing and all passed the limits.
        let mut usual = len <= limits.max_attrs_per_object;
        for i in 0..len {
            let raw = reader.str_bytes()?;
            let key = match names.get(i) {
                // Equal to `names[i]`, which is greater than `names[i - 1]`,
                // the name before it: still in order.
                Some(name) if usual && same_bytes(name.as_bytes(), raw) => name.clone(),
                _ => {
                    let key = AttrName::from(utf8(raw)?);
                    if usual
                        && Limits::name_ok(&key, limits.max_key_bytes)
                        && pairs.last().is_none_or(|(last, _)| *last < key)
                    {
                        names.truncate(i);
                        names.push(key.clone());
                    } else {
                        usual = false;
                    }
                    key
                }
            };
            let value = reader.value(1)?;
            faulty_value |= limits.check_value(&value).is_err();
            reserved.note(i, &key);
            pairs.push((key, value));
        }
        if usual && !faulty_value {
            return Ok((Attrs::from_sorted_store_unchecked(pairs), Ok(reserved)));
        }
        let mut attrs = Attrs::with_capacity(pairs.len());
        for (key, value) in pairs {
            if let Some((key, value)) = attrs.try_append(key, value) {
                attrs.insert(key, value);
            }
        }
        let reserved = check_each_attr(limits, &attrs);
        Ok((attrs, reserved))
    }
}

/// A cursor over MessagePack bytes, reading the few types a snapshot holds.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// How many bytes are left: every entry of a collection takes at least
    /// one, so this bounds what an announced length may reserve.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Reads the map key `name` when it comes next as the short string it
    /// is written as, comparing the bytes themselves (no UTF-8 check, no
    /// string built); `None` at anything else.
    pub(crate) fn key(&mut self, name: &str) -> Option<()> {
        let len = name.len();
        match self.rest.split_first() {
            Some((&marker, rest))
                if len < 32 && marker == 0xa0 | len as u8 && rest.starts_with(name.as_bytes()) =>
            {
                self.rest = &rest[len..];
                Some(())
            }
            _ => None,
        }
    }

    /// A checksum as its `Serialize` writes it: 16 hex digits as a short
    /// string, read in place.
    pub(crate) fn checksum(&mut self) -> Option<Checksum> {
        match self.rest.split_first() {
            Some((0xb0, rest)) => {
                let (digits, rest) = rest.split_first_chunk::<16>()?;
                self.rest = rest;
                Checksum::from_hex(digits)
            }
            _ => None,
        }
    }

    /// An unsigned integer in any of its encodings.
    pub(crate) fn uint(&mut self) -> Result<u64, DecodeError> {
        Ok(match self.marker()? {
            Marker::FixPos(n) => u64::from(n),
            Marker::U8 => u64::from(self.be::<1>()?[0]),
            Marker::U16 => u64::from(u16::from_be_bytes(self.be()?)),
            Marker::U32 => u64::from(u32::from_be_bytes(self.be()?)),
            Marker::U64 => u64::from_be_bytes(self.be()?),
            _ => return Err(error("expected an unsigned integer")),
        })
    }

    pub(crate) fn array_len(&mut self) -> Result<usize, DecodeError> {
        match self.marker()? {
            Marker::FixArray(n) => Ok(usize::from(n)),
            Marker::Array16 => self.len(2),
            Marker::Array32 => self.len(4),
            _ => Err(error("expected an array")),
        }
    }

    /// A byte string's bytes.
    pub(crate) fn bin(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = match self.marker()? {
            Marker::Bin8 => self.len(1)?,
            Marker::Bin16 => self.len(2)?,
            Marker::Bin32 => self.len(4)?,
            _ => return Err(error("expected a byte string")),
        };
        self.take(len)
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(error("truncated snapshot"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    #[inline]
    fn marker(&mut self) -> Result<Marker, DecodeError> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    /// The length following a 1-, 2- or 4-byte length marker.
    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        Ok(match width {
            1 => usize::from(self.be::<1>()?[0]),
            2 => usize::from(u16::from_be_bytes(self.be()?)),
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    pub(crate) fn map_len(&mut self) -> Result<usize, DecodeError> {
        match self.marker()? {
            Marker::FixMap(n) => Ok(usize::from(n)),
            Marker::Map16 => self.len(2),
            Marker::Map32 => self.len(4),
            _ => Err(error("expected a map")),
        }
    }

    #[inline(always)]
    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let marker = self.marker()?;
        self.str_after(marker)
    }

    #[inline(always)]
    fn str_after(&mut self, marker: Marker) -> Result<&'a str, DecodeError> {
        utf8(self.str_bytes_after(marker)?)
    }

    /// A string's bytes, not yet checked to be UTF-8.
    #[inline(always)]
    fn str_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let marker = self.marker()?;
        self.str_bytes_after(marker)
    }

    #[inline(always)]
    fn str_bytes_after(&mut self, marker: Marker) -> Result<&'a [u8], DecodeError> {
        let len = match marker {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => self.len(1)?,
            Marker::Str16 => self.len(2)?,
            Marker::Str32 => self.len(4)?,
            _ => return Err(error("expected a string")),
        };
        self.take(len)
    }

    /// A value. Inlined, so that the usual scalar costs no call; arrays and
    /// maps take [`Reader::nested`].
    #[inline(always)]
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let marker = self.marker()?;
        Ok(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::U8 => Value::from(self.be::<1>()?[0]),
            Marker::U16 => Value::from(u16::from_be_bytes(self.be()?)),
            Marker::U32 => Value::from(u32::from_be_bytes(self.be()?)),
            Marker::U64 => Value::from(u64::from_be_bytes(self.be()?)),
            Marker::I8 => Value::from(i8::from_be_bytes(self.be()?)),
            Marker::I16 => Value::from(i16::from_be_bytes(self.be()?)),
            Marker::I32 => Value::from(i32::from_be_bytes(self.be()?)),
            Marker::I64 => Value::from(i64::from_be_bytes(self.be()?)),
            Marker::F32 => float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                Value::String(self.str_after(marker)?.into())
            }
            Marker::FixArray(_)
            | Marker::Array16
            | Marker::Array32
            | Marker::FixMap(_)
            | Marker::Map16
            | Marker::Map32 => self.nested(marker, depth)?,
            _ => return Err(error("binary, extension and reserved types are not values")),
        })
    }

    /// The array or map that `marker` starts, at nesting `depth`. No value,
    /// its items included, lies deeper than [`MAX_DECODE_DEPTH`].
    fn nested(&mut self, marker: Marker, depth: usize) -> Result<Value, DecodeError> {
        let (len, is_map) = match marker {
            Marker::FixArray(n) => (usize::from(n), false),
            Marker::Array16 => (self.len(2)?, false),
            Marker::Array32 => (self.len(4)?, false),
            Marker::FixMap(n) => (usize::from(n), true),
            Marker::Map16 => (self.len(2)?, true),
            _ => (self.len(4)?, true),
        };
        if depth > MAX_DECODE_DEPTH || (depth == MAX_DECODE_DEPTH && len > 0) {
            return Err(error("value nested too deeply"));
        }
        if is_map {
            let mut members = Members::default();
            for _ in 0..len {
                let key = self.str()?.into();
                members.push(key, self.value(depth + 1)?);
            }
            return Ok(Value::Object(members.finish()));
        }
        let mut items = Vec::with_capacity(len.min(self.rest.len()));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }
}

/// Slice equality without a call to `memcmp`, for the few bytes of a name.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[inline(always)]
fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| error("a string is not UTF-8"))
}

/// serde_json has no NaN or infinity; like its own decoder, they become null.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn invalid(e: SnapshotError) -> DecodeError {
    DecodeError(e.to_string())
}

fn error(message: &str) -> DecodeError {
    DecodeError(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use proptest::prelude::*;
    use serde_json::json;

    fn read(bytes: &[u8]) -> Result<Document, DecodeError> {
        read_document(bytes, Limits::default(), None)
    }

    #[test]
    fn reads_every_value_type_as_rmp_serde_writes_it() {
        let attrs = json!({
            "null": null, "yes": true, "no": false, "small": 7, "byte": 200, "short": 60000,
            "int": 4_000_000_000u64, "big": u64::MAX, "neg": -3, "neg8": -100, "neg16": -30000,
            "neg32": -2_000_000_000, "neg64": i64::MIN, "float": 1.5, "text": "ünïcødé",
            "long": "x".repeat(300), "list": [1, "two", [3.25], {"four": [null]}],
            "map": {"a": {"b": {"c": []}}}
        });
        let objects = [("a".into(), serde_json::from_value(attrs).unwrap())];
        let doc = Document::from_objects(objects, Limits::default()).unwrap();
        let back = read(&codec::to_msgpack(&doc)).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.checksum(), doc.full_checksum());
    }

    #[test]
    fn writes_what_rmp_serde_writes_for_every_value_and_length() {
        let mut attrs = json!({
            "null": null, "yes": true, "no": false, "ints": [0, 127, 128, 255, 256, 65535,
            65536, 4_294_967_295u64, 4_294_967_296u64, u64::MAX, -1, -32, -33, -128, -129,
            -32768, -32769, -2_147_483_648i64, -2_147_483_649i64, i64::MIN],
            "floats": [0.5, -0.0, 1e300], "text": "ünïcødé", "s31": "x".repeat(31),
            "s32": "x".repeat(32), "s256": "x".repeat(256), "s65536": "x".repeat(65536),
            "list16": vec![1; 16], "nested": {"a": {"b": [{}, []]}},
            "z": "80"
        });
        let many: serde_json::Map<String, serde_json::Value> =
            (0..16).map(|i| (format!("k{i}"), json!(i))).collect();
        attrs["map16"] = serde_json::Value::Object(many);
        let objects = [
            ("root".into(), serde_json::from_value(attrs).unwrap()),
            (
                "kid".into(),
                serde_json::from_value(json!({"parent": "root", "z": "80"})).unwrap(),
            ),
            ("ünï".into(), Attrs::new()),
        ];
        let limits = Limits {
            max_value_bytes: 1 << 20,
            ..Limits::default()
        };
        let doc = Document::from_objects(objects, limits.clone()).unwrap();
        let mut written = Vec::new();
        write_document(&doc, &mut written);
        assert_eq!(written, codec::to_msgpack(&doc));
        assert_eq!(read_document(&written, limits, None).unwrap(), doc);
    }

    #[test]
    fn nesting_past_the_decode_bound_is_an_error() {
        let mut bytes = Vec::new();
        rmp::encode::write_map_len(&mut bytes, 1).unwrap();
        rmp::encode::write_str(&mut bytes, "a").unwrap();
        rmp::encode::write_map_len(&mut bytes, 1).unwrap();
        rmp::encode::write_str(&mut bytes, "deep").unwrap();
        bytes.extend(std::iter::repeat_n(0x91, 10_000)); // [[[[...
        bytes.push(0xc0);
        assert_eq!(read(&bytes).err().unwrap().0, "value nested too deeply");
    }

    #[test]
    fn no_value_lies_deeper_than_the_decode_bound() {
        // An object whose one attribute is `arrays` arrays around `inner`
        // (an attribute value lies at depth 1).
        let nested = |arrays: usize, inner: &[u8]| {
            let mut bytes = vec![0x81, 0xa1, b'a', 0x81, 0xa1, b'v'];
            bytes.extend(std::iter::repeat_n(0x91, arrays));
            bytes.extend_from_slice(inner);
            let limits = Limits {
                max_value_depth: 2 * MAX_DECODE_DEPTH,
                ..Limits::default()
            };
            read_document(&bytes, limits, None)
                .map(|_| ())
                .map_err(|e| e.0)
        };
        let too_deep = Err("value nested too deeply".to_owned());
        let bound = MAX_DECODE_DEPTH;
        assert_eq!(nested(bound - 1, &[0x01]), Ok(()));
        assert_eq!(nested(bound, &[0x01]), too_deep);
        assert_eq!(nested(bound - 1, &[0x90]), Ok(()));
        assert_eq!(nested(bound - 1, &[0xdc, 0, 0]), Ok(()));
        assert_eq!(nested(bound, &[0x90]), too_deep);
        assert_eq!(nested(bound - 1, &[0x80]), Ok(()));
        assert_eq!(nested(bound - 1, &[0x81, 0xa1, b'k', 0x01]), too_deep);
    }

    #[test]
    fn announced_lengths_larger_than_the_input_are_errors() {
        for bytes in [
            &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
            &[0x81, 0xa1, b'a', 0xdf, 0, 0, 1, 0],
        ] {
            assert_eq!(read(bytes).err().unwrap().0, "truncated snapshot");
        }
    }

    /// Names as written: a few short ones, one too long to be inline, one
    /// not ASCII, two that no limits allow; with their prefix relations they
    /// exercise the name cache.
    const NAMES: [&str; 9] = [
        "a",
        "b",
        "ab",
        "color",
        "é",
        "x",
        "a name of more than 24 bytes",
        "",
        "nul\0",
    ];

    /// Limits that the written objects break in every way they can: long
    /// names, long string values, many attributes.
    fn tight() -> Limits {
        Limits {
            max_key_bytes: 5,
            max_value_bytes: 40,
            max_attrs_per_object: 4,
            ..Limits::default()
        }
    }

    /// The value written for `n`: an integer below 128, else a string of
    /// `n - 128` bytes.
    fn value_of(n: u8) -> Value {
        match n.checked_sub(128) {
            None => Value::from(n),
            Some(len) => Value::from("s".repeat(usize::from(len))),
        }
    }

    /// Objects whose attributes are written in any order, duplicates
    /// included, with small integer or string values.
    fn written_objects() -> impl Strategy<Value = Vec<Vec<(usize, u8)>>> {
        proptest::collection::vec(
            proptest::collection::vec((0..NAMES.len(), any::<u8>()), 0..6),
            0..12,
        )
    }

    fn write(objects: &[Vec<(usize, u8)>]) -> Vec<u8> {
        let mut bytes = Vec::new();
        rmp::encode::write_map_len(&mut bytes, objects.len() as u32).unwrap();
        for (i, attrs) in objects.iter().enumerate() {
            rmp::encode::write_str(&mut bytes, &format!("o{i}")).unwrap();
            rmp::encode::write_map_len(&mut bytes, attrs.len() as u32).unwrap();
            for &(name, value) in attrs {
                rmp::encode::write_str(&mut bytes, NAMES[name]).unwrap();
                match value_of(value) {
                    Value::String(text) => rmp::encode::write_str(&mut bytes, &text).unwrap(),
                    _ => {
                        rmp::encode::write_uint(&mut bytes, u64::from(value)).unwrap();
                    }
                }
            }
        }
        bytes
    }

    #[test]
    fn too_many_attributes_written_in_order_are_refused() {
        // Five valid names in byte order ("a", "ab", "b", "color", "é"),
        // one more than the tight limits allow.
        let objects = [vec![(0, 1), (2, 1), (1, 1), (3, 1), (4, 1)]];
        let error = read_document(&write(&objects), tight(), None)
            .err()
            .unwrap();
        assert_eq!(
            error.0,
            SnapshotError::Limits("o0".into(), DropReason::TooManyAttributes).to_string()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read(&bytes);
        }

        /// Whatever the order of the names, and whether or not names and
        /// values pass the limits, reading gives what inserting the
        /// attributes one by one (the last duplicate wins) and building
        /// gives: the same document, or the same refusal.
        #[test]
        fn attributes_read_as_inserted_in_any_order(
            objects in written_objects(),
            tight_limits in any::<bool>(),
        ) {
            let limits = if tight_limits { tight() } else { Limits::default() };
            let expected = objects.iter().enumerate().map(|(i, attrs)| {
                let mut map = Attrs::new();
                for &(name, value) in attrs {
                    map.insert(NAMES[name].into(), value_of(value));
                }
                (ObjectId::from(format!("o{i}")), map)
            });
            let expected = Document::from_objects(expected, limits.clone());
            let back = read_document(&write(&objects), limits, None);
            let (expected, back) = match (expected, back) {
                (Ok(expected), Ok(back)) => (expected, back),
                (Err(refusal), Err(back)) => {
                    prop_assert_eq!(refusal.to_string(), back.0);
                    return Ok(());
                }
                (expected, back) => {
                    prop_assert!(false, "built {:?}, read {:?}", expected.err(), back.err());
                    unreachable!()
                }
            };
            for (id, attrs) in expected.objects() {
                let read = back.get(id).unwrap();
                prop_assert_eq!(read, attrs);
                prop_assert!(read.iter().zip(read.iter().skip(1)).all(|(a, b)| a.0 < b.0));
            }
            prop_assert_eq!(back.checksum(), expected.full_checksum());
            let mut written = Vec::new();
            write_document(&back, &mut written);
            prop_assert_eq!(written, codec::to_msgpack(&back));
        }
    }
}
