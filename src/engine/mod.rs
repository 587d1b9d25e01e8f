//! Storage engines: a small trait that speaks bytes, and one file per engine.
//!
//! Engines never see Rust types: a key arrives as canonical key bytes, a value as the codec's
//! output. Each engine chooses how it addresses keys (pairtree by a 128-bit hash of the key
//! bytes, LMDB by the bytes themselves up to 400 bytes and by their hash beyond, SQLite and
//! memory by the bytes themselves) and stores the key bytes with the value, so that
//! iteration can give keys back.

pub mod capability;
pub mod catalog;
// Not part of the API: public only with the `internals` feature, for this crate's own
// tests and benches.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod record;
#[cfg(not(feature = "internals"))]
pub(crate) mod record;

#[cfg(feature = "async")]
pub mod async_engine;

pub mod memory;
pub mod pairtree;

#[cfg(feature = "diskcache")]
pub mod diskcache;
#[cfg(feature = "lmdb")]
pub mod lmdb;
#[cfg(feature = "mongo")]
pub mod mongo;
#[cfg(feature = "objectstore")]
pub mod objectstore;
#[cfg(feature = "objectstore")]
mod objectstore_capabilities;
#[cfg(all(feature = "objectstore", feature = "sql"))]
pub(crate) mod objectstore_files;
#[cfg(any(feature = "mongo", feature = "objectstore"))]
mod runtime;
#[cfg(any(feature = "mongo", feature = "objectstore"))]
pub(crate) use runtime::EngineRuntime;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_catalog;
#[cfg(feature = "sqlite")]
mod sqlite_checksum;

pub use capability::{AtomicInsert, Capabilities, History, Housekeeping, Leases};
pub use catalog::Catalog;
pub(crate) use record::Record;

use crate::error::{Error, Result};
use std::fmt::Debug;
use std::path::Path;

/// One stored version of a value (every entry has at least one; append mode keeps them all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// 1 for the first value written under a key, then 2, 3, ... in append mode.
    pub version: u64,
    /// When it was written, in microseconds since the Unix epoch (UTC).
    pub timestamp_micros: i64,
    /// When it stops being served, in microseconds since the Unix epoch; `None`: never.
    pub expires_micros: Option<i64>,
    /// The stored value bytes.
    pub value: Vec<u8>,
}

/// What a write records besides the bytes (see [`EngineExt::set_many_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteMeta {
    /// The write time to record, µs since the Unix epoch; `None`: now. A copy of a stash
    /// keeps the times of the one it copies.
    pub timestamp_micros: Option<i64>,
    /// When the entry stops being served, µs since the Unix epoch; `None`: never.
    pub expires_micros: Option<i64>,
}

impl WriteMeta {
    /// The write time: the one given, or now.
    pub fn timestamp_or_now(&self) -> i64 {
        self.timestamp_micros.unwrap_or_else(now_micros)
    }
}

/// One entry of a batch for [`Engine::write_items`]: key bytes, value bytes, and what to
/// record with them.
pub type WriteItem<'a> = (&'a [u8], &'a [u8], WriteMeta);

/// A span of write times, in µs since the Unix epoch: which entries
/// [`History::scan_written`] hands over. The default is every time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimeWindow {
    /// Only times after this one (or at it, when `inclusive`).
    pub after: Option<i64>,
    /// Only times before this one (or at it, when `inclusive`).
    pub before: Option<i64>,
    /// Whether the bounds themselves are in the window.
    pub inclusive: bool,
}

impl TimeWindow {
    /// The window as the inclusive range `lowest..=highest` (what an index seeks).
    pub fn bounds(&self) -> (i64, i64) {
        let step = i64::from(!self.inclusive);
        let lowest = self.after.map_or(i64::MIN, |t| t.saturating_add(step));
        let highest = self.before.map_or(i64::MAX, |t| t.saturating_sub(step));
        (lowest, highest)
    }

    /// Whether the window holds time `t`.
    pub fn contains(&self, t: i64) -> bool {
        let (lowest, highest) = self.bounds();
        lowest <= t && t <= highest
    }

