//! The dictionary API over an engine and a codec.

pub use crate::builder::StashBuilder;
use crate::codec::{self, Codec};
use crate::config::{tilde, FormatRecord, StashConfig};
use crate::corrupt::{CorruptEntries, OnCorrupt};
use crate::engine::EngineExt;
use crate::engine::{self, Engine, EngineKind, WriteMeta};
use crate::error::{Error, Result};
use crate::stats::Counters;
use crate::value::Value;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How many entries `update` hands to the engine per transaction.
const BATCH: usize = 4096;

/// A persistent, dictionary-like cache. Any serde value can be a key or a value.
///
/// `Stash` is a cheap handle (`Clone + Send + Sync`): clones share one engine.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::Stash;
/// let stash = Stash::builder().root_dir(dir.path()).open()?;
/// stash.set(&("bad", "good"), &"cat")?;
/// assert_eq!(stash.get::<_, String>(&vec!["bad", "good"])?.as_deref(), Some("cat"));
/// assert_eq!(stash.len()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Stash {
    inner: Arc<Inner>,
}

struct Inner {
    config: StashConfig,
    codec: Codec,
    engine: Box<dyn Engine>,
    /// The scan policy for entries that do not decode, and those skipped.
    corrupt: CorruptEntries,
    /// Function stashes opened through this one, by function name (see `memo.rs`).
    functions: std::sync::Mutex<std::collections::HashMap<String, Stash>>,
    /// What this handle did (see `stats.rs`).
    stats: Counters,
    /// Its bound on the stash's size, when it has limits (see `limits.rs`).
    limiter: crate::limits::Limiter,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No I/O here: the counts go to a background thread (see `stats.rs`).
        let counts = self.stats.take(evictions(&*self.engine));
        crate::stats::hand_over(&self.config, counts);
    }
}

/// A value with its version number and write time (from [`Stash::get_all_with_metadata`]).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{Stash, Versioned};
///
/// let stash = hashstash::Stash::builder().root_dir(dir.path()).append_mode(true).open()?;
/// stash.set("k", "first")?;
/// stash.set("k", "second")?;
/// let versions: Vec<Versioned<String>> = stash.get_all_with_metadata("k")?;
/// assert_eq!(versions[1].version, 2);
/// assert_eq!(versions[1].value, "second");
/// assert!(versions[0].timestamp <= versions[1].timestamp);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versioned<V> {
    /// 1 for the first value written under the key, then 2, 3, ...
    #[serde(rename = "_version")]
    pub version: u64,
    /// When it was written: seconds since the Unix epoch (UTC), with microseconds.
    #[serde(rename = "_timestamp")]
    pub timestamp: f64,
    /// The value.
    #[serde(rename = "_value")]
    pub value: V,
}

impl Stash {
    /// A builder with the Python original's defaults.
    pub fn builder() -> StashBuilder {
        StashBuilder::default()
    }

    /// Opens the stash with every option at its default.
    pub fn open_default() -> Result<Stash> {
        Stash::builder().open()
    }

    /// Opens the stash a config describes; `clear` empties it first.
    pub fn open_config(mut config: StashConfig, clear: bool) -> Result<Stash> {
        config.resolve_root_dir()?;
        config.validate()?;
        if !config.engine.is_available() {
            return Err(Error::EngineNotCompiled {
                engine: config.engine.name(),
                feature: config.engine.name(),
            });
        }
        if !config.compress.is_available() {
            return Err(Error::InvalidOption {
                option: "compress",
                message: format!(
                    "compressor {} is not compiled in: enable the cargo feature `{}`",
                    config.compress, config.compress
                ),
            });
        }
        let format = FormatRecord::of(&config);
        if config.engine != EngineKind::Memory && !config.engine.is_server() {
            format.record_or_check(&config.stash_dir())?;
        }
        let engine = config.engine.open(&config)?;
        if config.engine.is_server() {
            format.check_recorded(
                match engine.catalog() {
                    Some(catalog) => catalog.record_format(&format.to_json())?,
                    None => None,
                },
                &config.namespace(),
            )?;
        }
        let stash = Stash {
            inner: Arc::new(Inner {
                codec: config.codec(),
                config,
                engine,
                corrupt: CorruptEntries::default(),
                functions: Default::default(),
                stats: Counters::default(),
                limiter: Default::default(),
            }),
        };
        if clear {
            stash.clear()?;
        }
        Ok(stash)
    }

