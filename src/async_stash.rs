//! An async face of a stash, for tokio services (feature `async`).
//!
//! [`AsyncStash`] wraps a [`Stash`]: each call encodes its key (and value) on the calling
//! task, which is cheap and keeps the arguments borrowed. Redis and MongoDB then speak to
//! their server natively, awaited on the caller's runtime with no thread parked per call
//! (their [`AsyncEngine`](crate::engine::async_engine::AsyncEngine) side: lookups, writes,
//! `contains` and `remove`; a call an engine cannot make that way, such as a MongoDB append,
//! and every call of the file engines, runs on tokio's blocking pool (`spawn_blocking`), so
//! that a disk read, an fsync or a server round trip never stalls the runtime's workers. The
//! handle and its stats (and its size limits) are the wrapped stash's.
//!
//! Memoization: [`AsyncStash::run_named`] stores the result of an `async` computation once
//! (the same function stashes, keys and compute-once locks as [`Stash::run_named`]), and
//! `#[stashed_result]` on an `async fn` does the same for every call.

use crate::codec;
use crate::engine::EngineExt;
use crate::error::{Error, Result};
use crate::memo::{self, Lookup};
use crate::stash::Stash;
use crate::stats::Stats;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use std::time::Duration;

/// A stash for async code: the same stash, its blocking calls moved off the runtime.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let runtime = tokio::runtime::Runtime::new()?;
/// # runtime.block_on(async {
/// use hashstash::{AsyncStash, Stash};
///
/// let stash = AsyncStash::new(Stash::builder().root_dir(dir.path()).open()?);
/// stash.set("greeting", "hello").await?;
/// assert_eq!(stash.get::<_, String>("greeting").await?.as_deref(), Some("hello"));
///
/// // An async computation, stored once under its arguments.
/// let fetched = stash
///     .run_named("fetch", |id: u32| async move { format!("page {id}") }, 7)
///     .await?;
/// assert_eq!(fetched, "page 7");
/// # Ok::<(), hashstash::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AsyncStash {
    stash: Stash,
}

impl From<Stash> for AsyncStash {
    fn from(stash: Stash) -> Self {
        AsyncStash { stash }
    }
}

impl AsyncStash {
    /// The async face of `stash`.
    pub fn new(stash: Stash) -> Self {
        AsyncStash { stash }
    }

    /// The wrapped stash, for what has no async form (tables, SQL, iteration by pages).
    pub fn blocking(&self) -> &Stash {
        &self.stash
    }

    /// The engine's native async side, if it has one.
    fn native(&self) -> Option<&dyn crate::engine::async_engine::AsyncEngine> {
        self.stash.engine().as_async()
    }

    /// Counts a native write, and keeps the stash within its limits (measuring it, when it
    /// must, on the blocking pool).
    async fn wrote(&self, entries: usize, bytes: usize) -> Result<()> {
        if self.stash.count_write(entries, bytes) {
            self.off_runtime(|s| s.enforce_limits().map(drop)).await?;
        }
        Ok(())
    }

