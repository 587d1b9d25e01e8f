//! Recipes for common tasks, each a complete program that runs as a test.
//!
//! - [Memoize a function](#memoize-a-function)
//! - [Map a function over many items, in parallel](#map-a-function-over-many-items-in-parallel)
//! - [Query a cache with SQL](#query-a-cache-with-sql)
//! - [Ship a parquet snapshot](#ship-a-parquet-snapshot)
//! - [Query a large stash: stream the result, keep a snapshot](#query-a-large-stash-stream-the-result-keep-a-snapshot)
//! - [Share a cache through Redis](#share-a-cache-through-redis)
//! - [Migrate a stash to another engine](#migrate-a-stash-to-another-engine)
//! - [Keep every version of a value](#keep-every-version-of-a-value)
//! - [Expire results and drop stale ones](#expire-results-and-drop-stale-ones)
//! - [Keep a cache small, and drop what is old](#keep-a-cache-small-and-drop-what-is-old)
//!
//! Every recipe keeps its stashes in a temporary folder; in your code, leave `root_dir` out
//! to use `~/.cache/hashstash` (or `$HASHSTASH_ROOT_DIR`).
//!
//! # Memoize a function
//!
//! [`Stash::run`](crate::Stash::run) computes `f(args)` once and stores the result under the
//! arguments, in a stash of the function's own; every later call, from this process or any
//! other, reads it back. With the `macros` feature, `#[stashed_result]` does the same for
//! every call of the function.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//!
//! fn slow_square((x, label): (u64, String)) -> (u64, String) {
//!     std::thread::sleep(std::time::Duration::from_millis(50)); // the expensive part
//!     (x * x, label)
//! }
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! let first = stash.run(slow_square, (12, "cat".to_owned()))?; // computed
//! let again = stash.run(slow_square, (12, "cat".to_owned()))?; // read back, no call
//! assert_eq!(first, again);
//!
//! // The results are a stash like any other: look one up without calling the function.
//! let name = hashstash::memo::name_of(&slow_square)?;
//! let stored: Option<(u64, String)> = stash.get_func(&name, &(12, "cat"))?;
//! assert_eq!(stored, Some((144, "cat".to_owned())));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A closure has no name that survives a rebuild: name it with
//! [`Stash::run_named`](crate::Stash::run_named).
//!
//! # Map a function over many items, in parallel
//!
//! [`Stash::map_named`](crate::Stash::map_named) runs a function over items on a thread pool
//! and stores each result, so a second map computes only the items it has not seen.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::map::MapOptions;
//! use hashstash::Stash;
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! let cube = |x: u64| x * x * x;
//! let options = MapOptions { num_threads: Some(2), ..Default::default() };
//! let cubes: Vec<u64> = stash
//!     .map_named("cube", cube, (0..100).collect(), options.clone())?
//!     .results()?;
//! assert_eq!(cubes[10], 1_000);
//! // 100 stored results, and 50 new items to compute.
//! let more = stash.map_named("cube", cube, (50..150).collect(), options)?;
//! assert_eq!(more.results()?.len(), 100);
//! assert_eq!(stash.function_stash("cube")?.len()?, 150);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Query a cache with SQL
//!
//! With the `sql` feature every stash is a table: scalar keys in `_key`, the fields of map
//! values in columns of their own (nested maps as dotted names), and DataFusion runs the
//! query over it.
//!
//! ```
//! # #[cfg(feature = "sql")] {
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Run { model: &'static str, loss: f64, epochs: u32 }
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! stash.set("run-1", &Run { model: "small", loss: 0.31, epochs: 10 })?;
//! stash.set("run-2", &Run { model: "small", loss: 0.27, epochs: 20 })?;
//! stash.set("run-3", &Run { model: "large", loss: 0.12, epochs: 20 })?;
//!
//! let batches = stash.sql(
//!     "SELECT model, count(*) AS runs, min(loss) AS best FROM stash GROUP BY model ORDER BY best",
//! )?;
//! let table = hashstash::table::sql::pretty(&batches)?;
//! println!("{table}");
//! assert!(table.lines().nth(3).is_some_and(|row| row.contains("large")));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Several stashes join with [`table::sql::sql_over`](crate::table::sql::sql_over); from the
//! shell, `hashstash sql "SELECT ..."`.
//!
//! # Ship a parquet snapshot
//!
//! [`Stash::to_parquet`](crate::Stash::to_parquet) writes the table to a parquet file that
//! pandas, polars, DuckDB or Spark read as it is;
//! [`Stash::load_parquet`](crate::Stash::load_parquet) loads such a file back into the nested
//! values it came from, in any stash.
//!
//! ```
//! # #[cfg(feature = "sql")] {
//! # let dir = tempfile::tempdir()?;
//! use hashstash::{EngineKind, Stash};
//! use std::collections::BTreeMap;
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! for i in 0..100u32 {
//!     stash.set(&format!("item{i}"), &BTreeMap::from([("i", i), ("square", i * i)]))?;
//! }
//! let snapshot = dir.path().join("snapshot.parquet");
//! assert_eq!(stash.to_parquet(&snapshot)?, 100); // rows written
//!
//! // Elsewhere: a fresh stash, any engine, from the file alone.
//! let copy = Stash::builder().root_dir(dir.path()).dbname("copy").engine(EngineKind::Pairtree).open()?;
//! copy.load_parquet(&snapshot)?;
//! let item: Option<BTreeMap<String, u32>> = copy.get("item7")?;
//! assert_eq!(item.map(|m| m["square"]), Some(49));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From the shell: `hashstash export --format parquet snapshot.parquet` and `hashstash import
//! snapshot.parquet`.
//!
//! # Query a large stash: stream the result, keep a snapshot
//!
//! [`Stash::sql_stream`](crate::Stash::sql_stream) gives a query's result batch by batch as it
//! is made, so a result larger than memory can go to a file;
//! [`Stash::snapshot`](crate::Stash::snapshot) keeps the table beside the stash as columns,
//! so that repeated queries skip decoding the entries until the next write.
//!
//! ```
//! # #[cfg(feature = "sql")] {
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//! use hashstash::table::sql::ParquetSink;
//! use std::collections::BTreeMap;
//!
//! let stash = Stash::builder().root_dir(dir.path()).open()?;
//! for i in 0..1000u32 {
//!     stash.set(&format!("item{i}"), &BTreeMap::from([("i", i), ("square", i * i)]))?;
//! }
//! stash.snapshot()?; // LMDB, SQLite and diskcache keep one
//! let rows = stash.sql_stream("SELECT _key, square FROM stash WHERE i % 2 = 0")?;
//! let mut file = ParquetSink::create(&dir.path().join("even.parquet"), rows.schema())?;
//! for batch in rows {
//!     file.write(&batch?)?;
//! }
//! assert_eq!(file.close()?, 500);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From the shell: `hashstash snapshot`, then `hashstash sql "SELECT ..." --format parquet
//! --out even.parquet`.
//!
//! # Share a cache through Redis
//!
//! With the `redis` feature, processes on several machines share one stash through a Redis
//! server; a memoized function is then computed once across all of them (a lease per key).
//! MongoDB works the same way (`EngineKind::Mongo`, feature `mongo`).
//!
//! ```
//! # #[cfg(feature = "redis")] {
//! # let Some(url) = std::env::var("HASHSTASH_REDIS_URL").ok() else {
//! #     assert!(std::env::var_os("HASHSTASH_REQUIRE_SERVERS").is_none(), "no Redis server");
//! #     return Ok(());
//! # };
//! use hashstash::{EngineKind, Stash};
//!
//! // On every machine: the same URL and the same root name give the same stash.
//! let shared = || {
//!     Stash::builder()
//!         .engine(EngineKind::Redis)
//!         .url(url.as_str()) // e.g. redis://cache.internal:6379/0
//!         .root_dir("cookbook_shared")
//!         .timeout_ms(2_000) // a dead server is an error after 2 s, not a hang
//!         .open()
//! };
//! let here = shared()?;
//! here.clear()?;
//! here.set("model-v3", &vec![0.25, 0.5])?;
//! let there = shared()?; // another process, another machine
//! assert_eq!(there.get::<_, Vec<f64>>("model-v3")?, Some(vec![0.25, 0.5]));
//! # here.clear()?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Migrate a stash to another engine
//!
//! [`Stash::copy_to`](crate::Stash::copy_to) (CLI `hashstash copy SRC DST`) copies every
//! entry, with its write time and expiry (and in append mode every version), into a stash on
//! another engine, serializer or compressor, and checks the count at the end; a dry run says
//! what would move. ([`Stash::update_from`](crate::Stash::update_from) copies only latest
//! values, stamped now.)
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::{Compressor, CopyOptions, EngineKind, Serializer, Stash};
//!
//! let old = Stash::builder().root_dir(dir.path()).engine(EngineKind::Pairtree).open()?;
//! for i in 0..1_000u32 {
//!     old.set(&i, &format!("value {i}"))?;
//! }
//! let new = Stash::builder()
//!     .root_dir(dir.path())
//!     .dbname("migrated")
//!     .engine(EngineKind::Lmdb)
//!     .serializer(Serializer::Json)
//!     .compress(Compressor::Raw)
//!     .open()?;
//! let plan = old.copy_to(&new, CopyOptions::new().dry_run(true))?;
//! assert_eq!((plan.entries, new.len()?), (1_000, 0));
//! // `.progress(observer)` reports each entry copied (see `hashstash::progress`).
//! let report = old.copy_to(&new, CopyOptions::new())?;
//! assert_eq!(report.destination_after, 1_000);
//! assert_eq!(new.get::<_, String>(&999u32)?.as_deref(), Some("value 999"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Keep every version of a value
//!
//! In append mode every `set` adds a version, numbered from 1 and stamped with its time.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//!
//! let stash = Stash::builder().root_dir(dir.path()).append_mode(true).open()?;
//! stash.set("price", &10)?;
//! stash.set("price", &12)?;
//! assert_eq!(stash.get::<_, i32>("price")?, Some(12)); // the latest
//! assert_eq!(stash.get_all::<_, i32>("price")?, vec![10, 12]);
//! let versions = stash.get_all_with_metadata::<_, i32>("price")?;
//! assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Expire results and drop stale ones
//!
//! A ttl on the builder makes everything written through the handle expire (a per-write
//! [`Stash::set_with_ttl`](crate::Stash::set_with_ttl) overrides it); an expired result of a
//! memoized function is computed again. [`Stash::invalidate_call`](crate::Stash::invalidate_call)
//! drops one stored result now, [`Stash::prune_expired`](crate::Stash::prune_expired) gives
//! the room of expired entries back, and [`Stash::stats`](crate::Stash::stats) shows what the
//! cache did.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//! use std::time::Duration;
//!
//! let prices = Stash::builder()
//!     .root_dir(dir.path())
//!     .ttl(Duration::from_secs(3600)) // an hour-old price is a miss
//!     .open()?;
//! let fetch = |item: String| item.len() as f64 * 1.5; // a slow lookup, say
//! let price = prices.run_named("price", fetch, "apples".to_owned())?;
//! assert_eq!(prices.run_named("price", fetch, "apples".to_owned())?, price); // read back
//!
//! // The supplier changed its price list: drop that result now.
//! assert!(prices.invalidate_call("price", &"apples")?);
//! prices.run_named("price", fetch, "apples".to_owned())?; // computed again
//!
//! prices.prune_expired()?; // nothing has expired yet
//! let stats = prices.function_stash("price")?.stats();
//! assert_eq!((stats.hits, stats.misses), (1, 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Keep a cache small, and drop what is old
//!
//! `max_entries` (and `max_bytes`) evict the entries written longest ago once a write would
//! pass the limit; [`Stash::keys_written`](crate::Stash::keys_written) and its kin read what
//! was written in a time window, and [`Stash::prune`](crate::Stash::prune) removes what is
//! older than a moment (after a dry run that reports it).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::{Moment, Prune, Stash, TimeFilter};
//!
//! let cache = Stash::builder().root_dir(dir.path()).max_entries(500).open()?;
//! for page in 0..2_000u32 {
//!     cache.set(&page, &format!("<html>{page}</html>"))?;
//! }
//! assert!(cache.len()? <= 500);
//! assert!(cache.contains(&1_999u32)?);
//!
//! let hour_ago: Moment = "1h".parse()?; // or any chrono::DateTime, or unix seconds
//! let recent = cache.keys_written::<u32>(TimeFilter::new().after(hour_ago))?.count();
//! assert_eq!(recent, cache.len()?);
//! let report = cache.prune(Prune::older_than(hour_ago))?; // a dry run
//! assert_eq!(report.entries, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
