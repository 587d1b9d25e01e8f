//! Profiling: the standard workload over engines x serializers x compressors, as the
//! `hashstash profile` command runs it (and the figures in the README come from).
//!
//! The standard workload is the one of the benchmarks: `n` items `"key{i}"` ->
//! `{"name": "cat", "i": i, "vals": [0, 1, ..., 9]}`, written one `set` at a time, read back
//! one `get` at a time (each checked), then written again as one batch (`update`) into a
//! second, empty stash.
//!
//! ```
//! use hashstash::profile::{measure, Combination};
//! use hashstash::{Compressor, EngineKind, Serializer};
//! # let dir = tempfile::tempdir().unwrap();
//! let combination = Combination {
//!     engine: EngineKind::Memory,
//!     serializer: Serializer::Hashstash,
//!     compress: Compressor::Lz4,
//! };
//! let m = measure(combination, 1_000, dir.path())?;
//! assert_eq!(m.items, 1_000);
//! assert!(m.get_per_s > 0.0 && m.bytes_per_item > 10.0);
//! # Ok::<(), hashstash::Error>(())
//! ```

#[cfg(feature = "plot")]
pub mod plot;

use crate::codec::{Compressor, Serializer};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::stash::Stash;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// One item of the standard workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Always `"cat"`.
    pub name: String,
    /// The item's number.
    pub i: u64,
    /// `[0, 1, ..., 9]`.
    pub vals: Vec<u64>,
}

impl Item {
    /// Item number `i`.
    pub fn new(i: u64) -> Self {
        Item {
            name: "cat".into(),
            i,
            vals: (0..10).collect(),
        }
    }
}

/// One engine, serializer and compressor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combination {
    /// The engine.
    pub engine: EngineKind,
    /// The value serializer.
    pub serializer: Serializer,
    /// The value compressor.
    pub compress: Compressor,
}

/// What one combination measured on the standard workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// The engine's name.
    pub engine: String,
    /// The serializer's name.
    pub serializer: String,
    /// The compressor's name.
    pub compress: String,
    /// How many items were written and read.
    pub items: usize,
    /// Single `set`s per second.
    pub set_per_s: f64,
    /// Single `get`s per second (each value decoded and checked).
    pub get_per_s: f64,
    /// Items per second written as one batch (`update`).
    pub update_per_s: f64,
    /// Stored bytes per value (serialized and compressed; keys and engine overhead aside).
    pub bytes_per_item: f64,
    /// Stored megabytes (10^6 bytes) per second through single `set`s.
    pub set_mb_per_s: f64,
    /// Stored megabytes per second through single `get`s.
    pub get_mb_per_s: f64,
}

/// Runs the standard workload of `items` items on `combination`, in two stashes under `dir`
/// (emptied before and after). A value read back wrong is an error.
pub fn measure(combination: Combination, items: usize, dir: &Path) -> Result<Measurement> {
    let Combination {
        engine,
        serializer,
        compress,
    } = combination;
    let open = |dbname: &str| {
        Stash::builder()
            .root_dir(dir)
            .dbname(dbname)
            .engine(engine)
            .serializer(serializer)
            .compress(compress)
            .clear(true)
            .open()
    };
    let stash = open("profile")?;
    let keys: Vec<String> = (0..items).map(|i| format!("key{i}")).collect();
    let values: Vec<Item> = (0..items as u64).map(Item::new).collect();
    let mut stored_bytes = 0usize;
    for value in &values {
        stored_bytes += stash.encode_value(value)?.len();
    }

    let started = Instant::now();
    for (key, value) in keys.iter().zip(&values) {
        stash.set(key, value)?;
    }
    let set_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut wrong = 0;
    for (key, value) in keys.iter().zip(&values) {
        let found: Option<Item> = stash.get(key)?;
        wrong += usize::from(found.as_ref() != Some(value));
    }
    let get_secs = started.elapsed().as_secs_f64();
    if wrong > 0 {
        return Err(Error::engine(
            engine.name(),
            format!("profile: {wrong} of {items} values read back wrong"),
        ));
    }

    // The batch goes into a stash of its own: emptying the first one now would leave the
    // file system busy with its deletions while the batch is timed.
    let batched = open("profile-batch")?;
    let started = Instant::now();
    batched.update(keys.iter().zip(&values))?;
    let update_secs = started.elapsed().as_secs_f64();
    if batched.len()? != items {
        return Err(Error::engine(
            engine.name(),
            "profile: the batch did not store every item",
        ));
    }
    stash.clear()?;
    batched.clear()?;
    // Scratch stashes keep no lifetime totals: the folder they are in is removed after.
    stash.reset_stats();
    batched.reset_stats();

    let per_s = |secs: f64| items as f64 / secs.max(1e-9);
    let bytes_per_item = stored_bytes as f64 / items.max(1) as f64;
    Ok(Measurement {
        engine: engine.name().into(),
        serializer: serializer.name().into(),
        compress: compress.name().into(),
        items,
        set_per_s: per_s(set_secs),
        get_per_s: per_s(get_secs),
        update_per_s: per_s(update_secs),
        bytes_per_item,
        set_mb_per_s: per_s(set_secs) * bytes_per_item / 1e6,
        get_mb_per_s: per_s(get_secs) * bytes_per_item / 1e6,
    })
}

/// Every combination of the given engines, serializers and compressors, engines outermost.
pub fn combinations(
    engines: &[EngineKind],
    serializers: &[Serializer],
    compressors: &[Compressor],
) -> Vec<Combination> {
    let mut out = Vec::new();
    for &engine in engines {
        for &serializer in serializers {
            for &compress in compressors {
                out.push(Combination {
                    engine,
                    serializer,
                    compress,
                });
            }
        }
    }
    out
}

/// The engines profiled by default: every one compiled in, servers only when their URL is in
/// the environment (`HASHSTASH_REDIS_URL`, `HASHSTASH_MONGO_URL`).
pub fn default_engines() -> Vec<EngineKind> {
    EngineKind::available()
        .filter(|e| match e.server_url_env() {
            Some((var, _)) => std::env::var(var).is_ok_and(|v| !v.is_empty()),
            None => true,
        })
        .collect()
}

/// The measurements as an aligned text table.
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = format!(
        "{:<10} {:<10} {:<6} {:>11} {:>11} {:>12} {:>8} {:>9} {:>9}\n",
        "engine",
        "serializer",
        "comp",
        "set/s",
        "get/s",
        "update/s",
        "B/item",
        "set MB/s",
        "get MB/s"
    );
    for m in measurements {
        out.push_str(&format!(
            "{:<10} {:<10} {:<6} {:>11.0} {:>11.0} {:>12.0} {:>8.1} {:>9.2} {:>9.2}\n",
            m.engine,
            m.serializer,
            m.compress,
            m.set_per_s,
            m.get_per_s,
            m.update_per_s,
            m.bytes_per_item,
            m.set_mb_per_s,
            m.get_mb_per_s
        ));
    }
    out
}