    /// Whether the window holds every time (no bound).
    pub fn is_everything(&self) -> bool {
        self.after.is_none() && self.before.is_none()
    }
}

/// An entry with its latest version's metadata, as [`History::scan_written`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// The canonical key bytes.
    pub key: Vec<u8>,
    /// The latest value's bytes.
    pub value: Vec<u8>,
    /// When the latest version was written, µs since the Unix epoch.
    pub timestamp_micros: i64,
    /// When it stops being served, µs since the Unix epoch; `None`: never.
    pub expires_micros: Option<i64>,
}

impl StoredEntry {
    /// The entry of a decoded record (the record holds its own key).
    pub fn of_record(record: &Record<'_>) -> StoredEntry {
        StoredEntry {
            key: record.key.to_vec(),
            value: record.value.to_vec(),
            timestamp_micros: record.timestamp_micros,
            expires_micros: record.expires_micros,
        }
    }

    /// Whether it is live at `now` and written within `window`: what a scan hands over.
    pub fn is_wanted(&self, window: &TimeWindow, now_micros: i64) -> bool {
        window.contains(self.timestamp_micros)
            && self.expires_micros.is_none_or(|at| at > now_micros)
    }
}

/// A lazily read sequence of entries with their metadata.
pub type StoredIter<'a> = Box<dyn Iterator<Item = Result<StoredEntry>> + Send + 'a>;

/// A lazily read sequence of `(key bytes, latest value bytes)`.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + Send + 'a>;

/// What [`Engine::scan_each`] calls with each entry's borrowed `(key bytes, value bytes)`, or
/// the error of an entry that cannot be read; it returns false to stop.
pub type EntryVisitor<'a> = dyn FnMut(Result<(&[u8], &[u8])>) -> bool + 'a;

/// A storage engine: a persistent map from key bytes to value bytes.
///
/// Eight methods are required; four more have defaults an engine overrides when it can do
/// better (a read that borrows its bytes, one round trip for many keys, a lookup that does
/// not read the value, a scan that borrows its bytes). What only some engines can do is
/// reached through [`Engine::capabilities`]: the history of versions, a write that happens
/// only where a key is missing, housekeeping (pruning, disk usage, evictions), a catalog
/// with a change counter (and the stash's format kept in the store), leases between
/// processes, an async side. The byte-level conveniences (`set`, `remove`, ...) are
/// [`EngineExt`]'s, built on these.
///
/// # Contract
///
/// - **Atomicity.** A write replaces the value (or, in append mode, adds a version)
///   atomically: a reader in any thread or process sees the old state or the new one, never
///   a torn value. `write_items` is one transaction where the engine has transactions (LMDB,
///   SQLite, memory, diskcache); pairtree writes each entry atomically on its own.
/// - **Append mode** (fixed when the engine is opened): a write adds version `n + 1` where
///   `n` is the key's latest version, at O(1) cost (old versions are never rewritten).
///   Version numbers are unique and gap-free even with writers in several processes. Reads
///   return the latest; [`History::versions`] returns them all, oldest first. Outside append
///   mode an entry has one version.
/// - **Scan.** `scan` yields every key that exists for the whole scan exactly once, with its
///   latest value, reading lazily in pages (memory: from a snapshot taken when it starts).
///   Keys written or removed while it runs may or may not appear. Order is the engine's own
///   and stable only while nothing is written.
/// - **Durability.** What a successful write promises on power loss is engine-specific and
///   documented on each engine.
/// - **Expiry.** A write may carry an expiry ([`WriteMeta`]). Once the latest version of an
///   entry has expired, the entry is a miss for `get_with`, `get_many`, `contains`, `scan`,
///   `scan_each` and the history, as if it were removed; `len` still counts it until
///   [`Housekeeping::prune_expired`] (or a server's own expiry) removes it, and
///   `remove_many` counts it as removed. A later write replaces it as it would any entry (a
///   new version in append mode).
///
/// A stash's engine can be used directly, with bytes (here the memory engine):
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::engine::EngineExt;
/// use hashstash::{EngineKind, Stash};
///
/// let stash = Stash::builder().root_dir(dir.path()).engine(EngineKind::Memory).open()?;
/// let engine = stash.engine();
/// engine.set(b"key bytes", b"value bytes")?;
/// assert_eq!(engine.get(b"key bytes")?.as_deref(), Some(&b"value bytes"[..]));
/// assert!(engine.history()?.versions(b"key bytes")?[0].timestamp_micros > 0);
/// assert!(engine.remove(b"key bytes")?);
/// assert_eq!(engine.len()?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
// `is_empty` is EngineExt's, built on `len`: one method less for each engine to write.
#[allow(clippy::len_without_is_empty)]
pub trait Engine: Send + Sync + Debug {
    /// The engine's name (`"lmdb"`, `"pairtree"`, ...).
    fn name(&self) -> &'static str;

