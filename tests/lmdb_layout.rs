//! The LMDB layout: short keys are their own address, long keys a hashed one, and a stash
//! written in the layout before (every key hashed) is moved to it when opened.

use hashstash::codec::encode_key;
use hashstash::engine::lmdb::LmdbEngine;
use hashstash::engine::record::Record;
use hashstash::engine::{key_digest, Engine};
use hashstash::engine::{EngineExt, History};
use hashstash::Error;

fn record<'a>(key: &'a [u8], version: u64, value: &'a [u8]) -> Vec<u8> {
    Record {
        key,
        version,
        timestamp_micros: 1_700_000_000_000_000 + version as i64,
        expires_micros: None,
        value,
    }
    .encode()
    .unwrap()
}

/// Writes entries the way the hashed layout did: `entries` at the key's hash, and in
/// `history` at the hash ++ version, with records of empty keys.
fn write_hashed_layout(
    path: &std::path::Path,
    map_size: usize,
    entries: &[(&[u8], &[&[u8]])],
    corrupt: &[u8],
) {
    use heed::types::Bytes;
    std::fs::create_dir_all(path).unwrap();
    // SAFETY: a fresh folder; this environment is closed before the engine opens it.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .read_txn_without_tls()
            .max_dbs(4)
            .map_size(map_size)
            .open(path)
    }
    .unwrap();
    let mut wtxn = env.write_txn().unwrap();
    let latest: heed::Database<Bytes, Bytes> =
        env.create_database(&mut wtxn, Some("entries")).unwrap();
    let history: heed::Database<Bytes, Bytes> =
        env.create_database(&mut wtxn, Some("history")).unwrap();
    for (key, versions) in entries {
        let digest = key_digest(key);
        for (i, value) in versions.iter().enumerate() {
            let version = i as u64 + 1;
            let mut at = digest.to_vec();
            at.extend_from_slice(&version.to_be_bytes());
            history
                .put(&mut wtxn, &at, &record(&[], version, value))
                .unwrap();
        }
        let last = versions.len() as u64;
        let latest_record = record(key, last, versions[versions.len() - 1]);
        latest.put(&mut wtxn, &digest, &latest_record).unwrap();
    }
    // An entry whose record fails its checksum: its key cannot be known.
    let mut bad = record(corrupt, 1, b"lost");
    let end = bad.len() - 1;
    bad[end] ^= 0xff;
    latest.put(&mut wtxn, &key_digest(corrupt), &bad).unwrap();
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
}

#[test]
fn a_stash_in_the_hashed_layout_is_moved_whole() {
    let dir = tempfile::tempdir().unwrap();
    let short = encode_key("short").unwrap();
    let long = encode_key(&"x".repeat(1_000)).unwrap();
    let corrupt = encode_key("damaged").unwrap();
    write_hashed_layout(
        dir.path(),
        1 << 24,
        &[(&short, &[b"s1", b"s2", b"s3"]), (&long, &[b"l1", b"l2"])],
        &corrupt,
    );

    let engine = LmdbEngine::open(dir.path(), true).unwrap();
    assert_eq!(engine.get(&short).unwrap().as_deref(), Some(&b"s3"[..]));
    assert_eq!(engine.get(&long).unwrap().as_deref(), Some(&b"l2"[..]));
    let versions = |key: &[u8]| -> Vec<(u64, i64, Vec<u8>)> {
        let versions = engine.versions(key).unwrap();
        versions
            .into_iter()
            .map(|v| (v.version, v.timestamp_micros, v.value))
            .collect()
    };
    let t = |v: u64| 1_700_000_000_000_000 + v as i64;
    assert_eq!(
        versions(&short),
        vec![
            (1, t(1), b"s1".to_vec()),
            (2, t(2), b"s2".to_vec()),
            (3, t(3), b"s3".to_vec())
        ]
    );
    assert_eq!(
        versions(&long),
        vec![(1, t(1), b"l1".to_vec()), (2, t(2), b"l2".to_vec())]
    );
    // The corrupt entry moved too: a scan still meets it, as an error, beside the others.
    let scanned: Vec<_> = engine.scan().unwrap().collect();
    assert_eq!(scanned.len(), 3);
    assert_eq!(scanned.iter().filter(|e| e.is_err()).count(), 1);
    assert!(matches!(
        scanned.iter().find(|e| e.is_err()),
        Some(Err(Error::Decode { .. }))
    ));
    // The next version continues the numbering.
    engine.set(&short, b"s4").unwrap();
    assert_eq!(versions(&short).last().map(|v| v.0), Some(4));
    drop(engine);

    // Opened again, nothing moves twice and nothing is lost.
    let engine = LmdbEngine::open(dir.path(), true).unwrap();
    assert_eq!(engine.len().unwrap(), 3);
    assert_eq!(engine.versions(&short).unwrap().len(), 4);
    assert_eq!(engine.versions(&long).unwrap().len(), 2);
}

