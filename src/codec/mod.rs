//! The codec: keys to canonical bytes, values through serializer -> compressor -> base64.
//!
//! ```text
//! key   --canonical CBOR--> key bytes                         (never compressed, never base64)
//! value --serializer--> bytes --compressor--> bytes --base64?--> stored value bytes
//! ```
//!
//! Codecs never see engines; engines never see Rust types.

pub mod compressor;
#[cfg(feature = "dataframe")]
pub mod dataframe;
pub mod key;
// Not part of the API: public only with the `internals` feature, for this crate's own
// tests and benches.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod msgpack;
#[cfg(not(feature = "internals"))]
pub(crate) mod msgpack;
pub mod serializer;
mod text_key;

pub use compressor::Compressor;
pub use serializer::Serializer;

use crate::error::{Error, Result};
use crate::value::Value;
use base64::Engine as _;
use ciborium::Value as Cbor;
use serde::{de::DeserializeOwned, Serialize};

/// The value format of a stash: serializer, compressor and base64.
///
/// The codec is the value half of the data path, usable on its own:
///
/// ```
/// use hashstash::{Codec, Compressor, Serializer};
///
/// let codec = Codec { serializer: Serializer::Json, compress: Compressor::Zlib, b64: true };
/// let stored = codec.encode_value(&vec![1, 2, 3])?;
/// assert!(stored.iter().all(u8::is_ascii)); // base64 text
/// let back: Vec<u32> = codec.decode_value(&stored)?;
/// assert_eq!(back, [1, 2, 3]);
/// // Into another format, without the Rust type (as `Stash::update_from` does):
/// let lz4 = Codec::default().transcode(&codec, stored)?;
/// assert_eq!(Codec::default().decode_value::<Vec<u32>>(&lz4)?, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Codec {
    /// How values become bytes.
    pub serializer: Serializer,
    /// How those bytes are compressed.
    pub compress: Compressor,
    /// Whether stored values are base64 text (for engines or tools that want text).
    pub b64: bool,
}

impl Codec {
    /// Encodes a value: serialize, compress, then base64 if asked.
    pub fn encode_value<V: ?Sized + Serialize>(&self, value: &V) -> Result<Vec<u8>> {
        if self.marks_dataframe::<V>() {
            return self.encode_dataframe(value);
        }
        if self.compress == Compressor::Raw && !self.b64 {
            // The serialized bytes are what is stored.
            return self.serializer.serialize(value);
        }
        // Serialized into a buffer kept per thread, then compressed into the stored bytes.
        with_scratch(|buf| {
            self.serializer.serialize_into(value, buf)?;
            encode(buf, self.compress, self.b64)
        })
    }

    /// [`Codec::encode_value`] for a polars DataFrame: its Arrow IPC bytes are marked with the
    /// DataFrame extension type.
    fn encode_dataframe<V: ?Sized + Serialize>(&self, value: &V) -> Result<Vec<u8>> {
        let ipc = self.serializer.serialize(value)?;
        let bytes =
            msgpack::bin_to_ext(&ipc, msgpack::DATAFRAME_EXT).map_err(|e| Error::Encode {
                what: "value",
                format: "hashstash".into(),
                source: e.into(),
            })?;
        encode(&bytes, self.compress, self.b64)
    }

    /// Decodes stored value bytes into `V`.
    pub fn decode_value<V: DeserializeOwned>(&self, stored: &[u8]) -> Result<V> {
        if self.compress == Compressor::Lz4 && !self.b64 && !self.marks_dataframe::<V>() {
            // The common case: decompressed into this thread's buffer, read from there.
            return with_scratch(|buf| {
                self.compress.decompress_append(stored, buf)?;
                self.serializer.deserialize(buf)
            });
        }
        let owned;
        let bytes = if self.b64 || self.compress != Compressor::Raw {
            owned = decode(stored, self.compress, self.b64)?;
            owned.as_slice()
        } else {
            stored
        };
        if self.marks_dataframe::<V>() {
            if let Some(bin) = msgpack::ext_to_bin(bytes, msgpack::DATAFRAME_EXT) {
                return self.serializer.deserialize(&bin);
            }
        }
        self.serializer.deserialize(bytes)
    }

