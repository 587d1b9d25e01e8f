//! A writer process killed with SIGKILL at random moments, again and again, on every file
//! engine: the stash always reopens, every write the writer saw succeed is there with its
//! value, and nothing in it is torn or garbled.
//!
//! The writer records each acknowledged write in a side file (appended after the write
//! returns, so the record never runs ahead of the stash). It sets single entries and batches
//! (`set_many`), small values and 64 KB ones (diskcache keeps those in files of their own).
//! One kill in five comes early (while the writer starts and opens the stash), the others a
//! random 0-40 ms after its first acknowledged write. CI kills it 50 times per engine;
//! `HASHSTASH_LONG=1` 500 times. Figures: RELIABILITY.md.

use hashstash::{EngineKind, Stash};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn kills() -> usize {
    if std::env::var_os("HASHSTASH_LONG").is_some() {
        500
    } else {
        50
    }
}

/// The value of entry `(round, i)`: every tenth one 64 KB, the others 200 bytes, all derived
/// from the key so that a torn or stale value shows.
fn payload(round: usize, i: usize) -> String {
    let size = if i.is_multiple_of(10) { 64 * 1024 } else { 200 };
    format!("{round}/{i};").repeat(size / 8)
}

fn open(root: &Path, engine: EngineKind) -> Stash {
    Stash::builder()
        .root_dir(root)
        .engine(engine)
        .open()
        .unwrap_or_else(|e| panic!("{engine}: the stash does not reopen: {e}"))
}

/// The writer (ignored when the suite runs): writes until it is killed, and appends
/// `round i` to the acknowledgement file after each write returns.
#[test]
#[ignore = "a child process of the crash tests"]
fn child_crash_writer() {
    let var = |name: &str| std::env::var(name).expect("run by a crash test");
    let engine: EngineKind = var("HASHSTASH_CHILD_ENGINE").parse().unwrap();
    let round: usize = var("HASHSTASH_CHILD_ROUND").parse().unwrap();
    let stash = open(Path::new(&var("HASHSTASH_CHILD_ROOT")), engine);
    let mut acks = std::fs::OpenOptions::new()
        .append(true)
        .open(var("HASHSTASH_CHILD_ACKS"))
        .unwrap();
    let mut i = 0;
    // Bounded, in case nobody kills it.
    while i < 1_000_000 {
        let batch = if i % 50 == 25 { 8 } else { 1 };
        if batch == 1 {
            stash.set(&(round, i), &payload(round, i)).unwrap();
        } else {
            let items: Vec<((usize, usize), String)> = (i..i + batch)
                .map(|j| ((round, j), payload(round, j)))
                .collect();
            stash.update(items).unwrap();
        }
        let lines: String = (i..i + batch).map(|j| format!("{round} {j}\n")).collect();
        // One write call per acknowledgement: a kill cannot split a line.
        acks.write_all(lines.as_bytes()).unwrap();
        i += batch;
    }
}

