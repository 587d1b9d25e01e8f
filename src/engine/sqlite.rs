//! The SQLite engine (rusqlite, SQLite bundled): one file, WAL mode.
//!
//! ```sql
//! entries(key BLOB, version INTEGER, ts INTEGER, value BLOB, sum INTEGER, UNIQUE(key, version))
//! ```
//!
//! Outside append mode each key has one row (version 1), replaced on write. In append mode a
//! write inserts `MAX(version) + 1` in the same statement; SQLite's write lock serializes that
//! across processes, so version numbers are unique and gap-free.
//!
//! **Durability**: WAL with `synchronous = NORMAL`: a committed write survives the process
//! being killed; after a power loss the last transactions before it may be rolled back, never
//! torn. With `sync`, `synchronous = FULL`: each commit is fsynced and survives a power loss. `sum` is the xxh3 checksum of the value: SQLite does not checksum its pages, and a
//! flipped bit in a value must be an error, not a different value. A busy timeout of 30 s makes writers in several processes wait for each other instead
//! of failing.

use super::{create_private_dir, now_micros, Engine, EntryIter, Version};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const SCAN_PAGE: usize = 512;

/// The SQLite engine.
#[derive(Debug)]
pub struct SqliteEngine {
    conn: Mutex<Connection>,
    path: PathBuf,
    append_mode: bool,
}

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::engine("sqlite", e)
}

const GET: &str = "SELECT value, sum FROM entries WHERE key = ?1 ORDER BY version DESC LIMIT 1";
const SET: &str =
    "INSERT OR REPLACE INTO entries(key, version, ts, value, sum) VALUES (?1, 1, ?2, ?3, ?4)";
const APPEND: &str = "INSERT INTO entries(key, version, ts, value, sum) \
     SELECT ?1, COALESCE(MAX(version), 0) + 1, ?2, ?3, ?4 FROM entries WHERE key = ?1";

impl SqliteEngine {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        Self::open_with(path, append_mode, false)
    }

    /// Like [`SqliteEngine::open`]; `sync`: `synchronous = FULL`, every commit fsynced.
    pub fn open_with(path: &Path, append_mode: bool, sync: bool) -> Result<Self> {
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        super::create_private_file(path)?;
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sql_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", if sync { "FULL" } else { "NORMAL" })
            .map_err(sql_err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
                key BLOB NOT NULL, version INTEGER NOT NULL, ts INTEGER NOT NULL, value BLOB NOT NULL,
                sum INTEGER NOT NULL,
                UNIQUE (key, version));",
        )
        .map_err(sql_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(SqliteEngine {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            append_mode,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: it rolls back.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, conn: &Connection, key: &[u8], value: &[u8]) -> Result<()> {
        let sql = if self.append_mode { APPEND } else { SET };
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![key, now_micros(), value, checksum(value)]))
            .map(drop)
            .map_err(sql_err)
    }
}

