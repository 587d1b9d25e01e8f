//! Command-line flags (stage one: what the user typed) and how they resolve into a stash.

use crate::errors::CliError;
use clap::{Args, Parser, Subcommand};
use hashstash::{Compressor, EngineKind, Error, OnCorrupt, Serializer, Stash, StashConfig};
use std::path::PathBuf;

/// A persistent, dictionary-like cache: any JSON key, any JSON value.
#[derive(Parser, Debug)]
#[command(name = "hashstash", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub stash: StashArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Which stash to address: the builder's options, or `--path` to an existing stash folder.
#[derive(Args, Debug, Clone, Default)]
pub struct StashArgs {
    /// Root folder (relative names go under $HASHSTASH_ROOT_DIR or ~/.cache/hashstash).
    #[arg(long, global = true)]
    pub root_dir: Option<PathBuf>,
    /// Database name inside the root folder [default: main].
    #[arg(long, global = true)]
    pub dbname: Option<String>,
    /// Engine: lmdb, pairtree, sqlite, memory [default: lmdb when compiled in].
    #[arg(long, global = true)]
    pub engine: Option<String>,
    /// Value serializer: hashstash, json, postcard [default: hashstash].
    #[arg(long, global = true)]
    pub serializer: Option<String>,
    /// Compressor: lz4, raw, zlib, gzip, bz2, zstd, blosc [default: lz4].
    #[arg(long, global = true)]
    pub compress: Option<String>,
    /// Store values as base64 text.
    #[arg(long, global = true)]
    pub b64: bool,
    /// Keep every version of a value.
    #[arg(long, global = true)]
    pub append_mode: bool,
    /// Server URL for server engines, e.g. redis://:password@host:6379/0 [default:
    /// $HASHSTASH_REDIS_URL, else the local server].
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Server host, when no --url is given [default: 127.0.0.1].
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Server port, when no --url is given [default: the server's usual port].
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// How long a server engine waits for its server, in milliseconds [default: 5000].
    #[arg(long, global = true)]
    pub timeout_ms: Option<u64>,
    /// How long what `set` writes is served, in milliseconds; after it the entry is a miss
    /// and `prune` removes it [default: until replaced or removed].
    #[arg(long, global = true)]
    pub ttl_ms: Option<u64>,
    /// The most entries to keep: a write past it evicts the oldest (by last write) [default:
    /// no limit].
    #[arg(long, global = true)]
    pub max_entries: Option<u64>,
    /// The most key and value bytes to keep, evicting the oldest as --max-entries does
    /// [default: no limit].
    #[arg(long, global = true)]
    pub max_bytes: Option<u64>,
    /// An existing stash folder (`<engine>.<serializer>.<compress>`), format read from it;
    /// or a server URL (redis://...), the same as --engine redis --url URL, with
    /// `#root/dbname` (or `#dbname`) for a stash other than the default one.
    #[arg(long, global = true)]
    pub path: Option<PathBuf>,
    /// What scans (keys, items, sql, export) do with an entry that does not decode: fail,
    /// or skip it and report the skipped entries on stderr [default: fail].
    #[arg(long, global = true)]
    pub on_corrupt: Option<String>,
    /// fsync every write before it returns, so that it survives a power loss (slower).
    #[arg(long, global = true)]
    pub sync: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Store VALUE under KEY (both JSON text, e.g. '"cat"' or '{"a": 1}').
    Set { key: String, value: String },
    /// Print the value under KEY as JSON; exit 1 if it is missing.
    Get {
        key: String,
        /// Print every version (append mode) as a JSON array.
        #[arg(long)]
        all: bool,
        /// With --all: each version as {"_version", "_timestamp", "_value"}.
        #[arg(long, requires = "all")]
        with_metadata: bool,
    },
    /// Store VALUE under KEY only if KEY is missing (one step against every other writer),
    /// then print the value under KEY as JSON: VALUE, or the one already there.
    Setdefault { key: String, value: String },
    /// Remove KEY; exit 1 if it was missing.
    Del { key: String },
    /// Print every key, one JSON document per line.
    Keys(#[command(flatten)] Written),
    /// Print every entry as a JSON line {"key": ..., "value": ...} (with --after or --before,
    /// also "_timestamp", when it was last written, in unix seconds).
    Items(#[command(flatten)] Written),
    /// Print the number of keys.
    Len,
    /// Print the stash's config, path, entry count, bytes on disk, and the counts of
    /// hits, misses, sets, deletes, evictions and bytes written over its life.
    Info,
    /// Remove every entry.
    Clear,
    /// Remove the entries whose time to live (--ttl-ms when they were set) has passed;
    /// prints how many. They are already misses: this gives their room back. With
    /// --older-than, report the entries last written before that time, and remove them
    /// with --apply.
    Prune {
        /// An RFC 3339 time with its offset, unix seconds, or an age (90s, 12h, 7d, 2w).
        #[arg(long, value_name = "TIME")]
        older_than: Option<String>,
        /// Remove what --older-than finds (without it: a dry run that only reports).
        #[arg(long, requires = "older_than")]
        apply: bool,
    },
    /// Copy every entry of SRC (a stash folder or server URL) into DST, each version with
    /// its time and expiry, re-encoded for DST's serializer and compressor; checks that the
    /// counts match at the end and prints a report. DST is an existing stash folder, a new
    /// folder named ROOT/DBNAME/ENGINE.SERIALIZER.COMPRESS (e.g.
    /// cache/main/sqlite.hashstash.zstd), or a server URL (its namespace from --root-dir
    /// and --dbname, its format from --serializer and --compress).
    Copy {
        /// The stash to copy.
        src: PathBuf,
        /// Where to copy it.
        dst: PathBuf,
        /// Report what would move, writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Measure the standard workload (set, get, batch) over engines x serializers x
    /// compressors, in fresh stashes of its own; prints a table.
    Profile(ProfileArgs),
    /// Run SQL over the stash (table `stash`); with no query, an interactive prompt.
    #[cfg(feature = "sql")]
    Sql {
        /// The query, e.g. 'SELECT name, count(*) FROM stash GROUP BY 1'.
        query: Option<String>,
        /// Another stash as a table: NAME=PATH_OR_URL (repeatable); a server URL can end in
        /// #root/dbname to name one of its stashes. Each NAME has NAME_versions beside it.
        /// A target ending in .parquet is a parquet file read as it is, local or in object
        /// storage (s3://bucket/snap.parquet, gs://, az://).
        #[arg(long = "table", value_name = "NAME=PATH_OR_URL")]
        tables: Vec<String>,
        /// Query the stashes as they stood at this time (RFC 3339 with its offset, unix
        /// seconds, or an age such as 2h): per key, the last version written at or before it.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: crate::tables::Format,
        /// Write to this file (or object-store URL: s3://, gs://, az://) instead of standard
        /// output (needed for parquet).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Write the stash out: parquet or csv (its table), or json (JSON lines of key and value).
    #[cfg(feature = "sql")]
    Export {
        /// The file to write, or an object-store URL (s3://bucket/snap.parquet, gs://, az://).
        out: std::path::PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value = "parquet")]
        format: crate::tables::Format,
        /// Every version of every key (append mode), with _version and _timestamp (parquet
        /// and csv).
        #[arg(long)]
        all_versions: bool,
    },
    /// Read a file into the stash: parquet (`.parquet`; an export loads back as it was), or
    /// JSON lines with "key" and "value" fields.
    #[cfg(feature = "sql")]
    Import {
        /// The file to read, or an object-store URL (s3://bucket/snap.parquet, gs://, az://).
        file: std::path::PathBuf,
    },
    /// Keep the stash's table as a columnar snapshot beside it (lmdb, sqlite, diskcache):
    /// until the next write, queries that scan the whole table read its columns instead of
    /// decoding every entry.
    #[cfg(feature = "sql")]
    Snapshot,
}

/// Which entries `keys` and `items` print, by when they were last written.
#[derive(Args, Debug, Clone, Default)]
pub struct Written {
    /// Only entries last written after TIME: an RFC 3339 time with its offset
    /// (2026-11-25T10:00:00+01:00), unix seconds, or an age (90s, 12h, 7d, 2w).
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// Only entries last written before TIME (as --after).
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// Keep entries written exactly at --after or --before.
    #[arg(long)]
    pub inclusive: bool,
}

impl Written {
    /// The time filter, or `None` when no bound was given.
    pub fn filter(&self) -> Result<Option<hashstash::TimeFilter>, CliError> {
        if self.after.is_none() && self.before.is_none() {
            return Ok(None);
        }
        let mut filter = hashstash::TimeFilter::new().inclusive(self.inclusive);
        if let Some(after) = parse::<hashstash::Moment>(&self.after)? {
            filter = filter.after(after);
        }
        if let Some(before) = parse::<hashstash::Moment>(&self.before)? {
            filter = filter.before(before);
        }
        Ok(Some(filter))
    }
}

fn parse<T: std::str::FromStr<Err = Error>>(given: &Option<String>) -> Result<Option<T>, Error> {
    given.as_deref().map(str::parse).transpose()
}

impl StashArgs {
    /// Stage two: resolves the flags into an open stash.
    pub fn open(&self) -> Result<Stash, CliError> {
        let on_corrupt: Option<OnCorrupt> = parse(&self.on_corrupt)?;
        let stash = self.open_stash()?;
        stash.set_on_corrupt(on_corrupt.unwrap_or_default());
        Ok(stash)
    }

    fn open_stash(&self) -> Result<Stash, CliError> {
        let mut engine: Option<EngineKind> = parse(&self.engine)?;
        let serializer: Option<Serializer> = parse(&self.serializer)?;
        let compress: Option<Compressor> = parse(&self.compress)?;
        let mut url = self.url.clone();
        let mut path = self.path.clone();
        let (mut root_dir, mut dbname) = (self.root_dir.clone(), self.dbname.clone());
        if let Some(server) = path
            .as_deref()
            .and_then(|p| p.to_str())
            .and_then(server_engine)
        {
            engine = Some(server);
            let text = path.take().map(|p| p.to_string_lossy().into_owned());
            let text = text.unwrap_or_default();
            // `URL#root/dbname` names a stash on the server other than the default one.
            let (address, place) = match text.split_once('#') {
                Some((address, place)) => (address.to_owned(), Some(place.to_owned())),
                None => (text, None),
            };
            if let Some(place) = place {
                if root_dir.is_some() || dbname.is_some() {
                    return Err(CliError::Usage {
                        argument: "path",
                        message: "a URL with #root/dbname names its stash; drop --root-dir \
                                  and --dbname"
                            .into(),
                    });
                }
                let (root, name) = match place.rsplit_once('/') {
                    Some((root, name)) => (Some(root), name),
                    None => (None, place.as_str()),
                };
                if name.is_empty() {
                    return Err(CliError::Usage {
                        argument: "path",
                        message: format!("{place:?} after # is not root/dbname or dbname"),
                    });
                }
                root_dir = root.map(PathBuf::from);
                dbname = Some(name.to_owned());
            }
            url = Some(address);
        }
        if let Some(path) = &path {
            if self.root_dir.is_some() || self.dbname.is_some() {
                return Err(CliError::Usage {
                    argument: "path",
                    message: "a stash folder given by --path has its own root and dbname; \
                              drop --root-dir and --dbname"
                        .into(),
                });
            }
            let mut builder = Stash::builder().path(path).sync(self.sync);
            if let Some(timeout_ms) = self.timeout_ms {
                builder = builder.timeout_ms(timeout_ms);
            }
            if let Some(ttl_ms) = self.ttl_ms {
                builder = builder.ttl_ms(ttl_ms);
            }
            if let Some(max_entries) = self.max_entries {
                builder = builder.max_entries(max_entries);
            }
            if let Some(max_bytes) = self.max_bytes {
                builder = builder.max_bytes(max_bytes);
            }
            let stash = builder.open()?;
            check_agrees(
                &stash,
                engine,
                serializer,
                compress,
                self.b64,
                self.append_mode,
            )?;
            return Ok(stash);
        }
        let mut config = StashConfig::default();
        if let Some(root) = root_dir {
            config.root_dir = root;
        }
        if let Some(dbname) = dbname {
            config.dbname = dbname;
        }
        config.engine = engine.unwrap_or(config.engine);
        config.serializer = serializer.unwrap_or(config.serializer);
        config.compress = compress.unwrap_or(config.compress);
        config.b64 = self.b64;
        config.append_mode = self.append_mode;
        config.url = url;
        config.host = self.host.clone();
        config.port = self.port;
        config.timeout_ms = self.timeout_ms.unwrap_or(config.timeout_ms);
        config.sync = self.sync;
        config.ttl_ms = self.ttl_ms;
        config.max_entries = self.max_entries;
        config.max_bytes = self.max_bytes;
        let config = Stash::builder().config(config).resolved_config()?;
        Ok(Stash::open_config(config, false)?)
    }
}

/// The server engine a URL names by its scheme.
fn server_engine(url: &str) -> Option<EngineKind> {
    let scheme = url.split_once("://")?.0;
    match scheme {
        "redis" | "rediss" | "redis+unix" => Some(EngineKind::Redis),
        "mongodb" | "mongodb+srv" => Some(EngineKind::Mongo),
        // Object storage; a `file://` URL names it only with `--engine objectstore`.
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" => Some(EngineKind::ObjectStore),
        _ => None,
    }
}

/// With `--path`, options given on the command line must match what the stash recorded.
fn check_agrees(
    stash: &Stash,
    engine: Option<EngineKind>,
    serializer: Option<Serializer>,
    compress: Option<Compressor>,
    b64: bool,
    append_mode: bool,
) -> Result<(), Error> {
    let c = stash.config();
    let mut found = Vec::new();
    let mut requested = Vec::new();
    let mut differ = |name: &str, recorded: String, given: Option<String>| {
        if let Some(given) = given.filter(|g| *g != recorded) {
            found.push(format!("{name}={recorded}"));
            requested.push(format!("{name}={given}"));
        }
    };
    differ(
        "engine",
        c.engine.to_string(),
        engine.map(|e| e.to_string()),
    );
    differ(
        "serializer",
        c.serializer.to_string(),
        serializer.map(|s| s.to_string()),
    );
    differ(
        "compress",
        c.compress.to_string(),
        compress.map(|x| x.to_string()),
    );
    differ("b64", c.b64.to_string(), b64.then(|| "true".into()));
    differ(
        "append_mode",
        c.append_mode.to_string(),
        append_mode.then(|| "true".into()),
    );
    if found.is_empty() {
        Ok(())
    } else {
        Err(Error::FormatConflict {
            path: stash.stash_dir(),
            found: found.join(" "),
            requested: requested.join(" "),
        })
    }
}

/// Options of `hashstash profile`.
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Items per combination [default: 10000; 1000 with --quick].
    #[arg(long)]
    pub items: Option<usize>,
    /// 1,000 items per combination: every combination in well under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Engines, comma-separated [default: every one compiled in; servers when their URL is
    /// in the environment].
    #[arg(long, value_delimiter = ',')]
    pub engines: Vec<String>,
    /// Serializers, comma-separated [default: all].
    #[arg(long, value_delimiter = ',')]
    pub serializers: Vec<String>,
    /// Compressors, comma-separated [default: every one compiled in].
    #[arg(long, value_delimiter = ',')]
    pub compressors: Vec<String>,
    /// Where the stashes go (a tmpfs such as /dev/shm measures the code, a disk the disk)
    /// [default: the system's temporary folder].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// One JSON record per combination instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also draw the figures (PNG) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

/// Parses a comma-separated list of names, or gives `all` when none was given.
pub fn names<T: std::str::FromStr<Err = Error>>(
    given: &[String],
    all: Vec<T>,
) -> Result<Vec<T>, Error> {
    if given.is_empty() {
        return Ok(all);
    }
    given.iter().map(|name| name.trim().parse()).collect()
}
