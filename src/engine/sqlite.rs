//! The SQLite engine (rusqlite, SQLite bundled): one file, WAL mode.
//!
//! ```sql
//! entries(key BLOB, version INTEGER, ts INTEGER, value BLOB, sum INTEGER, expires INTEGER,
//!         UNIQUE(key, version))
//! entries_expires ON entries(expires) WHERE expires IS NOT NULL
//! ```
//!
//! Outside append mode each key has one row (version 1), replaced on write. In append mode a
//! write inserts `MAX(version) + 1` in the same statement; SQLite's write lock serializes that
//! across processes, so version numbers are unique and gap-free.
//!
//! **Expiry.** `expires` is µs since the Unix epoch, NULL for never (most rows). Reads decide
//! in SQL whether a key's latest row is live, in the same single-row seek as before, so a
//! store without expiring entries does no extra work; an expired entry stays on disk (and in
//! `len`) until `prune_expired` deletes it. The partial index holds only rows that expire, so
//! pruning seeks them instead of scanning the table, and costs nothing to stores that never
//! use expiry. Databases made before the column existed get it on open (`ALTER TABLE`).
//!
//! **Durability**: WAL with `synchronous = NORMAL`: a committed write survives the process
//! being killed; after a power loss the last transactions before it may be rolled back, never
//! torn. With `sync`, `synchronous = FULL`: each commit is fsynced and survives a power loss.
//!
//! **Checksums.** `sum` covers the key, version, time, expiry and value of its row (see
//! `sqlite_checksum.rs`): SQLite does not checksum its pages, and a flipped bit in a value
//! or a key must be an error, not a different value or an entry under another key. Every
//! read and scan checks it. Databases whose sums covered the value alone move to this
//! layout on open, once.
//!
//! **Concurrency.** A busy timeout of 30 s makes writers in several processes wait for each
//! other instead of failing, and an open that SQLite refuses at once because another process is making the
//! same new file is tried again (`open_wal`).
//!
//! **Time filters** ([`History::scan_written`]) seek an index on `(ts, key)`, made by the first
//! scan that filters by time.

use super::sqlite_catalog::bump;
use super::sqlite_checksum::{upgrade_checksums, RowMeta};
use super::{
    create_private_dir, now_micros, Engine, EntryIter, StoredEntry, StoredIter, TimeWindow,
    Version, WriteItem, WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[path = "sqlite_capabilities.rs"]
mod capabilities;

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

/// The latest row of `?1` and whether it is live at `?2` (now, µs): one index seek, as
/// without expiry. The expiry is judged on the latest row only (a `WHERE` on it would find an
/// older live version in append mode), and a NULL `expires` (never) is decided from the row
/// header alone, so rows that never expire cost nothing more to read.
const GET: &str = "SELECT value, sum, expires IS NULL OR expires > ?2, version, ts, expires \
     FROM entries WHERE key = ?1 ORDER BY version DESC LIMIT 1";
const CONTAINS: &str = "SELECT expires IS NULL OR expires > ?2 \
     FROM entries WHERE key = ?1 ORDER BY version DESC LIMIT 1";
const SET: &str = "INSERT OR REPLACE INTO entries(key, version, ts, value, sum, expires) \
     VALUES (?1, 1, ?2, ?3, ?4, ?5)";
const APPEND: &str = "INSERT INTO entries(key, version, ts, value, sum, expires) \
     VALUES (?1, ?6, ?2, ?3, ?4, ?5)";
/// The version an append writes: one above the key's latest (read in the writing
/// transaction, which holds SQLite's write lock, so no other writer takes it meanwhile).
const NEXT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) + 1 FROM entries WHERE key = ?1";

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
        let synchronous = if sync { "FULL" } else { "NORMAL" };
        let pragmas = [("journal_mode", "WAL"), ("synchronous", synchronous)];
        let conn = open_wal(path, &pragmas, |conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS entries (
                key BLOB NOT NULL, version INTEGER NOT NULL, ts INTEGER NOT NULL, value BLOB NOT NULL,
                sum INTEGER NOT NULL, expires INTEGER,
                UNIQUE (key, version));",
            )?;
            add_expiry_column(conn)?;
            super::sqlite_catalog::create_counter(conn)?;
            upgrade_checksums(conn)
        })?;
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

    /// Writes one item inside the caller's transaction, recording `ts` and `expires`.
    fn put(
        &self,
        conn: &Connection,
        key: &[u8],
        value: &[u8],
        ts: i64,
        expires: Option<i64>,
    ) -> Result<()> {
        let version: i64 = if self.append_mode {
            conn.prepare_cached(NEXT_VERSION)
                .and_then(|mut stmt| stmt.query_row([key], |r| r.get(0)))
                .map_err(sql_err)?
        } else {
            1
        };
        let sum = RowMeta {
            key,
            version,
            ts,
            expires,
        }
        .checksum(value);
        let written = if self.append_mode {
            conn.prepare_cached(APPEND)
                .and_then(|mut stmt| stmt.execute(params![key, ts, value, sum, expires, version]))
        } else {
            conn.prepare_cached(SET)
                .and_then(|mut stmt| stmt.execute(params![key, ts, value, sum, expires]))
        };
        written.map(drop).map_err(sql_err)
    }
}

