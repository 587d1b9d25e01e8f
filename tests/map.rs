//! Parallel map through a function stash.

use crate::common::stash;
use hashstash::map::MapOptions;
use hashstash::EngineKind;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn a_map_computes_only_missing_items_and_keeps_item_order() {
    for engine in [EngineKind::default_engine(), EngineKind::Memory] {
        let (_dir, s) = stash(engine);
        let calls = AtomicUsize::new(0);
        let square = |x: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            x * x
        };
        // One item stored beforehand by a single run: the map reads it.
        assert_eq!(s.run_named("square", square, 7).unwrap(), 49);
        let items: Vec<u64> = (0..200).collect();
        let mapped = s
            .map_named("square", square, items.clone(), MapOptions::default())
            .unwrap();
        assert_eq!(mapped.len(), 200);
        let expected: Vec<u64> = items.iter().map(|x| x * x).collect();
        assert_eq!(mapped.results().unwrap(), expected, "{engine}");
        assert_eq!(calls.load(Ordering::SeqCst), 200, "{engine}");

        // Everything is stored now: a serial map computes nothing.
        let serial = MapOptions {
            num_threads: Some(1),
            ..MapOptions::default()
        };
        let again = s
            .map_named("square", square, items.clone(), serial)
            .unwrap();
        assert_eq!(again.results().unwrap(), expected);
        assert_eq!(calls.load(Ordering::SeqCst), 200);

        // `force` computes every item again.
        let forced = MapOptions {
            force: true,
            num_threads: Some(2),
        };
        s.map_named("square", square, vec![1, 2], forced).unwrap();
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
