//! Streamed query results (`Stash::sql_stream`, `sql_over_stream`) and DataFrames made
//! through the Arrow C Data Interface (feature `sql`).

use crate::common::{append_stash, engine_available, stash};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use hashstash::table::sql::sql_over_stream;
use hashstash::{EngineKind, Stash};
use serde_json::json;

/// Every batch of a stream, joined into one.
fn streamed(stash: &Stash, query: &str) -> RecordBatch {
    let stream = stash.sql_stream(query).unwrap();
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream.collect::<Result<_, _>>().unwrap();
    concat_batches(&schema, &batches).unwrap()
}

fn collected(stash: &Stash, query: &str) -> RecordBatch {
    let batches = stash.sql(query).unwrap();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[test]
fn a_streamed_query_gives_what_a_collected_one_does() {
    for engine in EngineKind::available().filter(|e| engine_available(*e)) {
        let (_d, s) = stash(engine);
        let rows: Vec<(String, serde_json::Value)> = (0..500i64)
            .map(|i| (format!("k{i:04}"), json!({"n": i, "even": i % 2 == 0})))
            .collect();
        s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
        let query = "SELECT _key, n FROM stash WHERE even ORDER BY n";
        // After a write (a sampled schema: the small result is held back, then given)...
        let first = streamed(&s, query);
        assert_eq!(first.num_rows(), 250, "{engine}");
        assert_eq!(first, collected(&s, query), "{engine}");
        // ...and on an unchanged stash (the catalog's schema: streamed at once).
        assert_eq!(streamed(&s, query), first, "{engine}");
        let n = streamed(&s, "SELECT sum(n) FROM stash");
        assert_eq!(n.column(0).as_primitive::<Int64Type>().value(0), 124_750);
        // A lookup.
        let one = streamed(&s, "SELECT n FROM stash WHERE _key = 'k0007'");
        assert_eq!(one.column(0).as_primitive::<Int64Type>().value(0), 7);
    }
}

#[test]
fn a_result_too_large_to_hold_back_streams_on_the_exact_schema() {
    // Past the sample of 10,000 rows, SQLite (in key order) reads rows with a new column and
    // a float: a speculative run would need a second pass, and 40 MB of results are more
    // than it holds back, so the stream runs on the schema inferred from every row.
    let engine = EngineKind::Sqlite;
    if !engine.is_available() {
        return;
    }
    let (_d, s) = stash(engine);
    let text = "x".repeat(1000);
    let rows: Vec<(String, serde_json::Value)> = (0..40_000u64)
        .map(|i| (format!("k{i:06}"), json!({"n": i, "x": 1, "text": text})))
        .chain((0..10u64).map(|i| (format!("z{i:06}"), json!({"n": i, "x": 2.5, "late": "yes"}))))
        .collect();
    s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
    let mut stream = s.sql_stream("SELECT * FROM stash").unwrap();
    let schema = stream.schema();
    assert!(schema.field_with_name("late").is_ok(), "{schema:?}");
    assert_eq!(
        schema.field_with_name("x").unwrap().data_type(),
        &DataType::Float64
    );
    let (mut rows, mut late, mut batches) = (0, 0, 0);
    for batch in stream.by_ref() {
        let batch = batch.unwrap();
        batches += 1;
        rows += batch.num_rows();
        late += batch.num_rows() - batch.column_by_name("late").unwrap().null_count();
    }
    assert_eq!((rows, late), (40_010, 10));
    assert!(batches > 1, "batches come one by one");
    assert!(stream.next().is_none(), "an ended stream stays ended");
}

#[test]
fn an_empty_result_has_its_schema_and_a_bad_query_is_an_error() {
    let (_d, s) = stash(EngineKind::Memory);
    s.set("a", &json!({"n": 1})).unwrap();
    for _ in 0..2 {
        // Once sampled after the write, once from the catalog.
        let stream = s
            .sql_stream("SELECT _key, n FROM stash WHERE n > 5")
            .unwrap();
        let names: Vec<String> = stream
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["_key", "n"]);
        assert_eq!(stream.map(|b| b.unwrap().num_rows()).sum::<usize>(), 0);
        assert!(matches!(
            s.sql_stream("SELECT nope FROM stash"),
            Err(hashstash::Error::Sql { .. })
        ));
    }
}