/// Gives a database made before expiry existed its `expires` column (NULL: every existing
/// row never expires, as before) and creates the partial index that `prune_expired` seeks.
/// Shared with diskcache, whose index has the same `entries` columns that matter here.
pub(crate) fn add_expiry_column(conn: &Connection) -> rusqlite::Result<()> {
    let has_column = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.prepare("SELECT 1 FROM pragma_table_info('entries') WHERE name = 'expires'")
            .and_then(|mut stmt| stmt.exists([]))
    };
    if !has_column(conn)? {
        // Under the write lock, checked again: another process opening the same old
        // database at the same moment may have added it first, and a second `ADD COLUMN`
        // would fail.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let added = has_column(conn).and_then(|has| {
            if has {
                Ok(())
            } else {
                conn.execute_batch("ALTER TABLE entries ADD COLUMN expires INTEGER")
            }
        });
        match added {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    // Only rows that expire are in it: stores that never use expiry pay nothing for it.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires IS NOT NULL",
    )
}

/// How long a process waits for others: SQLite's busy timeout, and the bound on retrying
/// an open that SQLite failed at once.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the database at `path`, sets `pragmas` in order (among them `journal_mode = WAL`)
/// and runs `schema` (which must be idempotent): shared by the SQLite and diskcache engines.
///
/// Several processes opening a new database at once can get `SQLITE_BUSY` at once, without
/// SQLite's busy handler waiting: turning a new (empty) file to WAL upgrades a read lock to
/// a write lock, and of two connections doing so one must give way or both would wait for
/// ever. So the whole set-up is tried again, after a short sleep, until [`BUSY_TIMEOUT`]:
/// every step is idempotent, and once the file is in WAL mode the race is gone.
pub(crate) fn open_wal(
    path: &Path,
    pragmas: &[(&str, &str)],
    schema: impl Fn(&Connection) -> rusqlite::Result<()>,
) -> Result<Connection> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = Connection::open(path).and_then(|conn| {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            for &(name, value) in pragmas {
                conn.pragma_update(None, name, value)?;
            }
            schema(&conn)?;
            Ok(conn)
        });
        match attempt {
            Err(e) if is_busy(&e) && started.elapsed() + pause < BUSY_TIMEOUT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other.map_err(sql_err),
        }
    }
}

/// Whether SQLite said another connection holds the lock it needs (`SQLITE_BUSY`).
fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Keys whose latest row has expired at `?1`: found through the partial index on `expires`
/// (only rows that expire), each checked against its key's latest version, so an entry a
/// writer replaced with a live value is not among them. One row per key. Used inside the
/// pruning transaction, so no write can come between this check and the delete.
pub(crate) const EXPIRED_KEYS: &str = "SELECT e.key FROM entries e \
     WHERE e.expires IS NOT NULL AND e.expires <= ?1 \
     AND e.version = (SELECT MAX(version) FROM entries WHERE key = e.key)";

/// How many keys have expired at `now_micros` ([`EXPIRED_KEYS`]).
pub(crate) fn count_expired(conn: &Connection, now_micros: i64) -> Result<i64> {
    conn.query_row(
        &format!("SELECT COUNT(*) FROM ({EXPIRED_KEYS})"),
        [now_micros],
        |r| r.get(0),
    )
    .map_err(sql_err)
}

