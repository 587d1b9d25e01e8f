//! Parquet snapshots in object storage: written by `to_parquet` and `hashstash export`, read
//! back by `load_parquet`, `hashstash import` and SQL (`ParquetTables`, `--table
//! NAME=URL`), on the S3 test server and on a local folder as `file://` URLs.

use crate::common::{engine_available, stash};
use hashstash::table::location::{open_input, Output};
use hashstash::table::parquet_tables::ParquetTables;
use hashstash::table::sql::{pretty, sql_over_with};
use hashstash::{EngineKind, Error, Stash, Versions};
use serde_json::json;
use std::io::{Read, Write};

/// A fresh place for files on the S3 test server (`None`: no server here).
fn s3_folder() -> Option<String> {
    if !engine_available(EngineKind::ObjectStore) {
        return None;
    }
    let base = std::env::var("HASHSTASH_OBJECTSTORE_URL").ok()?;
    let unique = tempfile::tempdir().unwrap();
    let name = unique.path().file_name()?.to_string_lossy().into_owned();
    Some(format!("{}/snapshots-{name}", base.trim_end_matches('/')))
}

/// A stash of `n` animals: nested values, a few kinds.
fn animals(n: usize) -> (tempfile::TempDir, Stash) {
    let (dir, s) = stash(EngineKind::default());
    let items: Vec<(String, serde_json::Value)> = (0..n)
        .map(|i| {
            let kind = ["cat", "dog", "eel"][i % 3];
            let value = json!({"kind": kind, "etc": {"age": i}});
            (format!("Animal {i}"), value)
        })
        .collect();
    s.update(items).unwrap();
    (dir, s)
}

fn sorted_items(s: &Stash) -> Vec<(String, serde_json::Value)> {
    let mut items: Vec<(String, serde_json::Value)> =
        s.items().unwrap().collect::<Result<_, _>>().unwrap();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

const GROUP_BY: &str =
    r#"SELECT kind, count(*) AS n, sum("etc.age") AS ages FROM {t} GROUP BY kind ORDER BY kind"#;

/// A snapshot goes to `url` and comes back: loaded into a fresh stash it holds the same
/// entries, and SQL over the file gives what SQL over the stash gives.
fn round_trip(url: &str) {
    let (_dir, s) = animals(3000);
    assert_eq!(s.to_parquet(url).unwrap(), 3000);

    let (_other, copy) = stash(EngineKind::default());
    assert_eq!(copy.load_parquet(url).unwrap(), 3000);
    assert_eq!(sorted_items(&copy), sorted_items(&s));

    let files = ParquetTables::new().with("snap", url);
    let from_file = sql_over_with(&[], &files, &GROUP_BY.replace("{t}", "snap"), None).unwrap();
    let from_stash = s.sql(&GROUP_BY.replace("{t}", "stash")).unwrap();
    assert_eq!(pretty(&from_file).unwrap(), pretty(&from_stash).unwrap());
    assert!(pretty(&from_file).unwrap().contains("| cat  | 1000 |"));

    // Files and stashes in one query.
    let joined = sql_over_with(
        &[("stash", &s)],
        &files,
        "SELECT count(*) AS n FROM stash JOIN snap USING (_key) WHERE stash.kind = snap.kind",
        None,
    )
    .unwrap();
    assert!(pretty(&joined).unwrap().contains("| 3000 |"));
}

#[test]
fn a_snapshot_round_trips_through_a_local_url() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&format!("file://{}/snap.parquet", dir.path().display()));
    assert!(dir.path().join("snap.parquet").is_file());
}

#[test]
fn a_snapshot_round_trips_through_the_s3_server() {
    let Some(folder) = s3_folder() else { return };
    round_trip(&format!("{folder}/animals.parquet"));
}

