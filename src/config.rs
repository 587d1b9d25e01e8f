//! Stash options, their defaults, and the on-disk layout they lead to.
//!
//! ```text
//! <root_dir>/<dbname>/<engine>.<serializer>.<compress>[+b64]/data.db      the engine's store
//! <root_dir>/<dbname>/<engine>.<serializer>.<compress>[+b64]/format.json  the recorded format
//! ```
//!
//! A relative `root_dir` goes under the base folder: `$HASHSTASH_ROOT_DIR` when set, else
//! `~/.cache/hashstash`. The default `root_dir` is `default_stash`, the default `dbname` `main`.

use crate::codec::{Codec, Compressor, Serializer};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable that replaces `~/.cache/hashstash` as the base folder.
pub const ROOT_DIR_ENV: &str = "HASHSTASH_ROOT_DIR";
/// The default `root_dir`.
pub const DEFAULT_ROOT_DIR: &str = "default_stash";
/// The default `dbname`.
pub const DEFAULT_DBNAME: &str = "main";
/// The engine's file or folder inside a stash folder.
pub const DATA_FILENAME: &str = "data.db";
/// The recorded format inside a stash folder.
pub const FORMAT_FILENAME: &str = "format.json";
/// The version of the on-disk format (key encoding, records, format file).
pub const FORMAT_VERSION: u32 = 1;

/// Everything that identifies a stash. Round-trips through JSON ([`StashConfig::to_dict`]).
/// `Debug` shows the URL with its secrets hidden.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{Stash, StashConfig};
///
/// let stash = Stash::builder().root_dir(dir.path()).dbname("runs").open()?;
/// let dict = stash.to_dict(); // the Python original's `stash.to_dict()`
/// assert_eq!(dict["dbname"], "runs");
/// let config = StashConfig::from_dict(&dict)?;
/// assert_eq!(&config, stash.config());
/// let again = Stash::open_config(config, false)?; // the same stash
/// assert_eq!(again.path(), stash.path());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StashConfig {
    /// The root folder (absolute once resolved).
    pub root_dir: PathBuf,
    /// The database name: a sub-folder of `root_dir` (may contain `/` for sub-stashes).
    pub dbname: String,
    /// The storage engine.
    pub engine: EngineKind,
    /// The value serializer.
    pub serializer: Serializer,
    /// The value compressor.
    pub compress: Compressor,
    /// Whether stored values are base64 text.
    pub b64: bool,
    /// Whether every write adds a version instead of replacing the value.
    pub append_mode: bool,
    /// Whether the stash is temporary (made by [`crate::Stash::tmp`]).
    #[serde(default)]
    pub is_tmp: bool,
    /// The engine's file or folder name inside the stash folder.
    #[serde(default = "default_filename")]
    pub filename: String,
    /// The server of a server engine (redis, mongo), e.g. `redis://:password@host:6379/0`,
    /// or the store of object storage (`s3://bucket/prefix`). When `None`:
    /// `$HASHSTASH_REDIS_URL` / `$HASHSTASH_MONGO_URL` / `$HASHSTASH_OBJECTSTORE_URL`, else
    /// the server's usual local address. Passwords in it never appear in `Display`, `Debug` or `to_dict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The server's host, as in the Python original's options (used when `url` is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The server's port, as in the Python original's options (used when `url` is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// How long a server engine waits for its server before an operation fails, in
    /// milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// On server engines, how long a process computing a function result holds its claim
    /// without renewing it, in milliseconds (default 30000). It renews the claim every third
    /// of this while it computes; if it dies, another process takes over once it expires.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// The diskcache engine's size limit in bytes of stored values (default 1 GiB).
    #[serde(default = "default_size_limit")]
    pub size_limit: u64,
    /// What the diskcache engine evicts when it is over its size limit.
    #[serde(default)]
    pub eviction_policy: EvictionPolicy,
    /// Whether every write reaches the disk (fsync) before it returns, so that it survives a
    /// power loss or an OS crash, not only the process being killed (default false; LMDB
    /// syncs every commit either way). See "Durability" in RELIABILITY.md for each engine.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync: bool,
    /// How long an entry written through this handle is served, in milliseconds; `None`
    /// (the default): until it is replaced or removed. A handle option like `timeout_ms`, not
    /// part of the stash's format: each write records its own expiry
    /// ([`crate::Stash::set_with_ttl`] overrides it per write). Sub-stashes and function
    /// stashes inherit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// The most entries the stash keeps: past it, the oldest (by last write) are evicted
    /// (see [`crate::limits`]). `None` (the default): no limit. A handle option, inherited
    /// by sub-stashes and function stashes, each limited on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    /// The most key and latest-value bytes the stash keeps, evicting as `max_entries` does.
    /// `None` (the default): no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// What a size-limited engine evicts when it is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// The items stored longest ago go first (the default).
    #[default]
    LeastRecentlyStored,
    /// Nothing is evicted; the size limit is not enforced.
    None,
}

