//! Migration: copy a stash into another, on any engine, serializer or compressor.
//!
//! Keys are canonical bytes on every engine, so they move as they are. Values are
//! re-encoded only where the formats differ: with the same serializer only the compression
//! (and base64) is redone, so even postcard values move; between serializers a value goes
//! through its dynamic [`Value`](crate::Value). Every version moves with its time and expiry
//! (in append mode: all versions, oldest first), in batches of one transaction each where
//! the engine has transactions. At the end the destination's entry count is checked against
//! what the copy wrote; then a destination with size limits evicts down to them.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::{CopyOptions, Compressor, EngineKind, Stash};
//!
//! let from = Stash::builder().root_dir(dir.path()).append_mode(true).open()?;
//! from.set("k", &1)?;
//! from.set("k", &2)?;
//! let to = Stash::builder()
//!     .root_dir(dir.path())
//!     .engine(EngineKind::Pairtree)
//!     .compress(Compressor::Raw)
//!     .append_mode(true)
//!     .open()?;
//! let plan = from.copy_to(&to, CopyOptions::new().dry_run(true))?;
//! assert_eq!((plan.entries, plan.versions, to.len()?), (1, 2, 0));
//! let report = from.copy_to(&to, CopyOptions::new())?;
//! assert_eq!((report.entries, report.versions), (1, 2));
//! assert_eq!(to.get_all::<_, i32>("k")?, [1, 2]);
//! let (a, b) = (from.get_all_with_metadata::<_, i32>("k")?, to.get_all_with_metadata::<_, i32>("k")?);
//! assert_eq!(a[0].timestamp, b[0].timestamp); // times move with the values
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::codec::{self, Codec};
use crate::engine::EngineExt;
use crate::engine::{Version, WriteItem, WriteMeta};
use crate::error::{Error, Result};
use crate::Stash;
use serde::Serialize;
use std::fmt;

/// Entries per batch: one transaction (and one fsync, on LMDB) each.
const BATCH: usize = 1024;

/// How [`Stash::copy_to`] runs.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    dry_run: bool,
    progress: Option<crate::progress::Observer>,
}

impl CopyOptions {
    /// A copy that writes, without a progress bar.
    pub fn new() -> CopyOptions {
        CopyOptions::default()
    }

    /// `true`: read everything and report what would move, writing nothing.
    pub fn dry_run(mut self, dry_run: bool) -> CopyOptions {
        self.dry_run = dry_run;
        self
    }

    /// Reports to `progress` as entries are copied, one step per entry (the command line
    /// draws a bar from it; see [`crate::progress`]).
    pub fn progress(mut self, progress: crate::progress::Observer) -> CopyOptions {
        self.progress = Some(progress);
        self
    }
}

/// What [`Stash::copy_to`] moved, or in a dry run would move.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Whether nothing was written (a dry run).
    pub dry_run: bool,
    /// Entries (keys) copied.
    pub entries: u64,
    /// Versions copied (one per entry outside append mode).
    pub versions: u64,
    /// Stored value bytes read from the source.
    pub bytes_read: u64,
    /// Stored value bytes written to the destination (after re-encoding).
    pub bytes_written: u64,
    /// Entries in the destination before the copy.
    pub destination_before: u64,
    /// Entries in the destination after it (in a dry run: what it would hold), before any
    /// eviction to its limits.
    pub destination_after: u64,
    /// Entries the destination then evicted to keep within its `max_entries` or
    /// `max_bytes`.
    pub evicted: u64,
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would copy" } else { "copied" };
        write!(
            f,
            "{verb} {} entries ({} versions, {} bytes stored as {} bytes); the destination \
             {} {} entries, {} before",
            self.entries,
            self.versions,
            self.bytes_read,
            self.bytes_written,
            if self.dry_run { "would hold" } else { "holds" },
            self.destination_after,
            self.destination_before,
        )
    }
}

/// How a value's stored bytes become the destination's.
#[derive(Clone, Copy)]
enum Recode {
    /// The same format: the bytes as they are.
    Same,
    /// The same serializer: decompress (and un-base64), then compress the other way.
    Compression(Codec, Codec),
    /// Another serializer: through the dynamic value.
    Value(Codec, Codec),
}

impl Recode {
    fn between(from: Codec, to: Codec) -> Recode {
        if from == to {
            Recode::Same
        } else if from.serializer == to.serializer {
            Recode::Compression(from, to)
        } else {
            Recode::Value(from, to)
        }
    }

    fn apply(self, stored: Vec<u8>) -> Result<Vec<u8>> {
        match self {
            Recode::Same => Ok(stored),
            Recode::Compression(from, to) => {
                let serialized = codec::decode(&stored, from.compress, from.b64)?;
                codec::encode(&serialized, to.compress, to.b64)
            }
            Recode::Value(from, to) => to.encode_cbor(&from.decode_cbor(&stored)?),
        }
    }
}