fn lookup(conn: &Connection, key: &[u8]) -> Result<Option<Vec<u8>>> {
    type Latest = (Vec<u8>, i64, bool, i64, i64, Option<i64>);
    let latest: Option<Latest> = conn
        .prepare_cached(GET)
        .and_then(|mut stmt| {
            stmt.query_row(params![key, now_micros()], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .optional()
        })
        .map_err(sql_err)?;
    match latest {
        Some((value, sum, true, version, ts, expires)) => RowMeta {
            key,
            version,
            ts,
            expires,
        }
        .verified(value, sum, "sqlite")
        .map(Some),
        // Missing, or its latest version has expired: a miss either way.
        _ => Ok(None),
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

    /// The one write path: `set` and `set_many` come here too.
    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        // An IMMEDIATE transaction takes the write lock up front, where SQLite's busy
        // handler waits for it. A lone `INSERT ... SELECT MAX(version)` would start as a
        // reader and fail at once (SQLITE_BUSY) when another process wrote in between.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        // One write time for the whole transaction (its items are stored together), taken
        // once it holds the write lock.
        let now = now_micros();
        for &(k, v, meta) in items {
            self.put(
                &tx,
                k,
                v,
                meta.timestamp_micros.unwrap_or(now),
                meta.expires_micros,
            )?;
        }
        bump(&tx)?;
        tx.commit().map_err(sql_err)
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        // Present and live: its latest row says so (None: missing).
        self.conn()
            .prepare_cached(CONTAINS)
            .and_then(|mut stmt| {
                stmt.query_row(params![key, now_micros()], |r| r.get::<_, bool>(0))
                    .optional()
            })
            .map(|live| live == Some(true))
            .map_err(sql_err)
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        // One transaction: one commit for all of them.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let mut removed = 0;
        for key in keys {
            let n = tx
                .prepare_cached("DELETE FROM entries WHERE key = ?1")
                .and_then(|mut stmt| stmt.execute([key]))
                .map_err(sql_err)?;
            removed += u64::from(n > 0);
        }
        if removed > 0 {
            bump(&tx)?;
        }
        tx.commit().map_err(sql_err)?;
        Ok(removed)
    }

    fn len(&self) -> Result<usize> {
        count_keys(&self.conn(), self.append_mode)
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        let rows = latest_rows_in_key_order(&self.conn, "ts, expires, value, sum, version", |r| {
            Ok((r.get(1)?, r.get(2)?, (r.get(3)?, r.get(4)?, r.get(5)?)))
        });
        Ok(Box::new(rows.map(|item| {
            let (key, (ts, expires, checked)) = item?;
            let value = verify_row(&key, ts, expires, checked)?;
            Ok((key, value))
        })))
    }

    fn clear(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        tx.execute("DELETE FROM entries", []).map_err(sql_err)?;
        bump(&tx)?;
        tx.commit().map_err(sql_err)
    }

    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            history: Some(self),
            atomic_insert: Some(self),
            housekeeping: Some(self),
            catalog: Some(self),
            ..Capabilities::default()
        }
    }
}

