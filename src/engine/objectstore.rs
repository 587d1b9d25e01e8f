//! The object-storage engine: a stash as objects in S3 (or an S3-compatible store), Google
//! Cloud Storage, Azure Blob Storage, or a local folder, through the `object_store` crate
//! that DataFusion builds on (feature `objectstore`).
//!
//! The URL names the store and a prefix: `s3://bucket/prefix` (credentials, region and an
//! S3-compatible endpoint from the usual `AWS_*` variables: `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, ...), `gs://bucket/prefix` (`GOOGLE_*`), `az://container/prefix`
//! (`AZURE_*`), `file:///folder`. Below it each stash has its own prefix, named by a hash
//! of its namespace as MongoDB's collections are, laid out as pairtree lays out files:
//!
//! ```text
//! <prefix>/stash_<xxh3-128 of the namespace>/
//!   format.json                      the stash's format, created once (create-only put)
//!   generation                       the change counter: a token replaced after each change
//!   catalog/<name>                   table catalog records
//!   data/ab/abcd…(32 hex)            one record (see `record.rs`): key, version, time, value
//!   data/ab/abcd….v/00000000000000000001   append mode: one record per version
//!   leases/<32 hex>                  compute-once leases: [u64 LE expiry µs][owner]
//! ```
//!
//! **Atomicity**: an entry is one object, written whole by one PUT, so a reader sees the old
//! record or the new one, never half of one. New versions, first inserts, leases and the
//! format record are create-only puts (`If-None-Match: *`): of two writers, one wins and the
//! other is told, which makes version numbers unique and compute-once hold across machines.
//! Replacing an expired entry or lease is a conditional put on the ETag read (`If-Match`);
//! a local folder has no such put, and deletes then creates instead.
//!
//! **Requests** for several keys at once (`get_many`, batches, scans) run concurrently, at
//! most [`CONCURRENCY`] at a time, on the engine's own runtime. Every request finishes, or
//! fails with a typed error, within the stash's timeout.

use super::pairtree::{hex, random_token, version_name};
use super::{key_digest, now_micros, Engine, EntryIter, Record, Version, WriteItem, WriteMeta};
use super::{Capabilities, StoredEntry};
use crate::config::StashConfig;
use crate::error::{Error, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How many requests of one call are in flight at once.
pub const CONCURRENCY: usize = 32;

/// How many entries a scan reads ahead (in [`CONCURRENCY`] concurrent requests).
const SCAN_CHUNK: usize = 256;

/// How many times a write retries a race it lost (a version number taken by another
/// writer) before giving up.
pub(super) const MAX_RACES: usize = 100;

/// The object-storage engine.
pub struct ObjectStoreEngine {
    pub(super) store: Arc<dyn ObjectStore>,
    /// `<url prefix>/stash_<hash>`: everything of this stash is below it.
    pub(super) base: ObjPath,
    /// The URL with any secret replaced, for messages.
    pub(super) shown_url: String,
    pub(super) append_mode: bool,
    timeout: Duration,
    /// Conditional replacement (`If-Match`); a local folder has none.
    pub(super) can_update: bool,
    runtime: super::EngineRuntime,
}

impl std::fmt::Debug for ObjectStoreEngine {
    // Not the store: its builder's Debug could show credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreEngine")
            .field("url", &self.shown_url)
            .field("base", &self.base.as_ref())
            .field("append_mode", &self.append_mode)
            .finish_non_exhaustive()
    }
}

/// The version number an object of a version folder is named by (exactly 20 digits).
fn version_of(meta: &ObjectMeta) -> Option<u64> {
    meta.location
        .filename()
        .filter(|n| n.len() == 20)
        .and_then(|n| n.parse().ok())
}

