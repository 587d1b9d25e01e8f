//! Canonical key bytes: the same content gives the same bytes in every process and platform.
//!
//! A key is first turned into a [`Value`] tree by `KeySerializer`, which puts the tree in one
//! canonical shape, then written as deterministic CBOR (RFC 8949 §4.2: shortest integers and
//! floats, map entries ordered by their encoded key bytes). The shape follows JSON's data model,
//! so a key written from Rust is found from JSON text (the CLI) and the other way round:
//!
//! | Rust                                   | key tree                                   |
//! |----------------------------------------|--------------------------------------------|
//! | `bool`, integers up to `u128`/`i128`   | CBOR integer (bignum tag 2/3 beyond 64 bits)|
//! | `f32`, `f64`                           | float; `-0.0` is `0.0`, every NaN one NaN  |
//! | `String`, `&str`, `char`               | text                                       |
//! | `Vec`, slices, arrays, tuples          | array (so `("a","b")` is `vec!["a","b"]`)   |
//! | `HashMap`, `BTreeMap`, structs         | map, entries sorted by encoded key         |
//! | `HashSet`, `BTreeSet`                  | tag 258 (a set) over a sorted array        |
//! | `Option`: `None` / `Some(x)`           | null / `x`                                 |
//! | unit enum variant `E::A`               | text `"A"`; other variants `{"A": ...}`   |
//! | `serde_bytes` byte strings             | bytes                                      |
//! | polars `DataFrame` (feature `dataframe`) | tag 0x68734446 over canonical Arrow IPC  |
//!
//! serde shows a set to a serializer exactly as it shows a `Vec`, so sets are recognised by
//! their type name (`std::any::type_name`) where a parent hands them over, through references,
//! `Box`, `Rc`, `Arc`, `Cow`, `Mutex`, `RwLock` and `RefCell`. A set behind a custom
//! `Serialize` impl, `#[serde(transparent)]` or `serialize_with` is seen as a list: use a
//! `BTreeSet` there (its order is fixed) to stay canonical.
//!
//! Key bytes never depend on the value serializer, the compressor or base64.

use ciborium::Value;
use serde::ser::{self, Serialize};
use std::fmt;

/// CBOR tag for a mathematical finite set (IANA registry, tag 258).
pub const SET_TAG: u64 = 258;

/// An error while canonicalising a key.
#[derive(Debug)]
pub(crate) struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        KeyError(msg.to_string())
    }
}

/// Turns any serde value into its canonical key tree.
pub(crate) fn to_canonical_value<T: ?Sized + Serialize>(key: &T) -> Result<Value, KeyError> {
    canonical_child(key)
}

/// Writes a canonical tree as deterministic CBOR bytes.
pub(crate) fn value_to_bytes(value: &Value) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::with_capacity(32);
    ciborium::into_writer(value, &mut out).map_err(|e| KeyError(e.to_string()))?;
    Ok(out)
}

/// Puts an arbitrary tree (for instance one decoded from JSON text) into canonical shape:
/// maps sorted, sets sorted, floats normalised. Trees made by [`to_canonical_value`] are
/// already canonical.
pub(crate) fn canonicalize(value: Value) -> Result<Value, KeyError> {
    Ok(match value {
        Value::Float(f) => Value::Float(normalize_float(f)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(canonicalize)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let entries = entries
                .into_iter()
                .map(|(k, v)| Ok((canonicalize(k)?, canonicalize(v)?)))
                .collect::<Result<Vec<_>, KeyError>>()?;
            sorted_map(entries)?
        }
        Value::Tag(SET_TAG, inner) => match *inner {
            Value::Array(items) => sorted_set(
                items
                    .into_iter()
                    .map(canonicalize)
                    .collect::<Result<_, _>>()?,
            )?,
            other => Value::Tag(SET_TAG, Box::new(canonicalize(other)?)),
        },
        // A bignum has one spelling too: the shortest, as an integer where it fits.
        Value::Tag(tag @ (2 | 3), inner) => match *inner {
            Value::Bytes(bytes) => bignum(tag == 3, &bytes)?,
            other => Value::Tag(tag, Box::new(canonicalize(other)?)),
        },
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner)?)),
        other => other,
    })
}

