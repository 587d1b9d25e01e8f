//! `StashBuilder`: the Python original's options, one method each, resolved into a `StashConfig` and
//! opened; or an existing stash folder, opened with the format it recorded.

use crate::codec;
use crate::config::{FormatRecord, StashConfig, FORMAT_FILENAME};
use crate::corrupt::OnCorrupt;
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::stash::Stash;
use std::path::{Path, PathBuf};

/// Builds a [`Stash`] from the Python original's options. Every option has the Python original's default.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{Compressor, EngineKind, Serializer, Stash};
///
/// let stash = Stash::builder()
///     .root_dir(dir.path()) // default: ~/.cache/hashstash (or $HASHSTASH_ROOT_DIR)
///     .dbname("experiments") // a sub-folder: default "main"
///     .engine(EngineKind::Pairtree)
///     .serializer(Serializer::Json)
///     .compress(Compressor::Raw)
///     .open()?;
/// stash.set("answer", &42)?;
/// assert_eq!(stash.config().engine, EngineKind::Pairtree);
/// // The stored value is the JSON text itself: no compressor, no base64.
/// let raw: Vec<Vec<u8>> = stash.raw_values()?.collect::<Result<_, _>>()?;
/// assert_eq!(raw, [b"42".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StashBuilder {
    config: StashConfig,
    clear: bool,
    path: Option<PathBuf>,
    on_corrupt: OnCorrupt,
}

