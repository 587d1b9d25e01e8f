//! Function results: `run`, `run_named`, `run_forced`, `get_func`, function stashes and
//! their argument columns.

use crate::common::stash;
use hashstash::memo::name_of;
use hashstash::{EngineKind, Error, Stash};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};

static SQUARES: AtomicUsize = AtomicUsize::new(0);

fn counted_square((x,): (u64,)) -> u64 {
    SQUARES.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn a_result_is_computed_once_and_read_back() {
    let (dir, s) = stash(EngineKind::default_engine());
    let before = SQUARES.load(Ordering::SeqCst);
    assert_eq!(s.run(counted_square, (12,)).unwrap(), 144);
    assert_eq!(s.run(counted_square, (12,)).unwrap(), 144);
    assert_eq!(SQUARES.load(Ordering::SeqCst), before + 1);
    assert_eq!(s.run(counted_square, (3,)).unwrap(), 9);
    assert_eq!(SQUARES.load(Ordering::SeqCst), before + 2);

    // Another handle on the same folder (as another process would be) reads it back.
    let again = Stash::builder()
        .root_dir(dir.path())
        .engine(EngineKind::default_engine())
        .open()
        .unwrap();
    assert_eq!(again.run(counted_square, (12,)).unwrap(), 144);
    assert_eq!(SQUARES.load(Ordering::SeqCst), before + 2);

    let name = name_of(&counted_square).unwrap();
    assert!(name.ends_with("counted_square"), "{name}");
    assert_eq!(s.get_func::<_, u64>(&name, &(12,)).unwrap(), Some(144));
    assert_eq!(s.get_func::<_, u64>(&name, &(5,)).unwrap(), None);
    assert_eq!(s.function_stash(&name).unwrap().len().unwrap(), 2);
}

#[test]
fn function_stashes_sit_under_the_parent() {
    let (_dir, s) = stash(EngineKind::Pairtree);
    let results = s.function_stash("my_crate::module::f").unwrap();
    let folder = results.stash_dir();
    let parent = s.stash_dir();
    let db = parent.parent().unwrap();
    assert!(
        folder.starts_with(db.join("stashed_result").join("my_crate.module.f")),
        "{folder:?}"
    );
    assert_eq!(results.config().engine, EngineKind::Pairtree);
    for bad in ["", "../escape", "a/b"] {
        assert!(
            matches!(s.function_stash(bad), Err(Error::InvalidOption { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn closures_need_a_name_and_forced_runs_recompute() {
    let (_dir, s) = stash(EngineKind::Memory);
    let refused = s.run(|x: u32| x + 1, 1);
    assert!(
        matches!(
            refused,
            Err(Error::InvalidOption {
                option: "function",
                ..
            })
        ),
        "{refused:?}"
    );
    let calls = AtomicUsize::new(0);
    let add_one = |x: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        x + 1
    };
    assert_eq!(s.run_named("add_one", add_one, 1).unwrap(), 2);
    assert_eq!(s.run_named("add_one", add_one, 1).unwrap(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A forced run computes again and replaces the stored result.
    let add_two = |x: u32| x + 2;
    assert_eq!(s.run_forced("add_one", add_two, 1).unwrap(), 3);
    assert_eq!(s.run_named("add_one", add_one, 1).unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Serialize, Deserialize)]
struct Query {
    name: String,
    limit: u32,
}

#[test]
fn function_stashes_are_tables_with_argument_columns() {
    let (_dir, s) = stash(EngineKind::default_engine());
    for (a, b) in [(1u32, "x"), (2, "y")] {
        let total = s
            .run_named(
                "pairs",
                |(a, b): (u32, &str)| serde_json::json!({"total": a * 10, "b": b}),
                (a, b),
            )
            .unwrap();
        assert_eq!(total["total"], a * 10);
    }
    let rows = s.function_stash("pairs").unwrap().ld().unwrap();
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["_arg1", "_arg2", "total", "b"]);

    // Named arguments (a struct) are columns of their own; a single argument is `_arg1`.
    s.run_named(
        "search",
        |q: Query| q.limit * 2,
        Query {
            name: "cat".into(),
            limit: 3,
        },
    )
    .unwrap();
    let rows = s.function_stash("search").unwrap().ld().unwrap();
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["name", "limit", "_value"]);
    s.run_named("double", |x: i64| x * 2, 21).unwrap();
    let rows = s.function_stash("double").unwrap().ld().unwrap();
    let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(columns, ["_arg1", "_value"]);

    #[cfg(feature = "sql")]
    {
        let pairs = s.function_stash("pairs").unwrap();
        let batches = pairs
            .sql("SELECT _arg2, total FROM stash WHERE _arg1 = 2")
            .unwrap();
        let shown = hashstash::table::sql::pretty(&batches).unwrap();
        assert!(shown.contains("| y     | 20    |"), "{shown}");
    }
}

/// Run by the tests below in child processes (ignored when the suite runs). What it does
/// is set by `HASHSTASH_MEMO_MODE`: `run` one slow function, `crash` in the middle of it, or
/// `map` the slow function over twelve items. Each real computation notes itself in
/// `calls.txt`.
#[test]
#[ignore = "a child process of the tests of computing once across processes"]
fn child_runs_the_slow_function() {
    let root = std::env::var("HASHSTASH_MEMO_ROOT").expect("run by the parent test");
    let engine: EngineKind = std::env::var("HASHSTASH_MEMO_ENGINE")
        .unwrap()
        .parse()
        .unwrap();
    let mode = std::env::var("HASHSTASH_MEMO_MODE").unwrap();
    let s = Stash::builder()
        .root_dir(&root)
        .engine(engine)
        .lease_ms(1000)
        .open()
        .unwrap();
    let calls = std::path::Path::new(&root).join("calls.txt");
    let slow = move |x: u64| {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&calls)
            .unwrap();
        // One write per line: with O_APPEND, lines of several processes never interleave.
        log.write_all(format!("{} {x}\n", std::process::id()).as_bytes())
            .unwrap();
        if mode == "crash" {
            // Dies holding the lock or lease: nothing is released or stored.
            std::process::abort();
        }
        std::thread::sleep(std::time::Duration::from_millis(if x == 21 {
            300
        } else {
            40
        }));
        x * 2
    };
    match std::env::var("HASHSTASH_MEMO_MODE").unwrap().as_str() {
        "map" => {
            let options = hashstash::map::MapOptions {
                num_threads: Some(2),
                ..Default::default()
            };
            let doubled = s
                .map_named("slow", slow, (0..12).collect(), options)
                .unwrap();
            assert_eq!(
                doubled.results().unwrap(),
                (0..12).map(|x| x * 2).collect::<Vec<u64>>()
            );
        }
        _ => assert_eq!(s.run_named("slow", slow, 21).unwrap(), 42),
    }
}

/// Starts the child test in `mode` on `engine` over the folder `root`.
fn child(root: &std::path::Path, engine: EngineKind, mode: &str) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "memo::child_runs_the_slow_function", "--ignored"])
        .env("HASHSTASH_MEMO_ROOT", root)
        .env("HASHSTASH_MEMO_ENGINE", engine.name())
        .env("HASHSTASH_MEMO_MODE", mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The computations the children noted: (process, item).
fn calls(root: &std::path::Path) -> Vec<(u32, u64)> {
    std::fs::read_to_string(root.join("calls.txt"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let (pid, item) = line.split_once(' ').unwrap();
            (pid.parse().unwrap(), item.parse().unwrap())
        })
        .collect()
}

/// The engines computing once across processes is tested on: one per way of locking.
fn shared_engines() -> Vec<EngineKind> {
    [
        EngineKind::default_engine(),
        EngineKind::Pairtree,
        EngineKind::Redis,
        EngineKind::Mongo,
        EngineKind::ObjectStore,
    ]
    .into_iter()
    .filter(|&engine| engine.is_available() && crate::common::engine_available(engine))
    .collect()
}

#[test]
fn a_result_is_computed_once_across_processes() {
    for engine in shared_engines() {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..4).map(|_| child(dir.path(), engine, "run")).collect();
        for mut child in children {
            assert!(
                child.wait().unwrap().success(),
                "a child failed on {engine}"
            );
        }
        assert_eq!(calls(dir.path()).len(), 1, "{engine}");
    }
}

#[test]
fn a_crashed_computation_is_taken_over() {
    for engine in shared_engines() {
        let dir = tempfile::tempdir().unwrap();
        let status = child(dir.path(), engine, "crash").wait().unwrap();
        assert!(!status.success(), "{engine}: the child was meant to crash");
        // Its lock died with it (file engines), or its lease expires (servers, 1 s).
        let mut next = child(dir.path(), engine, "run");
        assert!(next.wait().unwrap().success(), "{engine}: no one took over");
        let seen = calls(dir.path());
        assert_eq!(seen.len(), 2, "{engine}: {seen:?}");
        assert_ne!(seen[0].0, seen[1].0, "{engine}");
        let s = Stash::builder()
            .root_dir(dir.path())
            .engine(engine)
            .open()
            .unwrap();
        assert_eq!(s.get_func::<_, u64>("slow", &21u64).unwrap(), Some(42));
    }
}

#[test]
fn processes_mapping_the_same_items_compute_each_once() {
    for engine in shared_engines() {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..3).map(|_| child(dir.path(), engine, "map")).collect();
        for mut child in children {
            assert!(
                child.wait().unwrap().success(),
                "a child failed on {engine}"
            );
        }
        let mut items: Vec<u64> = calls(dir.path()).into_iter().map(|(_, x)| x).collect();
        items.sort_unstable();
        assert_eq!(items, (0..12).collect::<Vec<u64>>(), "{engine}");
    }
}

#[test]
fn failures_are_not_stored() {
    let (_dir, s) = stash(EngineKind::default_engine());
    let attempts = AtomicUsize::new(0);
    let flaky = |x: u32| -> Result<u32, String> {
        if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            Err("try again".into())
        } else {
            Ok(x * 3)
        }
    };
    assert_eq!(
        s.try_run_named("flaky", flaky, 5).unwrap(),
        Err("try again".into())
    );
    assert_eq!(s.get_func::<_, u32>("flaky", &5).unwrap(), None);
    assert_eq!(s.try_run_named("flaky", flaky, 5).unwrap(), Ok(15));
    assert_eq!(s.try_run_named("flaky", flaky, 5).unwrap(), Ok(15));
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[test]
fn threads_asking_for_one_result_compute_it_once() {
    for engine in [EngineKind::Memory, EngineKind::default_engine()] {
        let (_dir, s) = stash(engine);
        let calls = AtomicUsize::new(0);
        let slow = |x: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            x + 1
        };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| assert_eq!(s.run_named("slow", slow, 1).unwrap(), 2));
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{engine}");
    }
}

/// A memoized function that runs another memoized function while it computes (a recursive
/// Fibonacci through the stash): every key's lock is its own, so nothing deadlocks.
fn fib(s: &Stash, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    s.run_named("fib", |n: u64| fib(s, n - 1) + fib(s, n - 2), n)
        .unwrap()
}

#[test]
fn memoized_functions_may_call_memoized_functions() {
    for engine in [EngineKind::Memory, EngineKind::default_engine()] {
        let (_dir, s) = stash(engine);
        assert_eq!(fib(&s, 60), 1_548_008_755_920, "{engine}");
        assert_eq!(s.function_stash("fib").unwrap().len().unwrap(), 59);
        // No lock file outlives its computation.
        let locks = s.function_stash("fib").unwrap().stash_dir().join("locks");
        let left = std::fs::read_dir(&locks).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{engine}");
    }
}