#[test]
fn short_keys_are_scanned_in_key_order_and_long_keys_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let engine = LmdbEngine::open(dir.path(), false).unwrap();
    let keys: Vec<Vec<u8>> = ["b", "a", "c"]
        .iter()
        .map(|k| encode_key(k).unwrap())
        .collect();
    for key in &keys {
        engine.set(key, key).unwrap();
    }
    let scanned: Vec<Vec<u8>> = engine.scan().unwrap().map(|e| e.unwrap().0).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(scanned, sorted);
    // Keys on both sides of the longest direct address, and one that starts like a hashed one.
    for len in [399, 400, 401, 5_000] {
        let key = vec![b'k'; len];
        engine.set(&key, b"v").unwrap();
        assert_eq!(
            engine.get(&key).unwrap().as_deref(),
            Some(&b"v"[..]),
            "{len}"
        );
    }
    let looks_hashed = [&[0xff][..], &key_digest(b"kkk")[..]].concat();
    engine.set(&looks_hashed, b"w").unwrap();
    assert_eq!(
        engine.get(&looks_hashed).unwrap().as_deref(),
        Some(&b"w"[..])
    );
}

#[test]
fn a_key_that_prefixes_another_keeps_its_own_versions() {
    // Canonical keys never prefix one another, but the engine takes any bytes: the history
    // of "a" must not take in the history of "a" followed by eight more bytes.
    let dir = tempfile::tempdir().unwrap();
    let engine = LmdbEngine::open(dir.path(), true).unwrap();
    let (short, longer) = (b"a".to_vec(), b"a\0\0\0\0\0\0\0\x01".to_vec());
    engine.set(&longer, b"other").unwrap();
    engine.set(&short, b"one").unwrap();
    engine.set(&short, b"two").unwrap();
    assert_eq!(engine.versions(&short).unwrap().len(), 2);
    assert!(engine.remove(&short).unwrap());
    assert_eq!(engine.versions(&longer).unwrap().len(), 1);
    assert_eq!(engine.get(&longer).unwrap().as_deref(), Some(&b"other"[..]));
}

#[test]
fn a_large_old_stash_moves_in_batches_and_grows_the_map() {
    // 3,000 entries of 300 bytes, with their history, fill most of a 4 MiB map: moving them
    // to the new layout needs more room than that, so the open must grow the map and retry.
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<Vec<u8>> = (0..3_000)
        .map(|i| encode_key(&format!("key{i}")).unwrap())
        .collect();
    let values: Vec<Vec<u8>> = (0..3_000).map(|i| vec![(i % 251) as u8; 300]).collect();
    let entries: Vec<(&[u8], Vec<&[u8]>)> = keys
        .iter()
        .zip(&values)
        .map(|(k, v)| (&k[..], vec![&v[..]]))
        .collect();
    let entries: Vec<(&[u8], &[&[u8]])> = entries.iter().map(|(k, v)| (*k, &v[..])).collect();
    write_hashed_layout(
        dir.path(),
        4 << 20,
        &entries,
        &encode_key("damaged").unwrap(),
    );

    let engine = LmdbEngine::open_with_map_size(dir.path(), true, 4 << 20).unwrap();
    assert_eq!(engine.len().unwrap(), 3_001); // the corrupt entry moved too
    for (key, value) in keys.iter().zip(&values) {
        assert_eq!(engine.get(key).unwrap().as_ref(), Some(value));
        assert_eq!(engine.versions(key).unwrap().len(), 1);
    }
}
