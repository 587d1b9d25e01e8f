//! Several processes on one stash: nothing lost, append-mode versions unique and gap-free.
//!
//! Each writer is a shell loop calling the `hashstash` binary, so every write is a separate
//! process opening the stash anew: the hardest case for cross-process coordination.

use hashstash::{EngineKind, Stash};
use std::process::{Child, Command};

const WRITERS: usize = 4;
const WRITES: usize = 20;

fn spawn_writer(root: &std::path::Path, engine: EngineKind, append: bool, writer: usize) -> Child {
    let bin = env!("CARGO_BIN_EXE_hashstash");
    let mode = if append { "--append-mode" } else { "" };
    // On a server, the root folder's name keeps this test's stash apart from other tests'.
    let dbname = root.file_name().unwrap().to_string_lossy().into_owned();
    let key = if append {
        "'\"shared\"'".to_string()
    } else {
        format!("\"[{writer},$i]\"")
    };
    let script = format!(
        "for i in $(seq 1 {WRITES}); do \"$0\" --engine {} --dbname {dbname} {mode} set {key} \"[{writer},$i]\" || exit 1; done",
        engine.name()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(bin)
        .env("HASHSTASH_ROOT_DIR", root)
        .spawn()
        .expect("spawn writer")
}

fn run_writers(root: &std::path::Path, engine: EngineKind, append: bool) {
    let children: Vec<Child> = (0..WRITERS)
        .map(|w| spawn_writer(root, engine, append, w))
        .collect();
    for mut child in children {
        assert!(
            child.wait().unwrap().success(),
            "a writer failed on {engine}"
        );
    }
}

fn open(root: &std::path::Path, engine: EngineKind, append: bool) -> Stash {
    let dbname = root.file_name().unwrap().to_string_lossy().into_owned();
    // The writers' default root: a folder under $HASHSTASH_ROOT_DIR, or on a server a name.
    let root_dir = if engine.is_server() {
        "default_stash".into()
    } else {
        root.join("default_stash")
    };
    Stash::builder()
        .root_dir(root_dir)
        .dbname(dbname)
        .engine(engine)
        .append_mode(append)
        .open()
        .unwrap()
}

fn disjoint_keys_lose_nothing(engine: EngineKind) {
    let root = tempfile::tempdir().unwrap();
    run_writers(root.path(), engine, false);
    let stash = open(root.path(), engine, false);
    assert_eq!(stash.len().unwrap(), WRITERS * WRITES, "{engine}");
    for w in 0..WRITERS {
        for i in 1..=WRITES {
            assert_eq!(
                stash.get::<_, Vec<usize>>(&[w, i]).unwrap(),
                Some(vec![w, i]),
                "{engine}"
            );
        }
    }
}

fn appends_are_gap_free(engine: EngineKind) {
    let root = tempfile::tempdir().unwrap();
    run_writers(root.path(), engine, true);
    let stash = open(root.path(), engine, true);
    let versions = stash
        .get_all_with_metadata::<_, Vec<usize>>("shared")
        .unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    let expected: Vec<u64> = (1..=(WRITERS * WRITES) as u64).collect();
    assert_eq!(numbers, expected, "{engine}");
    // Every write arrived once, and each writer's writes in its own order.
    let mut values: Vec<Vec<usize>> = versions.into_iter().map(|v| v.value).collect();
    for w in 0..WRITERS {
        let mine: Vec<usize> = values.iter().filter(|v| v[0] == w).map(|v| v[1]).collect();
        assert_eq!(
            mine,
            (1..=WRITES).collect::<Vec<_>>(),
            "{engine} writer {w}"
        );
    }
    values.sort();
    values.dedup();
    assert_eq!(values.len(), WRITERS * WRITES);
}

/// Processes racing to `setdefault` one missing key (append mode, so a second store would
/// show as a second version), round after round: each round exactly one stores, and every
/// process prints that one value.
fn setdefault_stores_once_across_processes(engine: EngineKind) {
    let root = tempfile::tempdir().unwrap();
    let dbname = root
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for round in 0..6 {
        let key = format!("\"round{round}\"");
        let children: Vec<Child> = (0..WRITERS)
            .map(|w| {
                Command::new(env!("CARGO_BIN_EXE_hashstash"))
                    .args([
                        "--engine",
                        engine.name(),
                        "--dbname",
                        &dbname,
                        "--append-mode",
                    ])
                    .args(["setdefault", &key, &w.to_string()])
                    .env("HASHSTASH_ROOT_DIR", root.path())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn a setdefault")
            })
            .collect();
        let printed: Vec<String> = children
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{engine}: a setdefault failed");
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            })
            .collect();
        let stash = open(root.path(), engine, true);
        let versions = stash.get_all::<_, usize>(&format!("round{round}")).unwrap();
        assert_eq!(versions.len(), 1, "{engine}, round {round}: stored once");
        let stored = versions[0].to_string();
        assert!(
            printed.iter().all(|p| *p == stored),
            "{engine}, round {round}: {printed:?} against {stored}"
        );
    }
}