/// A small deterministic generator for the kill moments (the seed is printed, so a failing
/// run can be repeated with `HASHSTASH_CRASH_SEED`).
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn crash_repeatedly(engine: EngineKind) {
    let dir = tempfile::tempdir().unwrap();
    let acks_file = dir.path().join("acks");
    std::fs::write(&acks_file, "").unwrap();
    let seed = std::env::var("HASHSTASH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let mut moments = Moments(seed);
    let (mut killed_writing, mut verified) = (0, 0);
    let started = Instant::now();
    for round in 0..kills() {
        let before = std::fs::read_to_string(&acks_file).unwrap().len();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crashes::child_crash_writer", "--ignored"])
            .env("HASHSTASH_CHILD_ROOT", dir.path().join("root"))
            .env("HASHSTASH_CHILD_ENGINE", engine.name())
            .env("HASHSTASH_CHILD_ROUND", round.to_string())
            .env("HASHSTASH_CHILD_ACKS", &acks_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if round % 5 == 0 {
            // Early: while the writer starts and opens the stash, or just after.
            std::thread::sleep(Duration::from_millis(moments.next_ms(30)));
        } else {
            // While it writes: once its first write is acknowledged, a random moment later.
            let deadline = Instant::now() + Duration::from_secs(120);
            while std::fs::metadata(&acks_file).unwrap().len() as usize == before {
                assert!(
                    Instant::now() < deadline,
                    "{engine}: the writer never wrote"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "{engine}: the writer died"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(moments.next_ms(40)));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "{engine}: the writer ended by itself");
        let acks = std::fs::read_to_string(&acks_file).unwrap();
        if acks.len() > before {
            killed_writing += 1;
        }
        // The stash reopens, and this round's acknowledged writes are there, whole.
        let stash = open(&dir.path().join("root"), engine);
        for line in acks[before..].lines() {
            let (r, i) = line.split_once(' ').unwrap();
            let (r, i): (usize, usize) = (r.parse().unwrap(), i.parse().unwrap());
            let found: Option<String> = stash
                .get(&(r, i))
                .unwrap_or_else(|e| panic!("{engine}, seed {seed}: entry ({r}, {i}): {e}"));
            assert_eq!(
                found.as_deref(),
                Some(payload(r, i).as_str()),
                "{engine}, seed {seed}: acknowledged entry ({r}, {i}) lost or wrong"
            );
            verified += 1;
        }
    }
    // Every entry in the stash, acknowledged or not, is whole: a write cut short by a kill
    // is absent, never half there. And every acknowledgement is still readable at the end.
    let stash = open(&dir.path().join("root"), engine);
    let mut entries = 0;
    for item in stash.items::<(usize, usize), String>().unwrap() {
        let ((r, i), value) = item.unwrap_or_else(|e| panic!("{engine}, seed {seed}: {e}"));
        assert_eq!(value, payload(r, i), "{engine}, seed {seed}: ({r}, {i})");
        entries += 1;
    }
    let acks = std::fs::read_to_string(&acks_file).unwrap();
    assert_eq!(
        acks.lines().count(),
        verified,
        "{engine}: every acknowledgement was checked"
    );
    for line in acks.lines() {
        let (r, i) = line.split_once(' ').unwrap();
        let key: (usize, usize) = (r.parse().unwrap(), i.parse().unwrap());
        assert!(
            stash.contains(&key).unwrap(),
            "{engine}, seed {seed}: {key:?}"
        );
    }
    assert!(
        entries >= verified,
        "{engine}: {entries} entries < {verified} acknowledged"
    );
    eprintln!(
        "{engine}: {} kills ({killed_writing} while writing), {verified} acknowledged writes \
         all readable, {entries} entries all whole, seed {seed}, {:.1} s",
        kills(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn pairtree_survives_kills() {
    crash_repeatedly(EngineKind::Pairtree);
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_survives_kills() {
    crash_repeatedly(EngineKind::Lmdb);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_survives_kills() {
    crash_repeatedly(EngineKind::Sqlite);
}

#[cfg(feature = "diskcache")]
#[test]
fn diskcache_survives_kills() {
    crash_repeatedly(EngineKind::Diskcache);
}

/// `sync` (fsync before a write returns) changes how, not what: on every engine a synced
/// stash stores, reopens and reads back the same entries, in both modes.
#[test]
fn synced_stashes_store_and_reopen_on_every_engine() {
    for engine in EngineKind::available() {
        if !crate::common::engine_available(engine) {
            continue;
        }
        for append in [false, true] {
            let (_dir, builder) = crate::common::builder(engine);
            let builder = builder.sync(true).append_mode(append);
            let stash = builder.clone().open().unwrap();
            assert!(stash.config().sync);
            for i in 0..20 {
                stash.set(&i, &payload(0, i)).unwrap();
            }
            stash.update((20..30).map(|i| (i, payload(0, i)))).unwrap();
            stash.set(&0, &payload(1, 0)).unwrap();
            if engine != EngineKind::Memory {
                drop(stash);
            }
            let stash = builder.open().unwrap();
            assert_eq!(stash.len().unwrap(), 30, "{engine}");
            let first: Option<String> = stash.get(&0).unwrap();
            assert_eq!(first, Some(payload(1, 0)), "{engine}");
            if append {
                assert_eq!(stash.get_all::<_, String>(&0).unwrap().len(), 2);
            }
            let last: Option<String> = stash.get(&29).unwrap();
            assert_eq!(last, Some(payload(0, 29)), "{engine}");
        }
    }
}
