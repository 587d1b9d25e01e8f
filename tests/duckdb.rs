//! hashstash SQL against DuckDB (PyPI) over the same JSON lines, on messy data with the
//! shapes real caches have: integers that become floats after many rows, fields that first
//! appear late, unicode keys and text, nulls, booleans, lists, lists of records, several
//! key shapes in one stash, and two stashes joined on `_key`.
//!
//! Each query is written twice, once per dialect (hashstash flattens a record into dotted
//! columns, DuckDB keeps `value` a struct), and the answers must agree. The differences that
//! are choices, not bugs, are shown in the queries themselves and listed in the README:
//! a column whose kinds mix (the key here) is JSON text with text left as it is, which is
//! DuckDB's `->> '$'`; an integer past i64 makes its column text (DuckDB: HUGEINT); a value
//! that is a list of records is one row per record (DuckDB's `unnest`); a list of records
//! inside a record is a list of JSON texts (DuckDB: a list of structs).

use crate::common::stash;
use datafusion::arrow::record_batch::RecordBatch;
use hashstash::table::sql::sql_over;
use hashstash::{EngineKind, Stash};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Entries in the main stash: more than a sample of 10,000 rows, so that the kinds that
/// change late change past it.
const ENTRIES: i64 = 24_000;
/// From this entry on, `score` is a float and `late` appears.
const TURN: i64 = 20_000;

const NAMES: [&str; 5] = ["cat", "dog", "ünïcode ✓", "🐈‍⬛ emoji", "ключ"];

/// Key shapes: integers, text (some not Latin), and lists.
fn key_of(i: i64) -> Value {
    match i % 5 {
        0 => json!(i),
        1 => json!([i, "x"]),
        2 => json!(format!("ключ-{i}")),
        _ => json!(format!("k{i}")),
    }
}

fn value_of(i: i64) -> Value {
    let mut value = json!({
        "i": i,
        "score": if i < TURN { json!(i % 97) } else { json!((i % 97) as f64 + 0.25) },
        "name": NAMES[(i % 5) as usize],
        "flag": i % 3 == 0,
        "maybe": if i % 7 == 0 { Value::Null } else { json!(i % 11) },
        "tags": match i % 3 { 0 => json!(["a", "b"]), 1 => json!(["c"]), _ => json!([]) },
        "nested": {"depth": {"x": i % 4, "label": if i % 2 == 0 { "even" } else { "odd" }}},
    });
    if i >= TURN {
        value["late"] = json!(format!("late-{}", i % 10));
    }
    // An integer past i64 now and then: the column is text, every number kept whole.
    value["big"] = if i % 1000 == 999 {
        json!(u64::MAX)
    } else {
        json!(i)
    };
    // A list of records inside a record: a list of JSON texts, one per record.
    if i % 10 == 0 {
        value["parts"] = json!([{"p": 1}, {"p": i}]);
    }
    value
}

/// Orders: each value a list of records (one row per record), a field missing in some.
fn order_of(i: i64) -> Value {
    let items: Vec<Value> = (0..(i % 3 + 1))
        .map(|j| {
            let mut item = json!({"sku": format!("søk-{}", (i + j) % 4), "qty": j + 1});
            if (i + j) % 5 == 0 {
                item["qty"] = Value::Null;
            }
            item
        })
        .collect();
    Value::Array(items)
}

/// Writes the entries to a stash and to JSON lines (`{"key": .., "value": ..}`).
fn write_both(stash: &Stash, path: &std::path::Path, entries: &[(Value, Value)]) {
    stash.update(entries.iter().map(|(k, v)| (k, v))).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for (key, value) in entries {
        writeln!(file, "{}", json!({"key": key, "value": value})).unwrap();
    }
    file.flush().unwrap();
}

/// Our result as rows of JSON cells, in the result's column order.
fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for batch in batches {
        let mut out = Vec::new();
        let mut writer = datafusion::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut out);
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        let schema = batch.schema();
        for line in String::from_utf8(out).unwrap().lines() {
            let object: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
            let row = schema.fields().iter().map(|f| object[f.name()].clone());
            rows.push(row.collect());
        }
    }
    rows
}

/// Cells agree: numbers within a relative 1e-9 (sums of floats in another order), the rest
/// exactly.
fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        _ => ours == theirs,
    }
}

