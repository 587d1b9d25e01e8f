//! The runtime an engine on an async client owns (MongoDB, object storage).

use crate::error::{Error, Result};

/// The tokio runtime of an engine on an async client (MongoDB, object storage): where the
/// client's connections live, and where blocking callers' calls run.
pub(crate) struct EngineRuntime {
    engine: &'static str,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
}

impl EngineRuntime {
    /// A runtime of `threads` worker threads named `hashstash-<engine>`.
    pub(crate) fn new(engine: &'static str, threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(format!("hashstash-{engine}"))
            .enable_all()
            .build()
            .map_err(|e| Error::engine(engine, e))?;
        Ok(EngineRuntime {
            engine,
            runtime: Some(runtime),
        })
    }

    /// The runtime (an error only once the engine is being dropped).
    pub(crate) fn get(&self) -> Result<&tokio::runtime::Runtime> {
        self.runtime
            .as_ref()
            .ok_or_else(|| Error::engine(self.engine, "engine closed"))
    }

    /// Runs `future` on the runtime to its end, also from inside another async runtime
    /// (where blocking on ours directly would panic): then from a scoped thread.
    pub(crate) fn block<F: std::future::Future + Send>(&self, future: F) -> Result<F::Output>
    where
        F::Output: Send,
    {
        let runtime = self.get()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| runtime.block_on(future)).join())
                .map_err(|_| Error::engine(self.engine, "the driver thread panicked"))
        } else {
            Ok(runtime.block_on(future))
        }
    }
}

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        // Never block in drop: the engine may be dropped inside an async context, where
        // dropping a runtime would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
