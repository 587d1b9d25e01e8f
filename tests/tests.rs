//! The one integration-test binary: every test module is listed here.

#[cfg(feature = "async")]
mod async_stash;
mod bit_flips;
mod cache;
#[cfg(feature = "sql")]
mod catalog;
#[cfg(feature = "cli")]
mod cli;
mod codecs;
mod common;
mod concurrency;
mod conformance;
mod corruption;
mod crashes;
#[cfg(feature = "dataframe")]
mod dataframe;
#[cfg(feature = "diskcache")]
mod diskcache;
#[cfg(feature = "sql")]
mod duckdb;
mod fuzz;
#[cfg(feature = "sql")]
mod history;
mod insert_and_clear;
mod keys;
mod lifecycle;
#[cfg(feature = "lmdb")]
mod lmdb_layout;
#[cfg(feature = "macros")]
mod macros;
mod map;
mod memo;
mod notebook;
#[cfg(feature = "cli")]
mod processes;
#[cfg(feature = "sqlite")]
mod row_checksums;
#[cfg(feature = "sql")]
mod scan;
#[cfg(unix)]
mod security;
#[cfg(any(feature = "redis", feature = "mongo"))]
mod servers;
#[cfg(feature = "sql")]
mod slt;
#[cfg(feature = "sql")]
mod snapshot;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "sql")]
mod stream;
mod table;
