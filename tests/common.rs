//! Helpers shared by the test modules.

use hashstash::{EngineKind, Stash, StashBuilder};
use tempfile::TempDir;

/// A stash in a fresh temporary root folder (kept alive by the returned `TempDir`).
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