/// Every version of every key (append mode) goes up with `_version` and `_timestamp`.
#[test]
fn every_version_goes_to_the_s3_server() {
    let Some(folder) = s3_folder() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = Stash::builder()
        .root_dir(dir.path())
        .append_mode(true)
        .open()
        .unwrap();
    for v in 1..=3 {
        s.set("price", &(v * 10)).unwrap();
    }
    let url = format!("{folder}/versions.parquet");
    assert_eq!(s.to_parquet_of(&url, Versions::All).unwrap(), 3);
    let files = ParquetTables::new().with("prices", &url);
    let shown = pretty(
        &sql_over_with(
            &[],
            &files,
            "SELECT max(_version) AS v, sum(_value) AS total FROM prices",
            None,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(shown.contains("| 3 | 60    |"), "{shown}");
}

/// An object larger than one part goes up in parts and comes back byte for byte; until the
/// upload completes there is no object, and an upload given up leaves none.
#[test]
fn a_large_object_goes_up_in_parts_and_appears_whole_or_not_at_all() {
    let Some(folder) = s3_folder() else { return };
    // 20 MiB of bytes that do not repeat (so that nothing shortens them): three parts.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..20 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let url = format!("{folder}/large.bin");
    let mut out = Output::create(url.as_ref()).unwrap();
    out.write_all(&data).unwrap();
    assert!(open_input(url.as_ref()).is_err(), "no object before finish");
    out.finish().unwrap();
    let mut back = Vec::new();
    open_input(url.as_ref())
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data, "{} bytes came back", back.len());

    let given_up = format!("{folder}/given-up.bin");
    let mut out = Output::create(given_up.as_ref()).unwrap();
    out.write_all(&data[..12 << 20]).unwrap(); // one part sent
    out.abort().unwrap();
    let error = open_input(given_up.as_ref()).err().expect("no object");
    assert!(matches!(error, Error::Engine { .. }), "{error:?}");
}

/// What cannot be read is a typed error: a missing object, an object that is not parquet,
/// a dead endpoint (whose secret stays out of the message).
#[test]
fn unreadable_snapshots_are_typed_errors() {
    let Some(folder) = s3_folder() else { return };
    let (_dir, s) = stash(EngineKind::default());
    let missing = format!("{folder}/missing.parquet");
    let error = s.load_parquet(&missing).unwrap_err();
    assert!(matches!(error, Error::Engine { .. }), "{error:?}");
    let files = ParquetTables::new().with("gone", &missing);
    let error = sql_over_with(&[], &files, "SELECT * FROM gone", None).unwrap_err();
    assert!(matches!(error, Error::Sql { .. }), "{error:?}");

    // One store serves a bucket: two tables there must not give it different options.
    let (_one, one) = animals(3);
    let a = format!("{folder}/a.parquet");
    one.to_parquet(&a).unwrap();
    let two = ParquetTables::new()
        .with("a", &a)
        .with("b", format!("{folder}/b.parquet?allow_http=true"));
    let error = sql_over_with(&[], &two, "SELECT 1", None).unwrap_err();
    assert!(matches!(error, Error::InvalidOption { .. }), "{error:?}");

    let not_parquet = format!("{folder}/not.parquet");
    let mut out = Output::create(not_parquet.as_ref()).unwrap();
    out.write_all(b"{\"key\": 1, \"value\": 2}\n").unwrap();
    out.finish().unwrap();
    let error = s.load_parquet(&not_parquet).unwrap_err();
    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    assert_eq!(s.len().unwrap(), 0, "nothing half-loaded");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = "never-shown-7";
    let dead = format!(
        "s3://hashstash/x.parquet?endpoint=http://127.0.0.1:{port}&allow_http=true\
         &access_key_id=id&secret_access_key={secret}&region=us-east-1"
    );
    s.set("k", &1).unwrap();
    for error in [
        s.to_parquet(&dead).unwrap_err(),
        s.load_parquet(&dead).unwrap_err(),
    ] {
        assert!(matches!(error, Error::Engine { .. }), "{error:?}");
        assert!(!format!("{error} {error:?}").contains(secret), "{error}");
    }
}

/// `hashstash export` to a URL, `import` from it, and `sql --table NAME=URL` over it.
#[cfg(feature = "cli")]
#[test]
fn the_cli_exports_imports_and_queries_object_store_urls() {
    let Some(folder) = s3_folder() else { return };
    let root = tempfile::tempdir().unwrap();
    let run = |dbname: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hashstash"))
            .args(["--root-dir", &root.path().display().to_string()])
            .args(["--dbname", dbname])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    for i in 0..30 {
        let kind = ["cat", "dog"][i % 2];
        let value = json!({"kind": kind, "n": i}).to_string();
        run("src", &["set", &format!("\"k{i}\""), &value]);
    }
    let parquet = format!("{folder}/cli.parquet");
    let jsonl = format!("{folder}/cli.jsonl");
    run("src", &["export", &parquet]);
    run("src", &["export", "--format", "json", &jsonl]);
    run("from-parquet", &["import", &parquet]);
    run("from-jsonl", &["import", &jsonl]);
    for db in ["from-parquet", "from-jsonl"] {
        assert_eq!(run(db, &["len"]).trim(), "30");
        assert_eq!(
            run(db, &["get", "\"k7\""]).trim(),
            r#"{"kind":"dog","n":7}"#
        );
    }
    let table = format!("snap={parquet}");
    let shown = run(
        "empty",
        &[
            "sql",
            "--table",
            &table,
            "SELECT kind, count(*) AS n, sum(n) AS total FROM snap GROUP BY kind ORDER BY kind",
        ],
    );
    assert!(shown.contains("| cat  | 15 | 210   |"), "{shown}");
    assert!(shown.contains("| dog  | 15 | 225   |"), "{shown}");
}
