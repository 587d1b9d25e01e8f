//! The fast path for the most common key, one text string: its canonical bytes (a CBOR text
//! string) written straight, without the [`ciborium::Value`] tree of the general path in
//! [`super::key`]. Both paths give the same bytes (a test checks lengths at every CBOR size
//! boundary).

use serde::ser::{self, Impossible, Serialize};
use std::fmt;

/// Appends the canonical bytes of `key` to `out` if it serializes as one text string
/// (`String`, `&str`, `char`, `Cow<str>`...) and says so; every other key takes the general
/// path, and `out` is left as it was.
pub fn write_text_key<T: ?Sized + Serialize>(key: &T, out: &mut Vec<u8>) -> bool {
    key.serialize(TextOnly(out)).is_ok()
}

/// Writes `text` as a definite-length CBOR text string (major type 3) with the shortest
/// length header, as deterministic CBOR (RFC 8949 §4.2) requires.
fn cbor_text(text: &str, out: &mut Vec<u8>) {
    let len = text.len();
    out.reserve(len + 9);
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=0xff => out.extend_from_slice(&[0x78, len as u8]),
        0x100..=0xffff => {
            out.push(0x79);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => match u32::try_from(len) {
            Ok(len) => {
                out.push(0x7a);
                out.extend_from_slice(&len.to_be_bytes());
            }
            Err(_) => {
                out.push(0x7b);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        },
    }
    out.extend_from_slice(text.as_bytes());
}

/// "Not one text string": the key takes the general path. Carries nothing, so refusing
/// costs nothing.
#[derive(Debug)]
struct NotText;

impl fmt::Display for NotText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a text key")
    }
}

impl std::error::Error for NotText {}

impl ser::Error for NotText {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotText
    }
}

/// A serializer that accepts only a string or a char, and writes it to its buffer.
struct TextOnly<'a>(&'a mut Vec<u8>);

/// Methods of [`TextOnly`] that refuse their input.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, NotText> {
            Err(NotText)
        })*
    };
}

impl ser::Serializer for TextOnly<'_> {
    type Ok = ();
    type Error = NotText;
    type SerializeSeq = Impossible<(), NotText>;
    type SerializeTuple = Impossible<(), NotText>;
    type SerializeTupleStruct = Impossible<(), NotText>;
    type SerializeTupleVariant = Impossible<(), NotText>;
    type SerializeMap = Impossible<(), NotText>;
    type SerializeStruct = Impossible<(), NotText>;
    type SerializeStructVariant = Impossible<(), NotText>;

    fn serialize_str(self, v: &str) -> Result<(), NotText> {
        cbor_text(v, self.0);
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), NotText> {
        cbor_text(v.encode_utf8(&mut [0; 4]), self.0);
        Ok(())
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), NotText> {
        Err(NotText)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotText> {
        Err(NotText)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotText> {
        Err(NotText)
    }
}
