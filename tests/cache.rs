//! Cache semantics on every engine (stamped out by `conformance.rs`): stats, invalidation,
//! expiry.

use crate::common::{append_stash, builder, stash};
use hashstash::engine::EngineExt;
use hashstash::engine::WriteMeta;
use hashstash::{EngineKind, Stash, Stats};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The key and value bytes a write of `(key, value)` hands the engine.
fn written<K: serde::Serialize + ?Sized, V: serde::Serialize + ?Sized>(
    s: &Stash,
    key: &K,
    value: &V,
) -> u64 {
    (s.encode_key(key).unwrap().len() + s.encode_value(value).unwrap().len()) as u64
}

engine_test! {
    pub fn stats_count_what_the_handle_did(engine: EngineKind) {
        let (_d, s) = stash(engine);
        assert_eq!(s.stats(), Stats::default());
        assert_eq!(s.stats().hit_rate(), None);
        s.set("a", &1).unwrap();
        s.set_many([("b", &2), ("c", &3)]).unwrap();
        s.update([("d", 4), ("e", 5)]).unwrap();
        let mut bytes = written(&s, "a", &1) + written(&s, "b", &2) + written(&s, "c", &3);
        bytes += written(&s, "d", &4) + written(&s, "e", &5);
        assert_eq!(s.get::<_, i32>("a").unwrap(), Some(1));
        assert_eq!(s.get::<_, i32>("zz").unwrap(), None);
        assert_eq!(
            s.get_value("b").unwrap(),
            Some(hashstash::Value::Integer(2.into()))
        );
        assert_eq!(
            s.get_many::<_, i32, _>(["c", "yy", "d"]).unwrap(),
            [Some(3), None, Some(4)]
        );
        assert!(s.contains("a").unwrap(), "contains is not a counted lookup");
        assert_eq!(s.pop::<_, i32>("e").unwrap(), Some(5));
        assert_eq!(s.pop::<_, i32>("e").unwrap(), None);
        assert!(s.remove("d").unwrap());
        assert!(
            !s.remove("d").unwrap(),
            "a removal of nothing is not a delete"
        );
        assert!(s.invalidate("c").unwrap());
        assert!(!s.invalidate("c").unwrap());

        let clone = s.clone();
        clone.set("f", &6).unwrap();
        bytes += written(&s, "f", &6);
        let stats = s.stats();
        assert_eq!(
            stats,
            Stats {
                hits: 5,
                misses: 3,
                sets: 6,
                deletes: 3,
                evictions: 0,
                bytes_written: bytes,
                scanned: 0,
            },
            "clones share their handle's counts"
        );
        assert_eq!(stats.hit_rate(), Some(5.0 / 8.0));
        let sub = s.sub("other").unwrap();
        sub.set("x", &1).unwrap();
        assert_eq!(s.stats().sets, 6, "a sub-stash counts on its own handle");
        assert_eq!(sub.stats().sets, 1);

        assert_eq!(s.reset_stats(), stats);
        assert_eq!(s.stats(), Stats::default());
        s.get::<_, i32>("a").unwrap();
        assert_eq!(s.stats().hits, 1);
    }
}

engine_test! {
    pub fn stats_outlive_their_handles(engine: EngineKind) {
        let (_d, b) = builder(engine);
        {
            let s = b.clone().open().unwrap();
            s.set("a", &1).unwrap();
            s.get::<_, i32>("a").unwrap();
        }
        let s = b.clone().open().unwrap();
        assert_eq!(s.stats(), Stats::default(), "a new handle starts at zero");
        let lifetime = s.lifetime_stats().unwrap();
        assert_eq!((lifetime.sets, lifetime.hits, lifetime.misses), (1, 1, 0));
        assert_eq!(
            s.len().unwrap(),
            1,
            "the totals are not entries of the stash"
        );
        assert_eq!(s.keys::<String>().unwrap().count(), 1);

        // Handles in several threads flush many times: more records than a flush keeps before
        // folding them, folded by several at once; nothing is lost or counted twice.
        std::thread::scope(|scope| {
            for t in 0..4 {
                let b = b.clone();
                scope.spawn(move || {
                    let s = b.open().unwrap();
                    for i in 0..25 {
                        s.get::<_, i32>(&(t, i)).unwrap();
                        s.flush_stats().unwrap();
                    }
                });
            }
        });
        let lifetime = s.lifetime_stats().unwrap();
        assert_eq!((lifetime.sets, lifetime.hits, lifetime.misses), (1, 1, 100));
        // Reset counts are not flushed; this handle's live counts are included.
        s.get::<_, i32>("a").unwrap();
        assert_eq!(s.lifetime_stats().unwrap().hits, 2);
        s.reset_stats();
        drop(s);
        let s = b.open().unwrap();
        assert_eq!(s.lifetime_stats().unwrap().hits, 1);
    }
}

