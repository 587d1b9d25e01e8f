//! Parallel map through a function stash.

use crate::common::stash;
use hashstash::map::MapOptions;
use hashstash::progress::{Observer, Progress};
use hashstash::EngineKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A function that counts its real calls.
fn counted<A, R>(f: impl Fn(A) -> R + Send + Sync) -> (Arc<AtomicUsize>, impl Fn(A) -> R) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    (calls, move |a| {
        counter.fetch_add(1, Ordering::SeqCst);
        f(a)
    })
}

#[test]
fn a_map_computes_only_missing_items_and_keeps_item_order() {
    for engine in [EngineKind::default_engine(), EngineKind::Memory] {
        let (_dir, s) = stash(engine);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let square = move |x: u64| {
            counter.fetch_add(1, Ordering::SeqCst);
            x * x
        };
        // One item stored beforehand by a single run: the map reads it.
        assert_eq!(s.run_named("square", &square, 7).unwrap(), 49);
        let items: Vec<u64> = (0..200).collect();
        let square = Arc::new(square);
        let f = Arc::clone(&square);
        let mapped = s
            .map_named(
                "square",
                move |x| f(x),
                items.clone(),
                MapOptions::default(),
            )
            .unwrap();
        assert_eq!(mapped.len(), 200);
        let expected: Vec<u64> = items.iter().map(|x| x * x).collect();
        assert_eq!(mapped.results().unwrap(), expected, "{engine}");
        assert_eq!(calls.load(Ordering::SeqCst), 200, "{engine}");

        // Everything is stored now: a serial map without preloading computes nothing.
        let serial = MapOptions {
            num_threads: Some(1),
            preload: false,
            ..MapOptions::default()
        };
        let f = Arc::clone(&square);
        let again = s
            .map_named("square", move |x| f(x), items.clone(), serial)
            .unwrap();
        assert_eq!(again.results().unwrap(), expected);
        assert_eq!(calls.load(Ordering::SeqCst), 200);

        // `force` computes every item again.
        let forced = MapOptions {
            force: true,
            num_threads: Some(2),
            ..MapOptions::default()
        };
        let f = Arc::clone(&square);
        let forced = s.map_named("square", move |x| f(x), vec![1, 2], forced);
        forced.unwrap().wait();
        assert_eq!(calls.load(Ordering::SeqCst), 202);
    }
}

#[test]
fn a_panic_is_its_items_error_and_the_others_are_stored() {
    let (_dir, s) = stash(EngineKind::default_engine());
    let picky = |x: u32| {
        if x == 3 {
            panic!("three is not allowed");
        }
        x + 100
    };
    let mapped = s
        .map_named("picky", picky, vec![1, 2, 3, 4], MapOptions::default())
        .unwrap();
    let items = mapped.items();
    for (item, result) in &items {
        match (item, result) {
            (3, Err(e)) => {
                let message = e.to_string();
                assert!(message.contains("three is not allowed"), "{message}");
                assert!(message.contains("on 3"), "{message}");
            }
            (x, Ok(r)) => assert_eq!(*r, x + 100),
            other => panic!("unexpected {other:?}"),
        }
    }
    for x in [1u32, 2, 4] {
        assert_eq!(s.get_func::<_, u32>("picky", &x).unwrap(), Some(x + 100));
    }
    assert_eq!(s.get_func::<_, u32>("picky", &3u32).unwrap(), None);
}

/// Item 0 is slow, the others quick.
fn slow_first(x: u64) -> u64 {
    if x == 0 {
        std::thread::sleep(Duration::from_millis(300));
    }
    x + 1
}

#[test]
fn results_come_as_they_finish_or_in_item_order() {
    let (_dir, s) = stash(EngineKind::default_engine());
    let options = MapOptions {
        num_threads: Some(2),
        ..MapOptions::default()
    };
    let finished: Vec<u64> = s
        .map_named("slow_first", slow_first, (0..6).collect(), options.clone())
        .unwrap()
        .results_iter()
        .map(Result::unwrap)
        .collect();
    // The slow item finishes last; every item comes once.
    assert_eq!(finished.last(), Some(&1), "{finished:?}");
    let mut sorted = finished.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3, 4, 5, 6]);

    let ordered = MapOptions {
        ordered: true,
        force: true,
        ..options
    };
    let in_order: Vec<(u64, u64)> = s
        .map_named("slow_first", slow_first, (0..6).collect(), ordered)
        .unwrap()
        .items_iter()
        .map(|(x, r)| (x, r.unwrap()))
        .collect();
    assert_eq!(in_order, (0..6).map(|x| (x, x + 1)).collect::<Vec<_>>());
}

