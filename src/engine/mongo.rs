//! The MongoDB engine (the official `mongodb` driver): a stash shared by processes and
//! machines through any MongoDB wire-compatible server.
//!
//! One collection per stash, named `stash_<xxh3-128 of the namespace>` (collection names
//! are limited in length and alphabet; the readable namespace is kept in `hashstash_meta`):
//!
//! ```text
//! stash_<hash>           { _id: hash(key), k: key bytes, n: latest version, v: record,
//!                          e: expiry, t: expiry for the TTL index (DateTimes; see below) }
//! stash_<hash>_versions  { h: hash(key), n: version, v: record }   unique index (h, n)
//! hashstash_meta         { _id: collection name, namespace, format }
//! hashstash_leases       { _id: collection name + 0 + lease name, owner, expires }
//! ```
//!
//! **Expiry** is in the record (format 2, µs; see `record.rs`), which every read already
//! fetches, so reads judge it lazily with no extra query: an expired entry is a miss. An
//! entry that expires also carries its expiry as BSON DateTimes, rounded up to the ms (so
//! the server never deletes it early), each under a sparse index (entries that never expire
//! are in neither):
//!
//! - `e`, under a plain index: how [`Housekeeping::prune_expired`] finds expired entries without
//!   reading the collection, and how `contains` judges one without fetching its value.
//! - `t`, under a TTL index (`expireAfterSeconds: 0`), outside append mode only, and only
//!   for an expiry still to come when it is written: the server then deletes the entry by
//!   itself (its TTL monitor runs about once a minute; reads never wait for it). An expiry
//!   already past when written (a zero TTL) is left to the contract's lazy expiry: the entry
//!   is counted by `len` until pruned or rewritten, not deleted whenever the monitor
//!   happens to run. A server that refuses TTL indexes keeps `t` inert: lazy expiry and
//!   prune only.
//!
//! Append mode gets no TTL: the monitor deletes documents one at a time, so it would take an
//! entry without its versions (or, were versions given a TTL, an old version while its key's
//! latest is live). There `prune_expired` removes an expired entry with its versions, and
//! version documents keep their own expiry in their record only. The indexes are made by the
//! first write with an expiry (or the first prune), so stashes that never expire anything
//! never pay for them.
//!
//! The document `_id` is the 128-bit hash of the canonical key bytes; the key bytes are stored
//! and compared on every read and write, so two keys with one hash are an error, never each
//! other's values. Append mode inserts version `n + 1` into the versions collection, whose
//! unique index turns a race between writers into a retry with the next number: versions
//! are unique and gap-free across processes. Batches outside append mode are one
//! `insertMany` (keys already present are then replaced one by one). `insert_if_absent`
//! (`setdefault`) lets the unique `_id` pick one of several racing inserts, replaces an expired
//! entry only by a filter matching the very record it judged, and in append mode claims the
//! number after an expired latest version (see `mongo_writes.rs`).
//!
//! **Values larger than MongoDB's 16 MB document limit are refused** with
//! [`Error::ValueTooLarge`] (they are not chunked): a cache entry that large belongs in a
//! file engine.
//!
//! **Append** stores the version first, then makes it the entry's latest: if the call fails
//! between the two (a server killed, a timeout), the version is there for `versions` while
//! `get` still returns the one before, until the key's next append catches the entry up.
//! Either way the call failed, and version numbers stay unique and gap-free.
//!
//! **Durability** is the server's: a write is acknowledged by the server (its default write
//! concern). With `sync`, the write concern asks for the journal (`j: true`): a write that
//! returned is in the server's on-disk journal.
//!
//! **Timeouts**: the Rust driver has no socket timeout, so every operation runs under a
//! deadline of the stash's `timeout_ms` (default 5 s) on the engine's own runtime; selecting
//! a server waits at most as long. The driver reconnects by itself when the server is back.

use super::{
    key_digest, now_micros, Engine, EntryIter, Record, StoredEntry, StoredIter, TimeWindow,
    Version, WriteItem, WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping, Leases};
use crate::config::{redact_url, StashConfig};
use crate::error::{Error, Result};
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};
use mongodb::options::ClientOptions;
use mongodb::Collection;
use std::future::{Future, IntoFuture};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// MongoDB's document size limit.
pub const MAX_DOCUMENT: usize = 16 * 1024 * 1024;
#[path = "mongo_capabilities.rs"]
mod capabilities;

/// Room left in a document for everything but the value.
const DOCUMENT_OVERHEAD: usize = 1024;
const SCAN_PAGE: i64 = 512;
const DUPLICATE_KEY: i32 = 11000;

