//! The diskcache engine: values in files past a threshold, a size limit with eviction, and
//! disk given back when entries go.

use hashstash::config::EvictionPolicy;
use hashstash::engine::diskcache::FILE_THRESHOLD;
use hashstash::{Compressor, EngineKind, Stash};
use std::path::Path;

fn value_files(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            n += value_files(&path);
        } else if path.extension().is_some_and(|e| e == "val") {
            n += 1;
        }
    }
    n
}

/// Bytes that do not compress (so stored sizes are what the test says).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Raw bytes (serde's byte string), stored as one MessagePack `bin`.
struct Bytes(Vec<u8>);

impl serde::Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

fn cache(size_limit: u64, policy: EvictionPolicy) -> (tempfile::TempDir, Stash) {
    let dir = tempfile::tempdir().unwrap();
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Diskcache)
        .compress(Compressor::Raw)
        .size_limit(size_limit)
        .eviction_policy(policy)
        .open()
        .unwrap();
    (dir, stash)
}

#[test]
fn large_values_go_to_files_small_ones_inline() {
    let (_d, s) = cache(1 << 30, EvictionPolicy::LeastRecentlyStored);
    let big = noise(FILE_THRESHOLD * 3, 1);
    s.set("small", &vec![1u8; 100]).unwrap();
    assert_eq!(value_files(&s.path()), 0);
    s.set("big", &big).unwrap();
    assert_eq!(value_files(&s.path()), 1);
    assert_eq!(s.get::<_, Vec<u8>>("big").unwrap(), Some(big.clone()));
    assert_eq!(s.get::<_, Vec<u8>>("small").unwrap(), Some(vec![1u8; 100]));
    // Replacing a big value with a small one gives its file back.
    s.set("big", &vec![2u8; 10]).unwrap();
    assert_eq!(value_files(&s.path()), 0);
    s.set("big", &big).unwrap();
    assert!(s.remove("big").unwrap());
    assert_eq!(value_files(&s.path()), 0, "removing deletes the file");
}

#[test]
fn least_recently_stored_items_are_evicted_first() {
    let item = 100_000;
    let (_d, s) = cache(350_000, EvictionPolicy::LeastRecentlyStored);
    for i in 0..10u64 {
        s.set(&i, &Bytes(noise(item, i))).unwrap();
    }
    // 100 kB values plus a few bytes of encoding: three fit under 350 kB, the newest three.
    let kept: Vec<u64> = (0..10).filter(|i| s.contains(i).unwrap()).collect();
    assert_eq!(kept, [7, 8, 9]);
    assert_eq!(s.len().unwrap(), 3);
    assert_eq!(
        s.stats().evictions,
        7,
        "evictions are counted in the handle's stats"
    );
    assert_eq!(s.reset_stats().evictions, 7);
    assert_eq!(s.stats().evictions, 0);
    assert_eq!(value_files(&s.path()), 3, "evicted items' files are gone");
    for i in kept {
        assert_eq!(
            s.get_value(&i).unwrap(),
            Some(hashstash::Value::Bytes(noise(item, i)))
        );
    }
    // Writing again refreshes nothing for older items: storing order is what counts.
    s.set(&7u64, &Bytes(noise(item, 7))).unwrap();
    s.set(&10u64, &Bytes(noise(item, 10))).unwrap();
    let kept: Vec<u64> = (0..=10).filter(|i| s.contains(i).unwrap()).collect();
    assert_eq!(kept, [7, 9, 10]);
}

#[test]
fn policy_none_never_evicts() {
    let (_d, s) = cache(100_000, EvictionPolicy::None);
    for i in 0..10u64 {
        s.set(&i, &noise(50_000, i)).unwrap();
    }
    assert_eq!(s.len().unwrap(), 10);
}

#[test]
fn a_value_over_the_limit_is_refused_and_evicts_nothing() {
    let (_d, s) = cache(50_000, EvictionPolicy::LeastRecentlyStored);
    s.set("small", &Bytes(noise(1_000, 1))).unwrap();
    let err = s.set("huge", &Bytes(noise(200_000, 2))).unwrap_err();
    assert!(
        matches!(
            err,
            hashstash::Error::ValueTooLarge {
                engine: "diskcache",
                ..
            }
        ),
        "{err}"
    );
    // Storing it would have evicted everything, itself included: nothing changed instead.
    // (No value file was written either.)
    assert!(s.contains("small").unwrap());
    assert!(!s.contains("huge").unwrap());
    assert_eq!(value_files(&s.path()), 0);
}

