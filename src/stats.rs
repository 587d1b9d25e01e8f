//! What a stash handle did: hits, misses, sets, deletes, evictions and bytes written.
//!
//! Each handle ([`Stash::open_config`] and what opens through it: `sub`, function stashes)
//! counts in memory, with relaxed atomics, what goes through it: [`Stash::stats`] reads the
//! counts and [`Stash::reset_stats`] starts them again. So that `hashstash info` can show what
//! a stash has seen over its life, not just in one process, a handle's counts are added to the
//! stash's record of totals: at once on [`Stash::flush_stats`], and when its last clone is
//! dropped, by a background thread. Dropping a handle does no I/O itself (a drop on a dead
//! server returns at once): it hands its counts over and the thread writes them, each write
//! within the engine's timeout. [`flush_dropped`] writes what is still waiting, and
//! [`Stash::lifetime_stats`] first writes what the stash's own dropped handles left.
//!
//! What a crash or an exit loses: the counts of live handles not yet flushed, and those of
//! dropped handles the thread had not yet written when the process ended (a program that
//! wants them kept calls [`Stash::flush_stats`] or [`flush_dropped`] before it exits, as the
//! command line does). At most [`MAX_WAITING`] handles' counts wait; beyond that, further
//! dropped counts are not kept.
//!
//! The totals are kept in a stash of their own beside the data, `<dbname>/_stats`, with the
//! same engine, so that they work wherever the stash does (files or servers). Each flush
//! writes its counts under a key of its own, so that writers in several processes never
//! read-modify-write one record; [`Stash::lifetime_stats`] sums them. When there are many,
//! a flush folds them into one: it reads each and removes it, and counts only those whose
//! removal it made (a removal reports whether the key was there), so two processes folding
//! at once never count an entry twice. Counts are statistics, not data: a process that dies
//! before its handle drops loses its unflushed counts, and the record is never consulted for
//! anything else.

use crate::config::StashConfig;
use crate::engine::EngineExt;
use crate::error::Result;
use crate::stash::Stash;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};

/// The sub-stash holding a stash's lifetime totals.
pub const STATS_DBNAME: &str = "_stats";

/// Beyond this many flushed records, a flush folds them into one.
const FOLD_AFTER: usize = 64;

/// The most dropped handles' counts that wait for the background thread (a thread stuck on
/// a dead server must not make them grow without bound).
pub const MAX_WAITING: usize = 1024;

/// Counts of dropped handles, waiting to be written, by stash.
static WAITING: Mutex<Vec<(StashConfig, Stats)>> = Mutex::new(Vec::new());
/// Wakes the background thread when counts are handed over.
static HANDED_OVER: Condvar = Condvar::new();
/// Held while counts are written, so that a reader of the totals never sees counts that have
/// left the queue but are not yet written.
static WRITING: Mutex<()> = Mutex::new(());

/// Hands the counts of a dropped handle to the background thread (started on first use),
/// without any I/O of its own. Temporary stashes and the totals' own stash keep none.
pub(crate) fn hand_over(config: &StashConfig, counts: Stats) {
    if !keeps_totals(config, &counts) {
        return;
    }
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        // If no thread can be started, counts wait for `flush_dropped`.
        let _ = std::thread::Builder::new()
            .name("hashstash-stats".into())
            .spawn(write_waiting_forever);
    });
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, total)) = waiting.iter_mut().find(|(c, _)| c == config) {
        total.add(&counts);
    } else if waiting.len() < MAX_WAITING {
        waiting.push((config.clone(), counts));
    }
    HANDED_OVER.notify_one();
}

/// The background thread: writes the counts handed over, as they come.
fn write_waiting_forever() {
    loop {
        {
            let waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
            let _waiting = HANDED_OVER
                .wait_while(waiting, |w| w.is_empty())
                .unwrap_or_else(|e| e.into_inner());
        }
        // Statistics, not data: a failed write drops these counts rather than retrying.
        let _ = write_waiting(None);
    }
}

