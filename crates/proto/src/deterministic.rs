//! TensorFlow's deterministic serialization, byte for byte.
//!
//! TensorFlow hashes and compares protos in the form C++ writes with
//! `SetSerializationDeterministic(true)`: known fields in field-number order,
//! map entries sorted by key (integers numerically, strings bytewise), and the
//! key and value of every map entry written even when they hold default
//! values (docs/formats.md, section 12 "Deterministic protobuf
//! serialization"). prost gets close but not all the way: it
//! skips default map keys and values, and places a `oneof` by its smallest
//! field number even when other fields interleave with it. Files written by
//! TensorFlow's Python (upb) are not canonical either: upb orders some map
//! entries differently.
//!
//! [`canonicalize`] rewrites any encoding of a message into the canonical one
//! by walking the wire format with the message's descriptor, so that
//! `Fingerprint64(canonicalize(saved_model.pb))` is TensorFlow's
//! `saved_model_checksum`, and [`encode`] is prost's encoding canonicalized.
//! Unknown fields are kept, after the known ones, in their original order.
//!
//! ```
//! use savedmodel_proto::deterministic;
//! use savedmodel_proto::tensorflow::{AttrValue, NodeDef};
//!
//! let mut node = NodeDef { name: "x".into(), op: "Placeholder".into(), ..Default::default() };
//! node.attr.insert("empty".into(), AttrValue::default());
//! let bytes = deterministic::encode(&node)?;
//! // The map entry carries its (empty) value: `12 00` at the end.
//! assert!(bytes.ends_with(&[0x2a, 0x09, 0x0a, 0x05, b'e', b'm', b'p', b't', b'y', 0x12, 0x00]));
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use prost_reflect::{Kind, MessageDescriptor};

use crate::{Error, message_descriptor};

/// Nesting deeper than this is refused, as protobuf's own parsers do
/// (prost's `RECURSION_LIMIT` is 100).
const RECURSION_LIMIT: usize = 100;

/// Encodes `message` exactly as TensorFlow's C++ deterministic serialization
/// would.
pub fn encode<M: prost::Message + prost::Name>(message: &M) -> Result<Vec<u8>, Error> {
    canonicalize(&message_descriptor::<M>()?, &message.encode_to_vec())
}

/// Rewrites `bytes`, an encoding of a message of type `descriptor`, into the
/// canonical (deterministic) encoding.
pub fn canonicalize(descriptor: &MessageDescriptor, bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(bytes.len());
    canonical_message(descriptor, bytes, 0, &mut out)?;
    Ok(out)
}

/// One field occurrence in the input: its number, its wire type and its raw
/// payload (for LEN fields, the bytes after the length prefix).
struct RawField<'a> {
    number: u32,
    wire_type: u8,
    payload: &'a [u8],
}

fn wire_error(descriptor: &MessageDescriptor, offset: usize, what: &'static str) -> Error {
    Error::Wire {
        message: descriptor.full_name().to_owned(),
        offset,
        what,
    }
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn write_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn split_fields<'a>(
    descriptor: &MessageDescriptor,
    bytes: &'a [u8],
) -> Result<Vec<RawField<'a>>, Error> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        let key = read_varint(bytes, &mut pos)
            .ok_or_else(|| wire_error(descriptor, start, "bad field key"))?;
        let number = u32::try_from(key >> 3)
            .map_err(|_| wire_error(descriptor, start, "field number too large"))?;
        let wire_type = (key & 7) as u8;
        if number == 0 {
            return Err(wire_error(descriptor, start, "field number 0"));
        }
        let payload_start = pos;
        let payload = match wire_type {
            0 => {
                read_varint(bytes, &mut pos)
                    .ok_or_else(|| wire_error(descriptor, start, "truncated varint"))?;
                &bytes[payload_start..pos]
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                let end = pos.checked_add(width).filter(|&e| e <= bytes.len());
                let end = end
                    .ok_or_else(|| wire_error(descriptor, start, "truncated fixed-width field"))?;
                pos = end;
                &bytes[payload_start..end]
            }
            2 => {
                let len = read_varint(bytes, &mut pos)
                    .ok_or_else(|| wire_error(descriptor, start, "truncated length"))?;
                let len = usize::try_from(len)
                    .map_err(|_| wire_error(descriptor, start, "length too large"))?;
                let end = pos.checked_add(len).filter(|&e| e <= bytes.len());
                let end =
                    end.ok_or_else(|| wire_error(descriptor, start, "length runs past the end"))?;
                let payload = &bytes[pos..end];
                pos = end;
                payload
            }
            _ => {
                return Err(wire_error(
                    descriptor,
                    start,
                    "unsupported wire type (groups are not used by TensorFlow)",
                ));
            }
        };
        fields.push(RawField {
            number,
            wire_type,
            payload,
        });
    }
    Ok(fields)
}

fn write_field(number: u32, wire_type: u8, payload: &[u8], out: &mut Vec<u8>) {
    write_varint((u64::from(number) << 3) | u64::from(wire_type), out);
    if wire_type == 2 {
        write_varint(payload.len() as u64, out);
    }
    out.extend_from_slice(payload);
}