/// The store of `url` and the prefix below it (the path of an object, for a file), and
/// whether it has conditional updates (`file://` has not). Its client gives up on a connection
/// after `connect` and on a request after `request` (with its retries).
pub(crate) fn open_store(
    url: &str,
    connect: Duration,
    request: Duration,
) -> Result<(Arc<dyn ObjectStore>, ObjPath, bool)> {
    use object_store::{ClientConfigKey, RetryConfig};
    let invalid = |message: String| Error::InvalidOption {
        option: "url",
        message: crate::config::scrub(&message, url),
    };
    let parsed = url::Url::parse(url).map_err(|e| {
        invalid(format!(
            "{} is not an object-store URL: {e}",
            crate::config::redact_url(url)
        ))
    })?;
    let prefix = ObjPath::from_url_path(parsed.path())
        .map_err(|e| invalid(format!("bad prefix in {}: {e}", parsed.path())))?;
    // `?endpoint=...&allow_http=true`: the store's own options (object_store's names), over
    // those of the environment.
    let options: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut bare = parsed.clone();
    bare.set_query(None);
    let bare = bare.as_str();
    let unknown = |k: &str, e: object_store::Error| invalid(format!("option {k}: {e}"));
    let ms = |t: Duration| format!("{}ms", t.as_millis().max(1));
    // Retries stop at the timeout; the per-call deadline (`block`) is the bound that holds.
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: request,
        ..RetryConfig::default()
    };
    macro_rules! cloud {
        ($builder:ty, $key:ty) => {{
            let timeouts = [
                (ClientConfigKey::Timeout, ms(request)),
                (ClientConfigKey::ConnectTimeout, ms(connect)),
            ];
            let mut builder = <$builder>::from_env().with_url(bare).with_retry(retry);
            for (key, value) in &timeouts {
                builder = builder.with_config(<$key>::Client(*key), value);
            }
            for (k, v) in &options {
                builder = builder.with_config(k.parse::<$key>().map_err(|e| unknown(k, e))?, v);
            }
            builder.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }};
    }
    use object_store::{aws, azure, gcp};
    let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> =
        match parsed.scheme() {
            // The three clouds' builders differ only in their types.
            "s3" | "s3a" => cloud!(aws::AmazonS3Builder, aws::AmazonS3ConfigKey),
            "gs" => cloud!(gcp::GoogleCloudStorageBuilder, gcp::GoogleConfigKey),
            "az" | "azure" | "abfs" | "abfss" => {
                cloud!(azure::MicrosoftAzureBuilder, azure::AzureConfigKey)
            }
            "file" => {
                let folder = parsed
                    .to_file_path()
                    .map_err(|()| invalid(format!("{url} names no local folder")))?;
                super::create_private_dir(&folder)?;
                return object_store::local::LocalFileSystem::new_with_prefix(&folder)
                    .map(|s| (Arc::new(s) as _, ObjPath::default(), false))
                    .map_err(|e| invalid(format!("{url}: {e}")));
            }
            other => {
                return Err(invalid(format!(
                "the objectstore engine takes s3://, gs://, az:// or file:// URLs, not {other}://"
            )))
            }
        };
    let store = built.map_err(|e| invalid(format!("{}: {e}", crate::config::redact_url(url))))?;
    Ok((store, prefix, true))
}

impl ObjectStoreEngine {
    /// Opens the stash `config` names in the store of its URL (the `url` option, else
    /// `$HASHSTASH_OBJECTSTORE_URL`). Makes no request: a store that cannot be reached fails
    /// the first call, within the timeout.
    pub fn open(config: &StashConfig) -> Result<Self> {
        let (env, default) = super::EngineKind::ObjectStore
            .server_url_env()
            .unwrap_or_default();
        let url = config.server_url(env, default);
        let timeout = config.timeout();
        let runtime = super::EngineRuntime::new("objectstore", 2)?;
        let (store, prefix, can_update) = {
            // The HTTP clients are made inside the runtime they will run on.
            let _guard = runtime.get()?.enter();
            open_store(&url, timeout, timeout)?
        };
        let stash = format!(
            "stash_{:032x}",
            xxhash_rust::xxh3::xxh3_128(config.namespace().as_bytes())
        );
        Ok(ObjectStoreEngine {
            store,
            base: prefix.join(stash),
            shown_url: crate::config::redact_url(&url),
            append_mode: config.append_mode,
            timeout,
            can_update,
            runtime,
        })
    }