/// The MongoDB engine.
pub struct MongoEngine {
    runtime: super::EngineRuntime,
    entries: Collection<Document>,
    versions: Collection<Document>,
    meta: Collection<Document>,
    leases: Collection<Document>,
    name: String,
    namespace: String,
    append_mode: bool,
    timeout: Duration,
    shown_url: String,
    /// The URL as given, only to scrub it out of the driver's messages (never shown).
    url: String,
    /// Whether the versions collection's unique index is known to exist.
    index_ready: AtomicBool,
    /// Whether the index on entries' expiry (`e`) is known to exist.
    expiry_index_ready: AtomicBool,
}

#[path = "mongo_ops.rs"]
mod ops;
#[path = "mongo_writes.rs"]
mod writes;
use writes::{duplicate_inserts, held_by_another, lost_races};

/// How many times a write retries a race it lost (a version number or a first insert taken
/// by another writer) before giving up.
const MAX_RACES: usize = 100;

impl std::fmt::Debug for MongoEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoEngine")
            .field("url", &self.shown_url)
            .field("collection", &self.name)
            .field("namespace", &self.namespace)
            .field("append_mode", &self.append_mode)
            .finish()
    }
}

fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().all(|w| w.code == DUPLICATE_KEY)),
        _ => e.to_string().contains("E11000"),
    }
}

impl MongoEngine {
    /// Up to [`SCAN_PAGE`] entry documents matching `filter`, in `_id` order (scans and
    /// prune page through the collection by the last `_id` they saw).
    fn page_of_entries(&self, what: &str, filter: Document) -> Result<Vec<Document>> {
        self.run(what, async {
            use futures_util::TryStreamExt;
            self.entries
                .find(filter)
                .sort(doc! { "_id": 1 })
                .limit(SCAN_PAGE)
                .await?
                .try_collect()
                .await
        })
    }

