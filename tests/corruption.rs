//! Bad bytes on disk: a typed error naming the entry, never a panic, never another value.

use hashstash::engine::{EngineExt, Housekeeping};
use hashstash::{Compressor, EngineKind, Error, OnCorrupt, Stash};
use std::path::{Path, PathBuf};

fn files_below(dir: &Path) -> Vec<PathBuf> {
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Flips one byte in every occurrence of `needle` in `file` (LMDB may keep stale copies of a
/// page); true if there was one.
fn flip_in_file(file: &Path, needle: &[u8]) -> bool {
    let mut bytes = std::fs::read(file).unwrap();
    let places: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    for at in &places {
        bytes[at + needle.len() / 2] ^= 0x20;
    }
    std::fs::write(file, &bytes).unwrap();
    !places.is_empty()
}

fn raw_stash(engine: EngineKind) -> (tempfile::TempDir, Stash) {
    let dir = tempfile::tempdir().unwrap();
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(engine)
        .compress(Compressor::Raw)
        .open()
        .unwrap();
    (dir, stash)
}

fn flipped_value_bytes_are_an_error(engine: EngineKind) {
    let (_dir, stash) = raw_stash(engine);
    let marker = "CORRUPT-ME-PLEASE-0123456789";
    stash.set("victim", marker).unwrap();
    stash.set("bystander", "fine").unwrap();
    // Close the stash (SQLite folds its write-ahead log into the file), damage, reopen.
    let stash_dir = stash.stash_dir();
    drop(stash);
    // Every file is visited (no short circuit): each may hold a copy of the value.
    let flips: Vec<bool> = files_below(&stash_dir)
        .iter()
        .map(|f| flip_in_file(f, marker.as_bytes()))
        .collect();
    let flipped = flips.contains(&true);
    assert!(flipped, "{engine}: value bytes not found on disk");
    let stash = Stash::builder().path(&stash_dir).open().unwrap();
    let err = stash.get::<_, String>("victim").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{engine}: {err}");
    assert!(err.to_string().contains("checksum"), "{engine}: {err}");
    // The rest of the stash is still readable, and a scan reports the bad entry.
    assert_eq!(
        stash.get::<_, String>("bystander").unwrap().as_deref(),
        Some("fine")
    );
    let results: Vec<_> = stash.items::<String, String>().unwrap().collect();
    assert_eq!(results.len(), 2);
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1, "{engine}");
}

#[test]
fn pairtree_flipped_bytes() {
    flipped_value_bytes_are_an_error(EngineKind::Pairtree);
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_flipped_bytes() {
    flipped_value_bytes_are_an_error(EngineKind::Lmdb);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_flipped_bytes() {
    flipped_value_bytes_are_an_error(EngineKind::Sqlite);
}

#[cfg(feature = "diskcache")]
#[test]
fn diskcache_flipped_bytes() {
    flipped_value_bytes_are_an_error(EngineKind::Diskcache);
}

#[test]
fn pairtree_truncated_and_garbled_files() {
    let (_dir, stash) = raw_stash(EngineKind::Pairtree);
    stash.set("a", "value a").unwrap();
    let file = files_below(&stash.path()).pop().unwrap();
    let original = std::fs::read(&file).unwrap();
    for cut in [0, 1, 5, 12, 20, original.len() - 1] {
        std::fs::write(&file, &original[..cut]).unwrap();
        let err = stash.get::<_, String>("a").unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "cut at {cut}: {err}");
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "names the file: {err}"
        );
    }
    std::fs::write(&file, vec![0xffu8; 4096]).unwrap();
    assert!(matches!(
        stash.get::<_, String>("a"),
        Err(Error::Decode { .. })
    ));
    std::fs::write(&file, &original).unwrap();
    assert_eq!(
        stash.get::<_, String>("a").unwrap().as_deref(),
        Some("value a")
    );
}

#[test]
fn garbled_format_record_is_an_error() {
    let (_dir, stash) = raw_stash(EngineKind::Pairtree);
    let format = stash.stash_dir().join("format.json");
    std::fs::write(&format, b"{not json").unwrap();
    let err = Stash::builder()
        .config(stash.config().clone())
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    std::fs::write(&format, br#"{"format_version": 1}"#).unwrap();
    assert!(Stash::builder()
        .config(stash.config().clone())
        .open()
        .is_err());
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_map_grows_by_itself() {
    use hashstash::engine::lmdb::LmdbEngine;
    use hashstash::Engine;
    let dir = tempfile::tempdir().unwrap();
    let engine = LmdbEngine::open_with_map_size(dir.path(), false, 1 << 20).unwrap();
    let value = vec![0xabu8; 100_000];
    for i in 0u32..80 {
        engine.set(&i.to_le_bytes(), &value).unwrap();
    }
    let batch: Vec<(Vec<u8>, Vec<u8>)> = (80u32..120)
        .map(|i| (i.to_le_bytes().to_vec(), value.clone()))
        .collect();
    let refs: Vec<(&[u8], &[u8])> = batch
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    engine.set_many(&refs).unwrap();
    assert_eq!(engine.len().unwrap(), 120);
    assert!(
        engine.disk_usage().unwrap() > 10 << 20,
        "12 MB written into a 1 MB map"
    );
    for i in [0u32, 79, 119] {
        assert_eq!(
            engine.get(&i.to_le_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}

/// The last handle on an environment may close it while a thread that read from it is
/// still exiting. With LMDB's thread-local reader slots that thread's exit would clear its
/// slot in memory already unmapped: a segfault, about one round in a few thousand.
#[cfg(feature = "lmdb")]
#[test]
fn lmdb_closes_safely_while_reader_threads_exit() {
    use hashstash::engine::lmdb::LmdbEngine;
    use hashstash::Engine;
    use std::sync::{Arc, Barrier};
    let dir = tempfile::tempdir().unwrap();
    for round in 0..10_000 {
        let path = dir.path().join(format!("env{}", round % 4));
        let engine = Arc::new(LmdbEngine::open_with_map_size(&path, false, 1 << 20).unwrap());
        let (reader, started) = (Arc::clone(&engine), Arc::new(Barrier::new(2)));
        let reader_done = Arc::clone(&started);
        std::thread::spawn(move || {
            assert_eq!(reader.get(b"absent").unwrap(), None);
            drop(reader);
            reader_done.wait();
        });
        started.wait();
        drop(engine);
    }
}

/// A stash of 20 good entries plus one whose stored bytes are garbage (written through the
/// engine, past the codec, so every engine can hold it).
fn stash_with_one_bad_entry(engine: EngineKind) -> Option<(tempfile::TempDir, Stash)> {
    if !crate::common::engine_available(engine) {
        return None;
    }
    let (dir, stash) = crate::common::stash(engine);
    for i in 0..20 {
        stash
            .set(
                &format!("good {i}"),
                &serde_json::json!({"i": i, "name": "cat"}),
            )
            .unwrap();
    }
    let key = stash.encode_key("bad one").unwrap();
    stash.engine().set(&key, b"not an lz4 block").unwrap();
    Some((dir, stash))
}

fn corrupt_entries_follow_the_policy(engine: EngineKind) {
    let Some((_dir, stash)) = stash_with_one_bad_entry(engine) else {
        return;
    };
    // A point read names the entry.
    let err = stash.get_value("bad one").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{engine}: {err}");
    assert!(
        err.to_string().contains(r#"key "bad one""#),
        "{engine}: {err}"
    );
    // Fail (the default): every scan stops with the entry's error.
    assert_eq!(stash.on_corrupt(), OnCorrupt::Fail);
    let err = stash
        .items_dyn()
        .unwrap()
        .collect::<hashstash::Result<Vec<_>>>()
        .unwrap_err();
    assert!(
        err.to_string().contains(r#"key "bad one""#),
        "{engine}: {err}"
    );
    let err = stash.ld().unwrap_err();
    assert!(
        err.to_string().contains(r#"key "bad one""#),
        "{engine}: {err}"
    );
    #[cfg(feature = "sql")]
    {
        let err = stash.sql("SELECT count(*) AS n FROM stash").unwrap_err();
        assert!(
            err.to_string().contains(r#"key "bad one""#),
            "{engine}: {err}"
        );
    }
    assert!(stash.skipped_corrupt().is_empty());
    // Skip: the other 20 entries, and the bad one reported once however often it was read.
    stash.set_on_corrupt(OnCorrupt::Skip);
    assert_eq!(stash.items_dyn().unwrap().count(), 20, "{engine}");
    // Its key decodes: listing keys reads no value.
    assert_eq!(stash.keys::<String>().unwrap().count(), 21, "{engine}");
    assert_eq!(stash.ld().unwrap().len(), 20, "{engine}");
    #[cfg(feature = "sql")]
    {
        let count = stash.sql("SELECT count(*) FROM stash").unwrap();
        assert_eq!(crate::sql::single_i64(&count), 20, "{engine}");
        let total = stash.sql("SELECT sum(i) FROM stash").unwrap();
        assert_eq!(crate::sql::single_i64(&total), 190, "{engine}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.parquet");
        assert_eq!(stash.to_parquet(&file).unwrap(), 20, "{engine}");
    }
    let skipped = stash.take_skipped_corrupt();
    assert_eq!(skipped.len(), 1, "{engine}: {skipped:?}");
    assert!(
        skipped[0].contains(r#"key "bad one""#),
        "{engine}: {skipped:?}"
    );
    assert!(stash.skipped_corrupt().is_empty());
    // A point read still fails, and nothing was removed.
    assert!(stash.get_value("bad one").is_err());
    assert_eq!(stash.len().unwrap(), 21);
    // Only decoding errors are skipped: a type mismatch in a typed scan is one too.
    let numbers: Vec<i64> = stash
        .values::<serde_json::Value>()
        .unwrap()
        .map(|v| v.unwrap()["i"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers.len(), 20);
}

#[test]
fn corrupt_entries_follow_the_policy_on_every_engine() {
    for engine in EngineKind::available() {
        corrupt_entries_follow_the_policy(engine);
    }
}

/// Record-level corruption (a checksum that fails) in the engine's own scan is skipped too,
/// and the SQL answers count only the good entries.
fn flipped_record_is_skipped(engine: EngineKind) {
    let (_dir, stash) = raw_stash(engine);
    let marker = "CORRUPT-ME-PLEASE-0123456789";
    for i in 0..50 {
        stash
            .set(&format!("fine {i}"), &serde_json::json!({"i": i}))
            .unwrap();
    }
    stash
        .set("victim", &serde_json::json!({"i": 1000, "text": marker}))
        .unwrap();
    let stash_dir = stash.stash_dir();
    drop(stash);
    let flipped: Vec<bool> = files_below(&stash_dir)
        .iter()
        .map(|f| flip_in_file(f, marker.as_bytes()))
        .collect();
    assert!(flipped.contains(&true), "{engine}");
    let stash = Stash::builder()
        .path(&stash_dir)
        .on_corrupt(OnCorrupt::Skip)
        .open()
        .unwrap();
    assert_eq!(stash.ld().unwrap().len(), 50, "{engine}");
    #[cfg(feature = "sql")]
    {
        let top = stash.sql("SELECT max(i) FROM stash").unwrap();
        assert_eq!(crate::sql::single_i64(&top), 49, "{engine}");
    }
    let skipped = stash.skipped_corrupt();
    assert_eq!(skipped.len(), 1, "{engine}: {skipped:?}");
    assert!(skipped[0].contains("checksum"), "{engine}: {skipped:?}");
    stash.set_on_corrupt(OnCorrupt::Fail);
    assert!(stash.ld().is_err(), "{engine}");
}

#[test]
fn flipped_records_are_skipped_on_file_engines() {
    for engine in EngineKind::available().filter(|e| !e.is_server() && *e != EngineKind::Memory) {
        flipped_record_is_skipped(engine);
    }
}
