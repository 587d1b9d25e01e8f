//! The record format that file engines (LMDB, pairtree) store per entry or version.
//!
//! ```text
//! [u8 format = 1][u64 LE xxh3 checksum of the rest][u32 LE key length][key]
//! [u64 LE version][i64 LE timestamp, µs since the epoch][value ...]
//! ```
//!
//! A record that expires is format 2, with its expiry after the timestamp:
//!
//! ```text
//! [u8 format = 2][checksum][u32 LE key length][key][u64 LE version][i64 LE timestamp]
//! [i64 LE expiry, µs since the epoch][value ...]
//! ```
//!
//! so records that never expire (most) keep format 1 byte for byte.
//!
//! The key is stored because these engines may address an entry by a hash of it (pairtree
//! always, LMDB for keys over 400 bytes), and a record is one format wherever it lies; the
//! checksum turns a torn write or a flipped bit on disk into a typed error instead of a
//! wrong value.

use crate::error::{Error, Result};

const FORMAT: u8 = 1;
const FORMAT_EXPIRING: u8 = 2;
const HEADER: usize = 1 + 8 + 4;
const TRAILER: usize = 8 + 8;

/// A decoded record, borrowing the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The canonical key bytes (empty in LMDB's version history, where the entry has them).
    pub key: &'a [u8],
    /// The version number (1 outside append mode).
    pub version: u64,
    /// When it was written, µs since the Unix epoch.
    pub timestamp_micros: i64,
    /// When it stops being served, µs since the Unix epoch; `None`: never.
    pub expires_micros: Option<i64>,
    /// The stored value bytes.
    pub value: &'a [u8],
}

impl<'a> Record<'a> {
    /// Encodes the record.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Encodes the record into `out`, replacing what it held (a buffer reused across the
    /// records of a batch saves an allocation each).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        let key_len = u32::try_from(self.key.len()).map_err(|_| Error::Encode {
            what: "key",
            format: "hashstash record".into(),
            source: "keys are limited to 4 GiB".into(),
        })?;
        out.clear();
        out.reserve(HEADER + self.key.len() + TRAILER + 8 + self.value.len());
        out.push(if self.expires_micros.is_some() {
            FORMAT_EXPIRING
        } else {
            FORMAT
        });
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&key_len.to_le_bytes());
        out.extend_from_slice(self.key);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.timestamp_micros.to_le_bytes());
        if let Some(expires) = self.expires_micros {
            out.extend_from_slice(&expires.to_le_bytes());
        }
        out.extend_from_slice(self.value);
        let sum = xxhash_rust::xxh3::xxh3_64(&out[9..]);
        out[1..9].copy_from_slice(&sum.to_le_bytes());
        Ok(())
    }

    /// Decodes and verifies a record; `what` names it in errors (a path or a key digest).
    pub fn decode(bytes: &'a [u8], what: impl FnOnce() -> String) -> Result<Record<'a>> {
        let corrupt =
            |why: &str, what: String| Error::decode(what, "hashstash record", why.to_owned());
        if bytes.len() < HEADER + TRAILER {
            return Err(corrupt("truncated record", what()));
        }
        let trailer = match bytes[0] {
            FORMAT => TRAILER,
            FORMAT_EXPIRING => TRAILER + 8,
            _ => return Err(corrupt("unknown record format", what())),
        };
        let stored_sum = u64::from_le_bytes(bytes[1..9].try_into().unwrap_or_default());
        if xxhash_rust::xxh3::xxh3_64(&bytes[9..]) != stored_sum {
            return Err(corrupt(
                "checksum mismatch (torn write or corrupt bytes)",
                what(),
            ));
        }
        let key_len = u32::from_le_bytes(bytes[9..13].try_into().unwrap_or_default()) as usize;
        let rest = &bytes[HEADER..];
        if key_len > rest.len().saturating_sub(trailer) {
            return Err(corrupt("key length beyond the record", what()));
        }
        let (key, rest) = rest.split_at(key_len);
        let (version, rest) = rest.split_at(8);
        let (ts, mut value) = rest.split_at(8);
        let mut expires_micros = None;
        if trailer > TRAILER {
            let (expires, rest) = value.split_at(8);
            expires_micros = Some(i64::from_le_bytes(expires.try_into().unwrap_or_default()));
            value = rest;
        }
        Ok(Record {
            key,
            version: u64::from_le_bytes(version.try_into().unwrap_or_default()),
            timestamp_micros: i64::from_le_bytes(ts.try_into().unwrap_or_default()),
            expires_micros,
            value,
        })
    }

    /// Whether `bytes` may be a record with an expiry (format 2): a reader that only needs
    /// to know whether an entry is there decodes just these.
    pub fn may_expire(bytes: &[u8]) -> bool {
        bytes.first() == Some(&FORMAT_EXPIRING)
    }

    /// Whether the record has expired at `now_micros`.
    pub fn is_expired(&self, now_micros: i64) -> bool {
        self.expires_micros.is_some_and(|at| at <= now_micros)
    }

    /// The record as an owned [`super::Version`].
    pub fn to_version(self) -> super::Version {
        super::Version {
            version: self.version,
            timestamp_micros: self.timestamp_micros,
            expires_micros: self.expires_micros,
            value: self.value.to_vec(),
        }
    }
}
