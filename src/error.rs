//! The one error type of the crate.
//!
//! Every fallible call returns [`Result<T>`]. The variants tell apart what a caller may want to
//! react to differently: a key that is not there, the disk, bytes that do not decode, a stash
//! opened with the wrong format, and an engine's own failure. Foreign causes are boxed so that
//! the public type does not change when a dependency does.

use std::path::PathBuf;

/// The result type of every fallible call in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed foreign error, kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a stash.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{Error, Stash};
///
/// let stash = Stash::builder().root_dir(dir.path()).open()?;
/// match stash.require::<_, String>("missing") {
///     Err(Error::KeyNotFound { key }) => assert!(key.contains("missing")),
///     other => panic!("{other:?}"),
/// }
/// stash.set("n", &1)?;
/// let wrong_type = stash.get::<_, Vec<String>>("n").unwrap_err();
/// assert!(wrong_type.to_string().contains("\"n\"")); // errors name their key
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key is not in the stash (from calls that require it, such as
    /// [`crate::Stash::require`]).
    #[error("key not found: {key}")]
    KeyNotFound {
        /// The key, as JSON text where it can be shown, else a description.
        key: String,
    },

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// Serializing a key or a value failed (a type serde cannot express in this format).
    #[error("cannot encode {what} with {format}: {source}")]
    Encode {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The serializer or compressor.
        format: String,
        /// The serializer's error.
        #[source]
        source: BoxError,
    },

    /// Stored bytes did not decode: corrupt data, or a type that does not match what was stored.
    #[error("cannot decode {what} with {format}: {source}")]
    Decode {
        /// What was being decoded (`"key"`, `"value"`, or an entry's description).
        what: String,
        /// The serializer, compressor or base64 step that failed.
        format: String,
        /// The decoder's error.
        #[source]
        source: BoxError,
    },

    /// The stash on disk was created with another format than the one asked for.
    #[error("format conflict at {path}: the stash was created with {found}, but was opened with {requested}")]
    FormatConflict {
        /// The stash folder.
        path: PathBuf,
        /// The recorded format.
        found: String,
        /// The requested format.
        requested: String,
    },

    /// An option has a value that is not understood (an unknown engine name, say).
    #[error("invalid option {option}: {message}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong, and what would be right.
        message: String,
    },

    /// The engine is known but was not compiled in.
    #[error("engine {engine} is not compiled in: enable the cargo feature `{feature}`")]
    EngineNotCompiled {
        /// The engine's name.
        engine: &'static str,
        /// The cargo feature that brings it.
        feature: &'static str,
    },

    /// A copy ended with another number of entries in its destination than it wrote there.
    #[error(
        "the copy's destination holds {found} entries where {expected} were expected \
         (another process wrote or removed entries meanwhile, or the engine lost writes)"
    )]
    CopyMismatch {
        /// The entries before the copy plus the new keys it brought.
        expected: u64,
        /// The entries counted after it.
        found: u64,
    },
    /// A value is larger than the engine can store in one entry.
    #[error("{engine} cannot store a value of {size} bytes: its limit is {limit} bytes")]
    ValueTooLarge {
        /// The engine.
        engine: &'static str,
        /// The value's size in bytes.
        size: u64,
        /// The largest value the engine takes.
        limit: u64,
    },

    /// A query, or writing or reading its Arrow or parquet data, failed (feature `sql`):
    /// DataFusion's error, for example a column or table the query names that does not exist.
    #[error("SQL failed: {source}")]
    Sql {
        /// DataFusion's (or Arrow's, or parquet's) error.
        #[source]
        source: BoxError,
    },

    /// The engine cannot do what was asked (an engine of another crate without a history,
    /// for one; see [`crate::engine::Capabilities`]).
    #[error("the {engine} engine has no {capability}")]
    Unsupported {
        /// The engine's name.
        engine: &'static str,
        /// What it lacks.
        capability: &'static str,
    },

    /// The storage engine failed (LMDB, SQLite, ...).
    #[error("{engine} engine error: {source}")]
    Engine {
        /// The engine's name.
        engine: &'static str,
        /// The engine's error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Engine`] from any error of engine `engine`.
    #[cfg_attr(not(any(feature = "lmdb", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn engine(engine: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Engine {
            engine,
            source: source.into(),
        }
    }

    /// An [`Error::Unsupported`]: engine `engine` has no `capability`.
    pub(crate) fn unsupported(engine: &'static str, capability: &'static str) -> Self {
        Error::Unsupported { engine, capability }
    }

    /// An [`Error::Decode`] of `what` in `format`.
    pub(crate) fn decode(
        what: impl Into<String>,
        format: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Decode {
            what: what.into(),
            format: format.into(),
            source: source.into(),
        }
    }

    /// True when this error means "the key is not there".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::KeyNotFound { .. })
    }
}
