//! Engines that talk to their server without blocking a thread (feature `async`).
//!
//! [`AsyncStash`](crate::AsyncStash) runs the blocking [`Engine`](super::Engine) calls on
//! tokio's blocking pool. An engine whose client is async underneath offers this trait
//! through [`EngineExt::as_async`](super::EngineExt::as_async) instead, and its lookups and writes
//! are then awaited on the caller's runtime, with no thread parked per call: Redis (a
//! multiplexed connection of the `redis` crate's tokio client) and MongoDB (the driver's own
//! futures, run on the engine's runtime). The contract is [`Engine`](super::Engine)'s.

use super::WriteItem;
use crate::error::Result;
use std::future::Future;
use std::pin::Pin;

/// What an [`AsyncEngine`] call returns.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The async side of an engine: the calls of a cache in a service, each as
/// [`Engine`](super::Engine)'s method of the same name. A call the engine cannot make without
/// blocking returns `None` (MongoDB's appends, for one), and runs on tokio's blocking pool
/// instead.
pub trait AsyncEngine: Send + Sync {
    /// [`Engine::get`](super::Engine::get).
    fn get<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, Option<Vec<u8>>>>;

    /// [`Engine::get_many`](super::Engine::get_many).
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a [u8]],
    ) -> Option<EngineFuture<'a, Vec<Option<Vec<u8>>>>>;

    /// [`Engine::write_items`](super::Engine::write_items).
    fn write_items<'a>(&'a self, items: &'a [WriteItem<'a>]) -> Option<EngineFuture<'a, ()>>;

    /// [`Engine::contains`](super::Engine::contains).
    fn contains<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>>;

    /// [`EngineExt::remove`](super::EngineExt::remove).
    fn remove<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>>;
}
