//! The same stash on every file-based engine (feature `filebased`: LMDB, SQLite, diskcache;
//! pairtree and memory are always built in): 10,000 items written as one batch, read back
//! one by one, and the room they take.
//!
//! `cargo run --release --features filebased --example engines`

use hashstash::{EngineKind, Stash};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let items: Vec<(String, Vec<u32>)> = (0..10_000)
        .map(|i| (format!("key{i}"), (i..i + 10).collect()))
        .collect();
    println!(
        "{:<10} {:>12} {:>12} {:>12}",
        "engine", "update/s", "get/s", "disk bytes"
    );
    for engine in EngineKind::available().filter(|e| e.server_url_env().is_none()) {
        let stash = Stash::builder()
            .dbname(format!("examples_engines_{engine}"))
            .engine(engine)
            .clear(true)
            .open()?;
        let start = Instant::now();
        stash.update(items.iter().map(|(k, v)| (k, v)))?;
        let update = items.len() as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (key, value) in &items {
            let back: Option<Vec<u32>> = stash.get(key)?;
            assert_eq!(back.as_ref(), Some(value), "{engine}: {key}");
        }
        let get = items.len() as f64 / start.elapsed().as_secs_f64();
        assert_eq!(stash.len()?, items.len());
        let disk = stash.disk_usage()?;
        println!(
            "{:<10} {update:>12.0} {get:>12.0} {disk:>12}",
            engine.name()
        );
        stash.clear()?;
    }
    Ok(())
}
