//! Value serializers: the first step of the value path (value -> bytes).
//!
//! - [`Serializer::Hashstash`] (default): MessagePack with named struct fields. Self-describing
//!   and portable, so SQL, DataFrames and the CLI can read a stash without the Rust type that
//!   wrote it.
//! - [`Serializer::Json`]: human-readable JSON text.
//! - [`Serializer::Postcard`]: the fastest and smallest, like Python's pickle in spirit: not
//!   self-describing, so only the Rust type that wrote a value can read it back (no dynamic
//!   [`crate::Value`], no SQL over its values).
//!
//! None of them runs code on load, unlike pickle.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

/// How values are turned into bytes.
///
/// ```
/// use hashstash::Serializer;
/// use std::collections::BTreeMap;
///
/// let value = BTreeMap::from([("name", "cat"), ("goodness", "good")]);
/// let json = hashstash::serialize(&value, Serializer::Json)?;
/// assert_eq!(json, br#"{"goodness":"good","name":"cat"}"#);
/// for serializer in Serializer::ALL {
///     let bytes = hashstash::serialize(&value, serializer)?;
///     let back: BTreeMap<String, String> = hashstash::deserialize(&bytes, serializer)?;
///     assert_eq!(back["name"], "cat");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Serializer {
    /// MessagePack with named fields: self-describing, portable, fast (the default).
    #[default]
    Hashstash,
    /// JSON text: human-readable, portable, larger and slower.
    Json,
    /// postcard: the fastest and smallest; readable only by the type that wrote it.
    Postcard,
}

impl Serializer {
    /// Every serializer, in the order the docs list them.
    pub const ALL: [Serializer; 3] = [
        Serializer::Hashstash,
        Serializer::Json,
        Serializer::Postcard,
    ];

    /// The serializer's name, as used in options and stash folder names.
    pub fn name(self) -> &'static str {
        match self {
            Serializer::Hashstash => "hashstash",
            Serializer::Json => "json",
            Serializer::Postcard => "postcard",
        }
    }

    /// Whether values can be read back without knowing their Rust type.
    pub fn is_self_describing(self) -> bool {
        !matches!(self, Serializer::Postcard)
    }

    /// Serializes `value` into bytes.
    pub fn serialize<V: ?Sized + Serialize>(self, value: &V) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.serialize_into(value, &mut out)?;
        Ok(out)
    }

    /// Serializes `value`, appending its bytes to `out` (a buffer reused from one value to
    /// the next saves growing a new one each time).
    pub fn serialize_into<V: ?Sized + Serialize>(self, value: &V, out: &mut Vec<u8>) -> Result<()> {
        let encoded: Result<(), crate::error::BoxError> = match self {
            Serializer::Hashstash => rmp_serde::encode::write_named(out, value).map_err(Into::into),
            Serializer::Json => serde_json::to_writer(&mut *out, value).map_err(Into::into),
            Serializer::Postcard => postcard::to_io(value, &mut *out)
                .map(|_| ())
                .map_err(Into::into),
        };
        encoded.map_err(|source| Error::Encode {
            what: "value",
            format: self.name().into(),
            source,
        })
    }

    /// Deserializes bytes written by [`Serializer::serialize`].
    pub fn deserialize<V: DeserializeOwned>(self, bytes: &[u8]) -> Result<V> {
        let decoded: Result<V, crate::error::BoxError> = match self {
            Serializer::Hashstash => rmp_serde::from_slice(bytes).map_err(Into::into),
            Serializer::Json => serde_json::from_slice(bytes).map_err(Into::into),
            Serializer::Postcard => postcard::from_bytes(bytes).map_err(Into::into),
        };
        decoded.map_err(|e| Error::decode("value", self.name(), e))
    }
}

impl std::str::FromStr for Serializer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Serializer::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::InvalidOption {
                option: "serializer",
                message: format!(
                    "unknown serializer {s:?}; expected one of hashstash, json, postcard"
                ),
            })
    }
}

impl std::fmt::Display for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
