//! Columnar snapshots (`Stash::snapshot`): while nothing is written, a whole-table scan reads
//! the snapshot instead of the stash; after a write the snapshot is ignored (feature `sql`).

use crate::common::stash;
use hashstash::table::sql::pretty;
use hashstash::EngineKind;
use serde_json::json;

/// Runs `query`; returns what it showed and how many entries it read from the engine.
fn run(s: &hashstash::Stash, query: &str) -> (String, u64) {
    s.reset_stats();
    let shown = pretty(&s.sql(query).unwrap()).unwrap();
    (shown, s.reset_stats().scanned)
}

/// The rows of a parquet file, as one batch.
fn read_parquet(path: &std::path::Path) -> datafusion::arrow::record_batch::RecordBatch {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    let schema = batches[0].schema();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}

#[test]
fn a_current_snapshot_answers_scans_and_a_write_makes_it_stale() {
    for engine in [EngineKind::Lmdb, EngineKind::Sqlite, EngineKind::Diskcache] {
        if !engine.is_available() {
            continue;
        }
        let (_d, s) = stash(engine);
        let rows: Vec<(String, serde_json::Value)> = (0..2_000i64)
            .map(|i| {
                (
                    format!("k{i:05}"),
                    json!({"n": i, "name": (["cat", "dog"][(i % 2) as usize])}),
                )
            })
            .collect();
        s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
        let group =
            "SELECT name, count(*) AS c, sum(n) AS s FROM stash GROUP BY name ORDER BY name";
        let everything = "SELECT * FROM stash";
        let (before, _) = run(&s, group);
        let (all_before, _) = run(&s, everything);
        let (first_before, _) = run(&s, "SELECT _key FROM stash LIMIT 3");
        let files = tempfile::tempdir().unwrap();
        s.to_parquet(files.path().join("a.parquet")).unwrap();
        assert!(!s.has_current_snapshot().unwrap());
        assert_eq!(s.snapshot().unwrap(), 2_000, "{engine}");
        assert!(s.has_current_snapshot().unwrap());
        // The same answers, with no entry read from the engine.
        assert_eq!(run(&s, group), (before.clone(), 0), "{engine}");
        assert_eq!(run(&s, everything), (all_before, 0), "{engine}");
        // A small LIMIT reads its few entries from the engine; a large one the snapshot, in
        // the same order.
        assert_eq!(
            run(&s, "SELECT _key FROM stash LIMIT 3"),
            (first_before, 3),
            "{engine}"
        );
        let (keys_before, _) = run(&s, "SELECT _key FROM stash");
        assert_eq!(
            run(&s, "SELECT _key FROM stash LIMIT 50000"),
            (keys_before, 0),
            "{engine}: the stash's order"
        );
        // A parquet export reads the snapshot too, and writes the same rows.
        s.reset_stats();
        assert_eq!(s.to_parquet(files.path().join("b.parquet")).unwrap(), 2_000);
        assert_eq!(s.reset_stats().scanned, 0, "{engine}");
        assert_eq!(
            read_parquet(&files.path().join("b.parquet")),
            read_parquet(&files.path().join("a.parquet")),
            "{engine}"
        );
        // A lookup still reads its one entry from the engine.
        let (one, scanned) = run(&s, "SELECT n FROM stash WHERE _key = 'k00007'");
        assert!(one.contains("| 7 "), "{engine}: {one}");
        assert_eq!(scanned, 1, "{engine}");
        // A write: the snapshot is stale, the engine answers, and sees the write.
        s.set("k00001", &json!({"n": 1_000_000, "name": "dog"}))
            .unwrap();
        assert!(!s.has_current_snapshot().unwrap(), "{engine}");
        let (after, scanned) = run(&s, group);
        assert_ne!(after, before, "{engine}");
        // The odd numbers below 2,000 sum to 1,000,000; one of them, 1, is now 1,000,000.
        assert!(after.contains("| 1999999 "), "{engine}: {after}");
        assert!(scanned >= 2_000, "{engine}: {scanned}");
    }
}

#[test]
fn a_damaged_snapshot_never_gives_a_wrong_answer_and_other_engines_keep_none() {
    let (_d, s) = stash(EngineKind::Lmdb);
    for i in 0..100i64 {
        s.set(&i, &json!({"n": i})).unwrap();
    }
    s.snapshot().unwrap();
    let path = s
        .config()
        .stash_dir()
        .join(hashstash::table::snapshot::SNAPSHOT_FILE);
    let whole = std::fs::read(&path).unwrap();
    let everything = "SELECT * FROM stash ORDER BY _key";
    let (truth, _) = run(&s, everything);
    // A flipped bit anywhere (metadata, data, padding) or a cut file: a query gives the
    // right answer or, when a column it reads does not match its sum, an error that drops
    // the snapshot; never a wrong answer. The next query is right.
    let mut errors = 0;
    for step in 0..60 {
        let at = step * (whole.len() - 1) / 59;
        let mut bytes = whole.clone();
        if step % 10 == 9 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= 1 << (step % 8);
        }
        std::fs::write(&path, &bytes).unwrap();
        match s.sql(everything) {
            Ok(batches) => assert_eq!(pretty(&batches).unwrap(), truth, "byte {at}"),
            Err(e) => {
                assert!(e.to_string().contains("snapshot"), "{e}");
                errors += 1;
            }
        }
        assert_eq!(run(&s, everything).0, truth, "byte {at}, again");
        std::fs::write(&path, &whole).unwrap();
        s.snapshot().unwrap();
    }
    assert!(errors > 0, "some damage lands in the columns read");
    assert!(s.has_current_snapshot().unwrap());
    for engine in [EngineKind::Memory, EngineKind::Pairtree] {
        let (_d, other) = stash(engine);
        assert!(matches!(
            other.snapshot(),
            Err(hashstash::Error::InvalidOption { .. })
        ));
    }
}