    /// Whether values of type `V` are stored as the DataFrame extension type.
    #[cfg_attr(
        not(feature = "dataframe"),
        allow(clippy::extra_unused_type_parameters)
    )]
    fn marks_dataframe<V: ?Sized>(&self) -> bool {
        #[cfg(feature = "dataframe")]
        {
            self.serializer == Serializer::Hashstash && dataframe::is_dataframe::<V>()
        }
        #[cfg(not(feature = "dataframe"))]
        {
            false
        }
    }

    /// Decodes stored value bytes into a dynamic [`Value`], without knowing the Rust type.
    pub fn decode_value_dyn(&self, stored: &[u8]) -> Result<Value> {
        self.decode_cbor(stored).map(Value::from_cbor)
    }

    /// [`Codec::decode_value_dyn`] into the tree the crate works on.
    pub(crate) fn decode_cbor(&self, stored: &[u8]) -> Result<Cbor> {
        match self.serializer {
            Serializer::Hashstash => {
                let bytes = decode(stored, self.compress, self.b64)?;
                msgpack::to_value(&bytes).map_err(|e| Error::decode("value", "hashstash", e))
            }
            Serializer::Json => self.decode_value(stored),
            Serializer::Postcard => Err(Error::decode(
                "value",
                self.serializer.name(),
                "postcard values can only be read back as the Rust type that wrote them",
            )),
        }
    }

    /// Encodes a dynamic [`Value`] as this codec stores values: the reverse of
    /// [`Codec::decode_value_dyn`] (a DataFrame read from a `hashstash` value is written back
    /// as a DataFrame). JSON gets the [`crate::value::to_json`] view of the value; postcard
    /// cannot write a value without its Rust type.
    pub fn encode_value_dyn(&self, value: &Value) -> Result<Vec<u8>> {
        self.encode_cbor(&value.to_cbor())
    }

    /// [`Codec::encode_value_dyn`] of a value the caller no longer needs: its tree is
    /// moved, not copied, on the way to the serializer (the Python package writes every
    /// value this way).
    pub fn encode_value_dyn_owned(&self, value: Value) -> Result<Vec<u8>> {
        self.encode_cbor(&value.into_cbor())
    }

    /// [`Codec::encode_value_dyn`] from the tree the crate works on.
    pub(crate) fn encode_cbor(&self, value: &Cbor) -> Result<Vec<u8>> {
        let fail = |e: crate::error::BoxError| Error::Encode {
            what: "value",
            format: self.serializer.name().into(),
            source: e,
        };
        let bytes = match self.serializer {
            Serializer::Hashstash => msgpack::from_value(value).map_err(|e| fail(e.into()))?,
            Serializer::Json => serde_json::to_vec(&crate::value::cbor_to_json(value))
                .map_err(|e| fail(e.into()))?,
            Serializer::Postcard => {
                return Err(fail(
                    "postcard needs the Rust type of a value to write it".into(),
                ))
            }
        };
        encode(&bytes, self.compress, self.b64)
    }

    /// Re-encodes stored bytes of codec `from` as this codec stores them. With the same
    /// serializer only compression and base64 change (works for postcard too); otherwise the
    /// value goes through a dynamic [`Value`].
    pub fn transcode(&self, from: &Codec, stored: Vec<u8>) -> Result<Vec<u8>> {
        if from == self {
            Ok(stored)
        } else if from.serializer == self.serializer {
            encode(
                &decode(&stored, from.compress, from.b64)?,
                self.compress,
                self.b64,
            )
        } else {
            self.encode_cbor(&from.decode_cbor(&stored)?)
        }
    }

    /// A short description, as in stash folder names: `hashstash.lz4+b64`.
    pub fn describe(&self) -> String {
        format!(
            "{}.{}{}",
            self.serializer.name(),
            self.compress.name(),
            if self.b64 { "+b64" } else { "" }
        )
    }
}

/// Canonical key bytes for any serde key (see [`key`] for the encoding).
pub fn encode_key<K: ?Sized + Serialize>(key: &K) -> Result<Vec<u8>> {
    let fail = |e: key::KeyError| Error::Encode {
        what: "key",
        format: "canonical cbor".into(),
        source: e.into(),
    };
    let mut bytes = Vec::new();
    if text_key::write_text_key(key, &mut bytes) {
        return Ok(bytes);
    }
    let tree = key::to_canonical_value(key).map_err(fail)?;
    key::value_to_bytes(&tree).map_err(fail)
}

