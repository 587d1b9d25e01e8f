//! How the MongoDB engine writes (see `mongo.rs` for the layout): the entry document, its
//! expiry fields and indexes, one append (a version number claimed under the versions'
//! unique index, then the entry moved to it), and `insert_if_absent` (an insert on the
//! unique `_id`, or the next version's number, as the one step that decides between racing
//! writers). A write outside append mode (one upsert, or a batch as one `insertMany`) is
//! written once, as async code, in `mongo_ops.rs`.

use super::{bin, is_duplicate_key, MongoEngine, DOCUMENT_OVERHEAD, MAX_DOCUMENT, MAX_RACES};
use crate::engine::{key_digest, now_micros, Record, WriteMeta};
use crate::error::{Error, Result};
use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Documents removed per request when a collection is emptied.
const CLEAR_PAGE: i64 = 10_000;

impl MongoEngine {
    /// Removes every document of `collection`, a page of `_id`s at a time, each request
    /// under the deadline: one `deleteMany` over a large stash outlasts any deadline, and a
    /// dropped collection would take the unique indexes that concurrent writers rely on.
    pub(super) fn delete_all(&self, collection: &Collection<Document>, what: &str) -> Result<()> {
        use futures_util::TryStreamExt;
        loop {
            let ids: Vec<Bson> = self.run(what, async {
                let page: Vec<Document> = collection
                    .find(doc! {})
                    .projection(doc! { "_id": 1 })
                    .limit(CLEAR_PAGE)
                    .await?
                    .try_collect()
                    .await?;
                Ok(page
                    .into_iter()
                    .filter_map(|d| d.get("_id").cloned())
                    .collect())
            })?;
            if ids.is_empty() {
                return Ok(());
            }
            let filter = doc! { "_id": { "$in": ids } };
            self.run(what, collection.delete_many(filter).into_future())?;
        }
    }

    /// Writes a batch whose entries share one [`WriteMeta`].
    pub(super) fn write_batch(&self, items: &[(&[u8], &[u8])], meta: WriteMeta) -> Result<()> {
        if meta.expires_micros.is_some() && !items.is_empty() {
            self.ensure_expiry_index()?;
        }
        let timestamp = meta.timestamp_or_now();
        if self.append_mode {
            self.ensure_versions_index()?;
            return items
                .iter()
                .try_for_each(|(k, v)| self.append(k, v, timestamp, &meta));
        }
        self.block(self.write_batch_async(items, meta))
    }

    /// The entry document to store, with `e` (and `t`) only when it expires (see the module
    /// docs).
    fn entry_doc(
        &self,
        digest: &[u8; 16],
        key: &[u8],
        record: &[u8],
        meta: &WriteMeta,
    ) -> Document {
        let mut document = doc! { "_id": bin(digest), "k": bin(key), "n": 1_i64, "v": bin(record) };
        if let Some(at) = meta.expires_micros {
            document.insert("e", expiry_date(at));
            if !self.append_mode && at > now_micros() {
                document.insert("t", expiry_date(at));
            }
        }
        document
    }