/// Writes the waiting counts of the stash `only` (or of every stash) to their totals.
fn write_waiting(only: Option<&StashConfig>) -> Result<()> {
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let taken: Vec<(StashConfig, Stats)> = {
        let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, others) = std::mem::take(&mut *waiting)
            .into_iter()
            .partition(|(c, _)| only.is_none_or(|only| c == only));
        *waiting = others;
        mine
    };
    let mut first_error = None;
    for (config, counts) in taken {
        if !still_there(&config) {
            continue;
        }
        if let Err(e) = flush(&config, counts) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes the counts that dropped handles left and the background thread has not yet
/// written, now, on this thread: what a program calls before it exits to keep them. The
/// first error is returned; the other stashes' counts are written all the same.
pub fn flush_dropped() -> Result<()> {
    write_waiting(None)
}

/// Whether the stash `config` names is still there to keep totals for: a file stash whose
/// folder its owner has removed since (a temporary folder, say) is not made again just to
/// hold its counts.
fn still_there(config: &StashConfig) -> bool {
    use crate::engine::EngineKind;
    config.engine.is_server() || config.engine == EngineKind::Memory || config.stash_dir().exists()
}

/// Whether `counts` are kept in the lifetime totals of the stash `config` opens.
fn keeps_totals(config: &StashConfig, counts: &Stats) -> bool {
    let mut counts = *counts;
    counts.scanned = 0;
    !(counts.is_zero() || config.is_tmp || config.dbname.rsplit('/').next() == Some(STATS_DBNAME))
}

/// Counts of what went through a stash handle (see [`Stash::stats`]).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// stash.set("a", &1)?;
/// assert_eq!(stash.get::<_, i32>("a")?, Some(1)); // a hit
/// assert_eq!(stash.get::<_, i32>("b")?, None); // a miss
/// assert!(stash.invalidate("a")?); // a delete
/// let stats = stash.stats();
/// assert_eq!((stats.hits, stats.misses, stats.sets, stats.deletes), (1, 1, 1, 1));
/// assert_eq!(stats.hit_rate(), Some(0.5));
/// stash.reset_stats();
/// assert_eq!(stash.stats(), hashstash::Stats::default());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Lookups that found a value: `get` and its kin, `get_many` (each key), `pop`, and the
    /// stored results of memoized functions. `contains` is not counted.
    pub hits: u64,
    /// Lookups that found nothing (a memoized function's computations).
    pub misses: u64,
    /// Entries written: `set`, each entry of `set_many`/`update`/`update_from`, the results
    /// of memoized functions.
    pub sets: u64,
    /// Keys removed by `remove`, `pop`, `invalidate`, `invalidate_call` and `invalidate_func`
    /// (`clear` is not counted).
    pub deletes: u64,
    /// Entries the engine removed to keep within the stash's size limit.
    pub evictions: u64,
    /// Key and value bytes handed to the engine by the writes counted in `sets`.
    pub bytes_written: u64,
    /// Entries read by tables (SQL queries, `to_batches`, `df`, `to_parquet`, schema
    /// inference): how a query shows that it read only what it needed. A handle's own
    /// count: not added to the lifetime totals, so that a query writes nothing.
    pub scanned: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or `None` before any lookup.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }

    /// Whether every count is zero.
    pub fn is_zero(&self) -> bool {
        *self == Stats::default()
    }

    fn add(&mut self, other: &Stats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.sets += other.sets;
        self.deletes += other.deletes;
        self.evictions += other.evictions;
        self.bytes_written += other.bytes_written;
        self.scanned += other.scanned;
    }
}

/// A handle's live counts. Evictions are counted by the engine (`Housekeeping::evictions`, for
/// diskcache's own size limit), of which the handle keeps the count at its last reset, and
/// by the handle (`max_entries` and `max_bytes`, see `limits.rs`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    bytes_written: AtomicU64,
    scanned: AtomicU64,
    evictions_at_reset: AtomicU64,
    evicted: AtomicU64,
}

impl Counters {
    /// Counts a lookup.
    pub(crate) fn lookup(&self, found: bool) {
        if found { &self.hits } else { &self.misses }.fetch_add(1, Relaxed);
    }

    /// Counts `entries` writes of `bytes` key and value bytes in all.
    pub(crate) fn wrote(&self, entries: usize, bytes: usize) {
        self.sets.fetch_add(entries as u64, Relaxed);
        self.bytes_written.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a removal that removed something.
    pub(crate) fn deleted(&self, removed: bool) {
        if removed {
            self.deletes.fetch_add(1, Relaxed);
        }
    }

    /// Counts `n` entries read by a table.
    #[cfg(feature = "sql")]
    pub(crate) fn scanned(&self, n: usize) {
        self.scanned.fetch_add(n as u64, Relaxed);
    }

    /// Counts `n` keys evicted to keep the stash within its limits.
    pub(crate) fn evicted(&self, n: u64) {
        self.evicted.fetch_add(n, Relaxed);
    }

    /// Counts `n` keys removed at once.
    pub(crate) fn deleted_many(&self, n: usize) {
        self.deletes.fetch_add(n as u64, Relaxed);
    }

    /// The counts, given the engine's eviction count.
    pub(crate) fn read(&self, evictions: u64) -> Stats {
        Stats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            evictions: evictions.saturating_sub(self.evictions_at_reset.load(Relaxed))
                + self.evicted.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            scanned: self.scanned.load(Relaxed),
        }
    }