    /// Connects to the server of `config` (lazily: a server that is down fails the first
    /// operation, within the timeout).
    pub fn open(config: &StashConfig) -> Result<Self> {
        let (env, default) = super::EngineKind::Mongo
            .server_url_env()
            .unwrap_or_default();
        let url = config.server_url(env, default);
        let shown_url = redact_url(&url);
        let timeout = config.timeout();
        let runtime = super::EngineRuntime::new("mongo", 1)?;
        let invalid = |e: mongodb::error::Error| Error::InvalidOption {
            option: "url",
            message: crate::config::scrub(&format!("{shown_url} is not a MongoDB URL: {e}"), &url),
        };
        let mut options = runtime
            .block(ClientOptions::parse(&url).into_future())?
            .map_err(invalid)?;
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options.app_name.get_or_insert_with(|| "hashstash".into());
        if config.sync {
            // Acknowledged only once the write is in the server's journal on disk.
            let mut concern = options.write_concern.take().unwrap_or_default();
            concern.journal = Some(true);
            options.write_concern = Some(concern);
        }
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| "hashstash".into());
        let client = {
            let _guard = runtime.get()?.enter();
            mongodb::Client::with_options(options).map_err(invalid)?
        };
        let db = client.database(&database);
        let namespace = config.namespace();
        let name = format!(
            "stash_{:032x}",
            xxhash_rust::xxh3::xxh3_128(namespace.as_bytes())
        );
        let engine = MongoEngine {
            entries: db.collection(&name),
            versions: db.collection(&format!("{name}_versions")),
            meta: db.collection("hashstash_meta"),
            leases: db.collection("hashstash_leases"),
            runtime,
            name,
            namespace,
            append_mode: config.append_mode,
            timeout,
            shown_url,
            url,
            index_ready: AtomicBool::new(false),
            expiry_index_ready: AtomicBool::new(false),
        };
        Ok(engine)
    }

    /// Runs one driver operation to completion, or fails after the timeout.
    fn run<T, F>(&self, what: &str, future: F) -> Result<T>
    where
        F: Future<Output = mongodb::error::Result<T>> + Send,
        T: Send,
    {
        self.run_raw(what, future)?.map_err(|e| self.error(what, e))
    }

    /// Like [`MongoEngine::run`], but hands the driver's own error back for inspection.
    fn run_raw<T, F>(&self, what: &str, future: F) -> Result<mongodb::error::Result<T>>
    where
        F: Future<Output = mongodb::error::Result<T>> + Send,
        T: Send,
    {
        // The timer is made inside the runtime (it needs the runtime's clock).
        let timeout = self.timeout;
        let timed = async move { tokio::time::timeout(timeout, future).await };
        let outcome = self.runtime.block(timed)?;
        outcome.map_err(|_| self.timed_out(what))
    }

    fn timed_out(&self, what: &str) -> Error {
        Error::engine(
            "mongo",
            format!(
                "{what} on {} did not finish within {:?}",
                self.shown_url, self.timeout
            ),
        )
    }

    fn error(&self, what: &str, e: mongodb::error::Error) -> Error {
        // The driver's messages can quote the connection string: hide its secrets.
        let message = crate::config::scrub(&e.to_string(), &self.url);
        Error::engine("mongo", format!("{what} on {}: {message}", self.shown_url))
    }

    /// The `_id` of this stash's lease `name`.
    fn lease_id(&self, name: &[u8]) -> Bson {
        let mut id = self.name.as_bytes().to_vec();
        id.push(0);
        id.extend_from_slice(name);
        bin(&id)
    }

    /// Runs one of the operations written once as async code (`mongo_ops.rs`) to its end,
    /// for a blocking caller.
    fn block<T: Send>(&self, op: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.runtime.block(op)?
    }

    /// The entry document stored under a key's hash, if any.
    fn entry_by_digest(&self, digest: &[u8; 16]) -> Result<Option<Document>> {
        self.block(self.entry_by_digest_async(digest))
    }

    fn describe(&self, key: &[u8]) -> String {
        format!(
            "mongo entry {:032x} of {}",
            u128::from_be_bytes(key_digest(key)),
            self.namespace
        )
    }

    fn collision(&self, key: &[u8]) -> Error {
        Error::decode(
            self.describe(key),
            "mongo",
            "a different key has the same hash",
        )
    }

    /// The stored record of the entry document `doc` if it belongs to `key`.
    fn record_of<'d>(&self, key: &[u8], doc: &'d Document) -> Result<Record<'d>> {
        let stored_key = doc
            .get_binary_generic("k")
            .map_err(|e| Error::decode(self.describe(key), "mongo", e))?;
        if stored_key.as_slice() != key {
            return Err(self.collision(key));
        }
        let record = doc
            .get_binary_generic("v")
            .map_err(|e| Error::decode(self.describe(key), "mongo", e))?;
        Record::decode(record, || self.describe(key))
    }

    /// The value of the entry document `doc` (of `key`), or `None` if it has expired at
    /// `now`.
    fn live_value_of(&self, key: &[u8], doc: &Document, now: i64) -> Result<Option<Vec<u8>>> {
        let record = self.record_of(key, doc)?;
        Ok((!record.is_expired(now)).then(|| record.value.to_vec()))
    }

    /// The values of `keys`, in order, from the entry documents a lookup of them found (in
    /// any order; expired ones and those not found are `None`).
    fn live_values_of(&self, keys: &[&[u8]], docs: Vec<Document>) -> Result<Vec<Option<Vec<u8>>>> {
        let mut by_id = std::collections::HashMap::new();
        for doc in docs {
            if let Ok(id) = doc.get_binary_generic("_id") {
                by_id.insert(id.clone(), doc);
            }
        }
        let now = now_micros();
        keys.iter()
            .map(|k| match by_id.get(key_digest(k).as_slice()) {
                Some(d) => self.live_value_of(k, d, now),
                None => Ok(None),
            })
            .collect()
    }
}

impl Engine for MongoEngine {
    fn name(&self) -> &'static str {
        "mongo"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.block(self.get_async(key))
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        self.block(self.get_many_async(keys))
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        let written =
            super::in_runs_of_one_meta(items, |batch, meta| self.write_batch(batch, meta));
        // After a failed write too: some of the entries may be stored.
        self.changed()?;
        written
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        self.block(self.contains_async(key))
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        let mut removed = 0;
        for key in keys {
            removed += u64::from(self.block(self.remove_async(key))?);
        }
        Ok(removed)
    }

    fn len(&self) -> Result<usize> {
        let n = self.run(
            "counting entries",
            self.entries.count_documents(doc! {}).into_future(),
        )?;
        Ok(n as usize)
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        // Expired entries are skipped as they are met.
        Ok(Box::new(self.entry_docs().filter_map(|item| {
            let (key, doc) = match item {
                Ok(found) => found,
                Err(e) => return Some(Err(e)),
            };
            let value = self.live_value_of(&key, &doc, now_micros()).transpose()?;
            Some(value.map(|value| (key, value)))
        })))
    }

    fn clear(&self) -> Result<()> {
        self.delete_all(&self.entries, "clearing entries")?;
        self.delete_all(&self.versions, "clearing versions")?;
        self.changed()
    }

    // Without the `async` feature the update fills in the missing async side.
    #[allow(clippy::needless_update)]
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            history: Some(self),
            atomic_insert: Some(self),
            housekeeping: Some(self),
            catalog: Some(self),
            leases: Some(self),
            #[cfg(feature = "async")]
            async_side: Some(self),
            ..Capabilities::default()
        }
    }
}