/// A bignum (RFC 8949 §3.4.3: tag 2 for `n`, tag 3 for `-1 - n`, `n` big-endian bytes) in
/// canonical form: an integer when it fits, else the tag over bytes without leading zeros.
/// A negative one of 16 bytes below `i128::MIN` is refused: CBOR readers (ciborium among
/// them) turn 16-byte bignums into 128-bit integers, so such a key could not be read back.
fn bignum(negative: bool, bytes: &[u8]) -> Result<Value, KeyError> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = &bytes[first..];
    if digits.len() <= 16 {
        let mut be = [0u8; 16];
        be[16 - digits.len()..].copy_from_slice(digits);
        let n = u128::from_be_bytes(be);
        if !negative {
            return Ok(int_u128(n));
        }
        return i128::try_from(n)
            .map(|n| int(-1 - n))
            .map_err(|_| KeyError("a negative bignum below i128::MIN cannot be a key".into()));
    }
    let tag = if negative { 3 } else { 2 };
    Ok(Value::Tag(tag, Box::new(Value::Bytes(digits.to_vec()))))
}

fn int_u128(v: u128) -> Value {
    match ciborium::value::Integer::try_from(v) {
        Ok(i) => Value::Integer(i),
        Err(_) => Value::Tag(2, Box::new(Value::Bytes(minimal_be(v)))),
    }
}

/// One spelling per float: `-0.0` equals `0.0` and every NaN is the same NaN.
fn normalize_float(f: f64) -> f64 {
    if f.is_nan() {
        f64::NAN
    } else if f == 0.0 {
        0.0
    } else {
        f
    }
}

fn sorted_map(entries: Vec<(Value, Value)>) -> Result<Value, KeyError> {
    let mut keyed = entries
        .into_iter()
        .map(|(k, v)| Ok((value_to_bytes(&k)?, k, v)))
        .collect::<Result<Vec<_>, KeyError>>()?;
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(KeyError("a map key appears twice".into()));
    }
    Ok(Value::Map(
        keyed.into_iter().map(|(_, k, v)| (k, v)).collect(),
    ))
}

fn sorted_set(items: Vec<Value>) -> Result<Value, KeyError> {
    let mut keyed = items
        .into_iter()
        .map(|v| Ok((value_to_bytes(&v)?, v)))
        .collect::<Result<Vec<_>, KeyError>>()?;
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Ok(Value::Tag(
        SET_TAG,
        Box::new(Value::Array(keyed.into_iter().map(|(_, v)| v).collect())),
    ))
}

/// The type name of `T` without references and smart pointers, which serialize as what they
/// point to.
pub(crate) fn bare_type_name<T: ?Sized>() -> &'static str {
    let mut name = std::any::type_name::<T>();
    // This runs for every value in a key and every typed read: most names have nothing to
    // unwrap, so they cost one scan for `<`.
    if !name.starts_with('&') && !name.contains('<') {
        return name;
    }
    loop {
        let before = name;
        name = name.trim_start_matches("&mut ").trim_start_matches('&');
        for wrapper in &known_generics().wrappers {
            if let Some(rest) = name.strip_prefix(wrapper).and_then(|r| r.strip_prefix('<')) {
                // `Cow<'_, T>` prints its lifetime.
                name = rest.trim_start_matches("'_, ");
            }
        }
        if name == before {
            return name;
        }
    }
}