    /// The latest value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The one write path: stores several entries, each with its own [`WriteMeta`] (a copy
    /// of a stash keeps every entry's time and expiry), as one transaction where the engine
    /// has them. Entries without a time get one time for the batch, taken as it is written.
    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()>;

    /// Removes several keys with all their versions (one transaction where the engine has
    /// them); returns how many were there.
    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64>;

    /// Every key with its latest value (see the contract above).
    fn scan(&self) -> Result<EntryIter<'_>>;

    /// The number of keys.
    fn len(&self) -> Result<usize>;

    /// Removes every entry.
    fn clear(&self) -> Result<()>;

    /// What the engine can do beyond this trait (see [`Capabilities`]).
    fn capabilities(&self) -> Capabilities<'_>;

    /// Hands the latest value under `key` to `read`, borrowed where the engine can (LMDB:
    /// from its memory map, saving a copy), and says whether there was one.
    fn get_with(&self, key: &[u8], read: &mut dyn FnMut(&[u8])) -> Result<bool> {
        Ok(self.get(key)?.map(|value| read(&value)).is_some())
    }

    /// Several lookups at once (one read transaction or round trip where the engine has
    /// them).
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|key| self.get(key)).collect()
    }

    /// Whether `key` is present (servers answer without sending the value).
    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Calls `visit` with every key and its latest value (or the error of an entry that
    /// cannot be read, such as a record that fails its checksum), as [`Engine::scan`] yields
    /// them, borrowing the bytes where the engine can (LMDB: from its memory map) instead of
    /// copying each into buffers of its own. `visit` returns false to stop early. An error
    /// returned ends the scan (the engine itself failed).
    fn scan_each(&self, visit: &mut EntryVisitor<'_>) -> Result<()> {
        for item in self.scan()? {
            let go_on = match item {
                Ok((key, value)) => visit(Ok((&key, &value))),
                Err(e) => visit(Err(e)),
            };
            if !go_on {
                break;
            }
        }
        Ok(())
    }
}

