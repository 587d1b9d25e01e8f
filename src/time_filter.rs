//! Time filters: entries by when they were last written (`_timestamp`), and pruning the old.
//!
//! Every engine records when each version was written. [`TimeFilter`] picks entries whose
//! latest version was written after and/or before given [`Moment`]s; the stash's
//! `*_written` iterators read through [`History::scan_written`](crate::engine::History::scan_written),
//! which SQLite and diskcache answer by seeking an index instead of reading every entry.
//! [`Stash::prune`] removes the entries last written before a moment, and by default only
//! reports what it would remove.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::{Moment, Prune, Stash, TimeFilter};
//! use std::time::Duration;
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! stash.set("old", &1)?;
//! std::thread::sleep(Duration::from_millis(5));
//! let cut = Moment::now();
//! stash.set("new", &2)?;
//!
//! let recent: Vec<String> = stash.keys_written(TimeFilter::new().after(cut))?.collect::<Result<_, _>>()?;
//! assert_eq!(recent, ["new"]);
//!
//! let report = stash.prune(Prune::older_than(cut))?; // a dry run: nothing is removed
//! assert_eq!((report.entries, report.dry_run, stash.len()?), (1, true, 2));
//! let report = stash.prune(Prune::older_than(cut).dry_run(false))?;
//! assert_eq!((report.entries, stash.len()?), (1, 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::engine::EngineExt;
use crate::engine::{now_micros, StoredEntry, TimeWindow};
use crate::error::{Error, Result};
use crate::{codec, Stash, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, to the microsecond: what time filters compare write times with.
///
/// Made from any timezone-aware time (`chrono::DateTime<Tz>`), a [`SystemTime`], unix seconds
/// (`f64` or `i64`), or text (see [`Moment::from_str`](std::str::FromStr)).
///
/// ```
/// use hashstash::Moment;
///
/// let paris = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00+01:00")?;
/// let utc: Moment = "2026-11-25T09:00:00Z".parse()?;
/// assert_eq!(Moment::from(paris), utc);
/// assert_eq!(Moment::from(1_795_597_200_i64), utc); // unix seconds
/// assert_eq!(utc.unix_seconds(), 1_795_597_200.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment {
    micros: i64,
}

impl Moment {
    /// Now.
    pub fn now() -> Moment {
        Moment::from_unix_micros(now_micros())
    }

    /// `age` before now.
    pub fn ago(age: Duration) -> Moment {
        let age = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
        Moment::from_unix_micros(now_micros().saturating_sub(age))
    }

    /// Microseconds since the Unix epoch (UTC).
    pub fn from_unix_micros(micros: i64) -> Moment {
        Moment { micros }
    }

    /// Seconds since the Unix epoch (UTC), fractions kept to the microsecond.
    pub fn from_unix_seconds(seconds: f64) -> Moment {
        // `as` saturates (and maps NaN to 0): no time is out of range.
        Moment::from_unix_micros((seconds * 1e6).round() as i64)
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.micros
    }

    /// Seconds since the Unix epoch, as `_timestamp` shows them.
    pub fn unix_seconds(self) -> f64 {
        self.micros as f64 / 1e6
    }
}

impl From<SystemTime> for Moment {
    fn from(time: SystemTime) -> Moment {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Moment::from_unix_micros(micros(after)),
            Err(before) => Moment::from_unix_micros(-micros(before.duration())),
        }
    }
}

impl<Tz: chrono::TimeZone> From<chrono::DateTime<Tz>> for Moment {
    fn from(time: chrono::DateTime<Tz>) -> Moment {
        Moment::from_unix_micros(time.timestamp_micros())
    }
}

/// Unix seconds.
impl From<f64> for Moment {
    fn from(seconds: f64) -> Moment {
        Moment::from_unix_seconds(seconds)
    }
}

/// Unix seconds.
impl From<i64> for Moment {
    fn from(seconds: i64) -> Moment {
        Moment::from_unix_micros(seconds.saturating_mul(1_000_000))
    }
}

impl std::str::FromStr for Moment {
    type Err = Error;

