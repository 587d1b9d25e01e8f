//! `setdefault` as one step, and `clear` taking function results, on every engine (stamped
//! out by `conformance.rs`).

use crate::common::{append_stash, builder, stash};
use hashstash::{EngineKind, Stash};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Threads, each with its own handle on the stash (as processes would have), racing to
/// `setdefault` one missing key, over and over: exactly one stores each time.
fn race_setdefault(engine: EngineKind, append_mode: bool) {
    const THREADS: usize = 6;
    const ROUNDS: usize = 15;
    let (dir, b) = builder(engine);
    let config = b.append_mode(append_mode).resolved_config().unwrap();
    let first = Stash::open_config(config.clone(), false).unwrap();
    let handles: Vec<Stash> = (0..THREADS)
        .map(|_| Stash::open_config(config.clone(), false).unwrap())
        .collect();
    for round in 0..ROUNDS {
        let key = format!("round{round}");
        let barrier = Arc::new(Barrier::new(THREADS));
        let answers: Vec<u64> = std::thread::scope(|scope| {
            let runs: Vec<_> = handles
                .iter()
                .enumerate()
                .map(|(t, handle)| {
                    let (barrier, key) = (Arc::clone(&barrier), key.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        handle.setdefault(&key, t as u64).unwrap()
                    })
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let stored: u64 = first.get(&key).unwrap().expect("one value stored");
        assert!(
            answers.iter().all(|&a| a == stored),
            "{engine}, round {round}: every caller gets the one stored value: {answers:?} vs {stored}"
        );
        if append_mode {
            let versions = first.get_all::<_, u64>(&key).unwrap();
            assert_eq!(versions, [stored], "{engine}: one version written");
        }
        let sets: u64 = handles.iter().map(|h| h.stats().sets).sum::<u64>();
        assert_eq!(sets, round as u64 + 1, "{engine}: one store per round");
    }
    drop(dir);
}

engine_test! {
    pub fn setdefault_stores_once_among_racing_threads(engine: EngineKind) {
        race_setdefault(engine, false);
    }
}

engine_test! {
    pub fn setdefault_stores_once_in_append_mode(engine: EngineKind) {
        race_setdefault(engine, true);
    }
}

engine_test! {
    pub fn setdefault_replaces_only_a_missing_or_expired_entry(engine: EngineKind) {
        for (dir, s) in [stash(engine), append_stash(engine)] {
            let append = s.config().append_mode;
            assert_eq!(s.setdefault("k", 1u32).unwrap(), 1);
            assert_eq!(s.setdefault("k", 2u32).unwrap(), 1, "{engine}: kept");
            let made: u32 = s.get_or_insert_with("k", || panic!("not called")).unwrap();
            assert_eq!(made, 1);
            // An expired entry is a miss, so setdefault stores over it (a new version in
            // append mode, numbered after the expired one).
            s.set_with_ttl("old", &7u32, Duration::ZERO).unwrap();
            assert_eq!(s.setdefault("old", 8u32).unwrap(), 8, "{engine}");
            assert_eq!(s.get::<_, u32>("old").unwrap(), Some(8));
            if append {
                let versions = s.get_all_with_metadata::<_, u32>("old").unwrap();
                let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
                assert_eq!(numbers, [1, 2], "{engine}");
            }
            // A ttl'd stash gives what setdefault stores its ttl too.
            let stats = s.stats();
            assert_eq!(stats.sets, 3, "{engine}: k, old and its replacement");
            drop(dir);
        }
    }
}

engine_test! {
    pub fn clear_takes_function_results_and_keeps_sub_stashes(engine: EngineKind) {
        let (_d, s) = stash(engine);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let square = |x: u64| {
            s.run_named(
                "square",
                |x: u64| {
                    calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    x * x
                },
                x,
            )
            .unwrap()
        };
        assert_eq!(square(3), 9);
        assert_eq!(square(3), 9);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        s.run_named("cube", |x: u64| x * x * x, 2u64).unwrap();
        s.set("entry", "value").unwrap();
        s.sub("mine").unwrap().set("kept", &1).unwrap();
        // A function stash written by another handle (another process, say) is found too.
        let other = Stash::open_config(s.config().clone(), false).unwrap();
        other
            .run_named("written_elsewhere", |x: u64| x + 1, 1u64)
            .unwrap();
        assert_eq!(
            s.function_names().unwrap(),
            ["cube", "square", "written_elsewhere"],
            "{engine}"
        );

        s.clear().unwrap();
        assert!(s.is_empty().unwrap(), "{engine}");
        assert_eq!(
            s.get_func::<_, u64>("square", &3u64).unwrap(),
            None,
            "{engine}"
        );
        assert_eq!(
            s.get_func::<_, u64>("cube", &2u64).unwrap(),
            None,
            "{engine}"
        );
        assert_eq!(
            other
                .get_func::<_, u64>("written_elsewhere", &1u64)
                .unwrap(),
            None,
            "{engine}"
        );
        assert_eq!(square(3), 9);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "{engine}: computed again after clear"
        );
        assert_eq!(
            s.sub("mine").unwrap().get::<_, i32>("kept").unwrap(),
            Some(1),
            "{engine}: a user's sub-stash keeps its entries"
        );
        // Opening with `clear` clears function results too, as the original's `clear=True`.
        let reopened = Stash::open_config(s.config().clone(), true).unwrap();
        assert_eq!(reopened.get_func::<_, u64>("square", &3u64).unwrap(), None);
    }
}
