//! MongoDB's reads, writes outside append mode, `contains`, `remove` and the change counter,
//! each written once, as async code. Each driver call is spawned on the engine's own
//! runtime, where the driver's connections and monitors live, under the stash's timeout.
//! The blocking [`Engine`](crate::Engine) methods drive these to their end
//! (`MongoEngine::block`); the [`AsyncEngine`] side (feature `async`) awaits them from the
//! caller's runtime, so nothing blocks a thread. An append (a version number to claim, then
//! the entry to move) and the first write with an expiry (which makes the expiry indexes)
//! are blocking code in `mongo_writes.rs`, and run on the blocking pool from async callers.

use super::{
    bin, contains_verdict, duplicate_inserts, held_by_another, is_duplicate_key, key_digest,
    lost_races, MongoEngine, MAX_RACES,
};
#[cfg(feature = "async")]
use crate::engine::async_engine::{AsyncEngine, EngineFuture};
#[cfg(feature = "async")]
use crate::engine::WriteItem;
use crate::engine::{now_micros, WriteMeta};
use crate::error::{Error, Result};
use mongodb::bson::{doc, Document};
use std::future::Future;
#[cfg(feature = "async")]
use std::sync::atomic::Ordering;

impl MongoEngine {
    /// Runs a driver call on the engine's runtime under the stash's timeout, and awaits it
    /// here; the driver's own error is handed back for inspection.
    async fn drive_raw<T, F>(&self, what: &str, call: F) -> Result<mongodb::error::Result<T>>
    where
        F: Future<Output = mongodb::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self.runtime.get()?;
        let timeout = self.timeout;
        let task = runtime.spawn(async move { tokio::time::timeout(timeout, call).await });
        match task.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_elapsed)) => Err(self.timed_out(what)),
            Err(e) => Err(Error::engine("mongo", format!("{what}: {e}"))),
        }
    }

    /// [`MongoEngine::drive_raw`], its error made ours.
    async fn drive<T, F>(&self, what: &str, call: F) -> Result<T>
    where
        F: Future<Output = mongodb::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.drive_raw(what, call)
            .await?
            .map_err(|e| self.error(what, e))
    }

    /// Raises the change counter (after a write).
    pub(super) async fn changed_async(&self) -> Result<()> {
        let meta = self.meta.clone();
        let (filter, update) = (
            doc! { "_id": &self.name },
            doc! { "$inc": { "generation": 1 } },
        );
        let raise = move || {
            let (meta, filter, update) = (meta.clone(), filter.clone(), update.clone());
            async move { meta.update_one(filter, update).upsert(true).await }
        };
        let what = "raising the change counter";
        match self.drive_raw(what, raise()).await? {
            Err(e) if is_duplicate_key(&e) => self.drive(what, raise()).await.map(drop),
            other => other.map(drop).map_err(|e| self.error(what, e)),
        }
    }

    /// The entry document stored under a key's hash, if any.
    pub(super) async fn entry_by_digest_async(
        &self,
        digest: &[u8; 16],
    ) -> Result<Option<Document>> {
        let entries = self.entries.clone();
        let filter = doc! { "_id": bin(digest) };
        self.drive(
            "reading an entry",
            async move { entries.find_one(filter).await },
        )
        .await
    }

    /// A key's live value: one `find_one` (the record says whether it has expired).
    pub(super) async fn get_async(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.entry_by_digest_async(&key_digest(key)).await? {
            Some(doc) => self.live_value_of(key, &doc, now_micros()),
            None => Ok(None),
        }
    }

    /// Replaces (or inserts) one entry, retrying a race with a writer that inserted the key
    /// first; an error if another key holds its hash.
    async fn replace_async(
        &self,
        key: &[u8],
        value: &[u8],
        timestamp: i64,
        meta: &WriteMeta,
    ) -> Result<()> {
        let digest = key_digest(key);
        let (filter, document) = self.replacement(key, value, timestamp, meta)?;
        let what = "replacing an entry";
        for _ in 0..MAX_RACES {
            let (entries, filter, document) =
                (self.entries.clone(), filter.clone(), document.clone());
            let upsert = async move { entries.replace_one(filter, document).upsert(true).await };
            match self.drive_raw(what, upsert).await? {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) => {
                    // Either another key holds this hash, or another writer inserted this key
                    // first, between our filter and our insert: then simply replace again.
                    if held_by_another(self.entry_by_digest_async(&digest).await?, key) {
                        return Err(self.collision(key));
                    }
                }
                Err(e) => return Err(self.error(what, e)),
            }
        }
        Err(lost_races(what))
    }

    /// A batch sharing `meta`, outside append mode: one entry is one upsert; more are one
    /// bulk insert, then the keys already present replaced one by one.
    pub(super) async fn write_batch_async(
        &self,
        items: &[(&[u8], &[u8])],
        meta: WriteMeta,
    ) -> Result<()> {
        let timestamp = meta.timestamp_or_now();
        match items {
            [] => return Ok(()),
            [(k, v)] => return self.replace_async(k, v, timestamp, &meta).await,
            _ => {}
        }
        let docs = self.entry_docs_of(items, timestamp, &meta)?;
        let entries = self.entries.clone();
        let insert = async move { entries.insert_many(docs).ordered(false).await };
        let what = "inserting entries";
        let failed: Vec<usize> = match self.drive_raw(what, insert).await? {
            Ok(_) => return Ok(()),
            Err(e) if is_duplicate_key(&e) => duplicate_inserts(&e, items.len()),
            Err(e) => return Err(self.error(what, e)),
        };
        for (k, v) in failed.into_iter().filter_map(|i| items.get(i)) {
            self.replace_async(k, v, timestamp, &meta).await?;
        }
        Ok(())
    }

    /// The live values of `keys`, in order: one `find` by `_id`.
    pub(super) async fn get_many_async(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let ids: Vec<_> = keys.iter().map(|k| bin(&key_digest(k))).collect();
        let entries = self.entries.clone();
        let docs: Vec<Document> = self
            .drive("reading entries", async move {
                use futures_util::TryStreamExt;
                entries
                    .find(doc! { "_id": { "$in": ids } })
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
        self.live_values_of(keys, docs)
    }

    /// Whether a key has a live entry, without its value: `e` (ms, rounded up) settles all
    /// but the last ms before an expiry, where the record (µs) decides.
    pub(super) async fn contains_async(&self, key: &[u8]) -> Result<bool> {
        let entries = self.entries.clone();
        let filter = doc! { "_id": bin(&key_digest(key)) };
        let found = self
            .drive("reading an entry", async move {
                entries
                    .find_one(filter)
                    .projection(doc! { "_id": 1, "e": 1 })
                    .await
            })
            .await?;
        match contains_verdict(found) {
            Some(verdict) => Ok(verdict),
            None => Ok(self.get_async(key).await?.is_some()),
        }
    }

    /// Removes a key's entry (and in append mode its versions); whether it was there.
    pub(super) async fn remove_async(&self, key: &[u8]) -> Result<bool> {
        let digest = key_digest(key);
        let (entries, versions) = (self.entries.clone(), self.versions.clone());
        let filter = doc! { "_id": bin(&digest), "k": bin(key) };
        let removed = self
            .drive("removing an entry", async move {
                entries.delete_one(filter).await
            })
            .await?;
        if self.append_mode {
            let filter = doc! { "h": bin(&digest) };
            self.drive("removing versions", async move {
                versions.delete_many(filter).await
            })
            .await?;
        }
        if removed.deleted_count > 0 {
            self.changed_async().await?;
        }
        Ok(removed.deleted_count > 0)
    }
}

#[cfg(feature = "async")]
impl AsyncEngine for MongoEngine {
    fn get<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, Option<Vec<u8>>>> {
        Some(Box::pin(self.get_async(key)))
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a [u8]],
    ) -> Option<EngineFuture<'a, Vec<Option<Vec<u8>>>>> {
        Some(Box::pin(self.get_many_async(keys)))
    }

    fn write_items<'a>(&'a self, items: &'a [WriteItem<'a>]) -> Option<EngineFuture<'a, ()>> {
        let expires = items.iter().any(|(_, _, m)| m.expires_micros.is_some());
        if self.append_mode || (expires && !self.expiry_index_ready.load(Ordering::Relaxed)) {
            return None; // the blocking write (see the module docs)
        }
        Some(Box::pin(async move {
            let mut written = Ok(());
            for (batch, meta) in crate::engine::runs_of_one_meta(items) {
                written = self.write_batch_async(&batch, meta).await;
                if written.is_err() {
                    break;
                }
            }
            // After a failed write too: some of the entries may be stored.
            self.changed_async().await?;
            written
        }))
    }

    fn contains<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>> {
        Some(Box::pin(self.contains_async(key)))
    }

    fn remove<'a>(&'a self, key: &'a [u8]) -> Option<EngineFuture<'a, bool>> {
        Some(Box::pin(self.remove_async(key)))
    }
}
