//! SQL over stashes, Arrow schemas and parquet export (feature `sql`).

use crate::common::{append_stash, stash};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use hashstash::table::sql::{pretty, sql_over};
use hashstash::{EngineKind, Versions};
use serde_json::json;

fn animals(engine: EngineKind) -> (tempfile::TempDir, hashstash::Stash) {
    let (d, s) = stash(engine);
    for n in 0..100i64 {
        let cat = n % 3 == 0;
        s.set(
            &format!("Animal {}", n + 1),
            &json!({
                "name": if cat { "cat" } else { "dog" },
                "goodness": if n % 2 == 0 { "good" } else { "bad" },
                "etc": {"age": n % 10 + 1, "goes_to": {"heaven": !cat || n % 2 == 0}},
            }),
        )
        .unwrap();
    }
    (d, s)
}

pub fn single_i64(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> i64 {
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let batch = batches.iter().find(|b| b.num_rows() == 1).unwrap();
    batch.column(0).as_primitive::<Int64Type>().value(0)
}

#[test]
fn the_seeds_scalar_and_record_values() {
    let (_d, s) = stash(EngineKind::Memory);
    s.set("x", &1).unwrap();
    s.set("y", &2).unwrap();
    s.set("z", &json!({"result": 3})).unwrap();
    s.set("zz", &json!({"result": 4})).unwrap();
    assert_eq!(single_i64(&s.sql("SELECT count(*) FROM stash").unwrap()), 4);
    assert_eq!(
        single_i64(&s.sql("SELECT count(_key) FROM stash").unwrap()),
        4
    );
    assert_eq!(
        single_i64(&s.sql("SELECT count(_value) FROM stash").unwrap()),
        2
    );
    assert_eq!(
        single_i64(&s.sql("SELECT sum(result) FROM stash").unwrap()),
        7
    );
}

#[test]
fn nested_animals_group_by_with_dotted_columns() {
    let (_d, s) = animals(EngineKind::default_engine());
    let (schema, _) = s.to_batches().unwrap();
    for column in ["_key", "name", "goodness", "etc.age", "etc.goes_to.heaven"] {
        assert!(
            schema.field_with_name(column).is_ok(),
            "{column} missing: {schema:?}"
        );
    }
    assert_eq!(
        schema.field_with_name("etc.age").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema
            .field_with_name("etc.goes_to.heaven")
            .unwrap()
            .data_type(),
        &DataType::Boolean
    );
    let batches = s
        .sql(r#"SELECT name, goodness, count(*) AS n, avg("etc.age") AS age FROM stash GROUP BY 1, 2 ORDER BY 1, 2"#)
        .unwrap();
    let shown = pretty(&batches).unwrap();
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        4,
        "{shown}"
    );
    let total: i64 = batches
        .iter()
        .map(|b| {
            (0..b.num_rows())
                .map(|i| b.column(2).as_primitive::<Int64Type>().value(i))
                .sum::<i64>()
        })
        .sum();
    assert_eq!(total, 100);
    // A key lookup.
    let found = s
        .sql(r#"SELECT "etc.age" FROM stash WHERE _key = 'Animal 7'"#)
        .unwrap();
    assert_eq!(single_i64(&found), 7);
}

#[test]
fn schema_inference_widens_and_never_drops_a_field() {
    let (_d, s) = stash(EngineKind::Memory);
    for i in 0..500 {
        s.set(
            &i,
            &json!({"n": i, "mixed": if i % 2 == 0 { json!(1) } else { json!(1.5) }}),
        )
        .unwrap();
    }
    s.set(
        &1000,
        &json!({"n": 1000, "late": "only here", "conflict": 1}),
    )
    .unwrap();
    s.set(&1001, &json!({"n": 1001, "conflict": "text"}))
        .unwrap();
    s.set(&1002, &json!({"n": 1002, "tags": ["a", "b"]}))
        .unwrap();
    let (schema, batches) = s.to_batches().unwrap();
    assert_eq!(
        schema.field_with_name("n").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("mixed").unwrap().data_type(),
        &DataType::Float64
    );
    assert_eq!(
        schema.field_with_name("late").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema.field_with_name("conflict").unwrap().data_type(),
        &DataType::Utf8
    );
    assert!(matches!(
        schema.field_with_name("tags").unwrap().data_type(),
        DataType::List(_)
    ));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 503);
    let late = s
        .sql("SELECT late FROM stash WHERE late IS NOT NULL")
        .unwrap();
    assert!(pretty(&late).unwrap().contains("only here"));
    let conflict = s
        .sql("SELECT conflict FROM stash WHERE conflict IS NOT NULL ORDER BY conflict")
        .unwrap();
    let shown = pretty(&conflict).unwrap();
    assert!(shown.contains("| 1 ") && shown.contains("text"), "{shown}");
    let mixed = s.sql("SELECT sum(mixed) FROM stash").unwrap();
    let batch = mixed.iter().find(|b| b.num_rows() == 1).unwrap();
    assert_eq!(
        batch.column(0).as_primitive::<Float64Type>().value(0),
        250.0 * 1.0 + 250.0 * 1.5
    );
}

#[test]
fn append_mode_has_version_and_timestamp_columns() {
    let (_d, s) = append_stash(EngineKind::Pairtree);
    s.set(&json!({"name": "cat"}), &json!({"goodness": "good"}))
        .unwrap();
    s.set(&json!({"name": "cat"}), &json!({"goodness": "bad"}))
        .unwrap();
    let (schema, batches) = s.to_batches_of(Versions::All).unwrap();
    assert_eq!(
        schema.field_with_name("_version").unwrap().data_type(),
        &DataType::UInt64
    );
    assert!(
        matches!(schema.field_with_name("_timestamp").unwrap().data_type(), DataType::Timestamp(_, Some(tz)) if tz.as_ref() == "UTC")
    );
    let versions: Vec<u64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("_version")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(versions, [1, 2]);
    let latest = s.sql("SELECT goodness, _version FROM stash").unwrap();
    let shown = pretty(&latest).unwrap();
    assert!(
        shown.contains("| bad ") && !shown.contains("| good "),
        "{shown}"
    );
}

#[test]
fn several_stashes_in_one_query() {
    let (_a, people) = stash(EngineKind::Memory);
    let (_b, pets) = stash(EngineKind::Memory);
    people.set("ann", &json!({"pet": "rex"})).unwrap();
    people.set("bob", &json!({"pet": "tom"})).unwrap();
    pets.set("rex", &json!({"kind": "dog"})).unwrap();
    pets.set("tom", &json!({"kind": "cat"})).unwrap();
    let joined = sql_over(
        &[("people", &people), ("pets", &pets)],
        "SELECT people._key AS who, pets.kind FROM people JOIN pets ON people.pet = pets._key ORDER BY who",
    )
    .unwrap();
    let shown = pretty(&joined).unwrap();
    assert!(
        shown.contains("ann") && shown.contains("dog") && shown.contains("cat"),
        "{shown}"
    );
    // A bad query is an SQL error of its own, naming what is wrong.
    for bad in ["SELECT nonsense FROM stash", "NOT SQL AT ALL"] {
        let err = people.sql(bad).unwrap_err();
        assert!(
            matches!(err, hashstash::Error::Sql { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().starts_with("SQL failed: "), "{err}");
    }
    let err = people.sql("SELECT nonsense FROM stash").unwrap_err();
    assert!(err.to_string().contains("nonsense"), "{err}");
}

#[test]
fn parquet_export_is_read_by_an_independent_reader() {
    let (_d, s) = animals(EngineKind::Memory);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("animals.parquet");
    assert_eq!(s.to_parquet(&path).unwrap(), 100);
    // pyarrow (from PyPI; scripts/test.sh installs it) reads what we wrote.
    let script = "import sys, pyarrow.parquet as pq\n\
                  t = pq.read_table(sys.argv[1])\n\
                  print(t.num_rows, sorted(t.column_names), sum(t.column('etc.age').to_pylist()))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let expected_age: i64 = (0..100).map(|n| n % 10 + 1).sum();
            assert_eq!(
                text.trim(),
                format!("100 ['_key', 'etc.age', 'etc.goes_to.heaven', 'goodness', 'name'] {expected_age}")
            );
        }
        other => {
            if std::env::var_os("HASHSTASH_REQUIRE_SERVERS").is_some() {
                panic!("pyarrow could not read the parquet file: {other:?}");
            }
            eprintln!("skipped the independent read: python3 with pyarrow is not here ({other:?})");
        }
    }
}

#[cfg(feature = "dataframe")]
#[test]
fn the_table_as_a_polars_dataframe() {
    let (_d, s) = animals(EngineKind::Memory);
    let df = s.df().unwrap();
    assert_eq!(df.height(), 100);
    let mut names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["_key", "etc.age", "etc.goes_to.heaven", "goodness", "name"]
    );
    let ages = df
        .column("etc.age")
        .unwrap()
        .as_materialized_series()
        .sum::<i64>()
        .unwrap();
    assert_eq!(ages, (0..100).map(|n| n % 10 + 1).sum::<i64>());
    // Append mode: versions and UTC timestamps come through.
    let (_d2, versions) = append_stash(EngineKind::Memory);
    versions.set("k", &json!({"v": 1})).unwrap();
    versions.set("k", &json!({"v": 2})).unwrap();
    let df = versions.df().unwrap();
    assert_eq!(df.height(), 1);
    assert!(df.column("_timestamp").unwrap().dtype().is_temporal());
}