/// The byte-level conveniences of every [`Engine`], built on its required methods, and the
/// capabilities reached as results (an engine without one answers [`Error::Unsupported`]).
pub trait EngineExt: Engine {
    /// Stores `value` under `key` (in append mode, as a new version).
    fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_items(&[(key, value, WriteMeta::default())])
    }

    /// Stores several entries (one transaction where the engine has them).
    fn set_many(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        self.set_many_with(items, WriteMeta::default())
    }

    /// Stores several entries as [`EngineExt::set_many`] does, each recording `meta`.
    fn set_many_with(&self, items: &[(&[u8], &[u8])], meta: WriteMeta) -> Result<()> {
        let items: Vec<WriteItem<'_>> = items.iter().map(|&(k, v)| (k, v, meta)).collect();
        self.write_items(&items)
    }

    /// Removes `key` and all its versions; true if it was there.
    fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.remove_many(&[key])? > 0)
    }

    /// Whether there are no keys.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The engine's history of versions.
    fn history(&self) -> Result<&dyn History> {
        let name = self.name();
        self.capabilities()
            .history
            .ok_or_else(|| Error::unsupported(name, "a history of versions"))
    }

    /// The engine's write that stores only where a key is missing.
    fn atomic_insert(&self) -> Result<&dyn AtomicInsert> {
        let name = self.name();
        (self.capabilities().atomic_insert)
            .ok_or_else(|| Error::unsupported(name, "insert_if_absent"))
    }

    /// The engine's housekeeping.
    fn housekeeping(&self) -> Result<&dyn Housekeeping> {
        let name = self.name();
        (self.capabilities().housekeeping).ok_or_else(|| Error::unsupported(name, "housekeeping"))
    }

    /// The engine's leases, when it is a server that has them.
    fn leases(&self) -> Option<&dyn Leases> {
        self.capabilities().leases
    }

    /// The engine's change counter and catalog records; `None`: every table infers its
    /// schema anew.
    fn catalog(&self) -> Option<&dyn Catalog> {
        self.capabilities().catalog
    }

    /// The engine's async side (see [`async_engine`]); `None`: [`crate::AsyncStash`] runs
    /// its calls on tokio's blocking pool.
    #[cfg(feature = "async")]
    fn as_async(&self) -> Option<&dyn async_engine::AsyncEngine> {
        self.capabilities().async_side
    }
}

impl<E: Engine + ?Sized> EngineExt for E {}

/// Key bytes and value bytes.
#[cfg(any(feature = "redis", feature = "mongo"))]
pub(crate) type KeyValue<'a> = (&'a [u8], &'a [u8]);

/// Writes `items` as batches of consecutive entries that share one [`WriteMeta`]: how
/// engines whose batch commands take one time and expiry (Redis, MongoDB) write entries that
/// each carry their own. A batch without a time gets one for all of them.
#[cfg(any(feature = "redis", feature = "mongo"))]
pub(crate) fn in_runs_of_one_meta(
    items: &[WriteItem<'_>],
    mut write: impl FnMut(&[(&[u8], &[u8])], WriteMeta) -> Result<()>,
) -> Result<()> {
    runs_of_one_meta(items).try_for_each(|(batch, meta)| write(&batch, meta))
}

/// The runs of consecutive entries of `items` that share one [`WriteMeta`], in order (what
/// [`in_runs_of_one_meta`] writes, for the async sides to await one by one).
#[cfg(any(feature = "redis", feature = "mongo"))]
pub(crate) fn runs_of_one_meta<'a>(
    items: &'a [WriteItem<'a>],
) -> impl Iterator<Item = (Vec<KeyValue<'a>>, WriteMeta)> + Send + 'a {
    let mut rest = items;
    std::iter::from_fn(move || {
        let &(_, _, meta) = rest.first()?;
        let run = rest.iter().take_while(|(_, _, m)| *m == meta).count();
        let batch = rest[..run].iter().map(|&(k, v, _)| (k, v)).collect();
        rest = &rest[run..];
        Some((batch, meta))
    })
}

/// The engines this crate knows, compiled in or not.
///
/// ```
/// use hashstash::EngineKind;
///
/// let lmdb: EngineKind = "lmdb".parse()?;
/// assert_eq!(lmdb.name(), "lmdb");
/// // The default engine is LMDB when its feature is on, else pairtree.
/// assert!(EngineKind::available().any(|e| e == EngineKind::default_engine()));
/// // Server engines say which variable holds their URL.
/// assert_eq!(EngineKind::Pairtree.server_url_env(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EngineKind {
    /// A folder tree with one file per entry; no database (always compiled in).
    Pairtree,
    /// LMDB through heed: one memory-mapped file, the fastest (feature `lmdb`, default).
    Lmdb,
    /// SQLite through rusqlite, in WAL mode (feature `sqlite`).
    Sqlite,
    /// A map in this process, shared by every handle on the same path (always compiled in).
    Memory,
    /// An SQLite index with large values in files, a size limit and eviction (feature
    /// `diskcache`).
    Diskcache,
    /// A Redis server, shared by processes and machines (feature `redis`).
    Redis,
    /// A MongoDB (or wire-compatible) server, shared by processes and machines (feature
    /// `mongo`).
    Mongo,
    /// Object storage: S3 and S3-compatible stores, Google Cloud Storage, Azure, or a local
    /// folder, one object per entry, shared by processes and machines (feature
    /// `objectstore`).
    ObjectStore,
}

