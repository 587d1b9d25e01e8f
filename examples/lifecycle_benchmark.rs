//! Figures for the cache semantics: what size limits cost per write, a time filter that
//! seeks an index against one that reads every entry, copy throughput, and Redis through
//! `AsyncStash` natively against the same calls on tokio's blocking pool.
//!
//! `HASHSTASH_BENCH_DIR=/dev/shm cargo run --release --example lifecycle_benchmark
//! --features lmdb,sqlite,async,redis [-- ENTRIES]` (100,000 entries unless given; Redis
//! figures when `HASHSTASH_REDIS_URL` is set).

use hashstash::engine::{WriteItem, WriteMeta};
use hashstash::{AsyncStash, CopyOptions, EngineKind, Stash, TimeFilter};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let entries: i64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = match std::env::var_os("HASHSTASH_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base)?,
        None => tempfile::tempdir()?,
    };
    let open = |name: &str, engine: EngineKind| {
        Stash::builder()
            .root_dir(dir.path())
            .dbname(name)
            .engine(engine)
    };

    // Size limits: a write within the bound costs an atomic add; a measurement (one scan)
    // comes once per tenth of the limit written.
    for limit in [None, Some(entries as u64 / 10)] {
        let mut builder = open(&format!("limits_{limit:?}"), EngineKind::Lmdb);
        if let Some(limit) = limit {
            builder = builder.max_entries(limit);
        }
        let stash = builder.open()?;
        let started = Instant::now();
        for i in 0..entries {
            stash.set(&i, &i)?;
        }
        let per_write = started.elapsed().as_secs_f64() * 1e6 / entries as f64;
        println!(
            "lmdb, {entries} sets, max_entries {limit:?}: {per_write:.2} µs per set, {} kept, {} evicted",
            stash.len()?,
            stash.stats().evictions
        );
    }

    // Time filters: entries written one ms apart; the last 1% of them.
    for engine in [EngineKind::Sqlite, EngineKind::Lmdb] {
        let stash = open(&format!("times_{engine}"), engine).open()?;
        let encoded: Vec<(Vec<u8>, Vec<u8>, WriteMeta)> = (0..entries)
            .map(|i| {
                let meta = WriteMeta {
                    timestamp_micros: Some(1_000_000_000_000 + i * 1000),
                    expires_micros: None,
                };
                Ok((stash.encode_key(&i)?, stash.encode_value(&i)?, meta))
            })
            .collect::<hashstash::Result<_>>()?;
        let items: Vec<WriteItem<'_>> = encoded
            .iter()
            .map(|(k, v, m)| (k.as_slice(), v.as_slice(), *m))
            .collect();
        stash.engine().write_items(&items)?;
        let cut = hashstash::Moment::from_unix_micros(1_000_000_000_000 + entries * 990);
        // The first filtered scan makes SQLite's index; time the second.
        let _ = stash
            .keys_written::<i64>(TimeFilter::new().after(cut))?
            .count();
        let started = Instant::now();
        let found = stash
            .keys_written::<i64>(TimeFilter::new().after(cut))?
            .count();
        let filtered = started.elapsed();
        let started = Instant::now();
        let by_hand = stash
            .raw_items_written(TimeFilter::new())?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.timestamp_micros > cut.unix_micros())
            })
            .count();
        let whole = started.elapsed();
        assert_eq!(found, by_hand);
        println!(
            "{engine}, {entries} entries, the newest {found}: time filter {:.2} ms, whole scan filtered by hand {:.2} ms",
            ms(filtered),
            ms(whole)
        );
    }

    // Copy: every entry into another engine, serializer and compressor.
    let source = open("times_lmdb", EngineKind::Lmdb).open()?;
    for (engine, compress) in [
        (EngineKind::Sqlite, hashstash::Compressor::Zlib),
        (EngineKind::Lmdb, hashstash::Compressor::Raw),
    ] {
        let destination = open(&format!("copy_{engine}"), engine)
            .compress(compress)
            .open()?;
        let started = Instant::now();
        let report = source.copy_to(&destination, CopyOptions::new())?;
        let took = started.elapsed();
        println!(
            "copy lmdb -> {engine}.{}: {} entries in {:.0} ms, {:.0} entries/s",
            destination.codec().describe(),
            report.entries,
            ms(took),
            report.entries as f64 / took.as_secs_f64()
        );
    }

    if std::env::var_os("HASHSTASH_REDIS_URL").is_some() {
        redis_async(dir.path())?;
    }
    Ok(())
}

/// 100 tasks × 200 gets, natively and on the blocking pool.
fn redis_async(root: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let stash = Stash::builder()
        .root_dir(root)
        .dbname("async")
        .engine(EngineKind::Redis)
        .open()?;
    for i in 0..1000_i64 {
        stash.set(&i, &i)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (tasks, gets) = (100, 200);
    let native = runtime.block_on(async {
        let a = AsyncStash::new(stash.clone());
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let a = a.clone();
                tokio::spawn(async move {
                    for i in 0..gets {
                        let _: Option<i64> = a.get(&((t * gets + i) % 1000)).await.unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        started.elapsed()
    });
    let pooled = runtime.block_on(async {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let s = stash.clone();
                tokio::spawn(async move {
                    for i in 0..gets {
                        let s = s.clone();
                        let key = (t * gets + i) % 1000;
                        tokio::task::spawn_blocking(move || s.get::<_, i64>(&key).unwrap())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        started.elapsed()
    });
    let total = (tasks * gets) as f64;
    println!(
        "redis, {tasks} tasks x {gets} gets: native {:.0} gets/s, blocking pool {:.0} gets/s",
        total / native.as_secs_f64(),
        total / pooled.as_secs_f64()
    );
    stash.clear()?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
