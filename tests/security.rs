//! What a stash gives away and where it writes: folders 0700 and files 0600 whatever the
//! umask, keys that never make a path outside the stash, names that cannot climb out of the
//! root folder. (Credentials never showing is tested in `servers.rs`.)

use hashstash::map::MapOptions;
use hashstash::{EngineKind, Stash};
use std::path::{Path, PathBuf};

fn file_engines() -> impl Iterator<Item = EngineKind> {
    EngineKind::available().filter(|e| !e.is_server() && *e != EngineKind::Memory)
}

fn everything_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() && !path.is_symlink() {
            out.extend(everything_below(&path));
        }
    }
    out
}

fn square(x: u64) -> u64 {
    x * x
}

/// Everything a stash writes: entries small and large (diskcache puts those in files), in
/// both modes, a sub-stash, function results (with their lock files) and a table's cached
/// schema; then every folder and file under the root is checked while the stashes are open
/// (SQLite's -wal and -shm files exist only then).
fn writes_everything_privately(root: &Path) {
    let mut open = Vec::new();
    for engine in file_engines() {
        for append in [false, true] {
            let stash = Stash::builder()
                .root_dir(root)
                .dbname(format!("db-{append}"))
                .engine(engine)
                .append_mode(append)
                .open()
                .unwrap();
            stash.set("small", "value").unwrap();
            stash.set("large", &"x".repeat(100_000)).unwrap();
            stash.sub("below").unwrap().set("k", &1).unwrap();
            assert_eq!(stash.run(square, 7).unwrap(), 49);
            let options = MapOptions {
                num_threads: Some(2),
                ..Default::default()
            };
            let squares = stash.map(square, vec![1, 2, 3], options).unwrap();
            assert_eq!(squares.results().unwrap(), [1, 4, 9]);
            #[cfg(feature = "sql")]
            stash.sql("SELECT count(*) FROM stash").unwrap();
            open.push(stash);
        }
    }
    let mut checked = 0;
    for path in everything_below(root) {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, wanted, "{} is {mode:o}", path.display());
        checked += 1;
    }
    assert!(checked > 50, "only {checked} paths");
}

/// Runs [`writes_everything_privately`] in a child process under umask 000, where anything
/// created with default permissions would be readable and writable by everyone.
#[test]
fn folders_and_files_are_private_even_under_umask_0() {
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000 && exec "$0" --exact security::child_writes_privately --ignored"#)
        .arg(std::env::current_exe().unwrap())
        .env("HASHSTASH_CHILD_ROOT", root.path().join("new root"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.path().join("new root").is_dir());
}

#[test]
#[ignore = "a child process of folders_and_files_are_private_even_under_umask_0"]
fn child_writes_privately() {
    let root = std::env::var("HASHSTASH_CHILD_ROOT").expect("run by a security test");
    writes_everything_privately(Path::new(&root));
}

/// Keys shaped like paths are only bytes: each file engine stores them below its own
/// folder, and nothing appears beside it.
#[test]
fn keys_never_make_a_path_outside_the_stash() {
    let keys = [
        "../../../../etc/passwd",
        "/etc/passwd",
        "..",
        ".",
        "a/../../b",
        "C:\\Windows\\system32",
        "nul\0byte",
        "~",
        "$HOME",
        "\u{202e}reversed",
    ];
    for engine in file_engines() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("root");
        let stash = Stash::builder()
            .root_dir(&root)
            .engine(engine)
            .open()
            .unwrap();
        for key in keys {
            stash.set(key, &format!("value of {key}")).unwrap();
        }
        for key in keys {
            let found: Option<String> = stash.get(key).unwrap();
            assert_eq!(found, Some(format!("value of {key}")), "{engine}: {key:?}");
        }
        let beside: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["root"], "{engine}");
        let stash_dir = stash.stash_dir().canonicalize().unwrap();
        for path in everything_below(&root) {
            let path = path.canonicalize().unwrap();
            assert!(
                path.starts_with(&stash_dir) || stash_dir.starts_with(&path),
                "{engine}: {} is outside {}",
                path.display(),
                stash_dir.display()
            );
        }
    }
}

/// Names that would climb out of the root folder are refused, wherever a name is given.
#[test]
fn names_cannot_leave_the_root_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let bad = [
        "../escape",
        "/absolute",
        "a/../../b",
        "a/./b",
        "a\\..\\b",
        "nul\0",
    ];
    for name in bad {
        let opened = Stash::builder().root_dir(&root).dbname(name).open();
        assert!(opened.is_err(), "dbname {name:?} was accepted");
    }
    let stash = Stash::builder().root_dir(&root).open().unwrap();
    for name in bad {
        assert!(stash.sub(name).is_err(), "sub {name:?} was accepted");
        assert!(
            stash.run_named(name, square, 1).is_err(),
            "function name {name:?} was accepted"
        );
    }
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["root"]);
}
