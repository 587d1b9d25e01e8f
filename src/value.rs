//! The dynamic value tree, for reading a stash without the Rust types that wrote it.
//!
//! [`Value`] is CBOR's data model: null, booleans, integers (of up to 64 bits and a sign, and
//! bignums beyond), floats, text, bytes, arrays, maps with any keys, and tags (a set is tag
//! 258, a DataFrame [`DATAFRAME_TAG`]). It can hold everything the key encoding and the
//! self-describing serializers write. It is this crate's own type: no CBOR or MessagePack
//! crate's release is part of the API.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::value::{to_json, Value};
//! use std::collections::HashSet;
//!
//! let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
//! stash.set(&HashSet::from(["a"]), &(1, "one"))?;
//! // Read back without the Rust types that wrote it: a set key is CBOR tag 258.
//! let (key, value): (Value, Value) = stash.items_dyn()?.next().ok_or("empty")??;
//! assert!(matches!(key, Value::Tag(258, _)));
//! assert_eq!(to_json(&key).to_string(), r#"["a"]"#);
//! assert_eq!(to_json(&value).to_string(), r#"[1,"one"]"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ciborium::Value as Cbor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The tag of a DataFrame in a dynamic value: its Arrow IPC bytes (feature `dataframe`).
pub const DATAFRAME_TAG: u64 = crate::codec::msgpack::DATAFRAME_TAG;

/// A dynamic value: what a stash holds, read without the Rust types that wrote it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Nothing (`None`, `()`, JSON's `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer. CBOR integers span `-2^64 ..= 2^64 - 1`; larger ones are written as
    /// bignums (tags 2 and 3) and read back as integers while they fit an `i128`. In a
    /// value, MessagePack (the default serializer) has no integers past 64 bits: it keeps
    /// 16 bytes, which a typed read turns back into `i128`/`u128` and a dynamic read shows
    /// as [`Value::Bytes`].
    Integer(i128),
    /// A floating-point number.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A sequence.
    Array(Vec<Value>),
    /// A map, in stored order, with keys of any kind.
    Map(Vec<(Value, Value)>),
    /// A tagged value: a set (tag 258), a DataFrame ([`DATAFRAME_TAG`]), a bignum (2, 3).
    Tag(u64, Box<Value>),
}

impl Value {
    /// The text, if this is text.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<i128> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The tree the codecs work on.
    pub(crate) fn to_cbor(&self) -> Cbor {
        match self {
            Value::Null => Cbor::Null,
            Value::Bool(b) => Cbor::Bool(*b),
            Value::Integer(i) => match ciborium::value::Integer::try_from(*i) {
                Ok(i) => Cbor::Integer(i),
                // Past CBOR's integers: a bignum, as CBOR writes one (tag 3 holds -1 - n).
                Err(_) => {
                    let (tag, magnitude) = if *i < 0 { (3, -1 - *i) } else { (2, *i) };
                    let bytes = (magnitude as u128).to_be_bytes();
                    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
                    Cbor::Tag(tag, Box::new(Cbor::Bytes(bytes[first..].to_vec())))
                }
            },
            Value::Float(f) => Cbor::Float(*f),
            Value::Text(t) => Cbor::Text(t.clone()),
            Value::Bytes(b) => Cbor::Bytes(b.clone()),
            Value::Array(items) => Cbor::Array(items.iter().map(Value::to_cbor).collect()),
            Value::Map(entries) => Cbor::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_cbor(), v.to_cbor()))
                    .collect(),
            ),
            Value::Tag(tag, inner) => Cbor::Tag(*tag, Box::new(inner.to_cbor())),
        }
    }

    /// [`Value::to_cbor`] without copying: the tree is moved into the codecs' form.
    pub(crate) fn into_cbor(self) -> Cbor {
        match self {
            Value::Text(t) => Cbor::Text(t),
            Value::Bytes(b) => Cbor::Bytes(b),
            Value::Array(items) => Cbor::Array(items.into_iter().map(Value::into_cbor).collect()),
            Value::Map(entries) => Cbor::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.into_cbor(), v.into_cbor()))
                    .collect(),
            ),
            Value::Tag(tag, inner) if !matches!(tag, 2 | 3) => {
                Cbor::Tag(tag, Box::new(inner.into_cbor()))
            }
            // Scalars (and bignum tags, whose bytes the general path checks) are cheap to copy.
            other => other.to_cbor(),
        }
    }

    /// The public form of a tree the codecs made.
    pub(crate) fn from_cbor(tree: Cbor) -> Value {
        match tree {
            Cbor::Null => Value::Null,
            Cbor::Bool(b) => Value::Bool(b),
            Cbor::Integer(i) => Value::Integer(i128::from(i)),
            Cbor::Float(f) => Value::Float(f),
            Cbor::Text(t) => Value::Text(t),
            Cbor::Bytes(b) => Value::Bytes(b),
            Cbor::Array(items) => Value::Array(items.into_iter().map(Value::from_cbor).collect()),
            Cbor::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Value::from_cbor(k), Value::from_cbor(v)))
                    .collect(),
            ),
            Cbor::Tag(tag, inner) => match bignum_in_i128(tag, &inner) {
                Some(i) => Value::Integer(i),
                None => Value::Tag(tag, Box::new(Value::from_cbor(*inner))),
            },
            // CBOR's data model has nothing else; a later ciborium variant reads as null.
            _ => Value::Null,
        }
    }
}

