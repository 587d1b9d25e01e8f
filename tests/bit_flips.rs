//! Bytes flipped anywhere in a file engine's files: whatever a read returns is the value
//! written under the key it is returned with. An entry may become an error, or be missed;
//! it never answers for another key, and never with another value.
//!
//! Each trial copies a pristine stash, flips a few bytes at random places of its files, and
//! reads everything back in a child process (`child_reads_everything_back`), so that the
//! parent sees how the child ended: cleanly, or failing an assertion (a wrong answer, or a
//! panic in this crate), or killed by a signal. LMDB has no page checksums: a flipped byte
//! in its B-tree can make the C library read out of bounds, which it does not guard
//! against. Such a crash is counted and reported for LMDB (see RELIABILITY.md); for every
//! other engine, and for any wrong answer on LMDB, the test fails.

use hashstash::{EngineKind, OnCorrupt, Stash};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

const ENTRIES: usize = 100;

/// The value written under `k{i}`: it names its key's number without holding the key's
/// bytes, so that a flip in a key is never mirrored in its value.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Entry {
    i: u64,
    tag: String,
}

fn key(i: usize) -> String {
    format!("k{i}")
}

fn entry(i: usize) -> Entry {
    Entry {
        i: i as u64,
        tag: format!("value #{i}"),
    }
}

fn trials() -> usize {
    if std::env::var_os("HASHSTASH_LONG").is_some() {
        1000
    } else {
        40
    }
}

/// A small, seeded generator, so that a failing trial can be run again.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A stash of `ENTRIES` self-describing entries, closed (SQLite folds its log into the file).
fn pristine(root: &Path, engine: EngineKind, append_mode: bool) -> PathBuf {
    let stash = Stash::builder()
        .root_dir(root)
        .engine(engine)
        .append_mode(append_mode)
        .compress(hashstash::Compressor::Raw)
        .open()
        .unwrap();
    for i in 0..ENTRIES {
        stash.set(&key(i), &entry(i)).unwrap();
    }
    let dir = stash.stash_dir();
    drop(stash);
    dir
}

/// Reads every entry of the stash at `dir` by iteration and by key; panics on an answer that
/// is not the value written under its key. Errors are right answers to bad bytes.
fn read_back(dir: &Path) -> (usize, usize) {
    let opened = Stash::builder()
        .path(dir)
        .on_corrupt(OnCorrupt::Fail)
        .open();
    let stash = match opened {
        Ok(stash) => stash,
        Err(e) => {
            println!("refused to open: {e}"); // a typed error
            return (0, 1);
        }
    };
    let (mut good, mut bad) = (0, 0);
    match stash.items::<String, Entry>() {
        Ok(items) => {
            for item in items.take(2 * ENTRIES) {
                match item {
                    Ok((key, found)) => {
                        let i = found.i as usize;
                        assert_eq!(key, self::key(i), "another key's value: {found:?}");
                        assert_eq!(found, entry(i), "a value not written");
                        good += 1;
                    }
                    Err(_) => bad += 1,
                }
            }
        }
        Err(_) => bad += 1,
    }
    for i in 0..ENTRIES {
        match stash.get::<_, Entry>(&key(i)) {
            Ok(Some(found)) => {
                assert_eq!(found, entry(i), "get {}", key(i));
                good += 1;
            }
            Ok(None) | Err(_) => bad += 1,
        }
    }
    (good, bad)
}

/// The counts a child printed: answers checked right, and errors or misses.
fn answers(said: &str) -> (usize, usize) {
    let line = said
        .lines()
        .find_map(|l| l.split_once("answers: ").map(|(_, counts)| counts))
        .unwrap_or_else(|| panic!("the child printed no count:\n{said}"));
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<usize>().unwrap());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// The child process of a trial: reads the stash named by the environment back.
#[test]
#[ignore = "a child process of the bit-flip tests"]
fn child_reads_everything_back() {
    let dir = std::env::var("HASHSTASH_FLIPPED_STASH").expect("run by a bit-flip test");
    let (good, bad) = read_back(Path::new(&dir));
    println!("answers: {good} good, {bad} errors or misses");
}