/// Whether DuckDB can run here: CI installs it (scripts/test.sh) and requires it.
fn duckdb_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import duckdb"])
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("HASHSTASH_REQUIRE_SERVERS").is_some() {
        panic!("DuckDB (PyPI duckdb) is missing: scripts/test.sh installs it");
    }
    if !found {
        eprintln!("skipped: python3 -m pip install duckdb");
    }
    found
}

/// DuckDB's answers to `queries` over the JSON lines `tables` names.
fn duckdb(tables: &[(&str, &std::path::Path)], queries: &[&str]) -> Vec<Vec<Vec<Value>>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/duckdb_compare.py");
    let tables: serde_json::Map<String, Value> = tables
        .iter()
        .map(|(name, path)| (name.to_string(), json!(path.to_str().unwrap())))
        .collect();
    let spec = json!({"tables": tables, "queries": queries});
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "duckdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(answer["results"].clone()).unwrap()
}

/// Each query as (hashstash SQL, DuckDB SQL).
const QUERIES: &[(&str, &str)] = &[
    // Integers that become floats past the sample: one float column, the same sum.
    (
        "SELECT count(*) AS n, sum(score) AS s, avg(score) AS a, max(score) AS m FROM stash",
        "SELECT count(*), sum(value.score), avg(value.score), max(value.score) FROM stash",
    ),
    (
        "SELECT score AS s FROM stash WHERE i = 23999",
        "SELECT value.score FROM stash WHERE value.i = 23999",
    ),
    // Unicode text, grouped and ordered (both order by bytes).
    (
        "SELECT name AS n, count(*) AS c, sum(i) AS s FROM stash GROUP BY name ORDER BY name",
        "SELECT value.name, count(*), sum(value.i) FROM stash GROUP BY 1 ORDER BY 1",
    ),
    // Nulls.
    (
        "SELECT count(maybe) AS c, count(*) - count(maybe) AS nulls, sum(maybe) AS s FROM stash",
        "SELECT count(value.maybe), count(*) - count(value.maybe), sum(value.maybe) FROM stash",
    ),
    // Booleans.
    (
        "SELECT flag AS f, count(*) AS c FROM stash GROUP BY flag ORDER BY flag",
        "SELECT value.flag, count(*) FROM stash GROUP BY 1 ORDER BY 1",
    ),
    (
        "SELECT count(*) AS c FROM stash WHERE flag AND maybe IS NULL",
        "SELECT count(*) FROM stash WHERE value.flag AND value.maybe IS NULL",
    ),
    // A field that first appears late.
    (
        "SELECT count(late) AS c, min(late) AS lo, max(late) AS hi FROM stash",
        "SELECT count(value.late), min(value.late), max(value.late) FROM stash",
    ),
    (
        "SELECT late AS l, count(*) AS c FROM stash GROUP BY late ORDER BY late NULLS FIRST",
        "SELECT value.late, count(*) FROM stash GROUP BY 1 ORDER BY 1 NULLS FIRST",
    ),
    // Lists: lengths (an empty list is 0), membership, one list whole.
    (
        "SELECT sum(array_length(tags)) AS n, count(*) FILTER (WHERE array_has(tags, 'a')) AS a \
         FROM stash",
        "SELECT sum(len(value.tags)), count(*) FILTER (WHERE list_contains(value.tags, 'a')) \
         FROM stash",
    ),
    (
        "SELECT tags AS t FROM stash WHERE i IN (3, 4, 5) ORDER BY i",
        "SELECT value.tags FROM stash WHERE value.i IN (3, 4, 5) ORDER BY value.i",
    ),
    // Nested records: dotted columns here, struct fields there.
    (
        r#"SELECT "nested.depth.x" AS x, "nested.depth.label" AS l, count(*) AS c FROM stash
           GROUP BY 1, 2 ORDER BY 1, 2"#,
        "SELECT value.nested.depth.x, value.nested.depth.label, count(*) FROM stash \
         GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    // Several key shapes in one `_key`: JSON text, text as it is (DuckDB's ->> '$').
    (
        "SELECT count(DISTINCT _key) AS c FROM stash",
        "SELECT count(DISTINCT _key) FROM stash",
    ),
    (
        "SELECT _key AS k, i FROM stash WHERE i IN (10, 11, 12, 13) ORDER BY i",
        "SELECT _key ->> '$', value.i FROM stash WHERE value.i IN (10, 11, 12, 13) \
         ORDER BY value.i",
    ),
    (
        "SELECT i FROM stash WHERE _key = 'ключ-12'",
        "SELECT value.i FROM stash WHERE _key ->> '$' = 'ключ-12'",
    ),
    // An integer past i64 makes its column text (lossless), DuckDB's HUGEINT as text.
    (
        "SELECT big AS b FROM stash WHERE i IN (998, 999) ORDER BY i",
        "SELECT value.big::VARCHAR FROM stash WHERE value.i IN (998, 999) ORDER BY value.i",
    ),
    // A list of records inside a record: each record as JSON text, DuckDB's to_json.
    (
        "SELECT parts AS p FROM stash WHERE i IN (0, 1, 10) ORDER BY i",
        "SELECT list_transform(value.parts, lambda x: to_json(x)::VARCHAR) FROM stash \
         WHERE value.i IN (0, 1, 10) ORDER BY value.i",
    ),
    // Two stashes joined on `_key`.
    (
        "SELECT o.owner AS owner, count(*) AS c, sum(p.age) AS s \
         FROM people p JOIN owners o ON p._key = o._key GROUP BY o.owner ORDER BY o.owner",
        "SELECT o.value.owner, count(*), sum(p.value.age) \
         FROM people p JOIN owners o ON p._key = o._key GROUP BY 1 ORDER BY 1",
    ),
    // Lists of records: one row per record, a missing field a null.
    (
        "SELECT sku AS s, count(*) AS c, count(qty) AS q, sum(qty) AS t FROM orders \
         GROUP BY sku ORDER BY sku",
        "SELECT item.sku, count(*), count(item.qty), sum(item.qty) \
         FROM (SELECT unnest(value) AS item FROM orders) GROUP BY 1 ORDER BY 1",
    ),
];

#[test]
fn messy_data_gives_what_duckdb_gives() {
    if !duckdb_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(format!("{name}.jsonl"));
    let (_d1, main) = stash(EngineKind::default_engine());
    let entries: Vec<(Value, Value)> = (0..ENTRIES).map(|i| (key_of(i), value_of(i))).collect();
    write_both(&main, &file("stash"), &entries);
    let (_d2, people) = stash(EngineKind::Memory);
    let (_d3, owners) = stash(EngineKind::Pairtree);
    let people_entries: Vec<(Value, Value)> = (0..300)
        .map(|i| (json!(format!("пёс-{i}")), json!({"age": i % 17})))
        .collect();
    let owner_entries: Vec<(Value, Value)> = (0..300)
        .step_by(2)
        .map(|i| {
            (
                json!(format!("пёс-{i}")),
                json!({"owner": (["ann", "bøb", "李"][i % 3])}),
            )
        })
        .collect();
    write_both(&people, &file("people"), &people_entries);
    write_both(&owners, &file("owners"), &owner_entries);
    let (_d4, orders) = stash(EngineKind::Memory);
    let order_entries: Vec<(Value, Value)> = (0..500)
        .map(|i| (json!(format!("o{i}")), order_of(i)))
        .collect();
    write_both(&orders, &file("orders"), &order_entries);

    let names = ["stash", "people", "owners", "orders"];
    let paths: Vec<_> = names.iter().map(|n| file(n)).collect();
    let tables: Vec<(&str, &std::path::Path)> = names
        .iter()
        .copied()
        .zip(paths.iter().map(|p| p.as_path()))
        .collect();
    let theirs = duckdb(&tables, &QUERIES.iter().map(|q| q.1).collect::<Vec<_>>());
    let stashes = [
        ("stash", &main),
        ("people", &people),
        ("owners", &owners),
        ("orders", &orders),
    ];
    // Twice: the first query after the writes (sampled schemas, checked by the scan), then
    // on unchanged stashes (schemas from the catalog).
    for pass in ["after the writes", "unchanged"] {
        for ((ours_sql, theirs_sql), theirs) in QUERIES.iter().zip(&theirs) {
            let ours = rows_of(&sql_over(&stashes, ours_sql).unwrap());
            let agree = ours.len() == theirs.len()
                && ours
                    .iter()
                    .zip(theirs)
                    .all(|(a, b)| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b)));
            assert!(
                agree,
                "{pass}: {ours_sql}\n  ours:   {ours:?}\n  duckdb: {theirs:?}\n  ({theirs_sql})"
            );
        }
    }
}