impl EngineKind {
    /// Every engine kind.
    pub const ALL: [EngineKind; 8] = [
        EngineKind::Pairtree,
        EngineKind::Lmdb,
        EngineKind::Sqlite,
        EngineKind::Memory,
        EngineKind::Diskcache,
        EngineKind::Redis,
        EngineKind::Mongo,
        EngineKind::ObjectStore,
    ];

    /// The engine's name, as used in options and stash folder names.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Pairtree => "pairtree",
            EngineKind::Lmdb => "lmdb",
            EngineKind::Sqlite => "sqlite",
            EngineKind::Memory => "memory",
            EngineKind::Redis => "redis",
            EngineKind::Mongo => "mongo",
            EngineKind::Diskcache => "diskcache",
            EngineKind::ObjectStore => "objectstore",
        }
    }

    /// Whether the engine's store is a server (its format is recorded there, not in a file).
    pub fn is_server(self) -> bool {
        self.server_url_env().is_some()
    }

    /// For a server engine: the environment variable with its default URL, and the URL used
    /// when that is unset.
    pub fn server_url_env(self) -> Option<(&'static str, &'static str)> {
        match self {
            EngineKind::Redis => Some(("HASHSTASH_REDIS_URL", "redis://127.0.0.1:6379/0")),
            EngineKind::Mongo => {
                Some(("HASHSTASH_MONGO_URL", "mongodb://127.0.0.1:27017/hashstash"))
            }
            EngineKind::ObjectStore => Some(("HASHSTASH_OBJECTSTORE_URL", "s3://hashstash")),
            _ => None,
        }
    }

    /// The name used in `Display`, as in `LmdbStash(...)`.
    pub fn display_name(self) -> &'static str {
        match self {
            EngineKind::Pairtree => "Pairtree",
            EngineKind::Lmdb => "Lmdb",
            EngineKind::Sqlite => "Sqlite",
            EngineKind::Memory => "Memory",
            EngineKind::Redis => "Redis",
            EngineKind::Diskcache => "Diskcache",
            EngineKind::Mongo => "Mongo",
            EngineKind::ObjectStore => "ObjectStore",
        }
    }

    /// Whether this build has the engine.
    pub fn is_available(self) -> bool {
        match self {
            EngineKind::Lmdb => cfg!(feature = "lmdb"),
            EngineKind::Sqlite => cfg!(feature = "sqlite"),
            EngineKind::Redis => cfg!(feature = "redis"),
            EngineKind::Diskcache => cfg!(feature = "diskcache"),
            EngineKind::Mongo => cfg!(feature = "mongo"),
            EngineKind::ObjectStore => cfg!(feature = "objectstore"),
            EngineKind::Pairtree | EngineKind::Memory => true,
        }
    }

    /// The engines this build has.
    pub fn available() -> impl Iterator<Item = EngineKind> {
        EngineKind::ALL.into_iter().filter(|e| e.is_available())
    }

    /// The default engine: LMDB when compiled in, else pairtree.
    pub fn default_engine() -> EngineKind {
        if cfg!(feature = "lmdb") {
            EngineKind::Lmdb
        } else {
            EngineKind::Pairtree
        }
    }

    /// Opens the engine's store at `path` (the stash's `data.db`).
    pub fn open(self, config: &crate::config::StashConfig) -> Result<Box<dyn Engine>> {
        let path = &config.data_path();
        let append_mode = config.append_mode;
        #[cfg_attr(
            all(
                feature = "lmdb",
                feature = "sqlite",
                feature = "diskcache",
                feature = "redis",
                feature = "mongo",
                feature = "objectstore"
            ),
            allow(unused_variables)
        )]
        let not_compiled = |feature| Error::EngineNotCompiled {
            engine: self.name(),
            feature,
        };
        Ok(match self {
            EngineKind::Pairtree => Box::new(pairtree::PairtreeEngine::open_with(
                path,
                append_mode,
                config.sync,
            )?),
            EngineKind::Memory => Box::new(memory::MemoryEngine::open(path, append_mode)?),
            #[cfg(feature = "lmdb")]
            EngineKind::Lmdb => Box::new(lmdb::LmdbEngine::open(path, append_mode)?),
            #[cfg(not(feature = "lmdb"))]
            EngineKind::Lmdb => return Err(not_compiled("lmdb")),
            #[cfg(feature = "sqlite")]
            EngineKind::Sqlite => Box::new(sqlite::SqliteEngine::open_with(
                path,
                append_mode,
                config.sync,
            )?),
            #[cfg(not(feature = "sqlite"))]
            EngineKind::Sqlite => return Err(not_compiled("sqlite")),
            #[cfg(feature = "redis")]
            EngineKind::Redis => Box::new(redis::RedisEngine::open(config)?),
            #[cfg(not(feature = "redis"))]
            EngineKind::Redis => return Err(not_compiled("redis")),
            #[cfg(feature = "diskcache")]
            EngineKind::Diskcache => Box::new(diskcache::DiskcacheEngine::open(config)?),
            #[cfg(not(feature = "diskcache"))]
            EngineKind::Diskcache => return Err(not_compiled("diskcache")),
            #[cfg(feature = "mongo")]
            EngineKind::Mongo => Box::new(mongo::MongoEngine::open(config)?),
            #[cfg(not(feature = "mongo"))]
            EngineKind::Mongo => return Err(not_compiled("mongo")),
            #[cfg(feature = "objectstore")]
            EngineKind::ObjectStore => Box::new(objectstore::ObjectStoreEngine::open(config)?),
            #[cfg(not(feature = "objectstore"))]
            EngineKind::ObjectStore => return Err(not_compiled("objectstore")),
        })
    }
}