engine_test! {
    pub fn invalidate_memoized_results(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let calls = AtomicUsize::new(0);
        let square = |x: u64| {
            s.run_named(
                "square",
                |(x,): (u64,)| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    x * x
                },
                (x,),
            )
            .unwrap()
        };
        for x in 1..=3 {
            assert_eq!(square(x), x * x);
        }
        assert_eq!(square(2), 4);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let results = s.function_stash("square").unwrap();
        let stats = results.stats();
        assert_eq!((stats.misses, stats.hits, stats.sets), (3, 1, 3));

        assert!(s.invalidate_call("square", &(2,)).unwrap());
        assert!(!s.invalidate_call("square", &(2,)).unwrap());
        assert_eq!(s.get_func::<_, u64>("square", &(2,)).unwrap(), None);
        assert_eq!(s.get_func::<_, u64>("square", &(3,)).unwrap(), Some(9));
        assert_eq!(square(2), 4);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "recomputed after invalidation"
        );
        assert_eq!(square(2), 4);
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        assert_eq!(s.invalidate_func("square").unwrap(), 3);
        assert!(results.is_empty().unwrap());
        assert_eq!(results.stats().deletes, 4);
        assert_eq!(s.invalidate_func("square").unwrap(), 0);
        assert_eq!(square(3), 9);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            5,
            "recomputed after invalidating all"
        );
    }
}

const HOUR: Duration = Duration::from_secs(3600);

engine_test! {
    pub fn expiry_makes_entries_misses(engine: EngineKind) {
        let (_d, s) = stash(engine);
        // An expiry of zero has passed as soon as it is written: no test waits on a clock.
        s.set_with_ttl("gone", &1, Duration::ZERO).unwrap();
        s.set_with_ttl("kept", &2, HOUR).unwrap();
        s.set("plain", &3).unwrap();
        assert_eq!(s.get::<_, i32>("gone").unwrap(), None);
        assert_eq!(s.get_value("gone").unwrap(), None);
        assert!(!s.contains("gone").unwrap());
        assert_eq!(s.get::<_, i32>("kept").unwrap(), Some(2));
        assert!(s.contains("kept").unwrap());
        assert_eq!(
            s.get_many::<_, i32, _>(["gone", "kept", "plain"]).unwrap(),
            [None, Some(2), Some(3)]
        );
        let mut keys: Vec<String> = s.keys().unwrap().map(Result::unwrap).collect();
        keys.sort();
        assert_eq!(keys, ["kept", "plain"]);
        assert_eq!(s.items::<String, i32>().unwrap().count(), 2);
        assert_eq!(s.raw_items().unwrap().count(), 2);
        assert!(s.get_all::<_, i32>("gone").unwrap().is_empty());
        let engine_versions = s.engine().history()
            .unwrap()
            .versions(&s.encode_key("kept").unwrap()).unwrap();
        assert!(engine_versions[0].expires_micros.is_some());
        assert_eq!(
            s.len().unwrap(),
            3,
            "len counts expired entries until they are pruned"
        );
        #[cfg(feature = "sql")]
        {
            use crate::sql::single_i64;
            assert_eq!(single_i64(&s.sql("SELECT count(*) FROM stash").unwrap()), 2);
            let lookup = s.sql(r#"SELECT count(*) FROM stash WHERE _key = 'gone'"#);
            assert_eq!(single_i64(&lookup.unwrap()), 0, "a key lookup misses too");
        }

        assert_eq!(s.prune_expired().unwrap(), 1);
        assert_eq!(s.prune_expired().unwrap(), 0);
        assert_eq!(s.len().unwrap(), 2);
        assert_eq!(s.get::<_, i32>("kept").unwrap(), Some(2));
        assert_eq!(s.stats().deletes, 1, "a pruned entry is a delete");

        // A write replaces an expired entry like any other.
        s.set_with_ttl("again", &4, Duration::ZERO).unwrap();
        s.set("again", &5).unwrap();
        assert_eq!(s.get::<_, i32>("again").unwrap(), Some(5));
        assert_eq!(s.prune_expired().unwrap(), 0);
    }
}

engine_test! {
    pub fn a_stash_wide_ttl_applies_to_every_write(engine: EngineKind) {
        let (_d, b) = builder(engine);
        let s = b.clone().ttl(Duration::ZERO).open().unwrap();
        s.set("a", &1).unwrap();
        s.set_many([("b", &2)]).unwrap();
        s.update([("c", 3)]).unwrap();
        s.set_with_ttl("d", &4, HOUR).unwrap();
        for key in ["a", "b", "c"] {
            assert_eq!(s.get::<_, i32>(key).unwrap(), None, "{key}");
        }
        assert_eq!(
            s.get::<_, i32>("d").unwrap(),
            Some(4),
            "a per-write ttl wins"
        );
        let sub = s.sub("child").unwrap();
        sub.set("x", &1).unwrap();
        assert_eq!(
            sub.get::<_, i32>("x").unwrap(),
            None,
            "sub-stashes inherit the ttl"
        );
        // The ttl is the handle's, not the stash's: another handle without one keeps entries.
        let plain = b.open().unwrap();
        plain.set("e", &5).unwrap();
        assert_eq!(s.get::<_, i32>("e").unwrap(), Some(5));
        assert_eq!(s.prune_expired().unwrap(), 3);
    }
}

engine_test! {
    pub fn expiry_in_append_mode_hides_the_entry_until_rewritten(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        s.set("k", &1).unwrap();
        s.set_with_ttl("k", &2, Duration::ZERO).unwrap();
        assert_eq!(s.get::<_, i32>("k").unwrap(), None);
        assert!(s.get_all::<_, i32>("k").unwrap().is_empty());
        assert!(!s.contains("k").unwrap());
        s.set("k", &3).unwrap();
        assert_eq!(s.get::<_, i32>("k").unwrap(), Some(3));
        let versions = s.engine().history()
            .unwrap()
            .versions(&s.encode_key("k").unwrap()).unwrap();
        let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, [1, 2, 3], "version numbers stay gap-free");
        assert!(versions[1].expires_micros.is_some());
        assert_eq!(versions[2].expires_micros, None);
        assert_eq!(s.prune_expired().unwrap(), 0, "the latest version is live");
        s.set_with_ttl("k", &4, Duration::ZERO).unwrap();
        assert_eq!(s.prune_expired().unwrap(), 1);
        assert!(s
            .engine()
            .history()
            .unwrap()
            .versions(&s.encode_key("k").unwrap())
            .unwrap()
            .is_empty());
        assert_eq!(s.len().unwrap(), 0);
        s.set("k", &5).unwrap();
        assert_eq!(
            s.get_all::<_, i32>("k").unwrap(),
            [5],
            "a pruned key starts again"
        );
    }
}

