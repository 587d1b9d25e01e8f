//! The streaming table (`StashTable`): point lookups for `_key` filters, projection, limit,
//! stash order, and corrupt values as errors, on every engine compiled in.

use crate::common::{append_stash, engine_available, stash};
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, UInt64Type};
use hashstash::engine::EngineExt;
use hashstash::table::sql::pretty;
use hashstash::{EngineKind, Stash};
use serde_json::json;

/// Every engine that can run here.
fn engines() -> impl Iterator<Item = EngineKind> {
    EngineKind::ALL
        .into_iter()
        .filter(|e| e.is_available() && engine_available(*e))
}

fn animals(engine: EngineKind, n: usize) -> (tempfile::TempDir, Stash) {
    let (d, s) = stash(engine);
    let items: Vec<(String, serde_json::Value)> = (0..n)
        .map(|i| {
            let name = ["cat", "dog", "mouse"][i % 3];
            (
                format!("Animal {i}"),
                json!({"name": name, "etc": {"age": i}}),
            )
        })
        .collect();
    s.update(items.iter().map(|(k, v)| (k, v))).unwrap();
    (d, s)
}

/// The text of the query's physical plan.
fn plan(s: &Stash, query: &str) -> String {
    pretty(&s.sql(&format!("EXPLAIN {query}")).unwrap()).unwrap()
}