#[test]
fn without_precompute_nothing_runs_until_results_are_asked_for() {
    let (_dir, s) = stash(EngineKind::default_engine());
    let (calls, double) = counted(|x: u64| x * 2);
    let observed = Arc::new(Observed::default());
    let lazy = MapOptions {
        precompute: false,
        progress: Some(Observer::shared(observed.clone())),
        desc: Some("doubling".into()),
        ..MapOptions::default()
    };
    let mapped = s.map_named("double", double, vec![1, 2, 3], lazy).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(mapped.finished(), 0);
    assert_eq!(
        observed.log(),
        [] as [String; 0],
        "nothing reported before it runs"
    );
    assert_eq!(mapped.results().unwrap(), [2, 4, 6]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        observed.log(),
        [
            "start doubling 3 0",
            "advance 1",
            "advance 1",
            "advance 1",
            "finish"
        ]
    );
    // Items already stored need no work: the observer hears they are done from the start.
    let observed = Arc::new(Observed::default());
    let (_, double) = counted(|x: u64| x * 2);
    let again = MapOptions {
        progress: Some(Observer::shared(observed.clone())),
        ..MapOptions::default()
    };
    let mapped = s
        .map_named("double", double, vec![1, 2, 3, 7], again)
        .unwrap();
    assert_eq!(mapped.results().unwrap(), [2, 4, 6, 14]);
    let log = observed.log();
    assert!(
        log[0].starts_with("start Mapping double across 4 items") && log[0].ends_with(" 4 3"),
        "{log:?}"
    );
    assert_eq!(log[1..], ["advance 1", "finish"]);

    // With precompute (the default) the map runs in the background: `wait` sees it done.
    let (calls, double) = counted(|x: u64| x * 2);
    let mapped = s
        .map_named("double", double, vec![4, 5], MapOptions::default())
        .unwrap();
    mapped.wait();
    assert_eq!(mapped.finished(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(format!("{mapped:?}").contains("finished: 2"), "{mapped:?}");
}

#[test]
fn stash_runs_and_stash_map_choose_what_is_stored() {
    let (_dir, s) = stash(EngineKind::default_engine());
    // Not stored item by item: computed again next time.
    let (calls, triple) = counted(|x: u64| x * 3);
    let triple = Arc::new(triple);
    let unstored = MapOptions {
        stash_runs: false,
        ..MapOptions::default()
    };
    for _ in 0..2 {
        let f = Arc::clone(&triple);
        let mapped = s.map_named("triple", move |x| f(x), vec![1, 2], unstored.clone());
        assert_eq!(mapped.unwrap().results().unwrap(), [3, 6]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(s.function_stash("triple").unwrap().len().unwrap(), 0);

    // The whole map stored: the same list of items again is one read of the whole.
    let whole = MapOptions {
        stash_runs: false,
        stash_map: true,
        ..MapOptions::default()
    };
    for _ in 0..2 {
        let f = Arc::clone(&triple);
        let mapped = s.map_named("triple", move |x| f(x), vec![5, 6, 7], whole.clone());
        assert_eq!(mapped.unwrap().results().unwrap(), [15, 18, 21]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 7);
    let maps = s
        .function_stash("triple")
        .unwrap()
        .sub("stashed_map")
        .unwrap();
    assert_eq!(
        maps.get::<_, Vec<u64>>(&vec![5u64, 6, 7]).unwrap(),
        Some(vec![15, 18, 21])
    );
}

#[test]
fn common_and_per_item_keyword_arguments() {
    let (_dir, s) = stash(EngineKind::default_engine());
    let describe =
        |name: String, goodness: Vec<String>| format!("{name} is {}", goodness.join("/"));
    let good = vec!["good".to_string()];
    let mapped = s
        .map_with(
            "describe",
            describe,
            vec!["cat".to_string(), "dog".to_string(), "eel".to_string()],
            good.clone(),
            vec![None, Some(vec!["bad".to_string()])],
            MapOptions::default(),
        )
        .unwrap();
    assert_eq!(
        mapped.results().unwrap(),
        ["cat is good", "dog is bad", "eel is good"]
    );
    // Each result is stored under (item, keywords).
    assert_eq!(
        s.get_func::<_, String>("describe", &("dog", vec!["bad"]))
            .unwrap()
            .as_deref(),
        Some("dog is bad")
    );
    let rows = s.function_stash("describe").unwrap().ld().unwrap();
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["_arg1", "_arg2", "_value"]);
}

/// `try_map`: an item's `Err` is handed back for that item and not stored, so the next map
/// computes it again; its `Ok`s are stored as `map` stores them.
#[test]
fn try_map_hands_errors_back_without_storing_them() {
    use hashstash::map::MapError;
    for engine in [EngineKind::default_engine(), EngineKind::Memory] {
        let (_dir, s) = stash(engine);
        let (calls, half) = counted(|x: u64| {
            if x.is_multiple_of(2) {
                Ok(x / 2)
            } else {
                Err(format!("{x} is odd"))
            }
        });
        let half = Arc::new(half);
        let f = Arc::clone(&half);
        let items: Vec<u64> = (0..10).collect();
        let map = s
            .try_map_named("half", move |x| f(x), items.clone(), MapOptions::default())
            .unwrap();
        for (item, result) in map.items() {
            match result {
                Ok(half) => assert_eq!((item % 2, half), (0, item / 2), "{engine}"),
                Err(MapError::Failed(why)) => {
                    assert_eq!(why, format!("{item} is odd"), "{engine}")
                }
                Err(MapError::Stash(e)) => panic!("{engine}: {e}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert_eq!(
            s.function_stash("half").unwrap().len().unwrap(),
            5,
            "{engine}"
        );
        assert_eq!(s.get_func::<_, u64>("half", &4u64).unwrap(), Some(2));
        assert_eq!(s.get_func::<_, u64>("half", &3u64).unwrap(), None);

        // Again: the five stored are read back, the five errors computed again.
        let f = Arc::clone(&half);
        let again = s
            .try_map_named("half", move |x| f(x), items, MapOptions::default())
            .unwrap();
        again.wait();
        for i in 0..10 {
            assert_eq!(again.was_cached(i), Some(i % 2 == 0), "{engine}, item {i}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 15, "{engine}");
        assert!(matches!(again.results(), Err(MapError::Failed(_))));
    }
}

/// A panic in `try_map` is that item's `MapError::Stash`, not the whole map's.
#[test]
fn try_map_turns_a_panic_into_the_item_s_error() {
    use hashstash::map::MapError;
    let (_dir, s) = stash(EngineKind::Memory);
    let f = |x: u64| -> Result<u64, String> {
        assert!(x != 3, "three is not allowed");
        Ok(x)
    };
    let map = s
        .try_map_named("picky", f, vec![1, 3, 5], MapOptions::default())
        .unwrap();
    let results: Vec<_> = map.items().into_iter().map(|(_, r)| r).collect();
    assert!(matches!(results[0], Ok(1)));
    assert!(
        matches!(&results[1], Err(MapError::Stash(e)) if e.to_string().contains("three is not allowed"))
    );
    assert!(matches!(results[2], Ok(5)));
}

/// What a Python user reaches for on a `StashMap`: which items were read back rather than
/// computed, and the results by index, as often as asked.
#[test]
fn a_map_says_which_items_were_read_back_and_answers_by_index() {
    for engine in [EngineKind::default_engine(), EngineKind::Memory] {
        let (_dir, s) = stash(engine);
        s.run_named("inc", |x: u64| x + 1, 2u64).unwrap();
        for preload in [true, false] {
            let options = MapOptions {
                preload,
                num_threads: Some(2),
                ..Default::default()
            };
            let map = s
                .map_named("inc", |x: u64| x + 1, vec![1, 2, 3], options)
                .unwrap();
            assert_eq!(map.get(2).transpose().unwrap(), Some(4), "{engine}");
            assert_eq!(map.get(2).transpose().unwrap(), Some(4), "asked twice");
            assert_eq!(map.get(3).transpose().unwrap(), None, "past the end");
            assert_eq!(map.item(1), Some(&2));
            map.wait();
            let cached: Vec<Option<bool>> = (0..4).map(|i| map.was_cached(i)).collect();
            if preload {
                // Item 2 was stored by the single run; 1 and 3 are computed here.
                assert_eq!(
                    cached,
                    [Some(false), Some(true), Some(false), None],
                    "{engine}"
                );
            } else {
                // Every item is stored by now: each is read back as it comes to be run.
                assert_eq!(
                    cached,
                    [Some(true), Some(true), Some(true), None],
                    "{engine}"
                );
            }
            assert_eq!(map.results().unwrap(), [2, 3, 4]);
        }
    }
}

/// A progress observer that writes down what it hears.
#[derive(Default)]
struct Observed(std::sync::Mutex<Vec<String>>);

impl Observed {
    fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Progress for Observed {
    fn start(&self, what: &str, total: u64, done: u64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("start {what} {total} {done}"));
    }
    fn advance(&self, steps: u64) {
        self.0.lock().unwrap().push(format!("advance {steps}"));
    }
    fn finish(&self) {
        self.0.lock().unwrap().push("finish".into());
    }
}
