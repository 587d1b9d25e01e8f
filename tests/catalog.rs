//! Every engine knows when it changed: a table's schema is inferred once per change and kept
//! in the engine's catalog, so that on an unchanged stash `_key =`, `_key IN (...)` and
//! `LIMIT n` read only the entries they return (counted by `Stats::scanned`); a stale or
//! damaged catalog costs a re-inference, never a wrong answer.

use crate::common::{engine_available, stash};
use hashstash::engine::EngineExt;
use hashstash::table::sql::{pretty, sql_over};
use hashstash::{EngineKind, Stash};
use serde_json::json;

/// More entries than a schema sample reads (10,000), so that a read of them all shows.
const ENTRIES: usize = 10_500;

fn filled(engine: EngineKind) -> (tempfile::TempDir, Stash) {
    let (dir, s) = stash(engine);
    let items: Vec<(String, serde_json::Value)> = (0..ENTRIES)
        .map(|i| {
            (
                format!("k{i}"),
                json!({"n": i, "name": format!("animal {i}")}),
            )
        })
        .collect();
    s.update(items.iter().map(|(k, v)| (k, v))).unwrap();
    (dir, s)
}

/// `query`'s result as text, and how many entries it read.
fn run(s: &Stash, query: &str) -> (String, u64) {
    s.reset_stats();
    let shown = pretty(&s.sql(query).unwrap()).unwrap();
    (shown, s.reset_stats().scanned)
}

fn engines() -> impl Iterator<Item = EngineKind> {
    EngineKind::available().filter(|e| engine_available(*e))
}

#[test]
fn every_engine_has_a_change_counter_that_every_write_raises() {
    for engine in engines() {
        let (_d, s) = stash(engine);
        let catalog = s.engine().catalog().expect("every engine keeps a catalog");
        let mut last = catalog.generation().unwrap();
        let mut changed = |what: &str| {
            let now = catalog.generation().unwrap();
            assert_ne!(now, last, "{engine}: {what} did not raise the counter");
            last = now;
        };
        s.set("a", &1).unwrap();
        changed("set");
        s.set_many([("b", &2), ("c", &3)]).unwrap();
        changed("set_many");
        s.setdefault("d", 4).unwrap();
        changed("setdefault");
        assert!(s.remove("a").unwrap());
        changed("remove");
        s.clear().unwrap();
        changed("clear");
        // Reads change nothing.
        let unchanged = catalog.generation().unwrap();
        let _ = s.get::<_, i32>("b").unwrap();
        let _ = s.len().unwrap();
        assert_eq!(catalog.generation().unwrap(), unchanged, "{engine}: a read");
        // Another handle on the same stash sees the same counter and catalog records.
        catalog.write_record("probe.json", b"{}").unwrap();
        let other = Stash::open_config(s.config().clone(), false).unwrap();
        let theirs = other.engine().catalog().unwrap();
        assert_eq!(theirs.generation().unwrap(), unchanged, "{engine}");
        assert_eq!(
            theirs.read_record("probe.json").unwrap().as_deref(),
            Some(&b"{}"[..]),
            "{engine}"
        );
        other.set("e", &5).unwrap();
        assert_ne!(
            catalog.generation().unwrap(),
            unchanged,
            "{engine}: another handle"
        );
    }
}