    /// Makes the expiry indexes once per handle (see the module docs): the plain one on `e`,
    /// and outside append mode the TTL one on `t`.
    pub(super) fn ensure_expiry_index(&self) -> Result<()> {
        if self.expiry_index_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let what = "creating the expiry index";
        let index = |field: &str, name: &str, ttl: Option<Duration>| {
            IndexModel::builder()
                .keys(doc! { field: 1 })
                .options(
                    IndexOptions::builder()
                        .sparse(true)
                        .name(name.to_owned())
                        .expire_after(ttl)
                        .build(),
                )
                .build()
        };
        self.run(
            what,
            self.entries
                .create_index(index("e", "e_1", None))
                .into_future(),
        )?;
        if !self.append_mode {
            // A server without TTL indexes refuses this one, which is no error: `t` then
            // stays inert, expiry is lazy and prune_expired removes what expired. (A server
            // that is down has already failed the index above.)
            let ttl = index("t", "t_ttl", Some(Duration::ZERO));
            let _refused = self.run_raw(what, self.entries.create_index(ttl).into_future())?;
        }
        self.expiry_index_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn encode(
        &self,
        key: &[u8],
        version: u64,
        value: &[u8],
        timestamp_micros: i64,
        meta: &WriteMeta,
    ) -> Result<Vec<u8>> {
        let size = key.len() + value.len() + DOCUMENT_OVERHEAD;
        if size > MAX_DOCUMENT {
            return Err(Error::ValueTooLarge {
                engine: "mongo",
                size: value.len() as u64,
                limit: (MAX_DOCUMENT - DOCUMENT_OVERHEAD - key.len()) as u64,
            });
        }
        Record {
            key: &[],
            version,
            timestamp_micros,
            expires_micros: meta.expires_micros,
            value,
        }
        .encode()
    }

    fn ensure_versions_index(&self) -> Result<()> {
        if self.index_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        let index = IndexModel::builder()
            .keys(doc! { "h": 1, "n": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build();
        self.run(
            "creating the versions index",
            self.versions.create_index(index).into_future(),
        )?;
        self.index_ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The filter and the whole document that replace `key`'s entry with `value`.
    pub(super) fn replacement(
        &self,
        key: &[u8],
        value: &[u8],
        timestamp: i64,
        meta: &WriteMeta,
    ) -> Result<(Document, Document)> {
        let digest = key_digest(key);
        let record = self.encode(key, 1, value, timestamp, meta)?;
        // A whole document: replacing drops the `e` and `t` of an earlier value.
        let document = self.entry_doc(&digest, key, &record, meta);
        // The key is part of the filter: a document of another key with the same hash does
        // not match, and the upsert then fails on the duplicate `_id` instead of replacing it.
        let filter = doc! { "_id": bin(&digest), "k": bin(key) };
        Ok((filter, document))
    }

    /// The entry documents of a bulk insert of `items`.
    pub(super) fn entry_docs_of(
        &self,
        items: &[(&[u8], &[u8])],
        timestamp: i64,
        meta: &WriteMeta,
    ) -> Result<Vec<Document>> {
        items
            .iter()
            .map(|(k, v)| {
                let record = self.encode(k, 1, v, timestamp, meta)?;
                Ok(self.entry_doc(&key_digest(k), k, &record, meta))
            })
            .collect()
    }

    fn latest_version(&self, digest: &[u8; 16]) -> Result<u64> {
        let latest = self.latest_version_doc(digest, false)?;
        Ok(version_number(latest.as_ref()))
    }

    /// The version document with the highest number under a key's hash: with its record
    /// when `whole`, else its number only (an append needs no more, and skips the value).
    fn latest_version_doc(&self, digest: &[u8; 16], whole: bool) -> Result<Option<Document>> {
        let find = self
            .versions
            .find_one(doc! { "h": bin(digest) })
            .sort(doc! { "n": -1 });
        let find = if whole {
            find
        } else {
            find.projection(doc! { "n": 1 })
        };
        self.run("reading the latest version", find.into_future())
    }

    fn append(&self, key: &[u8], value: &[u8], timestamp: i64, meta: &WriteMeta) -> Result<()> {
        let digest = key_digest(key);
        if let Some(doc) = self.entry_by_digest(&digest)? {
            self.record_of(key, &doc)?;
        }
        let mut version = self.latest_version(&digest)? + 1;
        let mut races = 0;
        let record = loop {
            let record = self.encode(key, version, value, timestamp, meta)?;
            let document = version_doc(&digest, version, &record);
            let what = "appending a version";
            match self.run_raw(what, self.versions.insert_one(document).into_future())? {
                Ok(_) => break record,
                // Another writer took this number: the unique index said so. Take the one
                // after the latest now stored (every number up to it is taken, so no gap):
                // stepping by one lost every race to faster writers, a step behind each time.
                Err(e) if is_duplicate_key(&e) => {
                    races += 1;
                    if races >= MAX_RACES {
                        return Err(lost_races(what));
                    }
                    version = (self.latest_version(&digest)? + 1).max(version + 1);
                }
                Err(e) => return Err(self.error(what, e)),
            }
        };
        self.make_latest(&digest, key, version, &record, meta)
    }

    /// Makes version `version` of `key` (stored as `record`) the entry's latest, unless a
    /// writer already stored a later one: the second step of an append, after its number was
    /// claimed in the versions collection.
    fn make_latest(
        &self,
        digest: &[u8; 16],
        key: &[u8],
        version: u64,
        record: &[u8],
        meta: &WriteMeta,
    ) -> Result<()> {
        // Make it the latest unless a writer already stored a later version.
        let filter = doc! { "_id": bin(digest), "n": { "$lt": version as i64 } };
        let mut update = doc! { "$set": { "k": bin(key), "n": version as i64, "v": bin(record) } };
        // The entry's `e` is its latest version's expiry: set it, or drop an earlier one.
        match meta.expires_micros {
            Some(at) => {
                if let Ok(set) = update.get_document_mut("$set") {
                    set.insert("e", expiry_date(at));
                }
            }
            None => {
                update.insert("$unset", doc! { "e": "" });
            }
        }
        let what = "updating the latest version";
        for _ in 0..MAX_RACES {
            let upsert = self
                .entries
                .update_one(filter.clone(), update.clone())
                .upsert(true);
            match self.run_raw(what, upsert.into_future())? {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) => {
                    // The entry exists with a version at least ours (done), or was inserted
                    // by another writer between our filter and our insert (try again).
                    let entry = self.entry_by_digest(digest)?;
                    let stored = entry
                        .as_ref()
                        .and_then(|d| d.get_i64("n").ok())
                        .unwrap_or(0);
                    if stored >= version as i64 {
                        return Ok(());
                    }
                }
                Err(e) => return Err(self.error(what, e)),
            }
        }
        Err(lost_races(what))
    }

    /// [`AtomicInsert::insert_if_absent`](crate::engine::AtomicInsert::insert_if_absent): stores `value` under `key` only where it
    /// has no live entry, as one step against every other writer; `Some(latest)` when it
    /// found a live value and wrote nothing.
    pub(super) fn store_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: &WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        if meta.expires_micros.is_some() {
            self.ensure_expiry_index()?;
        }
        if self.append_mode {
            self.store_if_absent_appending(key, value, meta)
        } else {
            self.store_if_absent_replacing(key, value, meta)
        }
    }

    /// Outside append mode. The entry is read first (a live one, the usual case of
    /// `setdefault`, costs one read and no upload of the value); a missing one is inserted,
    /// and the unique `_id` lets exactly one of several racing inserts win; an expired one is
    /// replaced by a filter that matches only the very document read (its record: checksum,
    /// time and value), a compare-and-swap that fails if another writer (or a prune, or the
    /// TTL monitor) got there first. A lost race starts over from the read.
    fn store_if_absent_replacing(
        &self,
        key: &[u8],
        value: &[u8],
        meta: &WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        let digest = key_digest(key);
        let (filter, document) = self.replacement(key, value, meta.timestamp_or_now(), meta)?;
        for _ in 0..MAX_RACES {
            let Some(found) = self.entry_by_digest(&digest)? else {
                let what = "inserting an entry";
                let insert = self.entries.insert_one(document.clone());
                match self.run_raw(what, insert.into_future())? {
                    Ok(_) => return Ok(None),
                    // Another writer inserted it first: read what it stored.
                    Err(e) if is_duplicate_key(&e) => continue,
                    Err(e) => return Err(self.error(what, e)),
                }
            };
            // Also refuses a document of another key with the same hash.
            let record = self.record_of(key, &found)?;
            if !record.is_expired(now_micros()) {
                return Ok(Some(record.value.to_vec()));
            }
            let stored = found
                .get_binary_generic("v")
                .map_err(|e| Error::decode(self.describe(key), "mongo", e))?;
            let mut expected = filter.clone();
            expected.insert("v", bin(stored));
            let swapped = self.run(
                "replacing an expired entry",
                self.entries
                    .replace_one(expected, document.clone())
                    .into_future(),
            )?;
            if swapped.matched_count == 1 {
                return Ok(None);
            }
        }
        Err(lost_races("inserting an entry"))
    }

    /// In append mode. A live entry document answers at once. Otherwise the versions
    /// collection decides, as it does for an append: its latest version, if live, is the
    /// answer (a writer that claimed it may not have moved the entry to it yet); if it is
    /// expired or there is none, this write claims the number after it (`n + 1`, or 1) under
    /// the unique index. That insert is the one step: it succeeds only if no writer stored a
    /// version since the one judged expired. A writer that took the number first has its
    /// version read on the next round (and returned, if live); the entry is then moved to
    /// the claimed version as an append moves it.
    fn store_if_absent_appending(
        &self,
        key: &[u8],
        value: &[u8],
        meta: &WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        let digest = key_digest(key);
        if let Some(entry) = self.entry_by_digest(&digest)? {
            if let Some(live) = self.live_value_of(key, &entry, now_micros())? {
                return Ok(Some(live));
            }
        }
        self.ensure_versions_index()?;
        let timestamp = meta.timestamp_or_now();
        let what = "appending a version";
        for _ in 0..MAX_RACES {
            let latest = self.latest_version_doc(&digest, true)?;
            if let Some(doc) = &latest {
                let found = self.version_record(key, doc)?;
                if !found.is_expired(now_micros()) {
                    return Ok(Some(found.value.to_vec()));
                }
            }
            let version = version_number(latest.as_ref()) + 1;
            let record = self.encode(key, version, value, timestamp, meta)?;
            let document = version_doc(&digest, version, &record);
            match self.run_raw(what, self.versions.insert_one(document).into_future())? {
                Ok(_) => {
                    self.make_latest(&digest, key, version, &record, meta)?;
                    return Ok(None);
                }
                // Another writer stored this number first: judge its version next round.
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(self.error(what, e)),
            }
        }
        Err(lost_races(what))
    }

    /// The record of a version document of `key`.
    fn version_record<'d>(&self, key: &[u8], doc: &'d Document) -> Result<Record<'d>> {
        let bytes = doc
            .get_binary_generic("v")
            .map_err(|e| Error::decode(self.describe(key), "mongo", e))?;
        Record::decode(bytes, || self.describe(key))
    }
}

