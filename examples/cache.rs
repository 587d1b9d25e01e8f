//! Cache semantics: what a stash has seen (its stats, per handle and over its life),
//! invalidating entries so that they are computed again, entries that expire, size limits,
//! entries by when they were written, pruning the old, and copying a stash to another
//! engine and format.
//!
//! `cargo run --example cache`

use hashstash::{CopyOptions, EngineKind, Moment, Prune, Stash, TimeFilter};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = Stash::builder().dbname("examples_cache").clear(true);
    let before = builder.clone().open()?.lifetime_stats()?;
    {
        let stash = builder.clone().open()?;
        stash.update([("apples", 3), ("pears", 5), ("plums", 7)])?;
        for key in ["apples", "pears", "kiwis", "apples"] {
            let value: Option<u32> = stash.get(key)?;
            println!("{key}: {value:?}");
        }
        println!("invalidated pears: {}", stash.invalidate("pears")?);
        println!("invalidated pears again: {}", stash.invalidate("pears")?);
        let stats = stash.stats();
        println!("this handle: {stats:?}");
        println!("hit rate: {:.2}", stats.hit_rate().unwrap_or(0.0));
    } // the handle's counts are added to the stash's totals as it drops

    let lifetime = builder.open()?.lifetime_stats()?;
    println!(
        "over the stash's life, this run added {} sets, {} hits, {} misses, {} deletes",
        lifetime.sets - before.sets,
        lifetime.hits - before.hits,
        lifetime.misses - before.misses,
        lifetime.deletes - before.deletes
    );

    // Expiry: a stash-wide time to live, and a per-write one.
    let fresh = Stash::builder()
        .dbname("examples_cache_ttl")
        .ttl(Duration::from_millis(200))
        .clear(true)
        .open()?;
    fresh.set("quote", "valid for 200 ms")?;
    fresh.set_with_ttl("rate", &1.08, Duration::from_secs(3600))?;
    println!("quote now: {:?}", fresh.get::<_, String>("quote")?);
    std::thread::sleep(Duration::from_millis(250));
    println!("quote later: {:?}", fresh.get::<_, String>("quote")?);
    println!("rate later: {:?}", fresh.get::<_, f64>("rate")?);
    println!("stored before pruning: {}", fresh.len()?);
    println!("pruned: {}", fresh.prune_expired()?);
    println!("stored after pruning: {}", fresh.len()?);

    // Size limits: the oldest entries are evicted first.
    let small = Stash::builder()
        .dbname("examples_cache_small")
        .max_entries(100)
        .clear(true)
        .open()?;
    for i in 0..1000 {
        small.set(&i, &(i * i))?;
    }
    println!("kept: {} of 1000", small.len()?);
    println!(
        "newest kept: {}, oldest kept: {}",
        small.contains(&999)?,
        small.contains(&0)?
    );
    println!("evictions: {}", small.stats().evictions);

    // Time filters, and pruning by age (a dry run unless asked).
    let log = Stash::builder()
        .dbname("examples_cache_log")
        .clear(true)
        .open()?;
    log.set("monday", "old news")?;
    std::thread::sleep(Duration::from_millis(10));
    let cut = Moment::now();
    log.set("tuesday", "fresh news")?;
    let recent: Vec<String> = log
        .keys_written(TimeFilter::new().after(cut))?
        .collect::<Result<_, _>>()?;
    println!("written after the cut: {recent:?}");
    println!("{}", log.prune(Prune::older_than(cut))?);
    println!("{}", log.prune(Prune::older_than(cut).dry_run(false))?);
    println!(
        "left: {:?}",
        log.keys::<String>()?.collect::<Result<Vec<_>, _>>()?
    );

    // Migration: the same entries on another engine, serializer and compressor.
    let copy = Stash::builder()
        .dbname("examples_cache_copy")
        .engine(EngineKind::Pairtree)
        .serializer(hashstash::Serializer::Json)
        .clear(true)
        .open()?;
    let report = small.copy_to(&copy, CopyOptions::new())?;
    println!(
        "{} entries copied, {} in the copy",
        report.entries,
        copy.len()?
    );
    Ok(())
}