/// The value of a scanned row, `(value, sum, version)`, checked against its checksum.
fn verify_row(
    key: &[u8],
    ts: i64,
    expires: Option<i64>,
    (value, sum, version): (Vec<u8>, i64, i64),
) -> Result<Vec<u8>> {
    RowMeta {
        key,
        version,
        ts,
        expires,
    }
    .verified(value, sum, "sqlite")
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal` and `-shm` files).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether a version expiring at `expires` (µs; `None`: never) has expired at `now`.
pub(crate) fn is_expired(expires: Option<i64>, now: i64) -> bool {
    expires.is_some_and(|at| at <= now)
}

/// The latest version of every key of `entries` that is live (not expired), in key order:
/// `key` and `columns` (read by `row` from index 1 on). A page per query, so no statement
/// stays open across the caller's iteration and writers are never blocked by a reader that
/// went away. A bare column next to `MAX()` comes from the row holding the maximum, in
/// `HAVING` too, so an expired latest version hides its key even when older versions are
/// live; `LIMIT` counts rows after `HAVING`, so a short page still means the end. Two
/// statements rather than `?1 IS NULL OR key > ?1`, which would keep SQLite from seeking in
/// the index.
pub(crate) fn latest_rows_in_key_order<'a, T: Send + 'a>(
    conn: &'a Mutex<Connection>,
    columns: &str,
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<T> + Copy + Send + 'a,
) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + Send + 'a {
    let first = format!(
        "SELECT key, {columns}, MAX(version) FROM entries \
         GROUP BY key HAVING expires IS NULL OR expires > ?2 ORDER BY key LIMIT ?1"
    );
    let next = format!(
        "SELECT key, {columns}, MAX(version) FROM entries WHERE key > ?3 \
         GROUP BY key HAVING expires IS NULL OR expires > ?2 ORDER BY key LIMIT ?1"
    );
    let read = move |r: &rusqlite::Row| Ok((r.get::<_, Vec<u8>>(0)?, row(r)?));
    let fetch =
        move |conn: &Connection, after: Option<&Vec<u8>>| -> rusqlite::Result<Vec<(Vec<u8>, T)>> {
            // Expiry is judged per page, at the time the page is read.
            let now = now_micros();
            match after {
                None => conn.prepare_cached(&first).and_then(|mut stmt| {
                    stmt.query_map(params![SCAN_PAGE as i64, now], read)?
                        .collect()
                }),
                Some(last) => conn.prepare_cached(&next).and_then(|mut stmt| {
                    stmt.query_map(params![SCAN_PAGE as i64, now, last], read)?
                        .collect()
                }),
            }
        };
    pages(conn, fetch, |(key, _): &(Vec<u8>, T)| key.clone())
}

/// Rows read lazily, a page (one statement, under the connection's lock) at a time: `fetch`
/// reads the page after the row `cursor` names (`None`: the first page).
fn pages<'a, R: Send + 'a, C: Send + 'a>(
    conn: &'a Mutex<Connection>,
    fetch: impl Fn(&Connection, Option<&C>) -> rusqlite::Result<Vec<R>> + Send + 'a,
    cursor: impl Fn(&R) -> C + Send + 'a,
) -> impl Iterator<Item = Result<R>> + Send + 'a {
    let mut after: Option<C> = None;
    let mut page: std::vec::IntoIter<R> = Vec::new().into_iter();
    let mut done = false;
    std::iter::from_fn(move || loop {
        if let Some(row) = page.next() {
            return Some(Ok(row));
        }
        if done {
            return None;
        }
        let locked = conn.lock().unwrap_or_else(|e| e.into_inner());
        let fetched = fetch(&locked, after.as_ref()).map_err(sql_err);
        drop(locked);
        match fetched {
            Ok(rows) => {
                done = rows.len() < SCAN_PAGE;
                if let Some(last) = rows.last() {
                    after = Some(cursor(last));
                }
                page = rows.into_iter();
            }
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        }
    })
}

/// A row of `(key, ts, expires, columns)`.
pub(crate) type TimedRow<T> = (Vec<u8>, i64, Option<i64>, T);

/// Rows of `(key, ts, expires, columns)`, read lazily.
pub(crate) type TimedRows<'a, T> = Box<dyn Iterator<Item = Result<TimedRow<T>>> + Send + 'a>;

/// The latest live row of each key written within `window`, with `ts` and `expires`, a page
/// at a time in `(ts, key)` order: a seek in the index `entries_ts` on `(ts, key)`, which
/// the first such scan creates (stores never filtered by time never pay for it). Only a
/// key's latest version counts: an older version in the window does not bring its key in.
/// Shared with diskcache, whose `entries` has the same columns that matter here.
pub(crate) fn latest_rows_written<'a, T: Send + 'a>(
    conn: &'a Mutex<Connection>,
    window: TimeWindow,
    columns: &'static str,
    row: fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<TimedRows<'a, T>> {
    if window.is_everything() {
        // Every entry: pages in key order, which need no index on the time.
        let with_time = move |r: &rusqlite::Row| Ok((r.get(1)?, r.get(2)?, row(r)?));
        let rows = latest_rows_in_key_order(conn, &format!("ts, expires, {columns}"), with_time);
        return Ok(Box::new(rows.map(|item| {
            let (key, (ts, expires, t)) = item?;
            Ok((key, ts, expires, t))
        })));
    }
    conn.lock()
        .unwrap_or_else(|e| e.into_inner())
        .execute_batch("CREATE INDEX IF NOT EXISTS entries_ts ON entries(ts, key)")
        .map_err(sql_err)?;
    // ?1 page size, ?2 now, ?3..?4 the window, ?5..?6 the last (ts, key) read.
    let sql = format!(
        "SELECT key, ts, expires, {columns} FROM entries e \
         WHERE ts BETWEEN ?3 AND ?4 AND (ts, key) > (?5, ?6) \
         AND (expires IS NULL OR expires > ?2) \
         AND version = (SELECT MAX(version) FROM entries WHERE key = e.key) \
         ORDER BY ts, key LIMIT ?1"
    );
    let (lowest, highest) = window.bounds();
    let read = move |r: &rusqlite::Row| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, i64>(1)?,
            r.get(2)?,
            row(r)?,
        ))
    };
    let fetch = move |conn: &Connection,
                      after: Option<&(i64, Vec<u8>)>|
          -> rusqlite::Result<Vec<TimedRow<T>>> {
        // Before the window's first row: no key is empty.
        let (ts, key) = after.cloned().unwrap_or((lowest, Vec::new()));
        let args = params![SCAN_PAGE as i64, now_micros(), lowest, highest, ts, key];
        conn.prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_map(args, read)?.collect())
    };
    let cursor = |(key, ts, _, _): &TimedRow<T>| (*ts, key.clone());
    Ok(Box::new(pages(conn, fetch, cursor)))
}

/// The number of keys in `entries` (in append mode a key has several rows), expired ones
/// included until they are pruned (the contract's `len`; counting only live ones would
/// read every row).
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