#[test]
fn a_parquet_export_loads_back_into_the_same_values() {
    let (_d, s) = animals(EngineKind::Memory);
    s.set("plain", &42).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("animals.parquet");
    s.to_parquet(&path).unwrap();
    let (_d2, copy) = stash(EngineKind::Pairtree);
    assert_eq!(copy.load_parquet(&path).unwrap(), 101);
    let original: serde_json::Value = s.get("Animal 7").unwrap().unwrap();
    let loaded: serde_json::Value = copy.get("Animal 7").unwrap().unwrap();
    assert_eq!(loaded, original, "nested values come back nested");
    assert_eq!(copy.get::<_, i64>("plain").unwrap(), Some(42));
    // JSON lines load too, and a file without `key`/`value` is a clear error.
    let jsonl = dir.path().join("entries.jsonl");
    std::fs::write(
        &jsonl,
        "{\"key\": [1, 2], \"value\": {\"a\": 1}}\n\n{\"key\": \"b\", \"value\": null}\n",
    )
    .unwrap();
    assert_eq!(copy.load_jsonl(&jsonl).unwrap(), 2);
    assert_eq!(
        copy.get::<_, serde_json::Value>(&[1, 2]).unwrap(),
        Some(json!({"a": 1}))
    );
    std::fs::write(&jsonl, "{\"nokey\": 1}\n").unwrap();
    assert!(matches!(
        copy.load_jsonl(&jsonl),
        Err(hashstash::Error::InvalidOption { .. })
    ));
    std::fs::write(dir.path().join("bad.parquet"), b"not parquet").unwrap();
    assert!(matches!(
        copy.load_parquet(dir.path().join("bad.parquet")),
        Err(hashstash::Error::Decode { .. })
    ));
}

