//! What only some engines can do, reached through [`Engine::capabilities`].
//!
//! The [`Engine`] trait is the small core every engine implements. The rest is here, one
//! trait per ability, so that an engine says what it has by filling in [`Capabilities`]
//! and a caller asks for it instead of calling a method that does nothing. The eight engines
//! of this crate have a history, an atomic insert, housekeeping and a catalog; the servers
//! add leases, and Redis (on one server: a cluster's calls stay blocking) and MongoDB an
//! async side.

use super::catalog::Catalog;
use super::{now_micros, Engine, StoredEntry, StoredIter, TimeWindow, Version, WriteMeta};
use crate::error::Result;
use std::time::Duration;

/// What an engine can do beyond [`Engine`]: each field is the engine itself (as the trait
/// of that ability) or `None`. An engine fills in the ones it has and leaves the rest to
/// `..Capabilities::default()`.
#[derive(Clone, Copy, Default)]
pub struct Capabilities<'a> {
    /// Every version of a key, and the entries written within a time window.
    pub history: Option<&'a dyn History>,
    /// A write that stores only where a key is missing, as one step.
    pub atomic_insert: Option<&'a dyn AtomicInsert>,
    /// Pruning expired entries, disk usage, evictions.
    pub housekeeping: Option<&'a dyn Housekeeping>,
    /// A change counter and catalog records: how tables reuse a schema inferred earlier.
    pub catalog: Option<&'a dyn Catalog>,
    /// Leases that processes sharing a server take to agree on who computes a result.
    pub leases: Option<&'a dyn Leases>,
    /// Calls awaited without a thread per call (see [`super::async_engine`]).
    #[cfg(feature = "async")]
    pub async_side: Option<&'a dyn super::async_engine::AsyncEngine>,
}

/// Every version of a key and the entries written within a time window.
pub trait History: Engine {
    /// Every version stored under `key`, oldest first (empty when the key is missing or its
    /// latest version has expired).
    fn versions(&self, key: &[u8]) -> Result<Vec<Version>>;

    /// Every live entry whose latest version was written within `window`, with that
    /// version's time and expiry, as [`Engine::scan`] reads them. Engines with an index on
    /// the write time seek the window instead of reading every entry (SQLite, diskcache).
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        // Correct for any engine, at the price of a second read per entry.
        let now = now_micros();
        Ok(Box::new(self.scan()?.filter_map(move |item| {
            let (key, value) = match item {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let latest = match self.versions(&key) {
                Ok(mut versions) => versions.pop()?,
                Err(e) => return Some(Err(e)),
            };
            let entry = StoredEntry {
                key,
                value,
                timestamp_micros: latest.timestamp_micros,
                expires_micros: latest.expires_micros,
            };
            entry.is_wanted(&window, now).then_some(Ok(entry))
        })))
    }
}

/// A write that stores only where a key has no live entry, as one step.
pub trait AtomicInsert {
    /// Stores `value` under `key` only where the key has no live entry (it is missing, or
    /// its latest version has expired), as one step against every other writer in any thread
    /// or process: of several callers racing on a missing key, exactly one stores. Returns
    /// `None` when it stored `value` (version 1, or `n + 1` over an expired entry in append
    /// mode), or `Some(latest)`, the live value it found, when it wrote nothing. How each
    /// engine makes it one step: one write transaction (LMDB, SQLite, diskcache, memory), a
    /// lock file per key (pairtree), a script (Redis), an insert on a unique `_id` and a
    /// compare-and-swap over an expired entry (MongoDB), a create-only put and a put
    /// conditional on the ETag over an expired entry (object storage).
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>>;
}

/// Keeping a store within its bounds.
pub trait Housekeeping {
    /// Removes every entry whose latest version has expired at `now_micros` (µs since the
    /// Unix epoch), with all its versions; returns how many keys it removed. It never
    /// removes an entry that a writer has meanwhile replaced with a live value.
    fn prune_expired(&self, now_micros: i64) -> Result<u64>;

    /// Bytes the engine occupies on disk (0 for memory and servers).
    fn disk_usage(&self) -> Result<u64> {
        Ok(0)
    }

    /// How many entries this engine handle has removed to keep within the stash's size
    /// limit since it was opened (for [`crate::Stats::evictions`]).
    fn evictions(&self) -> u64 {
        0
    }
}

/// Leases on a server: how processes sharing it agree on which of them computes a function
/// result (file engines lock files instead, and a memory stash lives in one process).
pub trait Leases {
    /// Takes the lease `name` for `ttl` as `owner` if no one holds it, or its holder let it
    /// expire; true if `owner` now holds it.
    fn try_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool>;

    /// Extends `owner`'s lease `name` to `ttl` from now; false if it is no longer theirs.
    fn renew_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool>;

    /// Gives up `owner`'s lease `name`, if it still is theirs.
    fn release_lease(&self, name: &[u8], owner: &[u8]) -> Result<()>;
}