engine_test! {
    pub fn writes_keep_given_timestamps(engine: EngineKind) {
        let (_d, s) = append_stash(engine);
        let key = s.encode_key("k").unwrap();
        let (v1, v2) = (s.encode_value(&1).unwrap(), s.encode_value(&2).unwrap());
        let at = |micros| WriteMeta {
            timestamp_micros: Some(micros),
            expires_micros: None,
        };
        s.engine()
            .set_many_with(&[(&key, &v1)], at(1_000_000))
            .unwrap();
        s.engine()
            .set_many_with(&[(&key, &v2)], at(2_000_000))
            .unwrap();
        let versions = s.engine().history()
            .unwrap()
            .versions(&key).unwrap();
        let times: Vec<i64> = versions.iter().map(|v| v.timestamp_micros).collect();
        assert_eq!(times, [1_000_000, 2_000_000]);
    }
}

engine_test! {
    pub fn memoized_results_expire(engine: EngineKind) {
        let (_d, b) = builder(engine);
        let calls = AtomicUsize::new(0);
        let run = |s: &Stash| {
            s.run_named(
                "counted",
                |x: u64| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    x + 1
                },
                1,
            )
            .unwrap()
        };
        let expiring = b.clone().ttl(Duration::ZERO).open().unwrap();
        assert_eq!((run(&expiring), run(&expiring)), (2, 2));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "an expired result is computed again"
        );
        let lasting = b.ttl(HOUR).open().unwrap();
        assert_eq!((run(&lasting), run(&lasting)), (2, 2));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "a live result is read back"
        );
    }
}

engine_test! {
    /// The async face (feature `async`, tests/async_stash.rs).
    pub fn async_face(engine: EngineKind) {
        #[cfg(feature = "async")]
        crate::async_stash::async_face(engine);
        #[cfg(not(feature = "async"))]
        let _ = engine;
    }
}

/// A dropped handle's counts are written in the background, but never into a stash folder
/// its owner has removed meanwhile: a removed temporary folder stays removed.
#[test]
fn dropped_counts_never_make_a_removed_folder_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("gone");
    let stash = Stash::builder().root_dir(&root).open().unwrap();
    stash.set("a", &1).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    drop(stash);
    hashstash::stats::flush_dropped().unwrap();
    assert!(!root.exists(), "the folder was made again");

    // A stash still there gets its counts.
    let kept = dir.path().join("kept");
    let stash = Stash::builder().root_dir(&kept).open().unwrap();
    stash.set("a", &1).unwrap();
    drop(stash);
    hashstash::stats::flush_dropped().unwrap();
    let again = Stash::builder().root_dir(&kept).open().unwrap();
    assert_eq!(again.lifetime_stats().unwrap().sets, 1);
}