fn lookup(conn: &Connection, key: &[u8]) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached(GET)
        .and_then(|mut stmt| {
            stmt.query_row([key], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(sql_err)?
        .map(|(value, sum)| verified(value, sum, key))
        .transpose()
}

/// The checksum stored beside each value.
pub(crate) fn checksum(value: &[u8]) -> i64 {
    xxhash_rust::xxh3::xxh3_64(value) as i64
}

/// `value` if it matches its stored checksum, else a decode error naming the key.
pub(crate) fn verified(value: Vec<u8>, sum: i64, key: &[u8]) -> Result<Vec<u8>> {
    if checksum(&value) == sum {
        Ok(value)
    } else {
        let shown: String = key.iter().take(32).map(|b| format!("{b:02x}")).collect();
        Err(Error::decode(
            format!("sqlite entry with key bytes {shown}"),
            "sqlite",
            "checksum mismatch (corrupt value bytes)",
        ))
    }
}

impl Engine for SqliteEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        lookup(&self.conn(), key)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql_err)?;
        let out = keys.iter().map(|k| lookup(&tx, k)).collect();
        tx.commit().map_err(sql_err)?;
        out
    }

    fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        // An IMMEDIATE transaction takes the write lock up front, where SQLite's busy
        // handler waits for it. A lone `INSERT ... SELECT MAX(version)` would start as a
        // reader and fail at once (SQLITE_BUSY) when another process wrote in between.
        self.set_many(&[(key, value)])
    }

    fn set_many(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        for (k, v) in items {
            self.put(&tx, k, v)?;
        }
        tx.commit().map_err(sql_err)
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        self.conn()
            .prepare_cached("SELECT 1 FROM entries WHERE key = ?1 LIMIT 1")
            .and_then(|mut stmt| stmt.exists([key]))
            .map_err(sql_err)
    }

    fn remove(&self, key: &[u8]) -> Result<bool> {
        self.conn()
            .prepare_cached("DELETE FROM entries WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .map(|n| n > 0)
            .map_err(sql_err)
    }

    fn len(&self) -> Result<usize> {
        count_keys(&self.conn(), self.append_mode)
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        let rows =
            latest_rows_in_key_order(&self.conn, "value, sum", |r| Ok((r.get(1)?, r.get(2)?)));
        Ok(Box::new(rows.map(|item| {
            let (key, (value, sum)) = item?;
            let value = verified(value, sum, &key)?;
            Ok((key, value))
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        self.conn()
            .prepare_cached(
                "SELECT version, ts, value, sum FROM entries WHERE key = ?1 ORDER BY version",
            )
            .and_then(|mut stmt| {
                stmt.query_map([key], |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql_err)?
            .into_iter()
            .map(|(version, timestamp_micros, value, sum)| {
                Ok(Version {
                    version,
                    timestamp_micros,
                    value: verified(value, sum, key)?,
                })
            })
            .collect()
    }

    fn clear(&self) -> Result<()> {
        self.conn()
            .execute("DELETE FROM entries", [])
            .map(drop)
            .map_err(sql_err)
    }

    fn disk_usage(&self) -> Result<u64> {
        Ok(["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(with_suffix(&self.path, s)).ok())
            .map(|m| m.len())
            .sum())
    }
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal` and `-shm` files).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The latest version of every key of `entries`, in key order: `key` and `columns` (read by
/// `row` from index 1 on). A page per query, so no statement stays open across the caller's
/// iteration and writers are never blocked by a reader that went away. A bare column next
/// to `MAX()` comes from the row holding the maximum; two statements rather than
/// `?1 IS NULL OR key > ?1`, which would keep SQLite from seeking in the index.
pub(crate) fn latest_rows_in_key_order<'a, T: Send + 'a>(
    conn: &'a Mutex<Connection>,
    columns: &'static str,
    row: fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + Send + 'a {
    let first = format!(
        "SELECT key, {columns}, MAX(version) FROM entries GROUP BY key ORDER BY key LIMIT ?1"
    );
    let next = format!(
        "SELECT key, {columns}, MAX(version) FROM entries WHERE key > ?2 \
         GROUP BY key ORDER BY key LIMIT ?1"
    );
    let read = move |r: &rusqlite::Row| Ok((r.get::<_, Vec<u8>>(0)?, row(r)?));
    let mut after: Option<Vec<u8>> = None;
    let mut page: std::vec::IntoIter<(Vec<u8>, T)> = Vec::new().into_iter();
    let mut done = false;
    std::iter::from_fn(move || loop {
        if let Some(item) = page.next() {
            return Some(Ok(item));
        }
        if done {
            return None;
        }
        let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        let fetched: Result<Vec<(Vec<u8>, T)>> = match &after {
            None => conn
                .prepare_cached(&first)
                .and_then(|mut stmt| stmt.query_map([SCAN_PAGE as i64], read)?.collect()),
            Some(last) => conn.prepare_cached(&next).and_then(|mut stmt| {
                stmt.query_map(params![SCAN_PAGE as i64, last], read)?
                    .collect()
            }),
        }
        .map_err(sql_err);
        drop(conn);
        match fetched {
            Ok(rows) => {
                done = rows.len() < SCAN_PAGE;
                after = rows.last().map(|(k, _)| k.clone());
                page = rows.into_iter();
            }
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        }
    })
}

/// The number of keys in `entries` (in append mode a key has several rows).
pub(crate) fn count_keys(conn: &Connection, append_mode: bool) -> Result<usize> {
    let sql = if append_mode {
        "SELECT COUNT(DISTINCT key) FROM entries"
    } else {
        "SELECT COUNT(*) FROM entries"
    };
    conn.query_row(sql, [], |row| row.get::<_, i64>(0))
        .map(|n| n as usize)
        .map_err(sql_err)
}