    /// Runs `op` on the engine's runtime to its end, for a blocking caller. Each request
    /// within it has its own deadline ([`ObjectStoreEngine::timed`]), so a call of many
    /// requests is not cut short by one timeout, and a dead store still fails it in time.
    pub(super) fn block<T: Send>(&self, op: impl Future<Output = Result<T>> + Send) -> Result<T> {
        self.runtime.block(op)?
    }

    /// One request, failed with a typed error when it takes longer than the timeout.
    async fn timed<T>(&self, what: &str, request: impl Future<Output = T>) -> Result<T> {
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| {
                Error::engine(
                    "objectstore",
                    format!(
                        "{what} on {} did not finish within {:?}",
                        self.shown_url, self.timeout
                    ),
                )
            })
    }

    /// A store error as this crate's, naming the call and the store.
    pub(super) fn error(&self, what: &str, e: object_store::Error) -> Error {
        Error::engine("objectstore", format!("{what} on {}: {e}", self.shown_url))
    }

    /// The object (or, in append mode, version folder) of a key.
    pub(super) fn entry_path(&self, key: &[u8]) -> ObjPath {
        let h = hex(&key_digest(key));
        let leaf = if self.append_mode {
            format!("{h}.v")
        } else {
            h.clone()
        };
        self.base.clone().join("data").join(&h[..2]).join(leaf)
    }

    pub(super) fn data_prefix(&self) -> ObjPath {
        self.base.clone().join("data")
    }

    /// The bytes and version of the object at `path`; `None` when there is none.
    pub(super) async fn fetch(
        &self,
        path: &ObjPath,
    ) -> Result<Option<(bytes::Bytes, UpdateVersion)>> {
        let request = async {
            let found = self.store.get_opts(path, Default::default()).await?;
            let version = UpdateVersion {
                e_tag: found.meta.e_tag.clone(),
                version: found.meta.version.clone(),
            };
            Ok((found.bytes().await?, version))
        };
        match self.timed("get", request).await? {
            Ok(found) => Ok(Some(found)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("get", e)),
        }
    }

    /// Puts `bytes` at `path` in `mode`; `Ok(false)` when the condition failed (the object
    /// exists for a create, has changed for an update).
    pub(super) async fn put(&self, path: &ObjPath, bytes: Vec<u8>, mode: PutMode) -> Result<bool> {
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let request = self.store.put_opts(path, PutPayload::from(bytes), options);
        match self.timed("put", request).await? {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.error("put", e)),
        }
    }

    /// Deletes the object at `path`, there or not.
    pub(super) async fn delete(&self, path: &ObjPath) -> Result<()> {
        match self.timed("delete", self.store.delete(path)).await? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", e)),
        }
    }

    /// Every object below `prefix`.
    pub(super) async fn list(&self, prefix: &ObjPath) -> Result<Vec<ObjectMeta>> {
        // A deadline per page (a listing of many entries takes many requests).
        let mut pages = self.store.list(Some(prefix));
        let mut all = Vec::new();
        while let Some(meta) = self.timed("list", pages.next()).await? {
            all.push(meta.map_err(|e| self.error("list", e))?);
        }
        Ok(all)
    }

    /// The version numbers in the version folder `dir`, ascending.
    async fn version_numbers(&self, dir: &ObjPath) -> Result<Vec<u64>> {
        let mut numbers: Vec<u64> = self
            .list(dir)
            .await?
            .iter()
            .filter_map(version_of)
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// Decodes the record at `path`; with `key`, checks that it is that key's.
    pub(super) fn decode(
        &self,
        path: &ObjPath,
        bytes: &[u8],
        key: Option<&[u8]>,
    ) -> Result<Version> {
        let record = Record::decode(bytes, || format!("{}/{path}", self.shown_url))?;
        if key.is_some_and(|key| record.key != key) {
            // Two keys with one 128-bit hash: report it rather than return another's value.
            return Err(Error::decode(
                format!("{}/{path}", self.shown_url),
                "objectstore",
                "the object holds a different key with the same hash",
            ));
        }
        Ok(record.to_version())
    }

    /// The object holding the latest version of the entry at `path` (the entry itself outside
    /// append mode) with its number; `None` for a version folder without versions.
    pub(super) async fn latest_object(&self, path: &ObjPath) -> Result<Option<(ObjPath, u64)>> {
        if !self.append_mode {
            return Ok(Some((path.clone(), 1)));
        }
        let latest = self.version_numbers(path).await?.pop();
        Ok(latest.map(|n| (path.clone().join(version_name(n)), n)))
    }

    /// The latest version under `key` (expired or not) and the number of the next one.
    pub(super) async fn latest(&self, key: &[u8]) -> Result<(Option<Version>, u64)> {
        let Some((object, n)) = self.latest_object(&self.entry_path(key)).await? else {
            return Ok((None, 1));
        };
        let found = self.fetch(&object).await?;
        let latest = found
            .filter(|(bytes, _)| !bytes.is_empty()) // a removal's tombstone
            .map(|(bytes, _)| self.decode(&object, &bytes, Some(key)))
            .transpose()?;
        Ok((latest, n + 1))
    }

    /// The latest version under `key`, unless it has expired.
    pub(super) async fn live(&self, key: &[u8]) -> Result<Option<Version>> {
        let (latest, _) = self.latest(key).await?;
        Ok(latest.filter(|v| v.expires_micros.is_none_or(|at| at > now_micros())))
    }

    /// A record of `key` as bytes.
    pub(super) fn record(
        key: &[u8],
        version: u64,
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Vec<u8>> {
        Record {
            key,
            version,
            timestamp_micros: meta.timestamp_or_now(),
            expires_micros: meta.expires_micros,
            value,
        }
        .encode()
    }

    /// Writes one entry (a new version in append mode: a create-only put of the number
    /// after the latest, listed anew if another writer took it).
    async fn write_one(&self, key: &[u8], value: &[u8], meta: WriteMeta) -> Result<()> {
        let path = self.entry_path(key);
        if !self.append_mode {
            let record = Self::record(key, 1, value, meta)?;
            self.put(&path, record, PutMode::Overwrite).await?;
            return Ok(());
        }
        // Each try takes the number after the latest listed: every number up to it is taken,
        // so no gap. Stepping by one after a lost race instead fell behind faster writers a
        // step at a time, and lost 100 races in a row to three of them (as MongoDB's append
        // once did).
        let mut next = 0;
        for _ in 0..MAX_RACES {
            let latest = self.version_numbers(&path).await?.last().copied();
            next = latest.unwrap_or(0).max(next) + 1;
            let record = Self::record(key, next, value, meta)?;
            let version = path.clone().join(version_name(next));
            if self.put(&version, record.clone(), PutMode::Create).await? {
                return Ok(());
            }
            // Taken: by another writer, or by this put itself, retried after its answer was
            // lost (the record, with its time in µs, tells).
            if self
                .fetch(&version)
                .await?
                .is_some_and(|(b, _)| b == record)
            {
                return Ok(());
            }
        }
        Err(self.error_races(key))
    }

    pub(super) fn error_races(&self, key: &[u8]) -> Error {
        Error::engine(
            "objectstore",
            format!(
                "entry {} of {}: lost {MAX_RACES} races for a version number",
                hex(&key_digest(key)),
                self.shown_url
            ),
        )
    }

    /// Records that entries changed (after the change: a table that reads the new token
    /// reads the entries after it). A token that cannot be written is removed, so that no
    /// table trusts a catalog of an earlier generation.
    pub(super) async fn changed(&self) {
        let path = self.base.clone().join("generation");
        let token = random_token().to_le_bytes().to_vec();
        if !matches!(self.put(&path, token, PutMode::Overwrite).await, Ok(true)) {
            let _ = self.delete(&path).await;
        }
    }

    /// The objects of every entry below `data/`, sorted: the entry objects, or in append
    /// mode the latest version of each version folder.
    pub(super) async fn entry_objects(&self) -> Result<Vec<ObjectMeta>> {
        let mut all = self.list(&self.data_prefix()).await?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        if !self.append_mode {
            // Empty objects are removals' tombstones.
            all.retain(|m| m.size > 0 && !m.location.as_ref().contains(".v/"));
            return Ok(all);
        }
        // Versions of one key are adjacent once sorted; the last of each run is the latest.
        let mut latest: Vec<ObjectMeta> = Vec::new();
        for meta in all.into_iter().filter(|m| version_of(m).is_some()) {
            let folder = meta
                .location
                .as_ref()
                .rsplit_once('/')
                .map(|(f, _)| f.to_owned());
            let same = latest.last().is_some_and(|last| {
                last.location.as_ref().rsplit_once('/').map(|(f, _)| f) == folder.as_deref()
            });
            if same {
                latest.pop();
            }
            latest.push(meta);
        }
        latest.retain(|m| m.size > 0);
        Ok(latest)
    }

    /// The live entries of `objects`, read concurrently, in order (those removed since the
    /// listing are left out).
    pub(super) fn read_entries(&self, objects: &[ObjectMeta]) -> Result<Vec<StoredEntry>> {
        let now = now_micros();
        let read = stream::iter(objects)
            .map(|meta| async move {
                let Some((bytes, _)) = self.fetch(&meta.location).await? else {
                    return Ok(None);
                };
                if bytes.is_empty() {
                    return Ok(None); // removed since the listing
                }
                let record =
                    Record::decode(&bytes, || format!("{}/{}", self.shown_url, meta.location))?;
                Ok(Some(StoredEntry::of_record(&record)).filter(|_| !record.is_expired(now)))
            })
            .buffered(CONCURRENCY)
            .try_filter_map(|e| async move { Ok(e) })
            .try_collect();
        self.block(read)
    }

    /// Every live entry, read [`SCAN_CHUNK`] at a time.
    pub(super) fn scan_entries(
        &self,
    ) -> Result<impl Iterator<Item = Result<StoredEntry>> + Send + '_> {
        let objects = self.block(self.entry_objects())?;
        let chunks: Vec<Vec<ObjectMeta>> = objects.chunks(SCAN_CHUNK).map(<[_]>::to_vec).collect();
        Ok(chunks.into_iter().flat_map(move |chunk| {
            let read: Vec<Result<StoredEntry>> = match self.read_entries(&chunk) {
                Ok(entries) => entries.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            read
        }))
    }
}

/// The indices of `items` in rounds that hold each key at most once, in order: a key's
/// second write waits for its first (the later value wins; append mode keeps the order).
fn rounds_of(items: &[WriteItem<'_>]) -> Vec<Vec<usize>> {
    let mut seen: std::collections::HashMap<&[u8], usize> = Default::default();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, (key, _, _)) in items.iter().enumerate() {
        let round = seen.entry(*key).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(i);
        *round += 1;
    }
    rounds
}

impl ObjectStoreEngine {
    /// [`Engine::write_items`]: each entry is one object, written whole; a batch is no
    /// transaction. One time for all; the entries of distinct keys concurrently.
    pub(super) async fn write_items_async(&self, items: &[WriteItem<'_>]) -> Result<()> {
        let now = now_micros();
        let mut written = Ok(());
        for round in rounds_of(items) {
            // By index: a closure over borrowed items trips the `Send` check of the future.
            written = stream::iter(round)
                .map(|i| {
                    let (k, v, meta) = items[i];
                    let meta = WriteMeta {
                        timestamp_micros: Some(meta.timestamp_micros.unwrap_or(now)),
                        ..meta
                    };
                    self.write_one(k, v, meta)
                })
                .buffer_unordered(CONCURRENCY)
                .try_collect::<()>()
                .await;
            if written.is_err() {
                break;
            }
        }
        self.changed().await; // after failed ones too: some entries may be written
        written
    }

    /// [`Engine::remove_many`], the keys concurrently.
    pub(super) async fn remove_many_async(&self, keys: &[&[u8]]) -> Result<u64> {
        let removed = stream::iter(0..keys.len())
            .map(|i| self.remove_one(keys[i]))
            .buffer_unordered(CONCURRENCY)
            .try_fold(0, |n, one| async move { Ok(n + u64::from(one)) })
            .await;
        self.changed().await;
        removed
    }

    /// Removes `key`; true if this call removed it. A plain DELETE cannot say whether the
    /// object was there, so the removal first claims the entry by writing an empty object,
    /// a *tombstone*, in a conditional put (over the version read, or as the next version
    /// in append mode): of two removers one wins, and only it says true. Readers take a
    /// tombstone for no entry; the winner then deletes the entry. A local folder has no
    /// conditional replacement, and outside append mode two removers may both say true.
    pub(super) async fn remove_one(&self, key: &[u8]) -> Result<bool> {
        let path = self.entry_path(key);
        if !self.append_mode {
            let Some((bytes, version)) = self.fetch(&path).await? else {
                return Ok(false);
            };
            if bytes.is_empty() {
                return Ok(false); // another removal's tombstone
            }
            if self.can_update
                && !self
                    .put(&path, Vec::new(), PutMode::Update(version))
                    .await?
            {
                return Ok(false);
            }
            self.delete(&path).await?;
            return Ok(true);
        }
        let versions = self.list(&path).await?;
        let Some(latest) = versions.iter().filter_map(version_of).max() else {
            return Ok(false);
        };
        let latest_object = versions.iter().find(|m| version_of(m) == Some(latest));
        if latest_object.is_some_and(|m| m.size == 0) {
            return Ok(false);
        }
        let tombstone = path.clone().join(version_name(latest + 1));
        if !self.put(&tombstone, Vec::new(), PutMode::Create).await? {
            return Ok(false);
        }
        for meta in &versions {
            self.delete(&meta.location).await?;
        }
        self.delete(&tombstone).await?;
        Ok(true)
    }
}

impl Engine for ObjectStoreEngine {
    fn name(&self) -> &'static str {
        "objectstore"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.block(self.live(key))?.map(|v| v.value))
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let reads = stream::iter(keys)
            .map(|key| async move { Ok::<_, Error>(self.live(key).await?.map(|v| v.value)) })
            .buffered(CONCURRENCY)
            .try_collect();
        self.block(reads)
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        self.block(self.write_items_async(items))
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        self.block(self.remove_many_async(keys))
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        Ok(Box::new(
            self.scan_entries()?.map(|e| e.map(|e| (e.key, e.value))),
        ))
    }

    fn len(&self) -> Result<usize> {
        Ok(self.block(self.entry_objects())?.len())
    }

    fn clear(&self) -> Result<()> {
        let clear = async {
            let objects = self.list(&self.data_prefix()).await?;
            let locations = stream::iter(objects.into_iter().map(|m| Ok(m.location))).boxed();
            let deleted: std::result::Result<Vec<ObjPath>, _> =
                self.store.delete_stream(locations).try_collect().await;
            self.changed().await;
            match deleted {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.error("delete", e)),
            }
        };
        self.block(clear)
    }

    // Without the `async` feature the update fills in nothing: every field is given.
    #[allow(clippy::needless_update)]
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            history: Some(self),
            atomic_insert: Some(self),
            housekeeping: Some(self),
            catalog: Some(self),
            leases: Some(self),
            ..Capabilities::default()
        }
    }
}