/// Calls `f` with the canonical bytes of `key`, which a text key (the most common) gets in a
/// buffer kept per thread, without an allocation: for point reads, where that shows.
pub fn with_key_bytes<K: ?Sized + Serialize, T>(
    key: &K,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<T> {
    use std::cell::RefCell;
    thread_local! {
        static KEY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    KEY.with(|cell| {
        // Borrowed already: `f` reads another key on this thread.
        let Ok(mut buf) = cell.try_borrow_mut() else {
            return f(&encode_key(key)?);
        };
        buf.clear();
        if !text_key::write_text_key(key, &mut buf) {
            drop(buf);
            return f(&encode_key(key)?);
        }
        let out = f(&buf);
        if buf.capacity() > 1 << 16 {
            *buf = Vec::new();
        }
        out
    })
}

/// Canonical key bytes for a dynamic [`Value`] (for instance parsed from JSON text).
pub fn encode_key_value(key: Value) -> Result<Vec<u8>> {
    encode_key_cbor(key.into_cbor())
}

/// [`encode_key_value`] of the tree the crate works on.
pub(crate) fn encode_key_cbor(key: Cbor) -> Result<Vec<u8>> {
    let fail = |e: key::KeyError| Error::Encode {
        what: "key",
        format: "canonical cbor".into(),
        source: e.into(),
    };
    key::value_to_bytes(&key::canonicalize(key).map_err(fail)?).map_err(fail)
}

/// Decodes key bytes into `K`.
pub fn decode_key<K: DeserializeOwned>(bytes: &[u8]) -> Result<K> {
    // Decode to a tree first: set tags are structure of the key, not of the Rust type.
    let tree = decode_key_cbor(bytes)?;
    strip_tags(tree)
        .deserialized()
        .map_err(|e| Error::decode("key", "canonical cbor", e.to_string()))
}

/// Decodes key bytes into a dynamic [`Value`] (sets stay tagged, tag 258).
pub fn decode_key_dyn(bytes: &[u8]) -> Result<Value> {
    decode_key_cbor(bytes).map(Value::from_cbor)
}

/// [`decode_key_dyn`] into the tree the crate works on.
pub(crate) fn decode_key_cbor(bytes: &[u8]) -> Result<Cbor> {
    // Text keys are the most common by far: read them without the general decoder.
    if let Some(text) = cbor_text(bytes) {
        return Ok(Cbor::Text(text.to_owned()));
    }
    ciborium::from_reader(bytes).map_err(|e| Error::decode("key", "canonical cbor", e.to_string()))
}

/// The text of key bytes that are exactly one definite-length CBOR text string (a text
/// key); `None` for any other key.
pub(crate) fn cbor_text(bytes: &[u8]) -> Option<&str> {
    let (&head, rest) = bytes.split_first()?;
    let (len, rest) = match head {
        0x60..=0x77 => (usize::from(head - 0x60), rest),
        0x78 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x79 => (
            usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    if rest.len() != len {
        return None;
    }
    std::str::from_utf8(rest).ok()
}

/// Removes set tags so that a tree deserializes into Rust collections.
fn strip_tags(value: Cbor) -> Cbor {
    match value {
        Cbor::Tag(key::SET_TAG | msgpack::DATAFRAME_TAG, inner) => strip_tags(*inner),
        Cbor::Array(items) => Cbor::Array(items.into_iter().map(strip_tags).collect()),
        Cbor::Map(entries) => Cbor::Map(
            entries
                .into_iter()
                .map(|(k, v)| (strip_tags(k), strip_tags(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Serializes a value with `serializer` (no compression, no base64).
pub fn serialize<V: ?Sized + Serialize>(value: &V, serializer: Serializer) -> Result<Vec<u8>> {
    serializer.serialize(value)
}

/// Deserializes bytes written by [`serialize`].
pub fn deserialize<V: DeserializeOwned>(bytes: &[u8], serializer: Serializer) -> Result<V> {
    serializer.deserialize(bytes)
}

/// Compresses bytes and, if `b64`, base64-encodes them.
pub fn encode(data: &[u8], compress: Compressor, b64: bool) -> Result<Vec<u8>> {
    let compressed = compress.compress(data)?;
    Ok(if b64 {
        base64::engine::general_purpose::STANDARD
            .encode(compressed)
            .into_bytes()
    } else {
        compressed
    })
}

/// [`decode`], appending the bytes to `out` (no buffer of their own for raw and lz4).
pub fn decode_append(
    data: &[u8],
    compress: Compressor,
    b64: bool,
    out: &mut Vec<u8>,
) -> Result<()> {
    if b64 {
        out.extend_from_slice(&decode(data, compress, b64)?);
        Ok(())
    } else {
        compress.decompress_append(data, out)
    }
}

/// Runs `f` with this thread's scratch buffer, emptied. A buffer grown past 1 MiB by a large
/// value is not kept.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let out = f(&mut buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            out
        }
        // A value whose serialization encodes another value on this thread.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Reverses [`encode`].
pub fn decode(data: &[u8], compress: Compressor, b64: bool) -> Result<Vec<u8>> {
    if b64 {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| Error::decode("value", "base64", e))?;
        compress.decompress(&raw)
    } else {
        compress.decompress(data)
    }
}
