//! Stashes as tables: flattened records (`ld`), and with the `sql` feature Arrow record
//! batches, SQL (DataFusion) and parquet files built on them.
//!
//! # Flattening
//!
//! Flattening a stash into records is the Python original's `assemble_ld`, the first step of
//! every table view (DataFrames, SQL, parquet).
//!
//! Each entry becomes one or more rows of named cells:
//!
//! - **key columns**: a scalar key (text, number, bool) is `_key`; a map key spreads into its
//!   own columns (nested maps dotted, like values); any other key (a list, a set, bytes) is
//!   `_key` as it is. In a function stash the key is the arguments: `_arg1.._argN`, or a
//!   struct's fields (see `argument_columns`);
//! - **value columns**: a map value flattens into dotted columns (`etc.goes_to.heaven`);
//!   lists of scalars stay lists; a list holding records (or DataFrames) becomes one row per
//!   element, each record flattened and each scalar in `_value`; a DataFrame becomes one row
//!   per DataFrame row; any other value is `_value`;
//! - **append mode** adds `_version` (1..n) and `_timestamp` (seconds since the epoch, UTC),
//!   for the latest version of each key or, on request, every version.
//!
//! Column order is the order of first appearance: key columns, value columns, then the
//! metadata columns.

#[cfg(feature = "sql")]
pub(crate) mod batch;
pub(crate) mod cell;
pub(crate) mod flatten;
#[cfg(all(feature = "sql", feature = "dataframe"))]
pub mod frame;
#[cfg(feature = "sql")]
pub mod load;
#[cfg(feature = "sql")]
pub mod location;
#[cfg(feature = "sql")]
pub mod parquet_tables;
#[cfg(feature = "sql")]
pub mod provider;
#[cfg(feature = "sql")]
pub(crate) mod scan;
#[cfg(feature = "sql")]
pub mod schema;
#[cfg(feature = "sql")]
pub mod snapshot;
#[cfg(feature = "sql")]
pub mod sql;

pub use flatten::{Row, RowMeta};

use crate::engine::EngineExt;
use crate::error::Result;
use crate::stash::Stash;

/// Which versions become rows.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{Stash, Versions};
///
/// let stash = Stash::builder().root_dir(dir.path()).append_mode(true).open()?;
/// stash.set("price", &10)?;
/// stash.set("price", &12)?;
/// assert_eq!(stash.rows(Versions::Latest)?.count(), 1);
/// assert_eq!(stash.rows(Versions::All)?.count(), 2); // with _version and _timestamp
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Versions {
    /// The latest version of each key (the default).
    #[default]
    Latest,
    /// Every stored version (append mode), oldest first.
    All,
    /// The table as it stood at a moment: per key, the last version written at or before it
    /// (a key first written after it has no row). Outside append mode, the entries whose one
    /// version was written by then.
    AsOf(crate::time_filter::Moment),
    /// Every version written at or before a moment, oldest first: the history as it stood.
    AllUntil(crate::time_filter::Moment),
}

impl Versions {
    /// Keeps the versions (oldest first) that become rows.
    pub(crate) fn select(self, stored: &mut Vec<crate::engine::Version>) {
        if let Versions::AsOf(moment) | Versions::AllUntil(moment) = self {
            stored.retain(|v| v.timestamp_micros <= moment.unix_micros());
        }
        let every = matches!(self, Versions::All | Versions::AllUntil(_));
        if !every && stored.len() > 1 {
            stored.drain(..stored.len() - 1);
        }
    }

    /// Whether the rows of a stash outside append mode need each entry's write time.
    pub(crate) fn needs_times(self) -> bool {
        matches!(self, Versions::AsOf(_) | Versions::AllUntil(_))
    }
}

impl Stash {
    /// Every entry as flattened rows, read lazily (see [the rules](crate::table#flattening)). In append
    /// mode each row carries `_version` and `_timestamp`.
    pub fn rows(&self, versions: Versions) -> Result<Box<dyn Iterator<Item = Result<Row>> + '_>> {
        let codec = self.codec();
        let arguments = crate::memo::is_function_dbname(&self.config().dbname);
        let decode_key = move |bytes: &[u8]| flatten::table_key(bytes, arguments);
        let append_mode = self.config().append_mode;
        if !append_mode && !versions.needs_times() {
            return Ok(Box::new(self.raw_items()?.flat_map(move |item| {
                let rows = item.and_then(|(k, v)| {
                    let entry = || {
                        let key = decode_key(&k)?;
                        let value = codec.decode_cbor(&v)?;
                        flatten::flatten_entry(&key, &value, None)
                    };
                    entry().map_err(|e: crate::Error| e.for_entry(&k))
                });
                self.one_or_many(rows)
            })));
        }
        Ok(Box::new(self.raw_keys()?.flat_map(move |key| {
            let rows = key.and_then(|k| {
                let entry = || {
                    let mut versions_of_key = self.engine().history()?.versions(&k)?;
                    versions.select(&mut versions_of_key);
                    let key = decode_key(&k)?;
                    let mut rows = Vec::new();
                    for version in versions_of_key {
                        let value = codec.decode_cbor(&version.value)?;
                        let meta = append_mode.then(|| RowMeta {
                            version: version.version,
                            timestamp: version.timestamp_micros as f64 / 1e6,
                        });
                        rows.extend(flatten::flatten_entry(&key, &value, meta)?);
                    }
                    Ok(rows)
                };
                entry().map_err(|e: crate::Error| e.for_entry(&k))
            });
            self.one_or_many(rows)
        })))
    }

    /// Every entry as flattened records: the Python original's `stash.ld` / `assemble_ld`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let stash = hashstash::Stash::builder().root_dir(dir.path()).open()?;
    /// #[derive(serde::Serialize)]
    /// struct Etc { age: u8 }
    /// #[derive(serde::Serialize)]
    /// struct Animal { name: &'static str, etc: Etc }
    ///
    /// stash.set("Animal 1", &Animal { name: "cat", etc: Etc { age: 9 } })?;
    /// let rows = stash.ld()?;
    /// let columns: Vec<&str> = rows[0].iter().map(|(c, _)| c.as_str()).collect();
    /// assert_eq!(columns, ["_key", "name", "etc.age"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ld(&self) -> Result<Vec<Row>> {
        self.rows(Versions::Latest)?.collect()
    }

    /// Like [`Stash::ld`], with every version of every key in append mode.
    pub fn ld_all_versions(&self) -> Result<Vec<Row>> {
        self.rows(Versions::All)?.collect()
    }
}

impl Stash {
    /// The rows of one entry as an iterator; its error once, or none if the
    /// [`OnCorrupt`](crate::OnCorrupt) policy skips the entry.
    fn one_or_many(&self, rows: Result<Vec<Row>>) -> Box<dyn Iterator<Item = Result<Row>>> {
        match rows.or_else(|e| self.skip_or_fail(e).map(|()| Vec::new())) {
            Ok(rows) => Box::new(rows.into_iter().map(Ok)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
}
