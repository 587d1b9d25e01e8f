//! polars DataFrames as keys and values (feature `dataframe`).

use hashstash::{EngineKind, Serializer, Stash, Value};
use polars::prelude::*;

fn frame() -> DataFrame {
    df!("name" => ["dog", "cat", "cat"], "goodness" => ["good", "good", "bad"], "n" => [1i64, 2, 3])
        .unwrap()
}

/// The same content as `frame()`, built differently: from two chunks, then sorted (which
/// sets a sortedness flag that polars writes into its IPC bytes).
fn frame_built_differently() -> DataFrame {
    let mut top = df!("name" => ["cat"], "goodness" => ["bad"], "n" => [3i64]).unwrap();
    let bottom =
        df!("name" => ["cat", "dog"], "goodness" => ["good", "good"], "n" => [2i64, 1]).unwrap();
    top.vstack_mut(&bottom).unwrap();
    top.sort(["n"], SortMultipleOptions::default()).unwrap()
}

#[test]
fn the_two_frames_differ_in_polars_bytes() {
    // What makes the key test below meaningful: equal frames, unequal raw bytes.
    assert!(frame().equals(&frame_built_differently()));
    assert_ne!(
        frame().serialize_to_bytes().unwrap(),
        frame_built_differently().serialize_to_bytes().unwrap()
    );
}

fn stash(engine: EngineKind) -> (tempfile::TempDir, Stash) {
    let dir = tempfile::tempdir().unwrap();
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(engine)
        .open()
        .unwrap();
    (dir, stash)
}

#[test]
fn dataframe_keys_are_canonical() {
    let (_d, s) = stash(EngineKind::default_engine());
    assert!(frame().equals(&frame_built_differently()));
    assert_eq!(
        s.encode_key(&frame()).unwrap(),
        s.encode_key(&frame_built_differently()).unwrap()
    );
    s.set(&frame(), "cat").unwrap();
    assert_eq!(
        s.get::<_, String>(&frame_built_differently())
            .unwrap()
            .as_deref(),
        Some("cat")
    );
    // A DataFrame inside a tuple key is canonical too.
    s.set(&("args", frame()), "nested").unwrap();
    assert_eq!(
        s.get::<_, String>(&("args", frame_built_differently()))
            .unwrap()
            .as_deref(),
        Some("nested")
    );
    // Different content, different key.
    let other = df!("name" => ["cat", "dog", "cat"], "goodness" => ["bad", "good", "bad"], "n" => [3i64, 1, 2]).unwrap();
    assert!(!s.contains(&other).unwrap());
    // Keys decode back into DataFrames.
    let keys: Vec<DataFrame> = s
        .keys::<DataFrame>()
        .unwrap()
        .filter_map(Result::ok)
        .collect();
    assert!(keys.iter().any(|k| k.equals(&frame())), "{keys:?}");
}

#[test]
fn the_seed_dataframe_key() {
    let (_d, s) = stash(EngineKind::Pairtree);
    let df_key = df!("name" => ["cat"], "goodness" => ["bad"]).unwrap();
    s.set(&df_key, "cat").unwrap();
    assert_eq!(
        s.get::<_, String>(&df_key.clone()).unwrap().as_deref(),
        Some("cat")
    );
    assert_eq!(s.pop::<_, String>(&df_key).unwrap().as_deref(), Some("cat"));
    assert!(!s.contains(&df_key).unwrap());
}

#[test]
fn dataframe_values_round_trip_on_every_serializer() {
    for serializer in Serializer::ALL {
        let dir = tempfile::tempdir().unwrap();
        let s = Stash::builder()
            .root_dir(dir.path())
            .engine(EngineKind::Memory)
            .serializer(serializer)
            .open()
            .unwrap();
        s.set("df", &frame_built_differently()).unwrap();
        let back: DataFrame = s.get("df").unwrap().unwrap();
        assert!(back.equals(&frame()), "{serializer}");
        s.set("both", &(1, frame())).unwrap();
        let (n, nested): (i32, DataFrame) = s.get("both").unwrap().unwrap();
        assert_eq!(n, 1);
        assert!(nested.equals(&frame()), "{serializer}");
    }
}

#[test]
fn dataframe_values_are_recognisable_without_the_type() {
    let (_d, s) = stash(EngineKind::default_engine());
    s.set("df", &frame()).unwrap();
    match s.get_value("df").unwrap().unwrap() {
        Value::Tag(tag, inner) => {
            assert_eq!(tag, hashstash::codec::msgpack::DATAFRAME_TAG);
            let Value::Bytes(ipc) = *inner else {
                panic!("not bytes")
            };
            let df = DataFrame::deserialize_from_reader(&mut std::io::Cursor::new(ipc)).unwrap();
            assert!(df.equals(&frame()));
        }
        other => panic!("not a DataFrame tag: {other:?}"),
    }
}

#[test]
fn dataframe_values_show_as_records() {
    let (_d, s) = stash(EngineKind::Pairtree);
    s.set("df", &frame()).unwrap();
    let json = hashstash::value::to_json(&s.get_value("df").unwrap().unwrap());
    assert_eq!(
        json,
        serde_json::json!([
            {"name": "dog", "goodness": "good", "n": 1},
            {"name": "cat", "goodness": "good", "n": 2},
            {"name": "cat", "goodness": "bad", "n": 3},
        ])
    );
}

#[test]
fn dataframe_values_survive_a_copy_to_another_format() {
    let (_d, source) = stash(EngineKind::Memory);
    source.set("df", &frame()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Pairtree)
        .compress(hashstash::Compressor::Zlib)
        .b64(true)
        .open()
        .unwrap();
    target.update_from(&source).unwrap();
    let back: DataFrame = target.get("df").unwrap().unwrap();
    assert!(back.equals(&frame()));
}
