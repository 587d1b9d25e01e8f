//! # hashstash
//!
//! A persistent, dictionary-like cache where anything serde can serialize is a key or a value,
//! on pluggable engines (LMDB, pairtree, SQLite, diskcache, memory, Redis, MongoDB), with
//! pluggable serializers and compressors. A Rust re-creation of the Python library
//! [HashStash](https://pypi.org/project/hashstash/) ("the Python original" in these docs).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use hashstash::Stash;
//! use std::collections::{HashMap, HashSet};
//!
//! let stash = Stash::builder().root_dir(dir.path()).dbname("readme").open()?;
//!
//! // Any serde value is a key: strings, tuples, maps, sets, structs ...
//! stash.set("bad", "cat")?;
//! stash.set(&HashMap::from([("goodness", "bad")]), "cat")?;
//! stash.set(&HashSet::from(["bad", "good"]), "cat")?;
//!
//! // Keys are canonical: a set is found whatever its iteration order.
//! let same_set: HashSet<&str> = ["good", "bad"].into_iter().collect();
//! assert_eq!(stash.get::<_, String>(&same_set)?.as_deref(), Some("cat"));
//! assert_eq!(stash.len()?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Recipes for common tasks (memoize a function, query a cache with SQL, ship a parquet
//! snapshot, share a cache through Redis, migrate a stash to another engine) are in the
//! [`cookbook`]; the builder's options are on [`StashBuilder`], the dictionary API on
//! [`Stash`].
//!
//! ## The data path
//!
//! ```text
//! key   --canonical CBOR--> key bytes -----------------------------------> engine key
//! value --serializer--> bytes --compressor--> bytes --base64 (optional)--> engine value
//! ```
//!
//! ## Cargo features
//!
//! | feature     | what it adds                                              | default |
//! |-------------|-----------------------------------------------------------|---------|
//! | `lmdb`      | the LMDB engine (heed); the default engine when present   | yes     |
//! | `sqlite`    | the SQLite engine (rusqlite, SQLite bundled)              |         |
//! | `diskcache` | the diskcache engine: SQLite index, large values in files |         |
//! | `redis`     | the Redis engine (`rediss://` TLS through rustls)         |         |
//! | `mongo`     | the MongoDB engine (official driver, rustls)              |         |
//! | `zstd`      | the zstd compressor                                       |         |
//! | `blosc`     | the blosc compressor (links the system's c-blosc)         |         |
//! | `dataframe` | polars `DataFrame`s as keys and values (Arrow IPC inside) |         |
//! | `sql`       | Arrow record batches, SQL (DataFusion), parquet export    |         |
//! | `plot`      | `hashstash profile --plot`: PNG figures (plotters)        |         |
//! | `async`     | `AsyncStash` for tokio, `#[stashed_result]` on `async fn` |         |
//! | `filebased` | every file-based engine: `lmdb`, `sqlite`, `diskcache`    |         |
//! | `servers`   | every server engine: `redis`, `mongo`                     |         |
//! | `engines`   | every engine                                              |         |
//! | `best`      | the analytics toolkit: `lmdb`, `dataframe` and `sql` (lz4 is built in) | |
//! | `all`       | everything above                                          |         |
//!
//! (`internals` is not part of the API: it opens internal modules to this crate's own tests
//! and benches.)
//!
//! The pairtree and memory engines, the `hashstash`, `json` and `postcard` serializers and the
//! `raw`, `lz4`, `zlib`, `gzip` and `bz2` compressors are always built in.

#![warn(missing_docs)]

#[cfg(feature = "async")]
pub mod async_stash;
mod builder;
pub mod codec;
pub mod config;
pub mod cookbook;
pub mod copy;
mod corrupt;
pub mod engine;
mod error;
pub mod limits;
pub mod map;
pub mod memo;
pub mod profile;
pub mod progress;
mod stash;
pub mod stats;
pub mod table;
pub mod time_filter;
mod typed;
pub mod value;

#[cfg(feature = "async")]
pub use async_stash::AsyncStash;
pub use codec::{decode, deserialize, encode, serialize, Codec, Compressor, Serializer};
pub use config::StashConfig;
pub use copy::{CopyOptions, CopyReport};
pub use corrupt::OnCorrupt;
pub use engine::{Engine, EngineExt, EngineKind};
pub use error::{BoxError, Error, Result};
pub use stash::{Stash, StashBuilder, TmpStash, Versioned};
pub use stats::Stats;
pub use table::{Row, Versions};
pub use time_filter::{Moment, Prune, PruneReport, TimeFilter};
pub use typed::Typed;
pub use value::Value;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use hashstash_macros::{stash_mapped, stashed_result};