fn canonical_message(
    descriptor: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    if depth > RECURSION_LIMIT {
        return Err(wire_error(descriptor, 0, "recursion limit exceeded"));
    }
    let fields = split_fields(descriptor, bytes)?;
    let (mut known, unknown): (Vec<_>, Vec<_>) = fields
        .into_iter()
        .partition(|f| descriptor.get_field(f.number).is_some());
    // Stable: repeated fields keep their element order.
    known.sort_by_key(|f| f.number);

    let mut i = 0;
    while i < known.len() {
        let number = known[i].number;
        let mut j = i;
        while j < known.len() && known[j].number == number {
            j += 1;
        }
        let Some(field) = descriptor.get_field(number) else {
            i = j;
            continue;
        };
        match field.kind() {
            Kind::Message(entry) if field.is_map() => {
                let mut entries = Vec::with_capacity(j - i);
                for raw in &known[i..j] {
                    entries.push(canonical_map_entry(&entry, raw.payload, depth + 1)?);
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (_, encoded) in entries {
                    write_field(number, 2, &encoded, out);
                }
            }
            Kind::Message(inner) => {
                for raw in &known[i..j] {
                    if raw.wire_type != 2 {
                        return Err(wire_error(
                            descriptor,
                            0,
                            "message field with a non-length wire type",
                        ));
                    }
                    let mut encoded = Vec::with_capacity(raw.payload.len());
                    canonical_message(&inner, raw.payload, depth + 1, &mut encoded)?;
                    write_field(number, 2, &encoded, out);
                }
            }
            _ => {
                for raw in &known[i..j] {
                    write_field(number, raw.wire_type, raw.payload, out);
                }
            }
        }
        i = j;
    }
    for raw in unknown {
        write_field(raw.number, raw.wire_type, raw.payload, out);
    }
    Ok(())
}

/// Sort key of a map entry: integers compare numerically, strings bytewise.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Signed(i64),
    Unsigned(u64),
    Bytes(Vec<u8>),
}

/// Canonicalizes one map entry: key (1) then value (2), both always present.
fn canonical_map_entry(
    entry: &MessageDescriptor,
    bytes: &[u8],
    depth: usize,
) -> Result<(SortKey, Vec<u8>), Error> {
    // A map entry is a message level of its own, for prost and protobuf
    // alike: without this check an entry one level below the limit would be
    // accepted here and refused by prost.
    if depth > RECURSION_LIMIT {
        return Err(wire_error(entry, 0, "recursion limit exceeded"));
    }
    let key_field = entry.map_entry_key_field();
    let value_field = entry.map_entry_value_field();
    let mut key_raw: Option<(u8, &[u8])> = None;
    let mut value_raw: Option<(u8, &[u8])> = None;
    for raw in split_fields(entry, bytes)? {
        // The last occurrence wins, as when parsing.
        match raw.number {
            1 => key_raw = Some((raw.wire_type, raw.payload)),
            2 => value_raw = Some((raw.wire_type, raw.payload)),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(bytes.len() + 4);
    let key_kind = key_field.kind();
    let (key_wire, key_payload) =
        key_raw.unwrap_or((wire_type_of(&key_kind), default_payload(&key_kind)));
    write_field(1, key_wire, key_payload, &mut out);
    let sort_key = sort_key_of(&key_kind, key_wire, key_payload);

    let value_kind = value_field.kind();
    match (&value_kind, value_raw) {
        (Kind::Message(inner), raw) => {
            let mut encoded = Vec::new();
            if let Some((_, payload)) = raw {
                canonical_message(inner, payload, depth + 1, &mut encoded)?;
            }
            write_field(2, 2, &encoded, &mut out);
        }
        (kind, Some((wire, payload))) => {
            let _ = kind;
            write_field(2, wire, payload, &mut out);
        }
        (kind, None) => write_field(2, wire_type_of(kind), default_payload(kind), &mut out),
    }
    Ok((sort_key, out))
}

fn wire_type_of(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        Kind::String | Kind::Bytes | Kind::Message(_) => 2,
        _ => 0,
    }
}

fn default_payload(kind: &Kind) -> &'static [u8] {
    match wire_type_of(kind) {
        1 => &[0; 8],
        5 => &[0; 4],
        2 => &[],
        _ => &[0],
    }
}

fn sort_key_of(kind: &Kind, wire_type: u8, payload: &[u8]) -> SortKey {
    let varint = || {
        let mut pos = 0;
        read_varint(payload, &mut pos).unwrap_or(0)
    };
    let fixed = || {
        payload
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    match (kind, wire_type) {
        (Kind::String | Kind::Bytes, _) => SortKey::Bytes(payload.to_vec()),
        (Kind::Int32 | Kind::Int64, _) => SortKey::Signed(varint() as i64),
        (Kind::Sint32 | Kind::Sint64, _) => {
            let v = varint();
            SortKey::Signed(((v >> 1) as i64) ^ -((v & 1) as i64))
        }
        (Kind::Sfixed32, _) => SortKey::Signed(i64::from(fixed() as u32 as i32)),
        (Kind::Sfixed64, _) => SortKey::Signed(fixed() as i64),
        (Kind::Fixed32 | Kind::Fixed64, _) => SortKey::Unsigned(fixed()),
        _ => SortKey::Unsigned(varint()),
    }
}