/// A version document: version `version` of the key with hash `digest`, stored as `record`.
fn version_doc(digest: &[u8; 16], version: u64, record: &[u8]) -> Document {
    doc! { "h": bin(digest), "n": version as i64, "v": bin(record) }
}

/// The number of a version document (0 for none: the next version is 1).
fn version_number(doc: Option<&Document>) -> u64 {
    doc.and_then(|d| d.get_i64("n").ok()).unwrap_or(0).max(0) as u64
}

/// µs since the epoch as ms, rounded up: the server never deletes an entry before its record
/// says it expires.
fn micros_to_millis_ceil(micros: i64) -> i64 {
    micros / 1000 + i64::from(micros % 1000 > 0)
}

/// The error of a write that lost [`MAX_RACES`] races in a row to other writers.
pub(super) fn lost_races(what: &str) -> Error {
    Error::engine(
        "mongo",
        format!("{what}: lost {MAX_RACES} races to other writers"),
    )
}

/// Whether the entry document found under a key's hash belongs to another key.
pub(super) fn held_by_another(holder: Option<Document>, key: &[u8]) -> bool {
    holder.is_some_and(|doc| {
        doc.get_binary_generic("k")
            .map(|k| k.as_slice() != key)
            .unwrap_or(true)
    })
}

/// The items of a bulk insert that failed on a duplicate key (all of them when the error
/// does not say which).
pub(super) fn duplicate_inserts(e: &mongodb::error::Error, items: usize) -> Vec<usize> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(failure) => failure
            .write_errors
            .iter()
            .flatten()
            .map(|w| w.index)
            .collect(),
        _ => (0..items).collect(),
    }
}

/// An expiry as the BSON DateTime of `e`.
pub(super) fn expiry_date(micros: i64) -> DateTime {
    DateTime::from_millis(micros_to_millis_ceil(micros))
}