/// Runs `child_reads_everything_back` on `dir`; a child still reading after a minute (a
/// hang is as wrong as a wrong answer) is killed and fails the test.
fn read_back_in_a_child(dir: &Path) -> std::process::Output {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bit_flips::child_reads_everything_back",
            "--ignored",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env("HASHSTASH_FLIPPED_STASH", dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("reading {} back hung", dir.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

fn flips_anywhere(engine: EngineKind, append_mode: bool) {
    let root = tempfile::tempdir().unwrap();
    let original = pristine(&root.path().join("pristine"), engine, append_mode);
    let seed = std::env::var("HASHSTASH_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15_u64 ^ engine.name().len() as u64);
    let mut rng = Rng(seed | 1);
    let (mut crashed, mut clean, mut noticed, mut good) = (0, 0, 0, 0);
    for trial in 0..trials() {
        // A stash folder opens only where its name says its format: keep the last two
        // components (`<dbname>/<engine>.<format>`) of the original.
        let dir = root
            .path()
            .join(format!("trial{trial}"))
            .join(original.parent().unwrap().file_name().unwrap())
            .join(original.file_name().unwrap());
        copy_dir(&original, &dir);
        let files: Vec<PathBuf> = files_below(&dir)
            .into_iter()
            .filter(|f| f.metadata().is_ok_and(|m| m.len() > 0))
            .collect();
        let mut flipped = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let file = &files[rng.below(files.len() as u64) as usize];
            let mut bytes = std::fs::read(file).unwrap();
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
            std::fs::write(file, &bytes).unwrap();
            flipped.push(format!(
                "{}@{at}",
                file.strip_prefix(&dir).unwrap().display()
            ));
        }
        let out = read_back_in_a_child(&dir);
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let context = format!(
            "{engine} (append {append_mode}), seed {seed}, trial {trial}, flipped {flipped:?}"
        );
        match out.status.code() {
            Some(0) => {
                assert!(
                    said.contains("1 passed"),
                    "{context}: the child ran no check\n{said}"
                );
                clean += 1;
                // The child's count: answers checked right, and errors or misses (trials
                // whose flips some read noticed).
                let (right, wrong) = answers(&said);
                good += right;
                noticed += usize::from(wrong > 0);
            }
            Some(_) => panic!("{context}: a wrong answer or a panic\n{said}"),
            None if engine == EngineKind::Lmdb => crashed += 1,
            None => panic!("{context}: the reader was killed by a signal\n{said}"),
        }
        std::fs::remove_dir_all(root.path().join(format!("trial{trial}"))).unwrap();
    }
    eprintln!(
        "{engine} (append {append_mode}): {} trials; {clean} read back with every answer \
         right ({noticed} of them met errors or misses; {good} answers checked), {crashed} \
         crashed inside LMDB",
        trials()
    );
    // The reads must have checked real answers (at least a whole trial's worth), or the
    // test checked nothing: a stash that never opened answers nothing.
    assert!(
        good >= 2 * ENTRIES,
        "{engine}: only {good} answers checked in {} trials",
        trials()
    );
}

#[test]
fn pairtree_flips_anywhere() {
    flips_anywhere(EngineKind::Pairtree, false);
    flips_anywhere(EngineKind::Pairtree, true);
}

#[cfg(feature = "lmdb")]
#[test]
fn lmdb_flips_anywhere() {
    flips_anywhere(EngineKind::Lmdb, false);
    flips_anywhere(EngineKind::Lmdb, true);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_flips_anywhere() {
    flips_anywhere(EngineKind::Sqlite, false);
    flips_anywhere(EngineKind::Sqlite, true);
}

#[cfg(feature = "diskcache")]
#[test]
fn diskcache_flips_anywhere() {
    flips_anywhere(EngineKind::Diskcache, false);
    flips_anywhere(EngineKind::Diskcache, true);
}

/// The defect that started this: `k99` turned into `k69` in a key's bytes on disk. Every
/// engine must report the entry as corrupt (or miss it), never answer `k69` with `k99`'s
/// value, and `k69` itself must stay right.
fn a_renamed_key_is_an_error(engine: EngineKind) {
    let root = tempfile::tempdir().unwrap();
    let dir = pristine(root.path(), engine, false);
    let mut renamed = 0;
    for file in files_below(&dir) {
        let mut bytes = std::fs::read(&file).unwrap();
        let places: Vec<usize> = bytes
            .windows(3)
            .enumerate()
            .filter(|(_, w)| *w == b"k99")
            .map(|(i, _)| i)
            .collect();
        for at in &places {
            bytes[at + 1] = b'6';
        }
        renamed += places.len();
        std::fs::write(&file, &bytes).unwrap();
    }
    assert!(renamed > 0, "{engine}: key bytes not found on disk");
    let (good, bad) = read_back(&dir);
    assert!(
        bad > 0,
        "{engine}: the renamed entry was not reported ({good} good)"
    );
    let stash = Stash::builder().path(&dir).open().unwrap();
    assert!(stash.get::<_, Entry>("k99").map_or(true, |v| v.is_none()));
}

#[test]
fn a_renamed_key_is_an_error_on_every_file_engine() {
    for engine in EngineKind::available().filter(|e| !e.is_server() && *e != EngineKind::Memory) {
        a_renamed_key_is_an_error(engine);
    }
}