/// The path prefixes (the part before `<`) of the generic std types that matter to keys.
/// They are taken from the compiler rather than spelled out, so that a change in how it
/// prints paths cannot silently stop the unwrapping or turn sets into lists.
struct KnownGenerics {
    /// References, smart pointers and locks serialize as what they hold.
    wrappers: [&'static str; 7],
    sets: [&'static str; 4],
}

fn known_generics() -> &'static KnownGenerics {
    use std::any::type_name;
    fn prefix(full: &'static str) -> &'static str {
        full.split('<').next().unwrap_or(full)
    }
    static KNOWN: std::sync::OnceLock<KnownGenerics> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| KnownGenerics {
        wrappers: [
            type_name::<Box<u8>>(),
            type_name::<std::rc::Rc<u8>>(),
            type_name::<std::sync::Arc<u8>>(),
            type_name::<std::borrow::Cow<'static, [u8]>>(),
            type_name::<std::sync::Mutex<u8>>(),
            type_name::<std::sync::RwLock<u8>>(),
            type_name::<std::cell::RefCell<u8>>(),
        ]
        .map(prefix),
        sets: [
            prefix(type_name::<std::collections::HashSet<u8>>()),
            prefix(type_name::<std::collections::BTreeSet<u8>>()),
            "hashbrown::set::HashSet",
            "indexmap::set::IndexSet",
        ],
    })
}

/// Whether `T` is a set type whose elements serde hands over as a plain sequence.
fn is_set_type<T: ?Sized>() -> bool {
    let name = bare_type_name::<T>();
    name.contains('<')
        && known_generics().sets.iter().any(|set| {
            name.strip_prefix(set)
                .is_some_and(|rest| rest.starts_with('<'))
        })
}

/// Serializes a child value, marking it as a set when its type is one.
fn canonical_child<T: ?Sized + Serialize>(value: &T) -> Result<Value, KeyError> {
    let tree = value.serialize(KeySerializer)?;
    if is_set_type::<T>() {
        if let Value::Array(items) = tree {
            return sorted_set(items);
        }
    }
    #[cfg(feature = "dataframe")]
    if super::dataframe::is_dataframe::<T>() {
        if let Value::Bytes(ipc) = tree {
            let canonical = super::dataframe::canonical_ipc(&ipc).map_err(KeyError)?;
            return Ok(Value::Tag(
                super::msgpack::DATAFRAME_TAG,
                Box::new(Value::Bytes(canonical)),
            ));
        }
    }
    Ok(tree)
}

fn int(v: i128) -> Value {
    match ciborium::value::Integer::try_from(v) {
        Ok(i) => Value::Integer(i),
        // Beyond CBOR's 65-bit integers: bignum tags (RFC 8949 §3.4.3).
        Err(_) if v >= 0 => Value::Tag(2, Box::new(Value::Bytes(minimal_be(v as u128)))),
        Err(_) => Value::Tag(3, Box::new(Value::Bytes(minimal_be((-1 - v) as u128)))),
    }
}

fn minimal_be(v: u128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// The serde serializer that builds canonical key trees.
pub(crate) struct KeySerializer;

/// Collects a sequence, tuple or tuple struct.
pub(crate) struct SeqBuilder {
    items: Vec<Value>,
    variant: Option<&'static str>,
}

/// Collects a map or struct.
pub(crate) struct MapBuilder {
    entries: Vec<(Value, Value)>,
    pending_key: Option<Value>,
    variant: Option<&'static str>,
}

fn wrap_variant(variant: Option<&'static str>, inner: Value) -> Value {
    match variant {
        Some(name) => Value::Map(vec![(Value::Text(name.into()), inner)]),
        None => inner,
    }
}

impl ser::Serializer for KeySerializer {
    type Ok = Value;
    type Error = KeyError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, KeyError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, KeyError> {
        Ok(int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, KeyError> {
        Ok(int(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, KeyError> {
        Ok(int_u128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, KeyError> {
        Ok(Value::Float(normalize_float(v.into())))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, KeyError> {
        Ok(Value::Float(normalize_float(v)))
    }
    fn serialize_char(self, v: char) -> Result<Value, KeyError> {
        Ok(Value::Text(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, KeyError> {
        Ok(Value::Text(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, KeyError> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value, KeyError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Value, KeyError> {
        canonical_child(value)
    }
    fn serialize_unit(self) -> Result<Value, KeyError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, KeyError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, KeyError> {
        Ok(Value::Text(variant.into()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, KeyError> {
        canonical_child(value)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, KeyError> {
        Ok(wrap_variant(Some(variant), canonical_child(value)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, KeyError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, KeyError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, KeyError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, KeyError> {
        let mut seq = self.serialize_seq(Some(len))?;
        seq.variant = Some(variant);
        Ok(seq)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, KeyError> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            pending_key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, KeyError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, KeyError> {
        let mut map = self.serialize_map(Some(len))?;
        map.variant = Some(variant);
        Ok(map)
    }
}

impl SeqBuilder {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), KeyError> {
        self.items.push(canonical_child(value)?);
        Ok(())
    }
    fn finish(self) -> Result<Value, KeyError> {
        Ok(wrap_variant(self.variant, Value::Array(self.items)))
    }
}

macro_rules! seq_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for SeqBuilder {
            type Ok = Value;
            type Error = KeyError;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), KeyError> {
                self.push(value)
            }
            fn end(self) -> Result<Value, KeyError> {
                self.finish()
            }
        }
    };
}
seq_impl!(SerializeSeq, serialize_element);
seq_impl!(SerializeTuple, serialize_element);
seq_impl!(SerializeTupleStruct, serialize_field);
seq_impl!(SerializeTupleVariant, serialize_field);

impl MapBuilder {
    fn finish(self) -> Result<Value, KeyError> {
        Ok(wrap_variant(self.variant, sorted_map(self.entries)?))
    }
    fn field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        self.entries
            .push((Value::Text(key.into()), canonical_child(value)?));
        Ok(())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = KeyError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), KeyError> {
        self.pending_key = Some(canonical_child(key)?);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), KeyError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| KeyError("map value without a key".into()))?;
        self.entries.push((key, canonical_child(value)?));
        Ok(())
    }
    fn end(self) -> Result<Value, KeyError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = KeyError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        self.field(key, value)
    }
    fn end(self) -> Result<Value, KeyError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapBuilder {
    type Ok = Value;
    type Error = KeyError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), KeyError> {
        self.field(key, value)
    }
    fn end(self) -> Result<Value, KeyError> {
        self.finish()
    }
}