    /// Runs `f` on tokio's blocking pool with a handle on the stash.
    async fn off_runtime<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Stash) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stash = self.stash.clone();
        let engine = stash.config().engine.name();
        tokio::task::spawn_blocking(move || f(&stash))
            .await
            .map_err(|e| Error::engine(engine, e))?
    }

    /// The value under `key`, or `None`.
    pub async fn get<K, V>(&self, key: &K) -> Result<Option<V>>
    where
        K: ?Sized + Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let key = codec::encode_key(key)?;
        if let Some(lookup) = self.native().and_then(|e| e.get(&key)) {
            let stored = lookup.await?;
            self.stash.counters().lookup(stored.is_some());
            return stored
                .map(|bytes| {
                    self.stash
                        .decode_value(&bytes)
                        .map_err(|e| e.for_entry(&key))
                })
                .transpose();
        }
        self.off_runtime(move |s| match s.get_raw(&key)? {
            Some(bytes) => s
                .decode_value(&bytes)
                .map(Some)
                .map_err(|e| e.for_entry(&key)),
            None => Ok(None),
        })
        .await
    }

    /// Several values in one engine read.
    pub async fn get_many<K, V>(&self, keys: &[&K]) -> Result<Vec<Option<V>>>
    where
        K: ?Sized + Serialize,
        V: DeserializeOwned + Send + 'static,
    {
        let keys = keys
            .iter()
            .map(codec::encode_key)
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let stored = match self.native().and_then(|e| e.get_many(&refs)) {
            Some(lookup) => {
                let stored = lookup.await?;
                for found in &stored {
                    self.stash.counters().lookup(found.is_some());
                }
                stored
            }
            None => {
                let keys = keys.clone();
                self.off_runtime(move |s| s.get_many_raw(&keys)).await?
            }
        };
        stored
            .into_iter()
            .map(|stored| stored.map(|b| self.stash.decode_value(&b)).transpose())
            .collect()
    }

    /// Stores `value` under `key` (with the stash's ttl, if it has one).
    pub async fn set<K, V>(&self, key: &K, value: &V) -> Result<()>
    where
        K: ?Sized + Serialize,
        V: ?Sized + Serialize,
    {
        let key = codec::encode_key(key)?;
        let value = self.stash.encode_value(value)?;
        let meta = self.stash.write_meta();
        let item = [(key.as_slice(), value.as_slice(), meta)];
        if let Some(write) = self.native().and_then(|e| e.write_items(&item)) {
            write.await?;
            return self.wrote(1, key.len() + value.len()).await;
        }
        self.off_runtime(move |s| s.set_raw(&key, &value)).await
    }

    /// Stores `value` under `key`, to be served for `ttl`.
    pub async fn set_with_ttl<K, V>(&self, key: &K, value: &V, ttl: Duration) -> Result<()>
    where
        K: ?Sized + Serialize,
        V: ?Sized + Serialize,
    {
        let key = codec::encode_key(key)?;
        let value = self.stash.encode_value(value)?;
        let meta = crate::engine::WriteMeta {
            timestamp_micros: None,
            expires_micros: Some(crate::stash::expiry_after(ttl)),
        };
        let item = [(key.as_slice(), value.as_slice(), meta)];
        if let Some(write) = self.native().and_then(|e| e.write_items(&item)) {
            write.await?;
            return self.wrote(1, key.len() + value.len()).await;
        }
        self.off_runtime(move |s| s.set_raw_with_ttl(&key, &value, ttl))
            .await
    }

    /// Stores every `(key, value)` pair in one engine transaction where the engine has them.
    pub async fn set_many<K, V>(&self, items: &[(&K, &V)]) -> Result<()>
    where
        K: ?Sized + Serialize,
        V: ?Sized + Serialize,
    {
        let encoded = items
            .iter()
            .map(|(k, v)| Ok((codec::encode_key(k)?, self.stash.encode_value(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let meta = self.stash.write_meta();
        let batch: Vec<crate::engine::WriteItem<'_>> = encoded
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice(), meta))
            .collect();
        if let Some(write) = self.native().and_then(|e| e.write_items(&batch)) {
            write.await?;
            let bytes = encoded.iter().map(|(k, v)| k.len() + v.len()).sum();
            return self.wrote(encoded.len(), bytes).await;
        }
        drop(batch);
        self.off_runtime(move |s| s.write_batch(&encoded)).await
    }

    /// Whether `key` is in the stash.
    pub async fn contains<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        let key = codec::encode_key(key)?;
        if let Some(lookup) = self.native().and_then(|e| e.contains(&key)) {
            return lookup.await;
        }
        self.off_runtime(move |s| s.engine().contains(&key)).await
    }

    /// Removes `key` (all its versions); true if it was there.
    pub async fn remove<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        let key = codec::encode_key(key)?;
        if let Some(removal) = self.native().and_then(|e| e.remove(&key)) {
            let removed = removal.await?;
            self.stash.counters().deleted(removed);
            return Ok(removed);
        }
        self.off_runtime(move |s| s.remove_raw(&key)).await
    }

    /// [`Stash::invalidate`]: drops what is cached under `key`; true if there was something.
    pub async fn invalidate<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        self.remove(key).await
    }

    /// The number of keys (expired ones included until pruned).
    pub async fn len(&self) -> Result<usize> {
        self.off_runtime(|s| s.len()).await
    }

    /// Whether the stash has no keys.
    pub async fn is_empty(&self) -> Result<bool> {
        self.off_runtime(|s| s.is_empty()).await
    }

    /// Removes every entry.
    pub async fn clear(&self) -> Result<()> {
        self.off_runtime(|s| s.clear()).await
    }

    /// [`Stash::prune_expired`].
    pub async fn prune_expired(&self) -> Result<u64> {
        self.off_runtime(|s| s.prune_expired()).await
    }

    /// Every `(key, value)`, read on the blocking pool and collected (for a large stash, walk
    /// [`AsyncStash::blocking`]'s iterators in a blocking task of your own instead).
    pub async fn items<K, V>(&self) -> Result<Vec<(K, V)>>
    where
        K: DeserializeOwned + Send + 'static,
        V: DeserializeOwned + Send + 'static,
    {
        self.off_runtime(|s| s.items()?.collect()).await
    }

    /// This handle's counts ([`Stash::stats`]).
    pub fn stats(&self) -> Stats {
        self.stash.stats()
    }

    /// `f(args).await`, computed once: the result is stored in the function stash `name`
    /// under `args` and read back on later calls, from this process or any other (as
    /// [`Stash::run_named`], whose stashes, keys and locks it shares). While one task
    /// computes a result, others asking for it wait for it instead of computing it too.
    pub async fn run_named<F, Fut, A, R>(&self, name: &str, f: F, args: A) -> Result<R>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future<Output = R>,
        A: Serialize,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let name = name.to_owned();
        let results = AsyncStash::new(self.off_runtime(move |s| s.function_stash(&name)).await?);
        let key = results.stash.encode_key(&args)?;
        match results.lookup::<R>(key).await? {
            Lookup::Stored(result) => Ok(result),
            Lookup::Missing(key, lock) => {
                let result = f(args).await;
                results.store(key, &result, lock).await?;
                Ok(result)
            }
        }
    }

    /// [`memo::lookup_key`] in this (function) stash, off the runtime: waiting for another
    /// computation's lock happens there too.
    async fn lookup<R: DeserializeOwned + Send + 'static>(
        &self,
        key: Vec<u8>,
    ) -> Result<Lookup<R>> {
        self.off_runtime(move |s| memo::lookup_key::<R>(s, key))
            .await
    }

    /// Stores a computed `result` under `key`, then releases the compute lock (a file
    /// unlocked, a lease given back to its server), off the runtime.
    async fn store<R: Serialize>(
        &self,
        key: Vec<u8>,
        result: &R,
        lock: memo::ComputeLock,
    ) -> Result<()> {
        let value = self.stash.encode_value(result)?;
        self.off_runtime(move |s| {
            let stored = s.set_raw(&key, &value);
            drop(lock);
            stored
        })
        .await
    }
}

/// Used by `#[stashed_result]` on an `async fn`: the stored result under `key`, or
/// `compute` awaited and stored if `Ok`. As for blocking functions, a stash that fails is
/// reported on stderr and the function computed without it.
#[doc(hidden)]
pub async fn __call_stashed_async<R, E, Fut>(
    key: memo::StashedKey,
    compute: Fut,
) -> std::result::Result<R, E>
where
    Fut: Future<Output = std::result::Result<R, E>>,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    let (name, found) = key.into_parts();
    let warn = |e: &Error| eprintln!("hashstash: {name}: {e}; computed without its stash");
    let (results, bytes) = match found {
        Ok(found) => found,
        Err(e) => {
            warn(&e);
            return compute.await;
        }
    };
    let results = AsyncStash::new(results);
    match results.lookup::<R>(bytes).await {
        Ok(Lookup::Stored(result)) => Ok(result),
        Ok(Lookup::Missing(key, lock)) => {
            let result = compute.await?;
            if let Err(e) = results.store(key, &result, lock).await {
                warn(&e);
            }
            Ok(result)
        }
        Err(e) => {
            warn(&e);
            compute.await
        }
    }
}
