//! Size limits: `max_entries` and `max_bytes`, kept by evicting the oldest entries first.
//!
//! A stash with a limit keeps, per handle, an upper bound of its size: what it measured last,
//! plus every entry and byte written through the handle since (an overwrite counts as if it
//! added). A write that keeps the bound within the limits costs nothing more. A write that
//! takes it past a limit makes the handle measure the stash, in one scan of every entry's
//! time and size; if the stash then holds more than 90% of a limit, the entries last
//! written longest ago are evicted (with all their versions, expired entries first) until
//! it holds at most 90% of each, in one transaction where the engine has them. So a scan
//! happens at most once per tenth of a limit written, never once per write, and a write
//! through the handle never leaves the stash above its limits (with threads writing through
//! one handle at once, a write that lands while another thread measures is checked by the
//! next write instead).
//!
//! - **Bytes** are the stored key bytes plus the latest value's stored bytes of each live
//!   entry (what [`Stats::bytes_written`](crate::Stats::bytes_written) counts per write):
//!   engine overheads and, in append mode, older versions are not counted.
//! - **Every handle enforces its own writes.** Writes from other processes are seen at the
//!   next measurement, so a stash written by several processes may run past a limit until
//!   one of them measures it.
//! - **Sub-stashes and function stashes** inherit the limits, each limited on its own.
//! - Evictions are counted in [`Stats::evictions`](crate::Stats::evictions).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//!
//! let stash = Stash::builder().root_dir(dir.path()).max_entries(100).open()?;
//! for i in 0..1000 {
//!     stash.set(&i, &i)?;
//! }
//! assert!(stash.len()? <= 100);
//! assert!(stash.contains(&999)?); // the newest stay
//! assert!(!stash.contains(&0)?); // the oldest went first
//! assert!(stash.stats().evictions >= 900);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::engine::EngineExt;
use crate::engine::{now_micros, TimeWindow};
use crate::error::Result;
use crate::Stash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Keys removed per transaction while evicting.
const EVICT_BATCH: usize = 1024;

/// A handle's bound on its stash's size (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    /// Entries measured at the last check, plus those written since.
    entries: AtomicU64,
    /// Key and value bytes measured at the last check, plus those written since.
    bytes: AtomicU64,
    /// Whether the stash has been measured (until then the bounds mean nothing).
    measured: AtomicBool,
    /// One check at a time per handle.
    checking: Mutex<()>,
}

/// What a measurement found, and what it evicted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enforced {
    /// Live entries after eviction.
    pub entries: u64,
    /// Their key and latest-value bytes.
    pub bytes: u64,
    /// Entries evicted (expired ones included).
    pub evicted: u64,
}

/// Moves `counter` from `from` to `to`, keeping what was added to it since it read `from`.
fn rebase(counter: &AtomicU64, from: u64, to: u64) {
    if to >= from {
        counter.fetch_add(to - from, Relaxed);
    } else {
        counter.fetch_sub(from - to, Relaxed);
    }
}

/// 90% of `limit`: where eviction stops.
fn low_water(limit: u64) -> u64 {
    limit - limit / 10
}

impl Stash {
    /// Counts a write of `entries` entries holding `bytes` key and value bytes, and keeps the
    /// stash within its limits (see the module docs).
    pub(crate) fn wrote(&self, entries: usize, bytes: usize) -> Result<()> {
        if self.count_write(entries, bytes) {
            self.enforce_limits()?;
        }
        Ok(())
    }

    /// Counts a write as [`Stash::wrote`] does, without measuring: true when the stash must
    /// now be measured ([`Stash::enforce_limits`]).
    pub(crate) fn count_write(&self, entries: usize, bytes: usize) -> bool {
        self.counters().wrote(entries, bytes);
        let config = self.config();
        if config.max_entries.is_none() && config.max_bytes.is_none() {
            return false;
        }
        let limiter = self.limiter();
        let entries = limiter.entries.fetch_add(entries as u64, Relaxed) + entries as u64;
        let bytes = limiter.bytes.fetch_add(bytes as u64, Relaxed) + bytes as u64;
        let within = entries <= config.max_entries.unwrap_or(u64::MAX)
            && bytes <= config.max_bytes.unwrap_or(u64::MAX);
        !(within && limiter.measured.load(Relaxed))
    }

    /// Measures the stash now and evicts its oldest entries if it holds more than 90% of a
    /// limit (`max_entries`, `max_bytes`), down to 90%; returns what it found and evicted.
    /// Writes do this by themselves when they may have passed a limit.
    pub fn enforce_limits(&self) -> Result<Enforced> {
        let limiter = self.limiter();
        // Another thread measuring this handle's stash right now does the same work.
        let Ok(_checking) = limiter.checking.try_lock() else {
            return Ok(Enforced::default());
        };
        let config = self.config();
        // No limit is a limit no stash reaches.
        let max_entries = config.max_entries.unwrap_or(u64::MAX);
        let max_bytes = config.max_bytes.unwrap_or(u64::MAX);
        let before = (limiter.entries.load(Relaxed), limiter.bytes.load(Relaxed));
        // Each live entry's time, size and key; expired entries are not among them.
        let mut live: Vec<(i64, u64, Vec<u8>)> = Vec::new();
        let (mut entries, mut bytes) = (0u64, 0u64);
        for entry in self
            .engine()
            .history()?
            .scan_written(TimeWindow::default())?
        {
            let entry = entry?;
            let size = (entry.key.len() + entry.value.len()) as u64;
            entries += 1;
            bytes += size;
            live.push((entry.timestamp_micros, size, entry.key));
        }
        let mut evicted = 0;
        // Expired entries are not in the scan, and still count (and take room) until pruned.
        let stored = (self.engine().len()? as u64).max(entries);
        if stored > low_water(max_entries) || bytes > low_water(max_bytes) {
            // Expired entries go first: they are misses already.
            if stored > entries {
                evicted += self.engine().housekeeping()?.prune_expired(now_micros())?;
            }
            live.sort_unstable_by_key(|(time, _, _)| *time);
            let mut oldest: Vec<&[u8]> = Vec::new();
            for (_, size, key) in &live {
                if entries <= low_water(max_entries) && bytes <= low_water(max_bytes) {
                    break;
                }
                oldest.push(key);
                entries -= 1;
                bytes -= size;
            }
            for chunk in oldest.chunks(EVICT_BATCH) {
                evicted += self.engine().remove_many(chunk)?;
            }
        }
        self.counters().evicted(evicted);
        // The bounds become what was measured, keeping what other threads of this handle
        // wrote meanwhile.
        rebase(&limiter.entries, before.0, entries);
        rebase(&limiter.bytes, before.1, bytes);
        limiter.measured.store(true, Relaxed);
        Ok(Enforced {
            entries,
            bytes,
            evicted,
        })
    }
}
