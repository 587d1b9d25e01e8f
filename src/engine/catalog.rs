//! Change counters and table catalogs: how a table over a stash knows its schema without
//! reading every entry.
//!
//! An engine that implements [`Catalog`] (every engine here) keeps a *generation*: a number
//! that changes whenever its entries may have changed, by this process or any other, and
//! small records beside its data where tables keep the schema they inferred at a generation.
//! A table whose recorded generation is the engine's current one reuses the schema; any other
//! costs a new inference. The generation only has to change: it is compared, never ordered.
//!
//! How each engine keeps it: LMDB, its own last transaction id (and the data file's
//! identity); SQLite and diskcache, a counter row raised in the write transaction; memory, a
//! counter raised under the store's write lock; Redis, a key raised by the script (or
//! transaction) that writes; MongoDB, a field of the stash's `hashstash_meta` document raised
//! after each write; pairtree, a token file replaced after each write.
//!
//! Catalog records are a cache: a record that cannot be read, or does not parse, is a miss.

use crate::error::{Error, Result};
use std::path::Path;

/// An engine's change counter and catalog records (see the module's docs).
pub trait Catalog {
    /// A number that changes whenever the stored entries may have changed.
    fn generation(&self) -> Result<u64>;

    /// The catalog record `name` (a short ASCII name), if one is kept.
    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// Keeps `bytes` as the catalog record `name`, replacing any earlier one.
    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()>;

    /// Records `format` (the stash's format, as JSON) in the store if it has none yet, and
    /// returns the one recorded. Engines whose store has no room for it (the file engines)
    /// return `None`: the stash then keeps `format.json` in its folder.
    fn record_format(&self, format: &[u8]) -> Result<Option<Vec<u8>>> {
        let _ = format;
        Ok(None)
    }
}

/// The stash folder of the data file (or folder) `data`, its `data.db`: where the file
/// engines keep their catalog records.
pub(crate) fn folder_of(data: &Path) -> &Path {
    data.parent().unwrap_or(Path::new("."))
}

/// The catalog record `name` kept as the file `<dir>/<name>` (the file engines keep theirs in
/// the stash's folder, beside `data.db`); `None` when there is none.
pub(crate) fn read_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Writes the catalog record file `<dir>/<name>` whole: a temporary file renamed over it, so
/// that a reader sees the old record or the new one.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    let mut file = tempfile::Builder::new()
        .prefix(".catalog.")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&path, e))?;
    file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    Ok(())
}
