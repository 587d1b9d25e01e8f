//! Progress of long operations ([`Stash::map`](crate::Stash::map_named) and
//! [`Stash::copy_to`](crate::Stash::copy_to)), reported to an observer the caller gives.
//!
//! The library draws nothing itself and depends on no terminal crate: the command line turns
//! these reports into bars on standard error, and a program can log them, draw its own bars
//! or leave them out.
//!
//! ```
//! use hashstash::progress::{Observer, Progress};
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! #[derive(Default)]
//! struct Counted(AtomicU64);
//!
//! impl Progress for Counted {
//!     fn start(&self, what: &str, total: u64, done: u64) {
//!         eprintln!("{what}: {done} of {total} already done");
//!     }
//!     fn advance(&self, steps: u64) {
//!         self.0.fetch_add(steps, Ordering::Relaxed);
//!     }
//!     fn finish(&self) {}
//! }
//!
//! # let dir = tempfile::tempdir()?;
//! # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
//! let counted = Arc::new(Counted::default());
//! let options = hashstash::map::MapOptions {
//!     progress: Some(Observer::shared(counted.clone())),
//!     ..Default::default()
//! };
//! stash.map_named("double", |x: u32| x * 2, vec![1, 2, 3], options)?.results()?;
//! assert_eq!(counted.0.load(Ordering::Relaxed), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

/// Receives the progress of one operation, from the threads doing its work.
pub trait Progress: Send + Sync {
    /// The operation starts: `total` steps, of which `done` need no work (results already
    /// stored), described by `what` (for example `Mapping double across 3 items`).
    fn start(&self, what: &str, total: u64, done: u64);
    /// `steps` more steps are done.
    fn advance(&self, steps: u64);
    /// The operation is over, done or failed.
    fn finish(&self);
}

/// A [`Progress`] observer as options hold it: cheap to clone, shared by the workers.
#[derive(Clone)]
pub struct Observer(Arc<dyn Progress>);

impl Observer {
    /// An observer that reports to `progress`.
    pub fn new(progress: impl Progress + 'static) -> Self {
        Observer(Arc::new(progress))
    }

    /// An observer that reports to `progress`, which the caller keeps a handle on too.
    pub fn shared(progress: Arc<dyn Progress>) -> Self {
        Observer(progress)
    }

    pub(crate) fn start(&self, what: &str, total: u64, done: u64) {
        self.0.start(what, total, done)
    }

    pub(crate) fn advance(&self, steps: u64) {
        self.0.advance(steps)
    }

    pub(crate) fn finish(&self) {
        self.0.finish()
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(..)")
    }
}