#[test]
fn clearing_gives_disk_back() {
    let (_d, s) = cache(1 << 30, EvictionPolicy::LeastRecentlyStored);
    s.update((0..400u64).map(|i| (i, noise(20_000, i))))
        .unwrap();
    s.update((0..20u64).map(|i| (1000 + i, noise(FILE_THRESHOLD * 2, i))))
        .unwrap();
    let before = s.disk_usage().unwrap();
    assert!(before > 8_000_000, "{before}");
    s.clear().unwrap();
    assert_eq!(s.len().unwrap(), 0);
    assert_eq!(value_files(&s.path()), 0);
    // Reopened, so that SQLite has folded its write-ahead log back into the index.
    let stash_dir = s.stash_dir();
    drop(s);
    let reopened = Stash::builder().path(stash_dir).open().unwrap();
    let after = reopened.disk_usage().unwrap();
    assert!(after < before / 4, "before {before}, after {after}");
}

#[test]
fn options_parse_and_round_trip() {
    assert_eq!(
        "none".parse::<EvictionPolicy>().unwrap(),
        EvictionPolicy::None
    );
    assert_eq!(
        "least-recently-stored".parse::<EvictionPolicy>().unwrap(),
        EvictionPolicy::LeastRecentlyStored
    );
    assert!("lru".parse::<EvictionPolicy>().is_err());
    let (_d, s) = cache(12_345, EvictionPolicy::None);
    let dict = s.to_dict();
    assert_eq!(dict["size_limit"], 12_345);
    assert_eq!(dict["eviction_policy"], "none");
}

fn append_cache() -> (tempfile::TempDir, Stash) {
    let dir = tempfile::tempdir().unwrap();
    let stash = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::Diskcache)
        .compress(Compressor::Raw)
        .append_mode(true)
        .open()
        .unwrap();
    (dir, stash)
}

#[test]
fn pruning_deletes_value_files_and_keeps_the_size_total() {
    let (_d, s) = append_cache();
    // A second handle on the same index, for its running size total.
    let engine = hashstash::engine::diskcache::DiskcacheEngine::open(s.config()).unwrap();
    s.set("kept", &Bytes(noise(100, 1))).unwrap();
    let live_size = engine.stored_size().unwrap();
    let big = Bytes(noise(FILE_THRESHOLD * 2, 2));
    s.set_with_ttl("big", &big, std::time::Duration::ZERO)
        .unwrap();
    // An older live version in a file under an expired latest one: the key is a miss, in
    // scans too, and pruning takes both versions.
    s.set("old", &big).unwrap();
    s.set_with_ttl("old", &Bytes(noise(10, 3)), std::time::Duration::ZERO)
        .unwrap();
    assert_eq!(value_files(&s.path()), 2);
    let keys: Vec<String> = s.keys().unwrap().map(Result::unwrap).collect();
    assert_eq!(keys, ["kept"]);
    assert_eq!(s.prune_expired().unwrap(), 2);
    assert_eq!(value_files(&s.path()), 0, "pruning deletes the value files");
    assert_eq!(engine.stored_size().unwrap(), live_size);
    assert_eq!(s.len().unwrap(), 1);
}

#[test]
fn an_index_made_before_expiry_gains_its_column_on_open() {
    let (_d, s) = append_cache();
    s.set("a", &1).unwrap();
    s.set("a", &2).unwrap();
    let index = s.config().data_path().join("index.db");
    let stash_dir = s.stash_dir();
    drop(s);
    // Back to the schema before expiry: no index on it, no column.
    let conn = rusqlite::Connection::open(&index).unwrap();
    conn.execute_batch("DROP INDEX entries_expires; ALTER TABLE entries DROP COLUMN expires;")
        .unwrap();
    drop(conn);
    let s = Stash::builder().path(&stash_dir).open().unwrap();
    assert_eq!(s.get_all::<_, i32>("a").unwrap(), [1, 2], "nothing lost");
    s.set_with_ttl("a", &3, std::time::Duration::ZERO).unwrap();
    assert_eq!(s.get::<_, i32>("a").unwrap(), None);
    assert_eq!(s.prune_expired().unwrap(), 1);
    assert!(s.is_empty().unwrap());
}
