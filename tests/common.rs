//! Helpers shared by the test modules.

use hashstash::{EngineKind, Stash, StashBuilder};
use tempfile::TempDir;

/// Whether tests of `engine` can run here. Server engines need their server's URL in the
/// environment (`scripts/services.sh start` prints it); without it they are skipped locally,
/// but fail when `HASHSTASH_REQUIRE_SERVERS` is set, as it is in CI.
pub fn engine_available(engine: EngineKind) -> bool {
    let Some((env, _)) = engine.server_url_env() else {
        return true;
    };
    if std::env::var(env).is_ok_and(|u| !u.is_empty()) {
        return true;
    }
    if std::env::var_os("HASHSTASH_REQUIRE_SERVERS").is_some() {
        panic!("{env} is not set, and HASHSTASH_REQUIRE_SERVERS is: start the servers with scripts/services.sh");
    }
    eprintln!("skipped: {env} is not set (run `eval \"$(bash scripts/services.sh start)\"`)");
    false
}

/// A stash in a fresh temporary root folder (kept alive by the returned `TempDir`); on a
/// server the folder's path makes a namespace no other test uses.
pub fn builder(engine: EngineKind) -> (TempDir, StashBuilder) {
    let dir = tempfile::tempdir().expect("temp dir");
    let builder = Stash::builder().root_dir(dir.path()).engine(engine);
    (dir, builder)
}

/// Opens a fresh stash on `engine`.
pub fn stash(engine: EngineKind) -> (TempDir, Stash) {
    let (dir, b) = builder(engine);
    (dir, b.open().expect("open stash"))
}

/// Opens a fresh append-mode stash on `engine`.
pub fn append_stash(engine: EngineKind) -> (TempDir, Stash) {
    let (dir, b) = builder(engine);
    (dir, b.append_mode(true).open().expect("open stash"))
}