/// The first column of every row, as text.
fn strings(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let column = datafusion::arrow::compute::cast(
                b.column(0),
                &datafusion::arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let column = column.as_string::<i32>().clone();
            (0..b.num_rows())
                .map(move |i| column.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn key_equality_and_in_are_point_lookups() {
    for engine in engines() {
        let (_d, s) = animals(engine, 300);
        let query = "SELECT _key, name, \"etc.age\" FROM stash WHERE _key = 'Animal 7'";
        let shown = plan(&s, query);
        assert!(shown.contains("lookup of 1 keys"), "{engine}: {shown}");
        assert!(!shown.contains(", scan"), "{engine}: {shown}");
        let found = s.sql(query).unwrap();
        assert_eq!(strings(&found), ["Animal 7"], "{engine}");
        let batch = found.iter().find(|b| b.num_rows() == 1).unwrap();
        assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(0), 7);

        // Literal first, IN with a repeat and a missing key, and two filters that disagree.
        let reversed = s
            .sql("SELECT _key FROM stash WHERE 'Animal 3' = _key")
            .unwrap();
        assert_eq!(strings(&reversed), ["Animal 3"], "{engine}");
        let query = "SELECT _key FROM stash WHERE _key IN ('Animal 2', 'Animal 1', 'Animal 2', 'nope') ORDER BY _key";
        assert!(plan(&s, query).contains("lookup of 3 keys"), "{engine}");
        assert_eq!(
            strings(&s.sql(query).unwrap()),
            ["Animal 1", "Animal 2"],
            "{engine}"
        );
        let none = s
            .sql("SELECT _key FROM stash WHERE _key = 'Animal 1' AND _key = 'Animal 2'")
            .unwrap();
        assert!(strings(&none).is_empty(), "{engine}");
        // A filter on another column still scans, and is still right.
        let query = "SELECT count(*) FROM stash WHERE name = 'cat'";
        assert!(plan(&s, query).contains(", scan"), "{engine}");
        let count = s.sql(query).unwrap();
        assert_eq!(strings(&count), ["100"], "{engine}");
    }
}

#[test]
fn integer_keys_are_looked_up_and_mixed_keys_are_scanned() {
    let (_d, s) = stash(EngineKind::default_engine());
    for i in 0..50i64 {
        s.set(&i, &json!({"square": i * i})).unwrap();
    }
    let query = "SELECT square FROM stash WHERE _key = 7";
    assert!(plan(&s, query).contains("lookup of 1 keys"));
    assert_eq!(strings(&s.sql(query).unwrap()), ["49"]);

    // With text and integer keys mixed, `_key` is JSON text: no lookup can be exact.
    s.set("7", &json!({"square": -1})).unwrap();
    let query = "SELECT square FROM stash WHERE _key = '7' ORDER BY square";
    assert!(plan(&s, query).contains(", scan"));
    assert_eq!(strings(&s.sql(query).unwrap()), ["-1", "49"]);
}

#[test]
fn key_lookups_in_append_mode_give_the_latest_version() {
    for engine in engines() {
        let (_d, s) = append_stash(engine);
        s.set("a", &json!({"n": 1})).unwrap();
        s.set("a", &json!({"n": 2})).unwrap();
        s.set("b", &json!({"n": 3})).unwrap();
        let found = s
            .sql("SELECT n, _version FROM stash WHERE _key = 'a'")
            .unwrap();
        assert_eq!(strings(&found), ["2"], "{engine}");
        let batch = found.iter().find(|b| b.num_rows() == 1).unwrap();
        assert_eq!(batch.column(1).as_primitive::<UInt64Type>().value(0), 2);
    }
}

#[test]
fn projection_limit_and_stash_order() {
    for engine in engines() {
        // Enough entries for many chunks, read by several workers.
        let (_d, s) = animals(engine, 10_000);
        let keys: Vec<String> = s.keys::<String>().unwrap().map(Result::unwrap).collect();
        assert_eq!(strings(&s.sql("SELECT _key FROM stash").unwrap()), keys);

        let query = "SELECT _key FROM stash LIMIT 5";
        let shown = plan(&s, query);
        assert!(shown.contains("columns=[_key]"), "{engine}: {shown}");
        assert!(shown.contains("limit=5"), "{engine}: {shown}");
        assert_eq!(strings(&s.sql(query).unwrap()), keys[..5]);
    }
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let (_d, s) = animals(EngineKind::default_engine(), 10);
    let codec = s.codec();
    let store = |key: &str, msgpack: &[u8]| {
        let value = hashstash::codec::encode(msgpack, codec.compress, codec.b64).unwrap();
        s.engine().set(&s.encode_key(key).unwrap(), &value).unwrap();
    };
    // A map that promises two entries and holds one.
    store("truncated", b"\x82\xa1a\x01");
    let error = s.sql("SELECT count(*) FROM stash").unwrap_err();
    assert!(error.to_string().contains("hashstash"), "{error}");
    s.remove("truncated").unwrap();

    // Maps nested far deeper than any real value: an error, not a stack overflow.
    let mut deep = b"\x81\xa1a".repeat(100_000);
    deep.push(0x01);
    store("deep", &deep);
    let error = s.sql("SELECT count(*) FROM stash").unwrap_err();
    assert!(error.to_string().contains("nested too deeply"), "{error}");
    s.remove("deep").unwrap();

    // Invalid UTF-8 in a column name.
    store("bad utf-8", b"\x81\xa2\xff\xfe\x01");
    assert!(s.sql("SELECT count(*) FROM stash").is_err());
    s.remove("bad utf-8").unwrap();
    assert_eq!(
        strings(&s.sql("SELECT count(*) FROM stash").unwrap()),
        ["10"]
    );
}

#[cfg(feature = "lmdb")]
#[test]
fn an_lmdb_schema_is_reused_until_the_stash_changes() {
    let (_d, s) = stash(EngineKind::Lmdb);
    s.set("a", &json!({"x": 1})).unwrap();
    // Column order follows the engine's key order: compare sorted.
    let columns = |s: &Stash| -> Vec<String> {
        let (schema, _) = s.to_batches().unwrap();
        let mut names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        names.sort();
        names
    };
    assert_eq!(columns(&s), ["_key", "x"]);
    let cache = s.stash_dir().join("schema-latest.json");
    assert!(cache.exists());

    // The next table reads the cache: a column planted in it (checksum and all) shows up.
    let plant = |edit: &dyn Fn(&mut Vec<serde_json::Value>)| {
        let mut cached: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        let mut columns = cached["columns"].as_array().unwrap().clone();
        edit(&mut columns);
        let generation = cached["generation"].as_u64().unwrap();
        let body = serde_json::to_vec(&(generation, &columns)).unwrap();
        cached["columns"] = json!(columns);
        cached["checksum"] = json!(xxhash_rust::xxh3::xxh3_64(&body));
        std::fs::write(&cache, cached.to_string()).unwrap();
    };
    plant(&|columns| columns.push(json!(["planted", "Int"])));
    assert_eq!(columns(&s), ["_key", "planted", "x"]);
    // A record that lost a column the rows have fails the read (and is dropped) rather
    // than lose the column; the next table infers the schema anew.
    plant(&|columns| columns.retain(|c| c[0] != "x"));
    let err = s.to_batches().unwrap_err().to_string();
    assert!(err.contains("catalog missed a write"), "{err}");
    assert_eq!(columns(&s), ["_key", "x"]);

    // Any write makes it stale.
    s.set("b", &json!({"y": 2})).unwrap();
    assert_eq!(columns(&s), ["_key", "x", "y"]);

    // A damaged cache is a miss, not an error.
    std::fs::write(&cache, b"not json").unwrap();
    assert_eq!(columns(&s), ["_key", "x", "y"]);
}