impl MongoEngine {
    /// Every entry document with its key, read lazily a page at a time from one cursor in
    /// the collection's natural order.
    fn entry_docs(&self) -> impl Iterator<Item = Result<(Vec<u8>, Document)>> + Send + '_ {
        // One cursor for the whole scan, read a page at a time (each page under the
        // deadline). Paging with a new query per page made a server without an index-ordered
        // scan sort the collection once per page: quadratic on a large stash. No sort
        // either: a server that sorts rather than walking the `_id` index must read the whole
        // collection before the first page, so a `LIMIT 10` or a schema sample would cost a
        // full pass. Natural order still meets each entry once, as the scan contract asks:
        // every write of an entry updates its document in place by `_id` (never a delete
        // and a new insert), so a document keeps its place in the collection
        // (the conformance test `scan_meets_each_key_once_while_writers_run`).
        let mut cursor = ScanCursor {
            cursor: None,
            runtime: self.runtime.get().ok(),
        };
        let mut page: std::vec::IntoIter<Document> = Vec::new().into_iter();
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(doc) = page.next() {
                return Some(match doc.get_binary_generic("k") {
                    Ok(k) => Ok((k.clone(), doc)),
                    Err(e) => Err(Error::decode("a mongo entry", "mongo", e)),
                });
            }
            if done {
                return None;
            }
            if cursor.cursor.is_none() {
                let opened = self.run("scanning entries", async {
                    self.entries
                        .find(doc! {})
                        .batch_size(SCAN_PAGE as u32)
                        .await
                });
                match opened {
                    Ok(opened) => cursor.cursor = Some(opened),
                    Err(e) => {
                        done = true;
                        return Some(Err(e));
                    }
                }
            }
            let open = cursor.cursor.as_mut()?;
            let fetched = self.run("scanning entries", async {
                let mut docs = Vec::with_capacity(SCAN_PAGE as usize);
                while docs.len() < SCAN_PAGE as usize {
                    if !open.advance().await? {
                        break;
                    }
                    docs.push(open.deserialize_current()?);
                }
                Ok(docs)
            });
            match fetched {
                Ok(docs) => {
                    done = (docs.len() as i64) < SCAN_PAGE;
                    page = docs.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })
    }
}

/// A scan's cursor, dropped inside the engine's runtime: the driver kills an unfinished
/// cursor on the server from a task it spawns on the current runtime.
struct ScanCursor<'a> {
    cursor: Option<mongodb::Cursor<Document>>,
    runtime: Option<&'a tokio::runtime::Runtime>,
}

impl Drop for ScanCursor<'_> {
    fn drop(&mut self) {
        let _entered = self.runtime.map(|runtime| runtime.enter());
        self.cursor.take();
    }
}

/// Whether the entry whose `_id` and `e` a lookup found is live; `None`: it expires within
/// the millisecond, and its record must decide.
fn contains_verdict(found: Option<Document>) -> Option<bool> {
    let found = found?;
    let Ok(due) = found.get_datetime("e") else {
        return Some(true); // never expires
    };
    let now = now_micros();
    let due_micros = due.timestamp_millis().saturating_mul(1000);
    if due_micros <= now {
        Some(false)
    } else if due_micros.saturating_sub(1000) >= now {
        Some(true)
    } else {
        None
    }
}

/// `ttl` after `now`, in microseconds since the epoch.
fn lease_deadline(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX))
}

/// The change counter and the catalog records are fields of the stash's `hashstash_meta`
/// document (`generation`, `catalog.<name>`), shared by every client of the stash. MongoDB
/// has no write across documents without a transaction: the counter is raised right after
/// each write, so a client that dies in between leaves it unraised. Tables check every row
/// they read against the schema they were given, so that costs a re-inference, not a wrong
/// answer (see `table::provider`).
impl MongoEngine {
    /// Raises the change counter (after a write).
    pub(super) fn changed(&self) -> Result<()> {
        self.block(self.changed_async())
    }

    /// The stash's `hashstash_meta` document, with only `field`.
    fn meta_field(&self, field: &str) -> Result<Option<Document>> {
        self.run(
            "reading the catalog",
            self.meta
                .find_one(doc! { "_id": &self.name })
                .projection(doc! { field: 1 })
                .into_future(),
        )
    }
}

/// The field of the `catalog` document that keeps the record `name`: a `.` would name a
/// nested field and a leading `$` an operator, so both are escaped (as `%` is, to keep the
/// escape one-to-one).
fn record_field(name: &str) -> String {
    name.replace('%', "%25")
        .replace('.', "%2E")
        .replace('$', "%24")
}
