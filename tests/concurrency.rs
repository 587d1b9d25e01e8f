//! Four long-lived writer processes on one stash, on every engine, while this process reads:
//! disjoint sets lose nothing, appends to one key get versions 1..n with no gap and no
//! duplicate, and a reader never sees a torn value.
//!
//! CI runs a short variant (4 x 500 sets, 4 x 100 appends). `HASHSTASH_LONG=1` runs the
//! full one (4 x 25,000 sets, 4 x 1,000 appends); its figures are in RELIABILITY.md.

use hashstash::{EngineKind, Stash};
use std::process::{Child, Command, Stdio};

const WRITERS: usize = 4;

fn long() -> bool {
    std::env::var_os("HASHSTASH_LONG").is_some()
}

fn sets_per_writer() -> usize {
    if long() {
        25_000
    } else {
        500
    }
}

fn appends_per_writer() -> usize {
    if long() {
        1_000
    } else {
        100
    }
}

/// The value writer `w` stores for item `i`: large enough (4 KB) that a torn write would
/// show, and derived from `(w, i)` so that a reader can check it whole.
fn payload(w: usize, i: usize) -> (usize, usize, String) {
    let text = format!("{w}:{i};").repeat(4096 / 8);
    (w, i, text)
}

/// A stash of the test. Its requests may take a minute: four writers and a reader on two
/// loaded cores, against a test server in Python that answers one request at a time, can
/// keep one waiting longer than the default 5 s, and these tests are about what is
/// written, not how fast.
fn open(root: &str, engine: EngineKind, append: bool) -> Stash {
    Stash::builder()
        .root_dir(root)
        .engine(engine)
        .append_mode(append)
        .timeout_ms(60_000)
        .open()
        .unwrap()
}

/// A writer process (ignored when the suite runs): the sets or appends of one writer.
#[test]
#[ignore = "a child process of the concurrency tests"]
fn child_writer() {
    let var = |name: &str| std::env::var(name).expect("run by a concurrency test");
    let engine: EngineKind = var("HASHSTASH_CHILD_ENGINE").parse().unwrap();
    let writer: usize = var("HASHSTASH_CHILD_WRITER").parse().unwrap();
    let append = var("HASHSTASH_CHILD_MODE") == "append";
    let s = open(&var("HASHSTASH_CHILD_ROOT"), engine, append);
    if append {
        for i in 1..=appends_per_writer() {
            s.set("shared", &(writer, i)).unwrap();
        }
    } else {
        for i in 0..sets_per_writer() {
            s.set(&(writer, i), &payload(writer, i)).unwrap();
        }
    }
}

fn spawn_writers(root: &std::path::Path, engine: EngineKind, mode: &str) -> Vec<Child> {
    (0..WRITERS)
        .map(|writer| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "concurrency::child_writer", "--ignored"])
                .env("HASHSTASH_CHILD_ROOT", root)
                .env("HASHSTASH_CHILD_ENGINE", engine.name())
                .env("HASHSTASH_CHILD_WRITER", writer.to_string())
                .env("HASHSTASH_CHILD_MODE", mode)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn wait_all(children: Vec<Child>, engine: EngineKind) {
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer failed on {engine}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn disjoint_sets_lose_nothing_and_never_tear(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let reader = open(root, engine, false);
    let mut children = spawn_writers(dir.path(), engine, "set");
    // Read while they write: a value is absent or whole, never part of one.
    let (mut seen, mut round) = (0usize, 0usize);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let (w, i) = (round % WRITERS, (round * 7919) % sets_per_writer());
        round += 1;
        if let Some(value) = reader
            .get::<_, (usize, usize, String)>(&(w, i))
            .unwrap_or_else(|e| panic!("{engine}: reading ({w}, {i}) while writers run: {e}"))
        {
            assert_eq!(value, payload(w, i), "{engine}: a torn value");
            seen += 1;
        }
    }
    wait_all(children, engine);
    assert_eq!(
        reader.len().unwrap(),
        WRITERS * sets_per_writer(),
        "{engine}"
    );
    for w in 0..WRITERS {
        for i in 0..sets_per_writer() {
            let value = reader.get::<_, (usize, usize, String)>(&(w, i)).unwrap();
            assert_eq!(value, Some(payload(w, i)), "{engine}: ({w}, {i}) lost");
        }
    }
    eprintln!("{engine}: {round} reads during the writes, {seen} found whole");
}

fn appends_are_numbered_without_gaps(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    wait_all(spawn_writers(dir.path(), engine, "append"), engine);
    let s = open(dir.path().to_str().unwrap(), engine, true);
    let versions = s
        .get_all_with_metadata::<_, (usize, usize)>("shared")
        .unwrap();
    let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
    let total = WRITERS * appends_per_writer();
    assert_eq!(numbers, (1..=total as u64).collect::<Vec<_>>(), "{engine}");
    for w in 0..WRITERS {
        let mine: Vec<usize> = versions
            .iter()
            .filter(|v| v.value.0 == w)
            .map(|v| v.value.1)
            .collect();
        assert_eq!(
            mine,
            (1..=appends_per_writer()).collect::<Vec<_>>(),
            "{engine}: writer {w}'s appends"
        );
    }
}

macro_rules! concurrency_tests {
    ($($name:ident => $engine:expr),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn disjoint_sets_lose_nothing_and_never_tear() {
                    if crate::common::engine_available($engine) {
                        super::disjoint_sets_lose_nothing_and_never_tear($engine);
                    }
                }
                #[test]
                fn appends_are_numbered_without_gaps() {
                    if crate::common::engine_available($engine) {
                        super::appends_are_numbered_without_gaps($engine);
                    }
                }
            }
        )*
    };
}

concurrency_tests!(pairtree => hashstash::EngineKind::Pairtree);
#[cfg(feature = "lmdb")]
concurrency_tests!(lmdb => hashstash::EngineKind::Lmdb);
#[cfg(feature = "sqlite")]
concurrency_tests!(sqlite => hashstash::EngineKind::Sqlite);
#[cfg(feature = "diskcache")]
concurrency_tests!(diskcache => hashstash::EngineKind::Diskcache);
#[cfg(feature = "redis")]
concurrency_tests!(redis => hashstash::EngineKind::Redis);
#[cfg(feature = "mongo")]
concurrency_tests!(mongo => hashstash::EngineKind::Mongo);
#[cfg(feature = "objectstore")]
concurrency_tests!(objectstore => hashstash::EngineKind::ObjectStore);