    /// The counts, set back to zero (a count made meanwhile lands in one or the other).
    pub(crate) fn take(&self, evictions: u64) -> Stats {
        let evicted_before = self.evictions_at_reset.swap(evictions, Relaxed);
        Stats {
            hits: self.hits.swap(0, Relaxed),
            misses: self.misses.swap(0, Relaxed),
            sets: self.sets.swap(0, Relaxed),
            deletes: self.deletes.swap(0, Relaxed),
            evictions: evictions.saturating_sub(evicted_before) + self.evicted.swap(0, Relaxed),
            bytes_written: self.bytes_written.swap(0, Relaxed),
            scanned: self.scanned.swap(0, Relaxed),
        }
    }
}

impl Stash {
    /// What this handle (and its clones) did since it was opened or its stats were last
    /// reset or flushed. See [`Stats`] for what each count covers.
    pub fn stats(&self) -> Stats {
        self.counters().read(crate::stash::evictions(self.engine()))
    }

    /// Sets this handle's counts back to zero, returning them. They are not added to the
    /// stash's lifetime totals (see [`Stash::flush_stats`] for that).
    pub fn reset_stats(&self) -> Stats {
        self.counters().take(crate::stash::evictions(self.engine()))
    }

    /// Adds this handle's counts to the stash's lifetime totals and sets them back to zero,
    /// now. When its last clone is dropped, a handle's counts are written by a background
    /// thread instead (see [`crate::stats`] for what an exit can lose).
    pub fn flush_stats(&self) -> Result<()> {
        flush(self.config(), self.reset_stats())
    }

    /// Every count the stash has seen: the totals flushed by handles in any process, plus
    /// this handle's current counts.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let builder = hashstash::Stash::builder().root_dir(dir.path());
    /// {
    ///     let stash = builder.clone().open()?;
    ///     stash.set("a", &1)?;
    /// } // dropped: its counts go to the stash's totals
    /// let stash = builder.open()?;
    /// stash.get::<_, i32>("a")?;
    /// let lifetime = stash.lifetime_stats()?;
    /// assert_eq!((lifetime.sets, lifetime.hits), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lifetime_stats(&self) -> Result<Stats> {
        write_waiting(Some(self.config()))?;
        let mut totals = self.stats();
        let flushed = Stash::open_config(totals_config(self.config()), false)?;
        for entry in flushed.engine().scan()? {
            let (_, value) = entry?;
            totals.add(&flushed.decode_value::<Stats>(&value)?);
        }
        Ok(totals)
    }
}

/// Adds `counts` to the lifetime totals of the stash `config` opens. Temporary stashes and
/// the totals' own stash keep none.
pub(crate) fn flush(config: &StashConfig, mut counts: Stats) -> Result<()> {
    if !keeps_totals(config, &counts) {
        return Ok(());
    }
    counts.scanned = 0;
    let totals = Stash::open_config(totals_config(config), false)?;
    totals
        .engine()
        .set(&unique_key(), &totals.encode_value(&counts)?)?;
    if totals.len()? > FOLD_AFTER {
        fold(&totals)?;
    }
    Ok(())
}

/// The config of the stash keeping `config`'s lifetime totals.
fn totals_config(config: &StashConfig) -> StashConfig {
    let mut totals = config.clone();
    totals.dbname = format!("{}/{STATS_DBNAME}", config.dbname);
    totals
}

/// How long a fold may hold the totals' fold lease (a process that dies folding frees it
/// then).
const FOLD_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Folds the flushed records into one (see the module docs for why this never counts twice).
/// Where the engine has leases (the servers and object storage), one process folds at a
/// time, and a flush that finds the lease taken leaves its record for a later fold: a
/// removal that two folders race on is then never counted by both, whatever a store's
/// conditional writes allow.
fn fold(totals: &Stash) -> Result<()> {
    let Some(leases) = totals.engine().leases() else {
        return fold_records(totals);
    };
    let owner = unique_key();
    if !leases.try_lease(b"fold", &owner, FOLD_LEASE)? {
        return Ok(());
    }
    let folded = fold_records(totals);
    // An unreleased lease expires; the fold's own outcome is what matters.
    let _ = leases.release_lease(b"fold", &owner);
    folded
}

/// Folds the flushed records into one, counting only the records whose removal it made.
fn fold_records(totals: &Stash) -> Result<()> {
    let keys: Vec<Vec<u8>> = totals.raw_keys()?.collect::<Result<_>>()?;
    let mut sum = Stats::default();
    for key in keys {
        let Some(value) = totals.engine().get(&key)? else {
            continue;
        };
        let counts: Stats = totals.decode_value(&value)?;
        if totals.engine().remove(&key)? {
            sum.add(&counts);
        }
    }
    if !sum.is_zero() {
        totals
            .engine()
            .set(&unique_key(), &totals.encode_value(&sum)?)?;
    }
    Ok(())
}

/// A key no other flush uses: process, time and a counter.
fn unique_key() -> Vec<u8> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Relaxed)
    );
    crate::codec::encode_key(&key).unwrap_or_else(|_| key.into_bytes())
}