impl StashBuilder {
    /// The root folder (default `default_stash`); a relative one goes under
    /// `$HASHSTASH_ROOT_DIR` or `~/.cache/hashstash`.
    pub fn root_dir(mut self, root_dir: impl AsRef<Path>) -> Self {
        self.config.root_dir = root_dir.as_ref().to_path_buf();
        self
    }
    /// The database name, a sub-folder of the root (default `main`).
    pub fn dbname(mut self, dbname: impl Into<String>) -> Self {
        self.config.dbname = dbname.into();
        self
    }
    /// The storage engine (default LMDB when compiled in, else pairtree).
    pub fn engine(mut self, engine: EngineKind) -> Self {
        self.config.engine = engine;
        self
    }
    /// The value serializer (default `hashstash`).
    pub fn serializer(mut self, serializer: codec::Serializer) -> Self {
        self.config.serializer = serializer;
        self
    }
    /// The value compressor (default `lz4`).
    pub fn compress(mut self, compress: codec::Compressor) -> Self {
        self.config.compress = compress;
        self
    }
    /// Whether stored values are base64 text (default false).
    pub fn b64(mut self, b64: bool) -> Self {
        self.config.b64 = b64;
        self
    }
    /// Whether every write keeps the old versions (default false).
    pub fn append_mode(mut self, append_mode: bool) -> Self {
        self.config.append_mode = append_mode;
        self
    }
    /// The server of a server engine (redis, mongo), or the store and prefix of object
    /// storage (`s3://bucket/prefix`, ...); default `$HASHSTASH_REDIS_URL` /
    /// `$HASHSTASH_MONGO_URL` / `$HASHSTASH_OBJECTSTORE_URL`, else the server's usual local
    /// address (`s3://hashstash` for object storage).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.config.url = Some(url.into());
        self
    }
    /// The server's host and port (the Python original's options), when no `url` is given.
    pub fn server(mut self, host: impl Into<String>, port: u16) -> Self {
        self.config.host = Some(host.into());
        self.config.port = Some(port);
        self
    }
    /// How long a server engine waits for its server before failing (default 5000 ms).
    pub fn timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.config.timeout_ms = timeout_ms;
        self
    }
    /// On server engines, how long a claim to compute a function result lasts unless its
    /// process renews it (default 30000 ms; see [`Stash::run`]).
    pub fn lease_ms(mut self, lease_ms: u64) -> Self {
        self.config.lease_ms = lease_ms;
        self
    }
    /// The diskcache engine's size limit in bytes (default 1 GiB).
    pub fn size_limit(mut self, bytes: u64) -> Self {
        self.config.size_limit = bytes;
        self
    }
    /// What the diskcache engine evicts when over its size limit (default least recently
    /// stored).
    pub fn eviction_policy(mut self, policy: crate::config::EvictionPolicy) -> Self {
        self.config.eviction_policy = policy;
        self
    }
    /// Whether every write is on disk (fsync) before it returns, surviving a power loss, not
    /// only a killed process (default false: see [`StashConfig::sync`]).
    pub fn sync(mut self, sync: bool) -> Self {
        self.config.sync = sync;
        self
    }
    /// Whether to empty the stash when it is opened (default false).
    pub fn clear(mut self, clear: bool) -> Self {
        self.clear = clear;
        self
    }
    /// What scans do with an entry that does not decode (default [`OnCorrupt::Fail`]); see
    /// [`Stash::set_on_corrupt`].
    pub fn on_corrupt(mut self, policy: OnCorrupt) -> Self {
        self.on_corrupt = policy;
        self
    }
    /// Opens an existing stash folder (`<engine>.<serializer>.<compress>[+b64]`, or its
    /// `data.db`), taking engine and format from what the folder recorded; the builder's
    /// other format options are ignored, its runtime options (`sync`, `timeout_ms`,
    /// `lease_ms`, `size_limit`, `eviction_policy`, `ttl_ms`, `max_entries`, `max_bytes`)
    /// apply.
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }
    /// How long entries written through the stash are served (see
    /// [`StashConfig::ttl_ms`]); after it, they are misses for every read and
    /// [`Stash::prune_expired`] removes them.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use std::time::Duration;
    /// let stash = hashstash::Stash::builder()
    ///     .root_dir(dir.path())
    ///     .ttl(Duration::from_millis(50))
    ///     .open()?;
    /// stash.set("soon gone", &1)?;
    /// stash.set_with_ttl("kept", &2, Duration::from_secs(3600))?; // a per-write override
    /// assert!(stash.contains("soon gone")?);
    /// std::thread::sleep(Duration::from_millis(60));
    /// assert_eq!(stash.get::<_, i32>("soon gone")?, None); // expired: a miss
    /// assert_eq!(stash.get::<_, i32>("kept")?, Some(2));
    /// assert_eq!(stash.len()?, 2); // counted until pruned
    /// assert_eq!(stash.prune_expired()?, 1);
    /// assert_eq!(stash.len()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.config.ttl_ms = Some(ttl.as_millis().try_into().unwrap_or(u64::MAX));
        self
    }
    /// [`StashBuilder::ttl`] in milliseconds (as `#[stashed_result(ttl_ms = ...)]` gives it).
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.config.ttl_ms = Some(ttl_ms);
        self
    }
    /// The most entries the stash keeps; past it the oldest are evicted (see
    /// [`crate::limits`]).
    pub fn max_entries(mut self, max_entries: u64) -> Self {
        self.config.max_entries = Some(max_entries);
        self
    }
    /// The most key and value bytes the stash keeps; past it the oldest entries are evicted
    /// (see [`crate::limits`]).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.config.max_bytes = Some(max_bytes);
        self
    }
    /// Starts from a whole config.
    pub fn config(mut self, config: StashConfig) -> Self {
        self.config = config;
        self
    }
    /// The config this builder would open (with `root_dir` resolved).
    pub fn resolved_config(&self) -> Result<StashConfig> {
        let mut config = self.config.clone();
        config.resolve_root_dir()?;
        config.validate()?;
        Ok(config)
    }

    /// Opens (creating if needed) the stash.
    pub fn open(self) -> Result<Stash> {
        let config = match &self.path {
            Some(path) => StashConfig {
                sync: self.config.sync,
                timeout_ms: self.config.timeout_ms,
                lease_ms: self.config.lease_ms,
                size_limit: self.config.size_limit,
                eviction_policy: self.config.eviction_policy,
                ttl_ms: self.config.ttl_ms,
                max_entries: self.config.max_entries,
                max_bytes: self.config.max_bytes,
                ..config_from_path(path)?
            },
            None => self.resolved_config()?,
        };
        config.validate()?;
        let stash = Stash::open_config(config, self.clear)?;
        stash.set_on_corrupt(self.on_corrupt);
        Ok(stash)
    }
}

/// The config of an existing stash folder, from the format it recorded.
fn config_from_path(path: &Path) -> Result<StashConfig> {
    let dir = if path
        .file_name()
        .is_some_and(|n| n == crate::config::DATA_FILENAME)
    {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let record = FormatRecord::read(&dir)?.ok_or_else(|| Error::InvalidOption {
        option: "path",
        message: format!(
            "{} is not a stash folder (it has no {FORMAT_FILENAME})",
            dir.display()
        ),
    })?;
    let dbdir = dir.parent().unwrap_or(&dir);
    let config = StashConfig {
        root_dir: dbdir.parent().unwrap_or(dbdir).to_path_buf(),
        dbname: dbdir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        engine: record.engine,
        serializer: record.serializer,
        compress: record.compress,
        b64: record.b64,
        append_mode: record.append_mode,
        is_tmp: false,
        filename: crate::config::DATA_FILENAME.into(),
        ..StashConfig::default()
    };
    // A folder that was renamed or copied no longer sits where its format says it should:
    // opening the config would silently create an empty stash elsewhere.
    if config.stash_dir() != dir {
        return Err(Error::InvalidOption {
            option: "path",
            message: format!(
                "{} is not named after its format (expected a folder named {})",
                dir.display(),
                config
                    .stash_dir()
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        });
    }
    Ok(config)
}
