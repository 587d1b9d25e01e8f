//! The one integration-test binary: every test module is listed here.

/// Defines a conformance test once and runs it on every engine compiled in: the function
/// stays as written, and a module of the same name holds one `#[test]` per engine
/// (`get_set_contains_remove::lmdb`, `::sqlite`, ...), so adding a test adds it to every
/// engine with no second list, and an engine joins by one line here. A server engine whose
/// server is not reachable is skipped (`common::engine_available`; with
/// `HASHSTASH_REQUIRE_SERVERS=1` that is a failure).
macro_rules! engine_test {
    ($(#[$meta:meta])* pub fn $name:ident($engine:ident: EngineKind) $body:block) => {
        $(#[$meta])*
        pub fn $name($engine: EngineKind) $body

        mod $name {
            engine_test!(@on $name, pairtree, Pairtree);
            engine_test!(@on $name, memory, Memory);
            #[cfg(feature = "lmdb")]
            engine_test!(@on $name, lmdb, Lmdb);
            #[cfg(feature = "sqlite")]
            engine_test!(@on $name, sqlite, Sqlite);
            #[cfg(feature = "diskcache")]
            engine_test!(@on $name, diskcache, Diskcache);
            #[cfg(feature = "redis")]
            engine_test!(@on $name, redis, Redis);
            #[cfg(feature = "mongo")]
            engine_test!(@on $name, mongo, Mongo);
            #[cfg(feature = "objectstore")]
            engine_test!(@on $name, objectstore, ObjectStore);
        }
    };
    (@on $name:ident, $test:ident, $engine:ident) => {
        #[test]
        fn $test() {
            if crate::common::engine_available(hashstash::EngineKind::$engine) {
                super::$name(hashstash::EngineKind::$engine);
            }
        }
    };
}

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
mod engine_core;
mod fuzz;
#[cfg(feature = "sql")]
mod history;
mod insert_and_clear;
mod keys;
mod lifecycle;
#[cfg(all(feature = "lmdb", feature = "internals"))]
mod lmdb_layout;
#[cfg(feature = "macros")]
mod macros;
mod map;
mod memo;
mod notebook;
#[cfg(all(feature = "objectstore", feature = "sql"))]
mod object_snapshots;
#[cfg(feature = "objectstore")]
mod objectstore;
#[cfg(feature = "cli")]
mod processes;
#[cfg(feature = "sqlite")]
mod row_checksums;
#[cfg(feature = "sql")]
mod scan;
#[cfg(unix)]
mod security;
#[cfg(any(feature = "redis", feature = "mongo", feature = "objectstore"))]
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