/// A stash whose last rows (past the sample a first query reads) have a new column and a
/// wider kind. Keys are text: SQLite reads them in key order, so the `z` rows come last;
/// LMDB reads in hash order, which may put some of them in the sample.
fn late_changes(engine: EngineKind) -> (tempfile::TempDir, hashstash::Stash) {
    let (dir, s) = stash(engine);
    let rows: Vec<(String, serde_json::Value)> = (0..30_000u64)
        .map(|i| (format!("k{i:06}"), json!({"n": i, "x": 1})))
        .chain((0..10u64).map(|i| (format!("z{i:06}"), json!({"n": i, "x": 2.5, "late": "yes"}))))
        .collect();
    s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
    (dir, s)
}

#[test]
fn a_first_query_gives_the_exact_schemas_results() {
    for engine in [EngineKind::default_engine(), EngineKind::Sqlite] {
        if !engine.is_available() {
            continue;
        }
        let (_d, s) = late_changes(engine);
        let totals = s
            .sql("SELECT count(late), sum(x), count(*) FROM stash")
            .unwrap();
        let shown = pretty(&totals).unwrap();
        assert!(shown.contains("| 10 "), "{engine}: {shown}");
        assert!(
            shown.contains("30025"),
            "{engine}: sum(x) = 30000 + 25: {shown}"
        );
        // `SELECT *` with a LIMIT reads a few rows only: the schema is still the whole one.
        s.set("k000001", &json!({"n": 1, "x": 1})).unwrap();
        let few = s.sql("SELECT * FROM stash LIMIT 3").unwrap();
        let schema = few[0].schema();
        assert_eq!(
            schema.field_with_name("x").unwrap().data_type(),
            &DataType::Float64,
            "{engine}"
        );
        assert!(schema.field_with_name("late").is_ok(), "{engine}");
    }
}

/// Runs `query` over `table` alone.
fn query_table(
    table: &hashstash::table::provider::StashTable,
    query: &str,
) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("stash", std::sync::Arc::new(table.clone()))
        .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { ctx.sql(query).await?.collect().await })
        .unwrap()
}

