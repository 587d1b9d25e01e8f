//! Redis without a thread per call (features `redis` and `async`): the engine's
//! [`AsyncEngine`] side, on one multiplexed connection of the `redis` crate's tokio client,
//! made on first use and shared by every task of the handle. It sends what the blocking side
//! sends (the same commands and scripts, built by the same code), so both sides read and
//! write the same entries. A cluster URL has no async side here: its calls run on the
//! blocking pool.
//!
//! A connection that fails (the server went away) is dropped and the next call connects
//! afresh; a lookup, or a write that can be repeated without effect, is then tried once more
//! at once.

use super::{has_field_expiry_in, info_request, redis_err, Client, RedisEngine};
use crate::engine::async_engine::{AsyncEngine, EngineFuture};
use crate::engine::{now_micros, WriteItem, WriteMeta};
use crate::error::{Error, Result};
use redis::aio::MultiplexedConnection;
use std::future::Future;

impl RedisEngine {
    /// The shared async connection, made on first use. A connection is driven by a task of
    /// the runtime that made it, and dies with it: a call from another runtime (a service's
    /// second runtime, a test's next one) makes its own.
    async fn aio(&self) -> Result<MultiplexedConnection> {
        let runtime = tokio::runtime::Handle::current().id();
        let shared = self.aio.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((made_by, conn)) = shared {
            if made_by == runtime {
                return Ok(conn);
            }
        }
        let Client::Single(client) = &self.client else {
            // RedisEngine::capabilities offers no async side for a cluster; this stays an
            // error, not a panic, should a caller reach it anyway.
            return Err(Error::unsupported("redis", "async side on a cluster"));
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.unreachable(e))?;
        *self.aio.lock().unwrap_or_else(|e| e.into_inner()) = Some((runtime, conn.clone()));
        Ok(conn)
    }

    /// Runs `call` on the async connection. A connection that failed is dropped; with
    /// `repeatable`, the call is tried once more on a fresh one.
    async fn with_aio<T, F, Fut>(&self, repeatable: bool, call: F) -> Result<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let mut tried = false;
        loop {
            let outcome = call(self.aio().await?).await;
            match outcome {
                Ok(value) => return Ok(value),
                Err(e) => {
                    let stale = e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_timeout()
                        || e.is_unrecoverable_error();
                    if stale {
                        *self.aio.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                    if !(stale && repeatable && !tried) || e.is_timeout() {
                        return Err(redis_err(e));
                    }
                    tried = true;
                }
            }
        }
    }

    /// Sends `request` on the async connection (see [`RedisEngine::with_aio`]).
    async fn query_async<T: redis::FromRedisValue>(
        &self,
        repeatable: bool,
        request: &redis::Cmd,
    ) -> Result<T> {
        self.with_aio(repeatable, |mut c| async move {
            request.query_async(&mut c).await
        })
        .await
    }

    /// Runs the script `request` on the async connection (see [`RedisEngine::with_aio`]).
    async fn invoke_async<T: redis::FromRedisValue>(
        &self,
        repeatable: bool,
        request: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.with_aio(repeatable, |mut c| async move {
            request.invoke_async(&mut c).await
        })
        .await
    }

    /// Whether the server has hash-field expiry: [`RedisEngine::has_field_expiry`], asked
    /// on the async connection.
    async fn has_field_expiry_async(&self) -> Result<bool> {
        if let Some(&known) = self.field_expiry.get() {
            return Ok(known);
        }
        let reply: redis::Value = self.query_async(true, &info_request()).await?;
        Ok(*self
            .field_expiry
            .get_or_init(|| has_field_expiry_in(&reply)))
    }

    /// [`RedisEngine::write_batch`] on the async connection.
    async fn write_batch_async(&self, items: &[(&[u8], &[u8])], meta: WriteMeta) -> Result<()> {
        let native = match meta.expires_micros {
            Some(at) if at > now_micros() => self.has_field_expiry_async().await?,
            _ => false,
        };
        // Replacing entries again changes nothing; appending again would add a version.
        let repeatable = !self.append_mode;
        for invocation in self.write_calls(items, meta, native)? {
            self.invoke_async::<()>(repeatable, &invocation).await?;
        }
        Ok(())
    }
}

impl AsyncEngine for RedisEngine {
    fn get<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, Option<Vec<u8>>>> {
        Some(Box::pin(async move {
            let request = self.get_request(key)?;
            let stored: Option<Vec<u8>> = self.query_async(true, &request).await?;
            match stored {
                Some(stored) => self.live_value(key, &stored, now_micros()),
                None => Ok(None),
            }
        }))
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a [u8]],
    ) -> Option<EngineFuture<'a, Vec<Option<Vec<u8>>>>> {
        Some(Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let (groups, requests) = self.get_many_requests(keys)?;
            let mut replies = Vec::with_capacity(requests.len());
            for request in &requests {
                replies.push(self.query_async(true, request).await?);
            }
            self.live_values(keys, super::gather(keys.len(), &groups, replies)?)
        }))
    }

    fn write_items<'a>(&'a self, items: &'a [WriteItem<'a>]) -> Option<EngineFuture<'a, ()>> {
        Some(Box::pin(async move {
            // Runs of one meta, as the blocking side writes them.
            for (batch, meta) in crate::engine::runs_of_one_meta(items) {
                self.write_batch_async(&batch, meta).await?;
            }
            Ok(())
        }))
    }

    fn contains<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>> {
        Some(Box::pin(async move {
            let request = self.contains_request(key)?;
            let found: redis::Value = self.invoke_async(true, &request).await?;
            self.contains_reply(key, found)
        }))
    }

    fn remove<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>> {
        Some(Box::pin(async move {
            // Not repeated: a second try would report a removal as a miss.
            let removed: u64 = self.invoke_async(false, &self.remove_request(key)?).await?;
            Ok(removed > 0)
        }))
    }
}