    /// This handle's live counts (see `stats.rs`).
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.stats
    }

    pub(crate) fn limiter(&self) -> &crate::limits::Limiter {
        &self.inner.limiter
    }

    /// The stash's config.
    pub fn config(&self) -> &StashConfig {
        &self.inner.config
    }

    /// The value codec.
    pub fn codec(&self) -> Codec {
        self.inner.codec
    }

    /// The function stashes opened through this stash, by name.
    pub(crate) fn function_stashes(
        &self,
    ) -> &std::sync::Mutex<std::collections::HashMap<String, Stash>> {
        &self.inner.functions
    }

    /// The engine, for byte-level access.
    pub fn engine(&self) -> &dyn Engine {
        self.inner.engine.as_ref()
    }

    /// The stash folder.
    pub fn stash_dir(&self) -> PathBuf {
        self.inner.config.stash_dir()
    }

    /// The engine's store (`<stash_dir>/data.db`).
    pub fn path(&self) -> PathBuf {
        self.inner.config.data_path()
    }

    /// The config as JSON (the Python original's `to_dict`).
    pub fn to_dict(&self) -> serde_json::Value {
        self.inner.config.to_dict()
    }

    /// Bytes the stash occupies on disk.
    pub fn disk_usage(&self) -> Result<u64> {
        match self.inner.engine.capabilities().housekeeping {
            Some(housekeeping) => housekeeping.disk_usage(),
            None => Ok(0),
        }
    }

    // ----- codec -----

    /// Canonical key bytes for `key` (never compressed or base64-encoded).
    pub fn encode_key<K: ?Sized + Serialize>(&self, key: &K) -> Result<Vec<u8>> {
        codec::encode_key(key)
    }

    /// Decodes key bytes into `K`.
    pub fn decode_key<K: DeserializeOwned>(&self, bytes: &[u8]) -> Result<K> {
        codec::decode_key(bytes)
    }

    /// Encodes a value as this stash stores it (serializer, compressor, base64).
    pub fn encode_value<V: ?Sized + Serialize>(&self, value: &V) -> Result<Vec<u8>> {
        self.inner.codec.encode_value(value)
    }

    /// Decodes stored value bytes into `V`.
    pub fn decode_value<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V> {
        self.inner.codec.decode_value(bytes)
    }

    // ----- dictionary API -----

    /// The value under `key`, or `None`.
    pub fn get<K: ?Sized + Serialize, V: DeserializeOwned>(&self, key: &K) -> Result<Option<V>> {
        codec::with_key_bytes(key, |key| {
            let mut decoded = None;
            let codec = &self.inner.codec;
            // Decoded where the engine holds the bytes (LMDB: its memory map), without a copy.
            let found = self.inner.engine.get_with(key, &mut |bytes| {
                decoded = Some(codec.decode_value(bytes));
            })?;
            self.inner.stats.lookup(found);
            decoded.transpose().map_err(|e: Error| e.for_entry(key))
        })
    }

    /// The value under `key`, or `default`.
    pub fn get_or<K: ?Sized + Serialize, V: DeserializeOwned>(
        &self,
        key: &K,
        default: V,
    ) -> Result<V> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// The value under `key`, or [`Error::KeyNotFound`] (Python's `stash[key]`).
    pub fn require<K: ?Sized + Serialize, V: DeserializeOwned>(&self, key: &K) -> Result<V> {
        self.get(key)?.ok_or_else(|| not_found(key))
    }

    /// The value under `key` as a dynamic [`Value`].
    pub fn get_value<K: ?Sized + Serialize>(&self, key: &K) -> Result<Option<Value>> {
        let key = codec::encode_key(key)?;
        match self.get_raw(&key)? {
            Some(bytes) => self
                .inner
                .codec
                .decode_value_dyn(&bytes)
                .map(Some)
                .map_err(|e| e.for_entry(&key)),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key` (in append mode, as a new version).
    pub fn set<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &self,
        key: &K,
        value: &V,
    ) -> Result<()> {
        let key = codec::encode_key(key)?;
        let value = self.inner.codec.encode_value(value)?;
        self.set_raw(&key, &value)
    }

    /// Stores `value` under `key` to be served for `ttl` (instead of the stash's
    /// [`StashConfig::ttl_ms`]); after it, the entry is a miss for every read.
    pub fn set_with_ttl<K: ?Sized + Serialize, V: ?Sized + Serialize>(
        &self,
        key: &K,
        value: &V,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let key = codec::encode_key(key)?;
        let value = self.inner.codec.encode_value(value)?;
        self.set_raw_with_ttl(&key, &value, ttl)
    }

    /// [`Stash::set_with_ttl`] of encoded bytes.
    pub(crate) fn set_raw_with_ttl(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<()> {
        let meta = WriteMeta {
            timestamp_micros: None,
            expires_micros: Some(expiry_after(ttl)),
        };
        self.inner.engine.set_many_with(&[(key, value)], meta)?;
        self.wrote(1, key.len() + value.len())
    }

    /// Removes every expired entry (with all its versions); returns how many. Expired
    /// entries are misses for every read already: this gives their room back. Redis and
    /// MongoDB also remove them on their own.
    pub fn prune_expired(&self) -> Result<u64> {
        let removed = self
            .inner
            .engine
            .housekeeping()?
            .prune_expired(engine::now_micros())?;
        self.inner.stats.deleted_many(removed as usize);
        Ok(removed)
    }

    /// What a write through this handle records: its expiry, from the stash's ttl.
    pub(crate) fn write_meta(&self) -> WriteMeta {
        WriteMeta {
            timestamp_micros: None,
            expires_micros: self
                .inner
                .config
                .ttl_ms
                .map(|ms| expiry_after(std::time::Duration::from_millis(ms))),
        }
    }

    /// Whether `key` is in the stash.
    pub fn contains<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        self.inner.engine.contains(&codec::encode_key(key)?)
    }

    /// Removes `key` (all its versions); true if it was there.
    pub fn remove<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        let removed = self.inner.engine.remove(&codec::encode_key(key)?)?;
        self.inner.stats.deleted(removed);
        Ok(removed)
    }

    /// Drops what is cached under `key` (all its versions), so that the next lookup misses;
    /// true if something was removed. The same as [`Stash::remove`], named for caches; for a
    /// memoized function's results see [`Stash::invalidate_call`] and
    /// [`Stash::invalidate_func`].
    pub fn invalidate<K: ?Sized + Serialize>(&self, key: &K) -> Result<bool> {
        self.remove(key)
    }

    /// Removes `key` and returns its (latest) value, or `None` if it was not there. Not atomic
    /// against another writer of the same key between the read and the removal.
    pub fn pop<K: ?Sized + Serialize, V: DeserializeOwned>(&self, key: &K) -> Result<Option<V>> {
        let key = codec::encode_key(key)?;
        let Some(bytes) = self.get_raw(&key)? else {
            return Ok(None);
        };
        // Decode before removing: a value that does not decode is not lost.
        let value = self.inner.codec.decode_value(&bytes)?;
        self.remove_raw(&key)?;
        Ok(Some(value))
    }

    /// The value under `key`; where there is none, stores `default` and returns it. One step
    /// against every other writer, in any thread or process: of several callers on a missing
    /// key exactly one stores, and the others get its value ([`AtomicInsert::insert_if_absent`](crate::engine::AtomicInsert::insert_if_absent)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// assert_eq!(stash.setdefault("k", 1)?, 1); // stored
    /// assert_eq!(stash.setdefault("k", 2)?, 1); // already there: nothing written
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn setdefault<K: ?Sized + Serialize, V: Serialize + DeserializeOwned>(
        &self,
        key: &K,
        default: V,
    ) -> Result<V> {
        self.get_or_insert_with(key, || default)
    }

    /// The value under `key`; where there is none, stores `make()` and returns it, as
    /// [`Stash::setdefault`] does. `make` runs only when a first read finds nothing; if
    /// another writer stores a value before this one can, that value is returned and
    /// `make`'s is dropped.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// let v: Vec<u64> = stash.get_or_insert_with("primes", || vec![2, 3, 5])?;
    /// assert_eq!(v, [2, 3, 5]);
    /// let again: Vec<u64> = stash.get_or_insert_with("primes", || unreachable!())?;
    /// assert_eq!(again, [2, 3, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_insert_with<K, V, F>(&self, key: &K, make: F) -> Result<V>
    where
        K: ?Sized + Serialize,
        V: Serialize + DeserializeOwned,
        F: FnOnce() -> V,
    {
        let key = codec::encode_key(key)?;
        // A read first: a key that is there costs no write transaction.
        if let Some(stored) = self.get_raw(&key)? {
            return self.inner.codec.decode_value(&stored);
        }
        let value = make();
        let encoded = self.inner.codec.encode_value(&value)?;
        match self.insert_raw_if_absent(&key, &encoded)? {
            None => Ok(value),
            Some(found) => self.inner.codec.decode_value(&found),
        }
    }

    /// [`Stash::setdefault`] of encoded bytes: the stored value bytes under `key` after it,
    /// `value` or those already there (the CLI's `setdefault`).
    pub fn setdefault_raw(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        if let Some(stored) = self.get_raw(key)? {
            return Ok(stored);
        }
        Ok(self
            .insert_raw_if_absent(key, value)?
            .unwrap_or_else(|| value.to_vec()))
    }

    /// [`AtomicInsert::insert_if_absent`](crate::engine::AtomicInsert::insert_if_absent) with the stash's ttl, counted as a write when it stored.
    fn insert_raw_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let found =
            self.inner
                .engine
                .atomic_insert()?
                .insert_if_absent(key, value, self.write_meta())?;
        if found.is_none() {
            self.wrote(1, key.len() + value.len())?;
        }
        Ok(found)
    }

    /// The number of keys.
    pub fn len(&self) -> Result<usize> {
        self.inner.engine.len()
    }

    /// Whether the stash has no keys.
    pub fn is_empty(&self) -> Result<bool> {
        self.inner.engine.is_empty()
    }

    /// Removes every entry, and every stored result of the stash's memoized functions (its
    /// function stashes, `<dbname>/stashed_result/...`, whichever process wrote them), as the
    /// Python original's `clear()` does: after it, [`Stash::run`] computes again. Sub-stashes
    /// the user made with [`Stash::sub`] keep their entries.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// stash.set("k", "v")?;
    /// stash.run_named("double", |x: u64| 2 * x, 21)?;
    /// stash.sub("kept")?.set("mine", &1)?;
    /// stash.clear()?;
    /// assert!(stash.is_empty()?);
    /// assert_eq!(stash.get_func::<_, u64>("double", &21)?, None); // computed again next time
    /// assert_eq!(stash.sub("kept")?.get::<_, i32>("mine")?, Some(1)); // a user's sub-stash stays
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.clear_function_stashes()?;
        self.inner.engine.clear()
    }

    /// Stores several entries in one engine transaction: all or none of them (pairtree, which
    /// has no transactions, writes each atomically on its own).
    pub fn set_many<'a, K, V, I>(&self, items: I) -> Result<()>
    where
        K: 'a + ?Sized + Serialize,
        V: 'a + ?Sized + Serialize,
        I: IntoIterator<Item = (&'a K, &'a V)>,
    {
        let encoded = items
            .into_iter()
            .map(|(k, v)| Ok((codec::encode_key(k)?, self.inner.codec.encode_value(v)?)))
            .collect::<Result<Vec<_>>>()?;
        self.write_batch(&encoded)
    }

    /// Looks several keys up in one engine read.
    pub fn get_many<'a, K, V, I>(&self, keys: I) -> Result<Vec<Option<V>>>
    where
        K: 'a + ?Sized + Serialize,
        V: DeserializeOwned,
        I: IntoIterator<Item = &'a K>,
    {
        let encoded = keys
            .into_iter()
            .map(codec::encode_key)
            .collect::<Result<Vec<_>>>()?;
        self.get_many_raw(&encoded)?
            .into_iter()
            .map(|v| v.map(|b| self.inner.codec.decode_value(&b)).transpose())
            .collect()
    }

    /// Stores every `(key, value)` pair: from a map, a `Vec` of pairs, any iterator. Engines
    /// with transactions write each batch of 4096 in one, so that an iterator of any length
    /// runs in bounded memory; use [`Stash::set_many`] for all-or-nothing.
    pub fn update<K, V, I>(&self, items: I) -> Result<()>
    where
        K: Serialize,
        V: Serialize,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        for (k, v) in items {
            batch.push((codec::encode_key(&k)?, self.inner.codec.encode_value(&v)?));
            if batch.len() == BATCH {
                self.write_batch(&batch)?;
                batch.clear();
            }
        }
        self.write_batch(&batch)
    }

    /// Copies the latest value of every entry of `other` (any engine, any format) into this
    /// stash. Values are re-encoded for this stash's format without their Rust types (see
    /// [`Codec::transcode`]): between two postcard stashes only if they share the serializer.
    pub fn update_from(&self, other: &Stash) -> Result<()> {
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(BATCH);
        for item in other.raw_items()? {
            let (key, stored) = item?;
            let value = self.inner.codec.transcode(&other.inner.codec, stored)?;
            batch.push((key, value));
            if batch.len() == BATCH {
                self.write_batch(&batch)?;
                batch.clear();
            }
        }
        self.write_batch(&batch)
    }

    /// Stores encoded entries (canonical key bytes, stored value bytes) in one engine
    /// transaction, as [`Stash::set_many`] does: for callers that encode keys and values
    /// themselves (the Python package, through [`codec::encode_key_value`] and
    /// [`Codec::encode_value_dyn`]).
    pub fn set_many_raw(&self, batch: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        self.write_batch(batch)
    }

    pub(crate) fn write_batch(&self, batch: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let refs: Vec<(&[u8], &[u8])> = batch
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        self.inner.engine.set_many_with(&refs, self.write_meta())?;
        let bytes = batch.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.wrote(batch.len(), bytes)
    }

    // ----- stored bytes -----

    /// The stored value bytes under canonical key bytes: [`Engine::get`], counted in the
    /// handle's [`Stats`](crate::Stats) (the CLI reads through these).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let stored = self.inner.engine.get(key)?;
        self.inner.stats.lookup(stored.is_some());
        Ok(stored)
    }

    /// Stores encoded value bytes under canonical key bytes: [`EngineExt::set`](crate::engine::EngineExt::set), counted, with
    /// the stash's ttl.
    pub fn set_raw(&self, key: &[u8], value: &[u8]) -> Result<()> {
        match self.inner.config.ttl_ms {
            None => self.inner.engine.set(key, value)?,
            Some(_) => self
                .inner
                .engine
                .set_many_with(&[(key, value)], self.write_meta())?,
        }
        self.wrote(1, key.len() + value.len())
    }

    /// Several lookups of canonical key bytes in one engine read, counted.
    pub(crate) fn get_many_raw(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let stored = self.inner.engine.get_many(&refs)?;
        for value in &stored {
            self.inner.stats.lookup(value.is_some());
        }
        Ok(stored)
    }

    /// Removes canonical key bytes: [`EngineExt::remove`](crate::engine::EngineExt::remove), counted.
    pub fn remove_raw(&self, key: &[u8]) -> Result<bool> {
        let removed = self.inner.engine.remove(key)?;
        self.inner.stats.deleted(removed);
        Ok(removed)
    }

    // ----- iteration -----

    /// The stored `(key bytes, value bytes)` pairs (the Python original's `_items`).
    pub fn raw_items(&self) -> Result<impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_> {
        self.inner.engine.scan()
    }

    /// The stored key bytes (the Python original's `_keys`).
    pub fn raw_keys(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>> + '_> {
        Ok(self.raw_items()?.map(|r| r.map(|(k, _)| k)))
    }

    /// The stored value bytes (the Python original's `_values`).
    pub fn raw_values(&self) -> Result<impl Iterator<Item = Result<Vec<u8>>> + '_> {
        Ok(self.raw_items()?.map(|r| r.map(|(_, v)| v)))
    }

    /// Every key, decoded as `K`. Entries that do not decode follow the
    /// [`OnCorrupt`] policy, as in every decoding iterator below.
    pub fn keys<K: DeserializeOwned>(&self) -> Result<impl Iterator<Item = Result<K>> + '_> {
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, _)| codec::decode_key(&k).map_err(|e| e.for_entry(&k))))
        }))
    }

    /// Every (latest) value, decoded as `V`.
    pub fn values<V: DeserializeOwned>(&self) -> Result<impl Iterator<Item = Result<V>> + '_> {
        let codec = self.inner.codec;
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, v)| codec.decode_value(&v).map_err(|e| e.for_entry(&k))))
        }))
    }

    /// Every `(key, latest value)` pair, decoded as `(K, V)`.
    pub fn items<K: DeserializeOwned, V: DeserializeOwned>(
        &self,
    ) -> Result<impl Iterator<Item = Result<(K, V)>> + '_> {
        let codec = self.inner.codec;
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, v)| {
                let item = || Ok((codec::decode_key(&k)?, codec.decode_value(&v)?));
                item().map_err(|e: Error| e.for_entry(&k))
            }))
        }))
    }

    /// Every key as a dynamic [`Value`] (sets are tag 258 over an array).
    pub fn keys_dyn(&self) -> Result<impl Iterator<Item = Result<Value>> + '_> {
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, _)| codec::decode_key_dyn(&k).map_err(|e| e.for_entry(&k))))
        }))
    }

    /// Every (latest) value as a dynamic [`Value`].
    pub fn values_dyn(&self) -> Result<impl Iterator<Item = Result<Value>> + '_> {
        let codec = self.inner.codec;
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, v)| codec.decode_value_dyn(&v).map_err(|e| e.for_entry(&k))))
        }))
    }

    /// Every `(key, latest value)` pair as dynamic [`Value`]s.
    pub fn items_dyn(&self) -> Result<impl Iterator<Item = Result<(Value, Value)>> + '_> {
        let codec = self.inner.codec;
        Ok(self.raw_items()?.filter_map(move |r| {
            self.keep(r.and_then(|(k, v)| {
                let item = || Ok((codec::decode_key_dyn(&k)?, codec.decode_value_dyn(&v)?));
                item().map_err(|e: Error| e.for_entry(&k))
            }))
        }))
    }

    /// A decoded entry, its error, or nothing when the [`OnCorrupt`] policy skips it.
    pub(crate) fn keep<T>(&self, decoded: Result<T>) -> Option<Result<T>> {
        match decoded {
            Ok(t) => Some(Ok(t)),
            Err(e) => self.skip_or_fail(e).err().map(Err),
        }
    }

    // ----- corrupt entries -----

    /// What scans do with an entry that does not decode: [`OnCorrupt::Fail`] (the default)
    /// or [`OnCorrupt::Skip`].
    pub fn on_corrupt(&self) -> OnCorrupt {
        self.inner.corrupt.policy()
    }

    /// Sets what scans through this handle (and its clones) do with an entry that does not
    /// decode: corrupt bytes on disk, or a value of another type than the one asked for.
    /// [`Stash::get`] and the other point reads always return such an error.
    ///
    /// With [`OnCorrupt::Skip`], `keys`, `values`, `items` (and their `_dyn` forms), `ld`,
    /// tables, SQL, DataFrames and exports leave such entries out; disk and server failures
    /// still end the scan. [`Stash::skipped_corrupt`] says which were left out.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hashstash::{OnCorrupt, Stash};
    /// let stash = Stash::builder().root_dir(dir.path()).open()?;
    /// stash.set("a", &1)?;
    /// stash.set("b", "not a number")?;
    /// // "b" does not decode as an integer: the scan fails on it ...
    /// assert!(stash.values::<i64>()?.collect::<Result<Vec<_>, _>>().is_err());
    /// // ... or skips it and says so.
    /// stash.set_on_corrupt(OnCorrupt::Skip);
    /// let numbers: Vec<i64> = stash.values()?.collect::<Result<_, _>>()?;
    /// assert_eq!(numbers, [1]);
    /// assert_eq!(stash.skipped_corrupt().len(), 1);
    /// assert!(stash.skipped_corrupt()[0].contains(r#"key "b""#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_on_corrupt(&self, policy: OnCorrupt) {
        self.inner.corrupt.set_policy(policy);
    }

    /// The entries scans left out under [`OnCorrupt::Skip`] since this handle was opened (or
    /// since [`Stash::take_skipped_corrupt`]): one error message per entry, naming it.
    pub fn skipped_corrupt(&self) -> Vec<String> {
        self.inner.corrupt.list(false)
    }

    /// Like [`Stash::skipped_corrupt`], and forgets them: the next call lists only entries
    /// skipped after this one.
    pub fn take_skipped_corrupt(&self) -> Vec<String> {
        self.inner.corrupt.list(true)
    }

    /// What a scan of this stash does with an entry its caller could not decode: `Ok(())`
    /// if the [`OnCorrupt`] policy skips `error` (remembering it for
    /// [`Stash::skipped_corrupt`]), else the error. For scans written outside the crate
    /// (the Python package's iterators) that should follow the policy as the crate's do.
    pub fn skip_or_fail(&self, error: Error) -> Result<()> {
        self.inner.corrupt.skip_or_fail(error)
    }

    // ----- append mode -----

    /// Every version stored under `key`, oldest first (empty when missing). Outside append
    /// mode that is at most one value.
    pub fn get_all<K: ?Sized + Serialize, V: DeserializeOwned>(&self, key: &K) -> Result<Vec<V>> {
        Ok(self
            .get_all_with_metadata(key)?
            .into_iter()
            .map(|v| v.value)
            .collect())
    }

    /// Every version under `key` with its `_version` (1..n) and `_timestamp`.
    pub fn get_all_with_metadata<K: ?Sized + Serialize, V: DeserializeOwned>(
        &self,
        key: &K,
    ) -> Result<Vec<Versioned<V>>> {
        let key = codec::encode_key(key)?;
        self.inner
            .engine
            .history()?
            .versions(&key)?
            .into_iter()
            .map(|v| {
                Ok(Versioned {
                    version: v.version,
                    timestamp: v.timestamp_micros as f64 / 1e6,
                    value: self.inner.codec.decode_value(&v.value)?,
                })
            })
            .collect()
    }

    // ----- related stashes -----

    /// A stash with the same options whose `dbname` is `<dbname>/<name>`.
    pub fn sub(&self, name: &str) -> Result<Stash> {
        let mut config = self.inner.config.clone();
        config.dbname = format!("{}/{}", config.dbname, name);
        let stash = Stash::open_config(config, false)?;
        stash.set_on_corrupt(self.on_corrupt());
        Ok(stash)
    }

    /// A temporary stash with the same options; everything it wrote is gone when the guard
    /// drops.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// let folder = {
    ///     let tmp = stash.tmp()?;
    ///     tmp.set("key", "value")?;
    ///     assert!(tmp.contains("key")?);
    ///     tmp.stash_dir()
    /// };
    /// assert!(!folder.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tmp(&self) -> Result<TmpStash> {
        let mut config = self.inner.config.clone();
        config.dbname = format!("{}/tmp/{}", config.dbname, unique_name());
        config.is_tmp = true;
        let stash = Stash::open_config(config, true)?;
        Ok(TmpStash { stash: Some(stash) })
    }
}

/// The expiry of a write made now to be served for `ttl`, µs since the epoch.
pub(crate) fn expiry_after(ttl: std::time::Duration) -> i64 {
    let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    engine::now_micros().saturating_add(ttl)
}

fn unique_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn not_found<K: ?Sized + Serialize>(key: &K) -> Error {
    let shown = codec::key::to_canonical_value(key)
        .map(|v| crate::value::cbor_to_json(&v).to_string())
        .unwrap_or_else(|_| "<key>".into());
    Error::KeyNotFound { key: shown }
}

impl fmt::Display for Stash {
    /// `LmdbStash(~/.cache/hashstash/default_stash/main/lmdb.hashstash.lz4/data.db)`; for a
    /// server, its URL (password hidden) and the stash's namespace there:
    /// `RedisStash(redis://127.0.0.1:6379/0 default_stash/main/redis.hashstash.lz4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        let name = config.engine.display_name();
        match config.engine.server_url_env() {
            Some((env, default)) => write!(
                f,
                "{name}Stash({} {})",
                crate::config::redact_url(&config.server_url(env, default)),
                config.namespace()
            ),
            None => write!(f, "{name}Stash({})", tilde(&self.path())),
        }
    }
}

impl fmt::Debug for Stash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stash")
            .field("config", &self.inner.config)
            .field("engine", &self.inner.engine)
            .finish()
    }
}