#[cfg(feature = "sqlite")]
#[test]
fn a_sampled_schema_is_checked_by_the_scan() {
    use hashstash::table::provider::{StashTable, Verdict};
    let (_d, s) = late_changes(EngineKind::Sqlite);
    let table = StashTable::speculative(s.clone(), Versions::Latest).unwrap();
    assert!(table.is_speculative());
    assert!(
        table.arrow_schema().field_with_name("late").is_err(),
        "sampled"
    );
    // A LIMIT stops the scan: the rows it returned fit the sample, so its answer stands.
    query_table(&table, "SELECT n FROM stash LIMIT 2");
    assert!(matches!(table.verdict(), Verdict::Holds));
    // A full scan can: the whole stash has `late` and a float `x`.
    query_table(&table, "SELECT count(*) FROM stash");
    let Verdict::Differs(seen) = table.verdict() else {
        panic!("the late rows were read");
    };
    assert_eq!(seen.kind("x"), Some(&hashstash::table::schema::Kind::Float));
    assert!(seen.kind("late").is_some());
}

#[test]
fn a_sampled_schema_that_holds_keeps_the_results_and_is_cached() {
    use hashstash::table::provider::{StashTable, Verdict};
    let (_d, s) = stash(EngineKind::default_engine());
    let rows: Vec<(u64, serde_json::Value)> = (0..100u64).map(|i| (i, json!({"n": i}))).collect();
    s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
    let table = StashTable::speculative(s.clone(), Versions::Latest).unwrap();
    assert!(table.is_speculative());
    assert_eq!(
        single_i64(&query_table(&table, "SELECT sum(n) FROM stash")),
        4950
    );
    assert!(matches!(table.verdict(), Verdict::Holds));
    // What the scan saw is cached: the next table is exact, with no sampling...
    let next = StashTable::speculative(s.clone(), Versions::Latest).unwrap();
    assert!(!next.is_speculative());
    // ...until a write.
    s.set(&1u64, &json!({"n": 1})).unwrap();
    assert!(StashTable::speculative(s, Versions::Latest)
        .unwrap()
        .is_speculative());
}

#[test]
fn filters_on_timestamp_narrow_the_scan() {
    use hashstash::engine::WriteMeta;
    for engine in [EngineKind::Memory, EngineKind::Sqlite] {
        if !crate::common::engine_available(engine) {
            continue;
        }
        let (_d, s) = append_stash(engine);
        let encoded: Vec<(Vec<u8>, Vec<u8>, i64)> =
            [("a", 1000), ("b", 2000), ("c", 3000), ("a", 4000)]
                .iter()
                .map(|(k, t)| {
                    let value = json!({"written": t});
                    (
                        s.encode_key(k).unwrap(),
                        s.encode_value(&value).unwrap(),
                        *t,
                    )
                })
                .collect();
        let items: Vec<(&[u8], &[u8], WriteMeta)> = encoded
            .iter()
            .map(|(k, v, t)| {
                let meta = WriteMeta {
                    timestamp_micros: Some(t * 1_000_000),
                    expires_micros: None,
                };
                (k.as_slice(), v.as_slice(), meta)
            })
            .collect();
        s.engine().write_items(&items).unwrap();
        // 2500 s after the epoch is 00:41:40.
        let after = "_timestamp > TIMESTAMP '1970-01-01T00:41:40Z'";
        let rows = s
            .sql(&format!(
                "SELECT _key, written FROM stash WHERE {after} ORDER BY _key"
            ))
            .unwrap();
        let shown = pretty(&rows).unwrap();
        assert!(shown.contains("| a    | 4000"), "{engine}: {shown}");
        assert!(shown.contains("| c    | 3000"), "{engine}: {shown}");
        assert!(!shown.contains("| b "), "{engine}: {shown}");
        let plan = pretty(
            &s.sql(&format!("EXPLAIN SELECT _key FROM stash WHERE {after}"))
                .unwrap(),
        )
        .unwrap();
        assert!(
            plan.contains("scan of entries written in"),
            "{engine}: {plan}"
        );
        // Both bounds, inclusive, and the other way round.
        let between = "_timestamp BETWEEN TIMESTAMP '1970-01-01T00:33:20Z' AND TIMESTAMP '1970-01-01T00:50:00Z'";
        let rows = s
            .sql(&format!("SELECT count(*) FROM stash WHERE {between}"))
            .unwrap();
        assert_eq!(
            single_i64(&rows),
            2,
            "{engine}: b (2000 s) and c (3000 s); a is 4000 s"
        );
        let flipped = "TIMESTAMP '1970-01-01T00:41:40Z' >= _timestamp";
        let rows = s
            .sql(&format!("SELECT count(*) FROM stash WHERE {flipped}"))
            .unwrap();
        assert_eq!(single_i64(&rows), 1, "{engine}: b only");
    }
}