#[test]
fn several_stashes_stream_joined() {
    let (_d, people) = stash(EngineKind::Memory);
    let (_d2, pets) = stash(EngineKind::Pairtree);
    people.set("ann", &json!({"pet": "rex"})).unwrap();
    people.set("bob", &json!({"pet": "tom"})).unwrap();
    pets.set("rex", &json!({"kind": "dog"})).unwrap();
    let stream = sql_over_stream(
        &[("people", &people), ("pets", &pets)],
        "SELECT people._key, pets.kind FROM people JOIN pets ON people.pet = pets._key",
    )
    .unwrap();
    let rows: usize = stream.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 1);
}

#[cfg(feature = "dataframe")]
#[test]
fn a_dataframe_holds_every_kind_of_column_in_few_chunks() {
    let (_d, s) = append_stash(EngineKind::Memory);
    let n = 70_000i64; // more than one chunk of the frame
    let rows: Vec<(i64, serde_json::Value)> = (0..n)
        .map(|i| {
            let value = match i % 4 {
                0 => json!({"n": i, "f": 0.5, "t": "text", "b": true, "l": [1, 2, i]}),
                1 => json!({"n": i, "f": 1, "t": null, "b": false, "l": []}),
                2 => json!({"n": i, "t": "ünïcode ✓", "mixed": [1, "a"]}),
                _ => json!({"n": i, "mixed": "plain", "nothing": null}),
            };
            (i, value)
        })
        .collect();
    s.update(rows.iter().map(|(k, v)| (k, v))).unwrap();
    let df = s.df().unwrap();
    assert_eq!(df.height(), n as usize);
    assert!(
        df.first_col_n_chunks() <= 2,
        "{} chunks",
        df.first_col_n_chunks()
    );
    let column = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    assert_eq!(column("n").sum::<i64>().unwrap(), n * (n - 1) / 2);
    assert_eq!(column("f").dtype(), &polars::prelude::DataType::Float64);
    assert_eq!(column("f").null_count(), (n / 2) as usize);
    assert_eq!(column("b").dtype(), &polars::prelude::DataType::Boolean);
    // Rows come in the stash's order: find entry 2's row by its `n`.
    let row_of = |n: i64| column("n").i64().unwrap().iter().position(|v| v == Some(n));
    let (two, four) = (row_of(2).unwrap(), row_of(4).unwrap());
    assert_eq!(column("t").str().unwrap().get(two), Some("ünïcode ✓"));
    assert_eq!(column("mixed").str().unwrap().get(two), Some("[1,\"a\"]"));
    assert_eq!(column("nothing").null_count(), n as usize);
    let lists = column("l");
    assert!(matches!(lists.dtype(), polars::prelude::DataType::List(_)));
    let fourth = lists.list().unwrap().get_as_series(four).unwrap();
    assert_eq!(fourth.i64().unwrap().get(2), Some(4));
    assert_eq!(column("_version").u64().unwrap().get(0), Some(1));
    assert!(column("_timestamp").dtype().is_temporal());
    // The frame is the SQL table's: the same values in the same order.
    let keys = s.sql("SELECT _key FROM stash").unwrap();
    let keys = concat_batches(&keys[0].schema(), &keys).unwrap();
    let first_key = keys
        .column(0)
        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
        .value(0);
    assert_eq!(column("_key").i64().unwrap().get(0), Some(first_key));
    // An empty stash is an empty frame.
    let (_d2, empty) = stash(EngineKind::Memory);
    assert_eq!(empty.df().unwrap().height(), 0);
}