macro_rules! process_tests {
    ($($name:ident => $engine:expr),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn disjoint_keys_lose_nothing() {
                    if crate::common::engine_available($engine) {
                        super::disjoint_keys_lose_nothing($engine);
                    }
                }
                #[test]
                fn appends_are_gap_free() {
                    if crate::common::engine_available($engine) {
                        super::appends_are_gap_free($engine);
                    }
                }
                #[test]
                fn setdefault_stores_once_across_processes() {
                    if crate::common::engine_available($engine) {
                        super::setdefault_stores_once_across_processes($engine);
                    }
                }
            }
        )*
    };
}

process_tests!(pairtree => hashstash::EngineKind::Pairtree);
#[cfg(feature = "lmdb")]
process_tests!(lmdb => hashstash::EngineKind::Lmdb);
#[cfg(feature = "sqlite")]
process_tests!(sqlite => hashstash::EngineKind::Sqlite);
#[cfg(feature = "diskcache")]
process_tests!(diskcache => hashstash::EngineKind::Diskcache);
#[cfg(feature = "redis")]
process_tests!(redis => hashstash::EngineKind::Redis);
#[cfg(feature = "mongo")]
process_tests!(mongo => hashstash::EngineKind::Mongo);
#[cfg(feature = "objectstore")]
process_tests!(objectstore => hashstash::EngineKind::ObjectStore);

/// Many handles opening one new stash at the same moment, as processes do when started
/// together, on every file engine. Threads stand in for processes here: SQLite locks
/// connections in one process against each other as it does processes, and turning a new
/// file to WAL mode makes one of two racing connections fail at once with `SQLITE_BUSY` (no
/// busy handler can wait there). Every open must succeed anyway, and every write must land.
fn a_new_stash_opened_by_many_at_once(engine: EngineKind) {
    const OPENERS: usize = 8;
    for trial in 0..25 {
        let root = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(OPENERS);
        std::thread::scope(|scope| {
            for opener in 0..OPENERS {
                let (root, barrier) = (root.path(), &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let stash = Stash::builder()
                        .root_dir(root)
                        .dbname("new")
                        .engine(engine)
                        .open()
                        .unwrap_or_else(|e| panic!("{engine}, trial {trial}: {e}"));
                    stash.set(&opener, &trial).unwrap();
                });
            }
        });
        let stash = Stash::builder()
            .root_dir(root.path())
            .dbname("new")
            .engine(engine)
            .open()
            .unwrap();
        assert_eq!(stash.len().unwrap(), OPENERS, "{engine}");
    }
}

#[test]
fn a_new_pairtree_stash_opened_by_many_at_once() {
    a_new_stash_opened_by_many_at_once(EngineKind::Pairtree);
}

#[cfg(feature = "lmdb")]
#[test]
fn a_new_lmdb_stash_opened_by_many_at_once() {
    a_new_stash_opened_by_many_at_once(EngineKind::Lmdb);
}

#[cfg(feature = "sqlite")]
#[test]
fn a_new_sqlite_stash_opened_by_many_at_once() {
    a_new_stash_opened_by_many_at_once(EngineKind::Sqlite);
}

#[cfg(feature = "diskcache")]
#[test]
fn a_new_diskcache_stash_opened_by_many_at_once() {
    a_new_stash_opened_by_many_at_once(EngineKind::Diskcache);
}