impl std::str::FromStr for EvictionPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "least-recently-stored" => Ok(EvictionPolicy::LeastRecentlyStored),
            "none" => Ok(EvictionPolicy::None),
            _ => Err(Error::InvalidOption {
                option: "eviction_policy",
                message: format!("unknown policy {s:?}; expected least-recently-stored or none"),
            }),
        }
    }
}

fn default_size_limit() -> u64 {
    1 << 30
}

impl std::fmt::Debug for StashConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StashConfig")
            .field("root_dir", &self.root_dir)
            .field("dbname", &self.dbname)
            .field("engine", &self.engine)
            .field("serializer", &self.serializer)
            .field("compress", &self.compress)
            .field("b64", &self.b64)
            .field("append_mode", &self.append_mode)
            .field("is_tmp", &self.is_tmp)
            .field("filename", &self.filename)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("timeout_ms", &self.timeout_ms)
            .field("lease_ms", &self.lease_ms)
            .field("size_limit", &self.size_limit)
            .field("eviction_policy", &self.eviction_policy)
            .field("sync", &self.sync)
            .field("ttl_ms", &self.ttl_ms)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

fn default_filename() -> String {
    DATA_FILENAME.into()
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_lease_ms() -> u64 {
    30_000
}

/// `url` with every secret replaced by `***`: the password of each comma-separated URL (a
/// cluster's node list), and query parameters that carry secrets (`password`, `pass`,
/// `...Password`, tokens, `authMechanismProperties`).
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(redact_one_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The last `@` ends the user information, even when a password holds `/` or `?`.
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    };
    let hidden_user = userinfo.map(|info| match info.split_once(':') {
        Some((user, _)) => format!("{user}:***@"),
        None => "***@".to_owned(),
    });
    let (location, query) = match after.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (after, None),
    };
    let query = query.map(|q| {
        let params: Vec<String> = q
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        format!("?{}", params.join("&"))
    });
    format!(
        "{scheme}://{}{location}{}",
        hidden_user.unwrap_or_default(),
        query.unwrap_or_default()
    )
}

/// `message` with `url` and the passwords in it hidden (for errors that quote their URL).
#[cfg_attr(not(any(feature = "redis", feature = "mongo")), allow(dead_code))]
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &redact_url(url));
    for part in url.split(',') {
        let password = part
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .and_then(|(info, _)| info.split_once(':'))
            .map(|(_, password)| password);
        if let Some(password) = password.filter(|p| p.len() >= 3) {
            out = out.replace(password, "***");
        }
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "authmechanismproperties"]
        .iter()
        .any(|word| name.contains(word))
}

impl Default for StashConfig {
    fn default() -> Self {
        StashConfig {
            root_dir: PathBuf::from(DEFAULT_ROOT_DIR),
            dbname: DEFAULT_DBNAME.into(),
            engine: EngineKind::default_engine(),
            serializer: Serializer::default(),
            compress: Compressor::default(),
            b64: false,
            append_mode: false,
            is_tmp: false,
            filename: DATA_FILENAME.into(),
            url: None,
            host: None,
            port: None,
            timeout_ms: default_timeout_ms(),
            lease_ms: default_lease_ms(),
            size_limit: default_size_limit(),
            eviction_policy: EvictionPolicy::default(),
            sync: false,
            ttl_ms: None,
            max_entries: None,
            max_bytes: None,
        }
    }
}

