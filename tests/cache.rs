//! Cache semantics on every engine (stamped out by `conformance.rs`): stats, invalidation.

use crate::common::{builder, stash};
use hashstash::{EngineKind, Stash, Stats};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The key and value bytes a write of `(key, value)` hands the engine.
fn written<K: serde::Serialize + ?Sized, V: serde::Serialize + ?Sized>(
    s: &Stash,
    key: &K,
    value: &V,
) -> u64 {
    (s.encode_key(key).unwrap().len() + s.encode_value(value).unwrap().len()) as u64
}

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