impl Default for EngineKind {
    fn default() -> Self {
        EngineKind::default_engine()
    }
}

impl std::str::FromStr for EngineKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        EngineKind::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| Error::InvalidOption {
                option: "engine",
                message: format!(
                    "unknown engine {s:?}; expected one of pairtree, lmdb, sqlite, memory, diskcache, redis, mongo, objectstore"
                ),
            })
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The 128-bit address of a key, for engines that need fixed-width keys or file names.
pub fn key_digest(key: &[u8]) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(key).to_be_bytes()
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Creates a folder (and its parents) readable by its owner only.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|e| Error::io(path, e))
}

/// Creates `path` (if missing) readable by its owner only, before a library such as SQLite
/// opens it: SQLite gives its `-wal` and `-shm` files the mode of the database file.
#[cfg(any(feature = "sqlite", feature = "diskcache"))]
pub(crate) fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop).map_err(|e| Error::io(path, e))
}

/// An exclusive lock on the file `dir/<key hash><suffix>`, across threads and processes
/// (released when the file closes, also when the process dies), for steps that must not
/// interleave on one key: computing a memoized result, pairtree's insert-if-absent. Whoever
/// holds it removes the file before releasing it, so lock files do not pile up; a waiter
/// still locking the removed file, or a newcomer making a new one, must therefore read the
/// stash again once it holds the lock, and find what the holder wrote.
pub(crate) struct KeyLock(std::fs::File, std::path::PathBuf);

impl KeyLock {
    /// Takes the lock on `key` in `dir` (created if missing), waiting for its holder.
    pub(crate) fn take(dir: &Path, key: &[u8], suffix: &str) -> Result<Self> {
        create_private_dir(dir)?;
        let path = dir.join(format!("{:032x}{suffix}", xxhash_rust::xxh3::xxh3_128(key)));
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(KeyLock(file, path))
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.1);
        let _ = self.0.unlock();
    }
}

/// The size of a file, or of everything below a folder.
pub(crate) fn disk_usage_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| disk_usage_of(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    }
}