/// The base folder for relative root folders: `$HASHSTASH_ROOT_DIR`, else `~/.cache/hashstash`.
pub fn base_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(ROOT_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::home_dir()
        .map(|h| h.join(".cache").join("hashstash"))
        .ok_or_else(|| Error::InvalidOption {
            option: "root_dir",
            message: format!(
                "no home folder to put stashes in; set {ROOT_DIR_ENV} or give an absolute root_dir"
            ),
        })
}

/// Resolves a `root_dir` option: absolute stays, relative goes under [`base_dir`].
pub fn resolve_root_dir(root_dir: &Path) -> Result<PathBuf> {
    if root_dir.is_absolute() {
        Ok(root_dir.to_path_buf())
    } else {
        Ok(base_dir()?.join(root_dir))
    }
}

impl StashConfig {
    /// The value codec.
    pub fn codec(&self) -> Codec {
        Codec {
            serializer: self.serializer,
            compress: self.compress,
            b64: self.b64,
        }
    }

    /// The stash folder: `<root_dir>/<dbname>/<engine>.<serializer>.<compress>[+b64]`.
    pub fn stash_dir(&self) -> PathBuf {
        let mut dir = self.root_dir.clone();
        for part in self.dbname.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
        }
        dir.join(format!(
            "{}.{}",
            self.engine.name(),
            self.codec().describe()
        ))
    }

    /// The engine's store: `<stash_dir>/data.db`.
    pub fn data_path(&self) -> PathBuf {
        self.stash_dir().join(&self.filename)
    }

    /// Makes `root_dir` absolute (see [`resolve_root_dir`]), except for server engines: on a
    /// server the root is a name, kept as given, so that processes and machines with
    /// different home folders or `$HASHSTASH_ROOT_DIR` share one namespace.
    pub fn resolve_root_dir(&mut self) -> Result<()> {
        if !self.engine.is_server() {
            self.root_dir = resolve_root_dir(&self.root_dir)?;
        }
        Ok(())
    }

    /// The stash's name on a server: `<root_dir>/<dbname>/<engine>.<serializer>.<compress>`,
    /// with the root as given (`default_stash/main/redis.hashstash.lz4` by default).
    pub fn namespace(&self) -> String {
        self.stash_dir().to_string_lossy().into_owned()
    }

    /// The server URL of a server engine: the `url` option; else `host`/`port` in the
    /// engine's default URL; else the environment variable `env`; else `default`.
    pub fn server_url(&self, env: &str, default: &str) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        if self.host.is_some() || self.port.is_some() {
            // `default` is `scheme://host:port/rest`: swap in the given host and port.
            let (scheme, rest) = default.split_once("://").unwrap_or(("redis", default));
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (default_host, default_port) =
                authority.rsplit_once(':').unwrap_or((authority, ""));
            let host = self.host.as_deref().unwrap_or(default_host);
            let port = self.port.map_or(default_port.to_owned(), |p| p.to_string());
            return format!("{scheme}://{host}:{port}{path}");
        }
        std::env::var(env)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    /// The server timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.max(1))
    }

    /// The config as a JSON object (the Python original's `to_dict`). A root folder whose name is not
    /// UTF-8 is shown with replacement characters (JSON has no spelling for it); secrets in
    /// the URL as `***`, so a dict made from a URL with a password does not carry it: give
    /// it again (or through `$HASHSTASH_REDIS_URL` / `$HASHSTASH_MONGO_URL`) after
    /// `from_dict`.
    pub fn to_dict(&self) -> serde_json::Value {
        let printable = StashConfig {
            root_dir: PathBuf::from(self.root_dir.to_string_lossy().into_owned()),
            url: self.url.as_deref().map(redact_url),
            ..self.clone()
        };
        serde_json::to_value(printable).unwrap_or(serde_json::Value::Null)
    }

    /// A config from a JSON object made by [`StashConfig::to_dict`]; missing fields take
    /// their defaults.
    pub fn from_dict(dict: &serde_json::Value) -> Result<StashConfig> {
        let mut merged = serde_json::to_value(StashConfig::default()).unwrap_or_default();
        if let (Some(base), Some(given)) = (merged.as_object_mut(), dict.as_object()) {
            for (k, v) in given {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(merged).map_err(|e| Error::InvalidOption {
            option: "config",
            message: e.to_string(),
        })
    }

    /// Checks that names cannot lead outside the root folder, and that limits can be kept.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad =
            |part: &str| part == ".." || part == "." || part.contains('\\') || part.contains('\0');
        // Every part must be a plain folder name: the stash folder stays below the root.
        if self
            .dbname
            .split('/')
            .any(|part| part.is_empty() || bad(part))
        {
            return Err(Error::InvalidOption {
                option: "dbname",
                message: format!(
                    "{:?} must be a relative name of non-empty parts, without `.` or `..`",
                    self.dbname
                ),
            });
        }
        if self.filename.contains('/') || bad(&self.filename) || self.filename.is_empty() {
            return Err(Error::InvalidOption {
                option: "filename",
                message: format!("{:?} must be a plain file name", self.filename),
            });
        }
        for (option, limit) in [
            ("max_entries", self.max_entries),
            ("max_bytes", self.max_bytes),
        ] {
            if limit == Some(0) {
                return Err(Error::InvalidOption {
                    option,
                    message: "must be at least 1 (a stash of nothing would evict every write)"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// Shows a path with the home folder as `~`, as the Python original prints stashes.
pub fn tilde(path: &Path) -> String {
    if let Some(home) = dirs::home_dir() {
        if let Ok(rest) = path.strip_prefix(&home) {
            return format!("~/{}", rest.display());
        }
    }
    path.display().to_string()
}

/// What a stash records about its format when it is created (`format.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatRecord {
    /// The on-disk format version.
    pub format_version: u32,
    /// The key encoding.
    pub key_encoding: String,
    /// The engine.
    pub engine: EngineKind,
    /// The value serializer.
    pub serializer: Serializer,
    /// The value compressor.
    pub compress: Compressor,
    /// Whether values are base64 text.
    pub b64: bool,
    /// Whether the stash keeps every version.
    pub append_mode: bool,
}

/// The key encoding recorded in [`FormatRecord::key_encoding`].
pub const KEY_ENCODING: &str = "canonical-cbor-1";

impl FormatRecord {
    /// The format a config asks for.
    pub fn of(config: &StashConfig) -> Self {
        FormatRecord {
            format_version: FORMAT_VERSION,
            key_encoding: KEY_ENCODING.into(),
            engine: config.engine,
            serializer: config.serializer,
            compress: config.compress,
            b64: config.b64,
            append_mode: config.append_mode,
        }
    }

    /// A one-line description for error messages.
    pub fn describe(&self) -> String {
        format!(
            "engine={} serializer={} compress={} b64={} append_mode={} format_version={} keys={}",
            self.engine,
            self.serializer,
            self.compress,
            self.b64,
            self.append_mode,
            self.format_version,
            self.key_encoding
        )
    }

    /// Reads the record of the stash folder `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<FormatRecord>> {
        let path = dir.join(FORMAT_FILENAME);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::decode(path.display().to_string(), "format.json", e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Records this format in `dir`, or checks it against the one already recorded there.
    pub fn record_or_check(&self, dir: &Path) -> Result<()> {
        if let Some(found) = FormatRecord::read(dir)? {
            return self.check(&found, dir);
        }
        crate::engine::create_private_dir(dir)?;
        let path = dir.join(FORMAT_FILENAME);
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        // Write aside, then link into place: `link` fails if another process got there first,
        // and then that process's record is the one to check against.
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        std::fs::write(tmp.path(), &json).map_err(|e| Error::io(tmp.path(), e))?;
        match std::fs::hard_link(tmp.path(), &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match FormatRecord::read(dir)? {
                    Some(found) => self.check(&found, dir),
                    None => Err(Error::io(&path, e)),
                }
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks this format against one a server engine returned (`None`: nothing to check).
    pub fn check_recorded(&self, recorded: Option<Vec<u8>>, namespace: &str) -> Result<()> {
        let Some(bytes) = recorded else {
            return Ok(());
        };
        let found: FormatRecord = serde_json::from_slice(&bytes)
            .map_err(|e| Error::decode(format!("the format of {namespace}"), "format.json", e))?;
        self.check(&found, Path::new(namespace))
    }

    fn check(&self, found: &FormatRecord, dir: &Path) -> Result<()> {
        if found == self {
            Ok(())
        } else {
            Err(Error::FormatConflict {
                path: dir.to_path_buf(),
                found: found.describe(),
                requested: self.describe(),
            })
        }
    }
}