/// A temporary stash: dereferences to [`Stash`]; its folder and entries are removed on drop.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
/// let folder = {
///     let tmp = stash.tmp()?;
///     tmp.set("scratch", &[1, 2, 3])?;
///     assert!(tmp.contains("scratch")?);
///     tmp.stash_dir()
/// };
/// assert!(!folder.exists()); // gone with the handle
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TmpStash {
    stash: Option<Stash>,
}

impl std::ops::Deref for TmpStash {
    type Target = Stash;
    fn deref(&self) -> &Stash {
        // Always Some until drop.
        self.stash.as_ref().expect("TmpStash used after drop")
    }
}

impl Drop for TmpStash {
    fn drop(&mut self) {
        if let Some(stash) = self.stash.take() {
            let dir = stash.stash_dir();
            // Best effort: a drop cannot report errors, and the folder is ours alone.
            let _ = stash.clear();
            drop(stash);
            let _ = std::fs::remove_dir_all(&dir);
            // Remove the now-empty unique parent folder as well.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
}

/// How many entries `engine` has evicted to keep within the size limit (0 for engines
/// without housekeeping).
pub(crate) fn evictions(engine: &dyn Engine) -> u64 {
    engine
        .capabilities()
        .housekeeping
        .map_or(0, |h| h.evictions())
}