    /// An RFC 3339 time with its offset (`2026-11-25T10:00:00+01:00`, `...Z`), unix seconds
    /// (`1795597200.5`), or an age before now: a number and a unit, `s`, `m`, `h`, `d` or `w`
    /// (`90s`, `12h`, `7d`). A time without an offset is refused: it would mean different
    /// moments on different machines.
    fn from_str(text: &str) -> Result<Moment> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            if seconds.is_finite() {
                return Ok(Moment::from_unix_seconds(seconds));
            }
        }
        if let Some(age) = parse_age(text) {
            return Ok(Moment::ago(age));
        }
        chrono::DateTime::parse_from_rfc3339(text)
            .map(Moment::from)
            .map_err(|e| Error::InvalidOption {
                option: "time",
                message: format!(
                    "{text:?} is not a time ({e}): give an RFC 3339 time with its offset \
                     (2026-11-25T10:00:00+01:00 or ...Z), unix seconds, or an age such as 7d"
                ),
            })
    }
}

/// `7d`, `12h`, `30m`, `90s`, `2w`: an age.
fn parse_age(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let seconds_per = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        'w' => 604_800.0,
        _ => return None,
    };
    let amount: f64 = text[..text.len() - 1].trim().parse().ok()?;
    Duration::try_from_secs_f64(amount * seconds_per).ok()
}

impl fmt::Display for Moment {
    /// RFC 3339 in UTC, to the microsecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_micros(self.micros) {
            Some(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            None => write!(f, "{} µs after the epoch", self.micros),
        }
    }
}

/// Which entries a time-filtered read keeps, by when their latest version was written.
/// The default keeps every entry; bounds are exclusive unless [`TimeFilter::inclusive`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimeFilter {
    after: Option<Moment>,
    before: Option<Moment>,
    inclusive: bool,
}

impl TimeFilter {
    /// Every entry (add bounds with [`TimeFilter::after`] and [`TimeFilter::before`]).
    pub fn new() -> TimeFilter {
        TimeFilter::default()
    }

    /// Only entries written after `time`.
    pub fn after(mut self, time: impl Into<Moment>) -> TimeFilter {
        self.after = Some(time.into());
        self
    }

    /// Only entries written before `time`.
    pub fn before(mut self, time: impl Into<Moment>) -> TimeFilter {
        self.before = Some(time.into());
        self
    }

    /// Whether an entry written exactly at a bound is kept (default: no).
    pub fn inclusive(mut self, inclusive: bool) -> TimeFilter {
        self.inclusive = inclusive;
        self
    }

    /// The window an engine scans.
    pub fn window(&self) -> TimeWindow {
        TimeWindow {
            after: self.after.map(Moment::unix_micros),
            before: self.before.map(Moment::unix_micros),
            inclusive: self.inclusive,
        }
    }
}

/// What [`Stash::prune`] removes: the entries last written before a moment. A dry run (the
/// default) only reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prune {
    older_than: Moment,
    dry_run: bool,
}

impl Prune {
    /// The entries whose latest version was written before `time`, as a dry run.
    pub fn older_than(time: impl Into<Moment>) -> Prune {
        Prune {
            older_than: time.into(),
            dry_run: true,
        }
    }

    /// `false`: remove them; `true` (the default): only report them.
    pub fn dry_run(mut self, dry_run: bool) -> Prune {
        self.dry_run = dry_run;
        self
    }
}

/// What [`Stash::prune`] removed, or in a dry run would remove.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PruneReport {
    /// Whether nothing was removed (a dry run).
    pub dry_run: bool,
    /// The entries (keys, each with all its versions).
    pub entries: u64,
    /// Their latest versions' stored key and value bytes.
    pub bytes: u64,
    /// When the oldest of them was last written (unix seconds).
    pub oldest: Option<f64>,
    /// When the newest of them was last written (unix seconds).
    pub newest: Option<f64>,
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        write!(f, "{verb} {} entries ({} bytes)", self.entries, self.bytes)?;
        let at = |s: f64| Moment::from_unix_seconds(s).to_string();
        match (self.oldest, self.newest) {
            (Some(oldest), Some(newest)) if oldest == newest => {
                write!(f, " last written at {}", at(oldest))?
            }
            (Some(oldest), Some(newest)) => {
                write!(f, " last written from {} to {}", at(oldest), at(newest))?
            }
            _ => {}
        }
        if self.dry_run {
            write!(f, "; nothing was removed (a dry run)")?;
        }
        Ok(())
    }
}