#[test]
fn on_an_unchanged_stash_lookups_and_limits_read_only_what_they_return() {
    for engine in engines() {
        let (_d, s) = filled(engine);
        // The first query after the writes samples the schema (10,000 entries), reads
        // everything and records the schema it saw.
        let (shown, scanned) = run(&s, "SELECT count(*) AS n FROM stash");
        assert!(shown.contains(&ENTRIES.to_string()), "{engine}: {shown}");
        assert_eq!(
            scanned,
            ENTRIES as u64 + 10_000,
            "{engine}: a sample and one pass"
        );

        let (shown, scanned) = run(&s, "SELECT n, name FROM stash WHERE _key = 'k77'");
        assert!(shown.contains("animal 77"), "{engine}: {shown}");
        assert_eq!(scanned, 1, "{engine}: a key lookup");

        let (shown, scanned) = run(
            &s,
            "SELECT n FROM stash WHERE _key IN ('k1', 'k2', 'missing') ORDER BY n",
        );
        assert!(
            shown.contains("| 1 ") && shown.contains("| 2 "),
            "{engine}: {shown}"
        );
        assert_eq!(scanned, 2, "{engine}: two lookups (one key missing)");

        let batches = s.sql("SELECT _key, n FROM stash LIMIT 10").unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 10, "{engine}");
        assert!(s.reset_stats().scanned <= 10, "{engine}: LIMIT 10");

        // The same through sql_over and a registered table.
        let (_, scanned) = {
            s.reset_stats();
            let b = sql_over(&[("zoo", &s)], "SELECT n FROM zoo WHERE _key = 'k5'").unwrap();
            (pretty(&b).unwrap(), s.reset_stats().scanned)
        };
        assert_eq!(scanned, 1, "{engine}: sql_over");
        let ctx = datafusion::prelude::SessionContext::new();
        hashstash::table::sql::register(&ctx, "zoo", &s, hashstash::Versions::Latest).unwrap();
        let batches = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { ctx.sql("SELECT n FROM zoo LIMIT 3").await?.collect().await })
            .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        assert!(s.reset_stats().scanned <= 3, "{engine}: a registered table");

        // After a write the schema is sampled (10,000 rows), not inferred from every row,
        // and the new entry's own column shows: the rows a lookup reads are checked.
        s.set("late", &json!({"n": -1, "late": true})).unwrap();
        let (shown, scanned) = run(&s, "SELECT * FROM stash WHERE _key = 'late'");
        assert!(
            shown.contains("late") && shown.contains("true"),
            "{engine}: {shown}"
        );
        assert!(
            scanned < ENTRIES as u64,
            "{engine}: {scanned} entries read for one key after a write"
        );
    }
}

#[test]
fn a_stale_or_damaged_catalog_costs_a_pass_not_a_wrong_answer() {
    for engine in engines() {
        let (_d, s) = stash(engine);
        for i in 0..50 {
            s.set(&format!("k{i}"), &json!({"n": i, "m": i * 2}))
                .unwrap();
        }
        run(&s, "SELECT count(*) FROM stash");
        let catalog = s.engine().catalog().unwrap();
        let record = catalog.read_record("schema-latest.json").unwrap().unwrap();
        let mut cached: serde_json::Value = serde_json::from_slice(&record).unwrap();

        // A record that lost column `m` at the current generation, checksum and all: what a
        // writer that died between its write and the counter could leave.
        let columns: Vec<(String, serde_json::Value)> =
            serde_json::from_value(cached["columns"].clone()).unwrap();
        let kept: Vec<_> = columns.into_iter().filter(|(c, _)| c != "m").collect();
        let generation = cached["generation"].as_u64().unwrap();
        let body = serde_json::to_vec(&(generation, &kept)).unwrap();
        cached["columns"] = json!(kept);
        cached["checksum"] = json!(xxhash_rust::xxh3::xxh3_64(&body));
        catalog
            .write_record("schema-latest.json", cached.to_string().as_bytes())
            .unwrap();
        let (shown, _) = run(&s, "SELECT * FROM stash WHERE _key = 'k3'");
        assert!(
            shown.contains("| m ") || shown.contains(" m |"),
            "{engine}: {shown}"
        );
        assert!(shown.contains("| 6 "), "{engine}: m of k3 is 6: {shown}");
        let (shown, _) = run(&s, "SELECT sum(m) AS total FROM stash");
        assert!(shown.contains("2450"), "{engine}: {shown}");

        // Damaged bytes are a miss.
        catalog
            .write_record("schema-latest.json", b"{\"generation\": 1, \"colu")
            .unwrap();
        let (shown, scanned) = run(&s, "SELECT sum(n) AS total FROM stash");
        assert!(shown.contains("1225"), "{engine}: {shown}");
        assert_eq!(scanned, 100, "{engine}: a sample (all 50) and one pass");
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn a_lookup_of_a_new_column_past_the_sample_reads_the_sample_and_its_row_twice() {
    // SQLite reads in key order: `zzz` comes after the 10,000-row sample.
    let (_d, s) = filled(EngineKind::Sqlite);
    run(&s, "SELECT count(*) FROM stash"); // records the schema
    s.set("zzz", &json!({"n": -1, "late": "yes"})).unwrap();
    for query in [
        "SELECT * FROM stash WHERE _key = 'zzz'",
        "SELECT late FROM stash WHERE _key IN ('zzz', 'k7') ORDER BY late",
    ] {
        s.set("k1", &json!({"n": 1, "name": "animal 1"})).unwrap(); // a write each time
        let (shown, scanned) = run(&s, query);
        assert!(shown.contains("yes"), "{query}: {shown}");
        // The sample, the rows, then the same rows again on the sample widened by them;
        // not a pass over the whole stash.
        assert!(scanned <= 10_000 + 2 * 2, "{query}: {scanned}");
    }
}
