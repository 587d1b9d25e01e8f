//! Stashes as tables: flattening follows the seed's `assemble_ld`.

use crate::common::{append_stash, stash};
use hashstash::{EngineKind, Row, Value};
use serde_json::json;

fn cell<'a>(row: &'a Row, column: &str) -> Option<&'a Value> {
    row.iter().find(|(c, _)| c == column).map(|(_, v)| v)
}

fn columns(row: &Row) -> Vec<&str> {
    row.iter().map(|(c, _)| c.as_str()).collect()
}

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

/// The engines without a server (the server engines run the same code through `rows`).
fn local_engines() -> impl Iterator<Item = EngineKind> {
    EngineKind::available().filter(|e| !e.is_server())
}

#[test]
fn scalar_and_record_values() {
    for engine in local_engines() {
        let (_d, s) = stash(engine);
        s.set("x", &1).unwrap();
        s.set("y", &2).unwrap();
        s.set("z", &json!({"result": 3})).unwrap();
        s.set("zz", &json!({"result": 4})).unwrap();
        let rows = s.ld().unwrap();
        assert_eq!(rows.len(), 4, "{engine}");
        assert!(rows.iter().all(|r| cell(r, "_key").is_some()));
        assert_eq!(
            rows.iter().filter(|r| cell(r, "_value").is_some()).count(),
            2
        );
        let mut results: Vec<&Value> = rows.iter().filter_map(|r| cell(r, "result")).collect();
        results.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(results, [&int(3), &int(4)]);
        let x = rows
            .iter()
            .find(|r| cell(r, "_key") == Some(&Value::Text("x".into())))
            .unwrap();
        assert_eq!(
            x,
            &vec![
                ("_key".to_string(), Value::Text("x".into())),
                ("_value".to_string(), int(1))
            ]
        );
    }
}

#[test]
fn nested_animals_flatten_into_dotted_columns() {
    let (_d, s) = stash(EngineKind::default_engine());
    for n in 0..100 {
        let cat = n % 3 == 0;
        let good = n % 2 == 0;
        s.set(
            &format!("Animal {}", n + 1),
            &json!({
                "name": if cat { "cat" } else { "dog" },
                "goodness": if good { "good" } else { "bad" },
                "etc": {"age": n % 10 + 1, "goes_to": {"heaven": !cat || good}},
            }),
        )
        .unwrap();
    }
    let rows = s.ld().unwrap();
    assert_eq!(rows.len(), 100);
    for row in &rows {
        // Columns come in the order of the value's map, key first.
        assert_eq!(columns(row)[0], "_key");
        assert_eq!(columns(row).len(), 5);
        for column in ["_key", "name", "goodness", "etc.age", "etc.goes_to.heaven"] {
            assert!(cell(row, column).is_some(), "{column} missing in {row:?}");
        }
    }
    let animal_7 = rows
        .iter()
        .find(|r| cell(r, "_key") == Some(&Value::Text("Animal 7".into())))
        .unwrap();
    assert_eq!(cell(animal_7, "etc.age"), Some(&int(7)));
    assert_eq!(
        cell(animal_7, "etc.goes_to.heaven"),
        Some(&Value::Bool(true))
    );
}

#[test]
fn lists_of_records_become_rows_and_lists_of_scalars_stay() {
    let (_d, s) = stash(EngineKind::Memory);
    s.set("mixed", &json!([{"a": 1}, {"b": 2}, 3, 4])).unwrap();
    s.set("scalars", &json!([1, 2, 3])).unwrap();
    let rows = s.ld().unwrap();
    let mixed: Vec<&Row> = rows
        .iter()
        .filter(|r| cell(r, "_key") == Some(&Value::Text("mixed".into())))
        .collect();
    assert_eq!(mixed.len(), 4);
    assert_eq!(
        mixed.iter().filter(|r| cell(r, "_value").is_some()).count(),
        2
    );
    assert!(mixed.iter().any(|r| cell(r, "a") == Some(&int(1))));
    let scalars: Vec<&Row> = rows
        .iter()
        .filter(|r| cell(r, "_key") == Some(&Value::Text("scalars".into())))
        .collect();
    assert_eq!(scalars.len(), 1);
    assert_eq!(
        cell(scalars[0], "_value"),
        Some(&Value::Array(vec![int(1), int(2), int(3)]))
    );
}

#[cfg(feature = "dataframe")]
#[test]
fn list_of_records_and_a_dataframe_give_six_rows() {
    use polars::prelude::*;
    let (_d, s) = stash(EngineKind::Pairtree);
    s.set("list", &json!([{"a": 1}, {"b": 2}, 3, 4])).unwrap();
    s.set(
        "df",
        &df!("name" => ["cat", "dog"], "n" => [1i64, 2]).unwrap(),
    )
    .unwrap();
    let rows = s.ld().unwrap();
    assert_eq!(rows.len(), 6);
    let df_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| cell(r, "_key") == Some(&Value::Text("df".into())))
        .collect();
    assert_eq!(df_rows.len(), 2);
    assert!(df_rows
        .iter()
        .any(|r| cell(r, "name") == Some(&Value::Text("dog".into()))
            && cell(r, "n") == Some(&int(2))));
}

#[test]
fn map_keys_spread_into_columns() {
    let (_d, s) = stash(EngineKind::Memory);
    s.set(
        &json!({"name": "cat", "where": {"city": "Paris"}}),
        &json!({"goodness": "good"}),
    )
    .unwrap();
    let rows = s.ld().unwrap();
    assert_eq!(columns(&rows[0]), ["name", "where.city", "goodness"]);
    // A list key stays one `_key` cell.
    let (_d2, s) = stash(EngineKind::Memory);
    s.set(&("bad", "good"), "cat").unwrap();
    let rows = s.ld().unwrap();
    assert_eq!(columns(&rows[0]), ["_key", "_value"]);
}

#[test]
fn append_mode_shows_versions() {
    for engine in local_engines() {
        let (_d, s) = append_stash(engine);
        let key = json!({"name": "cat"});
        s.set(&key, &json!({"goodness": "good"})).unwrap();
        s.set(&key, &json!({"goodness": "bad"})).unwrap();
        let all = s.ld_all_versions().unwrap();
        assert_eq!(all.len(), 2, "{engine}");
        let versions: Vec<&Value> = all.iter().filter_map(|r| cell(r, "_version")).collect();
        assert_eq!(versions, [&int(1), &int(2)]);
        assert_eq!(
            columns(&all[0]),
            ["name", "goodness", "_version", "_timestamp"]
        );
        assert_eq!(cell(&all[1], "goodness"), Some(&Value::Text("bad".into())));
        let latest = s.ld().unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(cell(&latest[0], "_version"), Some(&int(2)));
        assert!(matches!(cell(&latest[0], "_timestamp"), Some(Value::Float(t)) if *t > 1.7e9));
    }
}