impl Stash {
    /// Copies every live entry of this stash into `destination` (another engine,
    /// serializer, compressor or place), each version with its write time and expiry, and
    /// checks at the end that the destination holds as many entries as it should.
    ///
    /// - **Versions.** From an append-mode stash into an append-mode stash, every version
    ///   moves, oldest first, and becomes the next versions of its key there. Into a stash
    ///   that keeps one version, the latest moves.
    /// - **What exists already** in the destination is replaced (or, in append mode, added
    ///   to): a copy never removes anything.
    /// - **Sub-stashes** (function results, stats) are stashes of their own: copy each.
    /// - **Check.** The destination must end with its entries before, plus the keys the
    ///   copy brought that it did not have; otherwise [`Error::CopyMismatch`] (another
    ///   writer, or an engine that lost writes). A dry run reads everything, re-encodes
    ///   it (so a value that cannot move fails it too) and writes nothing.
    pub fn copy_to(&self, destination: &Stash, options: CopyOptions) -> Result<CopyReport> {
        let (from, to) = (self.config(), destination.config());
        if from.engine == to.engine && from.stash_dir() == to.stash_dir() && from.url == to.url {
            return Err(Error::InvalidOption {
                option: "destination",
                message: format!("{destination} is the stash being copied"),
            });
        }
        let recode = Recode::between(self.codec(), destination.codec());
        let all_versions = self.config().append_mode && destination.config().append_mode;
        let before = destination.len()? as u64;
        let mut report = CopyReport {
            dry_run: options.dry_run,
            destination_before: before,
            ..CopyReport::default()
        };
        if let Some(observer) = &options.progress {
            let total = self.len()? as u64;
            observer.start(&format!("Copying {self} to {destination}"), total, 0);
        }
        let mut new_keys = 0u64;
        let mut batch: Vec<(Vec<u8>, Vec<u8>, WriteMeta)> = Vec::with_capacity(BATCH);
        let mut batch_keys: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
        let mut flush = |batch: &mut Vec<(Vec<u8>, Vec<u8>, WriteMeta)>,
                         keys: &mut Vec<Vec<u8>>|
         -> Result<()> {
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let present = destination.engine().get_many(&refs)?;
            new_keys += present.iter().filter(|p| p.is_none()).count() as u64;
            if !options.dry_run {
                let items: Vec<WriteItem<'_>> = batch
                    .iter()
                    .map(|(k, v, meta)| (k.as_slice(), v.as_slice(), *meta))
                    .collect();
                destination.engine().write_items(&items)?;
                // Counted as the destination handle's writes, as `set_many` counts them; its
                // limits are kept once the counts are checked.
                let bytes = batch.iter().map(|(k, v, _)| k.len() + v.len()).sum();
                destination.counters().wrote(batch.len(), bytes);
            }
            if let Some(observer) = &options.progress {
                observer.advance(keys.len() as u64);
            }
            batch.clear();
            keys.clear();
            Ok(())
        };
        for entry in self.raw_items_written(Default::default())? {
            let entry = entry?;
            let versions = if all_versions {
                self.engine().history()?.versions(&entry.key)?
            } else {
                vec![Version {
                    version: 1,
                    timestamp_micros: entry.timestamp_micros,
                    expires_micros: entry.expires_micros,
                    value: entry.value,
                }]
            };
            if versions.is_empty() {
                continue; // removed since the scan listed it
            }
            for version in versions {
                report.bytes_read += version.value.len() as u64;
                let value = recode
                    .apply(version.value)
                    .map_err(|e| e.for_entry(&entry.key))?;
                report.bytes_written += value.len() as u64;
                report.versions += 1;
                let meta = WriteMeta {
                    timestamp_micros: Some(version.timestamp_micros),
                    expires_micros: version.expires_micros,
                };
                batch.push((entry.key.clone(), value, meta));
            }
            report.entries += 1;
            batch_keys.push(entry.key);
            if batch.len() >= BATCH {
                flush(&mut batch, &mut batch_keys)?;
            }
        }
        flush(&mut batch, &mut batch_keys)?;
        if let Some(observer) = &options.progress {
            observer.finish();
        }
        let expected = before + new_keys;
        report.destination_after = if options.dry_run {
            expected
        } else {
            destination.len()? as u64
        };
        if report.destination_after != expected {
            return Err(Error::CopyMismatch {
                expected,
                found: report.destination_after,
            });
        }
        let limited =
            destination.config().max_entries.is_some() || destination.config().max_bytes.is_some();
        if limited && !options.dry_run {
            report.evicted = destination.enforce_limits()?.evicted;
        }
        Ok(report)
    }
}