impl Stash {
    /// The stored entries whose latest version was written within `filter`, with their
    /// write time and expiry: [`History::scan_written`](crate::engine::History::scan_written).
    pub fn raw_items_written(
        &self,
        filter: TimeFilter,
    ) -> Result<impl Iterator<Item = Result<StoredEntry>> + '_> {
        self.engine().history()?.scan_written(filter.window())
    }

    /// The keys of the entries written within `filter`, decoded as `K` (entries that do not
    /// decode follow the [`OnCorrupt`](crate::OnCorrupt) policy).
    pub fn keys_written<K: DeserializeOwned>(
        &self,
        filter: TimeFilter,
    ) -> Result<impl Iterator<Item = Result<K>> + '_> {
        Ok(self.raw_items_written(filter)?.filter_map(move |r| {
            self.keep(r.and_then(|e| codec::decode_key(&e.key).map_err(|x| x.for_entry(&e.key))))
        }))
    }

    /// The latest values of the entries written within `filter`, decoded as `V`.
    pub fn values_written<V: DeserializeOwned>(
        &self,
        filter: TimeFilter,
    ) -> Result<impl Iterator<Item = Result<V>> + '_> {
        let codec = self.codec();
        Ok(self.raw_items_written(filter)?.filter_map(move |r| {
            self.keep(r.and_then(|e| {
                codec
                    .decode_value(&e.value)
                    .map_err(|x| x.for_entry(&e.key))
            }))
        }))
    }

    /// The `(key, latest value)` pairs of the entries written within `filter`.
    pub fn items_written<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
        filter: TimeFilter,
    ) -> Result<impl Iterator<Item = Result<(K, V)>> + '_> {
        let codec = self.codec();
        Ok(self.raw_items_written(filter)?.filter_map(move |r| {
            self.keep(r.and_then(|e| {
                let item = || Ok((codec::decode_key(&e.key)?, codec.decode_value(&e.value)?));
                item().map_err(|x: Error| x.for_entry(&e.key))
            }))
        }))
    }

    /// Each entry written within `filter` as dynamic `(key, value, write time)`, the time in
    /// unix seconds (as `_timestamp`).
    pub fn items_written_dyn(
        &self,
        filter: TimeFilter,
    ) -> Result<impl Iterator<Item = Result<(Value, Value, f64)>> + '_> {
        let codec = self.codec();
        Ok(self.raw_items_written(filter)?.filter_map(move |r| {
            self.keep(r.and_then(|e| {
                let item = || {
                    Ok((
                        codec::decode_key_dyn(&e.key)?,
                        codec.decode_value_dyn(&e.value)?,
                    ))
                };
                let time = e.timestamp_micros as f64 / 1e6;
                item()
                    .map(|(k, v)| (k, v, time))
                    .map_err(|x: Error| x.for_entry(&e.key))
            }))
        }))
    }

    /// Removes the entries last written before `prune`'s moment, each with all its versions,
    /// or in a dry run (the default) only counts them; reports what it did.
    ///
    /// Each entry's time is read again just before it is removed, so an entry rewritten
    /// while the prune runs is kept. (A write landing between that check and the removal is
    /// removed with the entry; the engine offers no conditional removal to close that gap.)
    pub fn prune(&self, prune: Prune) -> Result<PruneReport> {
        let filter = TimeFilter::new().before(prune.older_than);
        let mut report = PruneReport {
            dry_run: prune.dry_run,
            ..PruneReport::default()
        };
        // Keys, times and sizes only: the values are not needed past the scan.
        let old: Vec<(Vec<u8>, i64, usize)> = self
            .raw_items_written(filter)?
            .map(|r| r.map(|e| (e.key, e.timestamp_micros, e.value.len())))
            .collect::<Result<_>>()?;
        let cut = prune.older_than.unix_micros();
        for (key, timestamp, value_len) in old {
            if !prune.dry_run {
                let still_old = self
                    .engine()
                    .history()?
                    .versions(&key)?
                    .last()
                    .is_some_and(|latest| latest.timestamp_micros < cut);
                if !still_old || !self.remove_raw(&key)? {
                    continue;
                }
            }
            let time = timestamp as f64 / 1e6;
            report.entries += 1;
            report.bytes += (key.len() + value_len) as u64;
            report.oldest = Some(report.oldest.map_or(time, |t| t.min(time)));
            report.newest = Some(report.newest.map_or(time, |t| t.max(time)));
        }
        Ok(report)
    }
}