/// A bignum (tag 2 holds n, tag 3 holds -1 - n) that fits an `i128`: the inverse of
/// [`Value::to_cbor`], so that an integer reads back as the [`Value::Integer`] it was.
fn bignum_in_i128(tag: u64, inner: &Cbor) -> Option<i128> {
    let Cbor::Bytes(bytes) = inner else {
        return None;
    };
    if !(tag == 2 || tag == 3) || bytes.len() > 16 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[16 - bytes.len()..].copy_from_slice(bytes);
    let magnitude = i128::try_from(u128::from_be_bytes(buf)).ok()?;
    Some(if tag == 2 { magnitude } else { -1 - magnitude })
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            // An integer stays a number in every format: through the CBOR tree, one past
            // 64 bits would become a bignum tag, which non-CBOR formats write as a map.
            Value::Integer(i) => match (u64::try_from(*i), i64::try_from(*i)) {
                (Ok(u), _) => serializer.serialize_u64(u),
                (_, Ok(i)) => serializer.serialize_i64(i),
                _ => serializer.serialize_i128(*i),
            },
            other => other.to_cbor().serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Cbor::deserialize(deserializer).map(Value::from_cbor)
    }
}

macro_rules! value_from {
    ($($from:ty => $variant:ident),* $(,)?) => {$(
        impl From<$from> for Value {
            fn from(v: $from) -> Self {
                Value::$variant(v.into())
            }
        }
    )*};
}

value_from! {
    bool => Bool, i8 => Integer, i16 => Integer, i32 => Integer, i64 => Integer,
    u8 => Integer, u16 => Integer, u32 => Integer, u64 => Integer,
    f32 => Float, f64 => Float, String => Text, &str => Text, Vec<u8> => Bytes,
    Vec<Value> => Array,
}

/// Converts a [`Value`] into JSON for display: bytes become arrays of numbers, non-text map
/// keys become their JSON text, NaN and infinities become `null` (JSON has no spelling for
/// them), bignums become their decimal text, DataFrames become lists of records, and other
/// tags (sets) become their content.
pub fn to_json(value: &Value) -> serde_json::Value {
    cbor_to_json(&value.to_cbor())
}

/// Converts JSON into a [`Value`]: objects become maps with text keys, numbers become
/// integers where they are whole and in range, else floats.
pub fn from_json(json: &serde_json::Value) -> Value {
    Value::from_cbor(cbor_from_json(json))
}

/// Converts a CBOR tree into JSON for display (see [`to_json`]): bytes become arrays of numbers, non-text map
/// keys become their JSON text, NaN and infinities become `null` (JSON has no spelling for them),
/// DataFrames become lists of records, and other tags (sets) become their content.
pub(crate) fn cbor_to_json(value: &Cbor) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Cbor::Null => J::Null,
        Cbor::Bool(b) => J::Bool(*b),
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(u) = u64::try_from(i) {
                J::from(u)
            } else if let Ok(s) = i64::try_from(i) {
                J::from(s)
            } else {
                J::String(i.to_string())
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Cbor::Text(s) => J::String(s.clone()),
        Cbor::Bytes(b) => J::Array(b.iter().map(|x| J::from(*x)).collect()),
        Cbor::Array(items) => J::Array(items.iter().map(cbor_to_json).collect()),
        Cbor::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Cbor::Text(s) => s.clone(),
                        other => cbor_to_json(other).to_string(),
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        Cbor::Tag(2, inner) | Cbor::Tag(3, inner) => match inner.as_ref() {
            Cbor::Bytes(b) if b.len() <= 16 => {
                let mut buf = [0u8; 16];
                buf[16 - b.len()..].copy_from_slice(b);
                let n = u128::from_be_bytes(buf);
                if matches!(value, Cbor::Tag(2, _)) {
                    J::String(n.to_string())
                } else {
                    J::String(format!("-{}", n.saturating_add(1)))
                }
            }
            other => cbor_to_json(other),
        },
        Cbor::Tag(crate::codec::msgpack::DATAFRAME_TAG, inner) => dataframe_to_json(inner),
        Cbor::Tag(_, inner) => cbor_to_json(inner),
        _ => J::Null,
    }
}

/// A DataFrame (Arrow IPC bytes) as JSON records, or, without the `dataframe` feature, a
/// note of its size.
fn dataframe_to_json(inner: &Cbor) -> serde_json::Value {
    let Cbor::Bytes(ipc) = inner else {
        return cbor_to_json(inner);
    };
    #[cfg(feature = "dataframe")]
    if let Ok(records) = crate::codec::dataframe::ipc_to_json_records(ipc) {
        return records;
    }
    serde_json::json!({ "_dataframe_ipc_bytes": ipc.len() })
}

/// Converts JSON into a CBOR tree (see [`from_json`]): objects become maps with text keys, numbers become
/// integers where they are whole and in range, else floats.
pub(crate) fn cbor_from_json(json: &serde_json::Value) -> Cbor {
    use serde_json::Value as J;
    match json {
        J::Null => Cbor::Null,
        J::Bool(b) => Cbor::Bool(*b),
        J::Number(n) => {
            if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => Cbor::Text(s.clone()),
        J::Array(items) => Cbor::Array(items.iter().map(cbor_from_json).collect()),
        J::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), cbor_from_json(v)))
                .collect(),
        ),
    }
}
