//! `AsyncStash` (feature `async`), stamped for every engine by `conformance.rs` through
//! `cache::async_face`.

use crate::common::stash;
use hashstash::engine::EngineExt;
use hashstash::{AsyncStash, EngineKind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn async_face(engine: EngineKind) {
    let (_d, s) = stash(engine);
    // Redis and MongoDB are spoken to natively; files and object storage (whose HTTP client
    // lives on the engine's own runtime) on the blocking pool.
    let native = matches!(engine, EngineKind::Redis | EngineKind::Mongo);
    assert_eq!(s.engine().as_async().is_some(), native);
    runtime().block_on(async {
        let a = AsyncStash::new(s.clone());
        a.set("k", &1).await.unwrap();
        assert_eq!(a.get::<_, i32>("k").await.unwrap(), Some(1));
        assert_eq!(s.get::<_, i32>("k").unwrap(), Some(1), "the same stash");
        assert_eq!(a.get::<_, i32>("missing").await.unwrap(), None);
        a.set_many(&[(&"x", &2), (&"y", &3)]).await.unwrap();
        assert_eq!(
            a.get_many::<_, i32>(&[&"x", &"y", &"zz"]).await.unwrap(),
            [Some(2), Some(3), None]
        );
        assert!(a.contains("x").await.unwrap());
        assert!(a.remove("x").await.unwrap());
        assert!(!a.invalidate("x").await.unwrap());
        assert_eq!(a.len().await.unwrap(), 2);
        let mut items: Vec<(String, i32)> = a.items().await.unwrap();
        items.sort();
        assert_eq!(items, [("k".to_owned(), 1), ("y".to_owned(), 3)]);
        a.set_with_ttl("brief", &4, Duration::ZERO).await.unwrap();
        assert_eq!(a.get::<_, i32>("brief").await.unwrap(), None);
        assert_eq!(a.prune_expired().await.unwrap(), 1);
        let stats = a.stats();
        assert_eq!((stats.sets, stats.hits, stats.misses), (4, 4, 3));
        // A decode error is typed, not a panic on the blocking pool.
        let err = a.get::<_, Vec<String>>("k").await.unwrap_err();
        assert!(matches!(err, hashstash::Error::Decode { .. }), "{err}");

        // Tasks asking for one async result at once compute it once.
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (a, calls) = (a.clone(), calls.clone());
                tokio::spawn(async move {
                    let compute = move |x: u64| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        x * 2
                    };
                    a.run_named("doubled", compute, 21u64).await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), 42);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "computed once");
        let results = s.function_stash("doubled").unwrap();
        assert_eq!(results.get::<_, u64>(&21u64).unwrap(), Some(42));

        a.clear().await.unwrap();
        assert!(a.is_empty().await.unwrap());
    });
}

/// Server engines answer without tokio's blocking pool: with its only thread held, their
/// lookups and writes still complete (on the pool they would wait for it).
fn native_calls_leave_the_blocking_pool_alone(engine: EngineKind) {
    if !crate::common::engine_available(engine) {
        return;
    }
    let (_d, s) = stash(engine);
    let one_blocking_thread = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    one_blocking_thread.block_on(async {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hog = tokio::task::spawn_blocking(move || held.recv());
        let a = AsyncStash::new(s.clone());
        let work = async {
            for i in 0..20_i64 {
                a.set(&i, &(i * 10)).await.unwrap();
            }
            a.set_many(&[(&100_i64, &1_i64), (&101, &2)]).await.unwrap();
            assert_eq!(a.get::<_, i64>(&7_i64).await.unwrap(), Some(70));
            let many = a.get_many::<_, i64>(&[&1_i64, &100, &999]).await.unwrap();
            assert_eq!(many, [Some(10), Some(1), None]);
            assert!(a.contains(&3_i64).await.unwrap());
            assert!(a.remove(&3_i64).await.unwrap());
            assert!(!a.contains(&3_i64).await.unwrap());
        };
        let done = tokio::time::timeout(Duration::from_secs(120), work).await;
        assert!(
            !hog.is_finished(),
            "the blocking pool's thread was held throughout"
        );
        assert!(
            done.is_ok(),
            "{engine}: native calls waited for the blocking pool"
        );
        release.send(()).unwrap();
        hog.await.unwrap().unwrap();
    });
    // What the async side wrote, the blocking side reads.
    assert_eq!(s.get::<_, i64>(&19_i64).unwrap(), Some(190));
    assert_eq!(s.len().unwrap(), 21);
    assert_eq!(s.stats().sets, 22);
    // The runtime that made the connection has ended: a new one gets its own.
    runtime().block_on(async {
        let a = AsyncStash::new(s.clone());
        assert!(a.remove(&19_i64).await.unwrap());
        assert_eq!(a.get::<_, i64>(&19_i64).await.unwrap(), None);
    });
}

#[cfg(feature = "redis")]
#[test]
fn redis_calls_are_native() {
    native_calls_leave_the_blocking_pool_alone(EngineKind::Redis);
}

#[cfg(feature = "mongo")]
#[test]
fn mongo_calls_are_native() {
    native_calls_leave_the_blocking_pool_alone(EngineKind::Mongo);
}
