//! The diskcache engine, in the spirit of Python's `diskcache`: an SQLite index with small
//! values inline and large values in files, a size limit, and an eviction policy.
//!
//! ```text
//! data.db/index.db          entries(key, version, ts, size, value | file, sum, expires)
//!                           + totals + entries_expires (partial index: expiring rows only)
//! data.db/ab/<random>.val   values of `FILE_THRESHOLD` bytes or more
//! ```
//!
//! **Size limit and eviction.** The stored size (values inline and in files) is kept in the
//! index as a running total, updated in the same transaction as every write, so knowing it
//! costs nothing. When a write takes the total above `size_limit` (default 1 GiB), the
//! least recently stored items (oldest rows first; in append mode old versions go before
//! the key's newer ones) are evicted until it fits, by policy `least-recently-stored`;
//! policy `none` never evicts. Finding the oldest row is an index seek, never a scan. A
//! single value larger than the limit is refused ([`Error::ValueTooLarge`]) rather than
//! allowed to evict everything.
//!
//! **Expiry** works as in the SQLite engine (whose helpers this engine shares): `expires` is
//! µs since the Unix epoch or NULL (never); reads judge the latest row in SQL and never open
//! the value file of an expired one; `prune_expired` finds expired rows through the partial
//! index and deletes them as removing does: their files after the commit, their sizes taken
//! off the running total in the same transaction. Expired items still count towards the
//! size limit until pruned or evicted. Indexes made before the column existed get it on open.
//!
//! **Reclaiming disk.** Removing, replacing, evicting, pruning or clearing deletes the value files
//! after the transaction commits, and the index file is created with
//! `auto_vacuum = INCREMENTAL` and gives its free pages back after each removal.
//!
//! **Durability** is SQLite's (WAL, `synchronous = NORMAL`) for the index; a value file is
//! written in full before its row is inserted, so a committed row never points at a partial
//! file (a crash in between can leave an unreferenced file, which `clear` removes). Value
//! files are not fsynced: after a power loss a row may point at a file whose content is
//! gone, which the checksum reports as an error, never as another value. With `sync`, the
//! index runs with `synchronous = FULL` and each value file and its folder are fsynced
//! before the row that points at it commits: a write that returned survives a power loss.
//!
//! **Concurrency.** Files are created only inside a write transaction (SQLite's write lock),
//! and unreferenced files are swept only under that lock, so a sweep never deletes the file
//! of a row being written. A reader that finds a file deleted under it (its row was
//! replaced or evicted meanwhile) looks the key up again.

use super::sqlite::{
    add_expiry_column, count_expired, count_keys, is_expired, latest_rows_in_key_order,
    latest_rows_written, open_wal, sql_err, EXPIRED_KEYS,
};
use super::sqlite_checksum::{upgrade_checksums, RowMeta};
use super::{
    create_private_dir, disk_usage_of, now_micros, Engine, EntryIter, StoredEntry, StoredIter,
    TimeWindow, Version, WriteItem, WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping};
use crate::config::{EvictionPolicy, StashConfig};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Values at least this large go to files, smaller ones inline (Python diskcache's default).
pub const FILE_THRESHOLD: usize = 32 * 1024;

#[path = "diskcache_capabilities.rs"]
mod capabilities;

/// The diskcache engine.
#[derive(Debug)]
pub struct DiskcacheEngine {
    conn: Mutex<Connection>,
    dir: PathBuf,
    append_mode: bool,
    size_limit: u64,
    policy: EvictionPolicy,
    /// fsync value files and commits (`StashConfig::sync`).
    sync: bool,
    /// Rows evicted through this handle (`Housekeeping::evictions`).
    evictions: std::sync::atomic::AtomicU64,
}

/// One stored item's value (inline bytes or a file name below the folder) and what its
/// checksum covers besides the value.
struct Stored {
    value: Option<Vec<u8>>,
    file: Option<String>,
    sum: i64,
    version: i64,
    ts: i64,
    expires: Option<i64>,
}

impl Stored {
    /// A row's `value, file, sum, version, ts, expires`, read from column `first` on.
    fn read(r: &rusqlite::Row, first: usize) -> rusqlite::Result<Stored> {
        Ok(Stored {
            value: r.get(first)?,
            file: r.get(first + 1)?,
            sum: r.get(first + 2)?,
            version: r.get(first + 3)?,
            ts: r.get(first + 4)?,
            expires: r.get(first + 5)?,
        })
    }
}

/// The columns [`Stored::read`] reads, in its order.
const STORED: &str = "value, file, sum, version, ts, expires";

impl DiskcacheEngine {
    /// Opens (creating if needed) the cache folder at `config.data_path()`.
    pub fn open(config: &StashConfig) -> Result<Self> {
        let dir = config.data_path();
        create_private_dir(&dir)?;
        let index = dir.join("index.db");
        super::create_private_file(&index)?;
        // auto_vacuum only takes effect on a database without tables: set it first.
        let synchronous = if config.sync { "FULL" } else { "NORMAL" };
        let pragmas = [
            ("auto_vacuum", "INCREMENTAL"),
            ("journal_mode", "WAL"),
            ("synchronous", synchronous),
        ];
        let conn = open_wal(&index, &pragmas, |conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS entries (
                key BLOB NOT NULL, version INTEGER NOT NULL, ts INTEGER NOT NULL,
                size INTEGER NOT NULL, value BLOB, file TEXT, sum INTEGER NOT NULL,
                expires INTEGER,
                UNIQUE (key, version));
             CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, amount INTEGER NOT NULL);
             INSERT OR IGNORE INTO totals VALUES ('size', 0);",
            )?;
            add_expiry_column(conn)?;
            super::sqlite_catalog::create_counter(conn)?;
            upgrade_checksums(conn)
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&index, std::fs::Permissions::from_mode(0o600));
        }
        Ok(DiskcacheEngine {
            conn: Mutex::new(conn),
            dir,
            append_mode: config.append_mode,
            size_limit: config.size_limit,
            policy: config.eviction_policy,
            evictions: Default::default(),
            sync: config.sync,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // SQLite rolls back whatever a panicking holder left half-done.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes a large value to a new file (a fresh random name, mode 0600) and returns its
    /// name relative to the folder. No row refers to it until it is complete.
    fn write_file(&self, value: &[u8]) -> Result<String> {
        let shard = format!("{:02x}", now_micros().rem_euclid(256));
        let folder = self.dir.join(&shard);
        create_private_dir(&folder)?;
        let mut file = tempfile::Builder::new()
            .prefix("")
            .suffix(".val")
            .tempfile_in(&folder)
            .map_err(|e| Error::io(&folder, e))?;
        file.write_all(value)
            .map_err(|e| Error::io(file.path(), e))?;
        if self.sync {
            file.as_file()
                .sync_all()
                .map_err(|e| Error::io(file.path(), e))?;
            // The file's name too: its row will point at it.
            std::fs::File::open(&folder)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(&folder, e))?;
        }
        let (_, path) = file.keep().map_err(|e| Error::io(&folder, e.error))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!("{shard}/{name}"))
    }

    /// The value of a stored item; `None` when its file was deleted under the reader (the
    /// row was replaced, removed or evicted since it was read).
    fn read_stored(&self, key: &[u8], stored: Stored) -> Result<Option<Vec<u8>>> {
        let value = match (stored.value, stored.file) {
            (Some(value), _) => value,
            (None, Some(file)) => {
                let path = self.dir.join(&file);
                match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
            (None, None) => {
                return Err(Error::decode(
                    "a diskcache entry",
                    "diskcache",
                    "no value and no file",
                ))
            }
        };
        RowMeta {
            key,
            version: stored.version,
            ts: stored.ts,
            expires: stored.expires,
        }
        .verified(value, stored.sum, "diskcache")
        .map(Some)
    }

    fn remove_files(&self, files: Vec<String>) {
        for file in files {
            // Best effort: a file left behind is garbage, never a wrong value.
            let _ = std::fs::remove_file(self.dir.join(file));
        }
    }

    /// Writes one item inside `tx` with write time `ts` and expiry `expires`; records a
    /// value file it creates in `created`, and returns files that are no longer referenced.
    fn put(
        &self,
        tx: &Connection,
        (key, value): (&[u8], &[u8]),
        ts: i64,
        expires: Option<i64>,
        created: &mut Vec<String>,
    ) -> Result<Vec<String>> {
        if self.policy != EvictionPolicy::None && value.len() as u64 > self.size_limit {
            // Storing it would evict everything, itself included.
            return Err(Error::ValueTooLarge {
                engine: "diskcache",
                size: value.len() as u64,
                limit: self.size_limit,
            });
        }
        let (inline, file) = if value.len() >= FILE_THRESHOLD {
            let file = self.write_file(value)?;
            created.push(file.clone());
            (None, Some(file))
        } else {
            (Some(value), None)
        };
        let mut orphans = Vec::new();
        let version: i64 = if self.append_mode {
            tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM entries WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .map_err(sql_err)?
        } else {
            let old: Option<(i64, Option<String>)> = tx
                .query_row(
                    "SELECT size, file FROM entries WHERE key = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql_err)?;
            if let Some((size, old_file)) = old {
                tx.execute("DELETE FROM entries WHERE key = ?1", [key])
                    .map_err(sql_err)?;
                add_size(tx, -size)?;
                orphans.extend(old_file);
            }
            1
        };
        tx.prepare_cached(
            "INSERT INTO entries(key, version, ts, size, value, file, sum, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            let sum = RowMeta { key, version, ts, expires }.checksum(value);
            s.execute(params![key, version, ts, value.len() as i64, inline, file, sum, expires])
        })
        .map_err(sql_err)?;
        add_size(tx, value.len() as i64)?;
        Ok(orphans)
    }

    /// Evicts the least recently stored items until the total fits; returns their files and
    /// how many rows it removed.
    fn evict(&self, tx: &Connection) -> Result<(Vec<String>, u64)> {
        let mut files = Vec::new();
        let mut evicted = 0;
        if self.policy == EvictionPolicy::None {
            return Ok((files, evicted));
        }
        loop {
            let total: i64 = tx
                .query_row("SELECT amount FROM totals WHERE name = 'size'", [], |r| {
                    r.get(0)
                })
                .map_err(sql_err)?;
            if total.max(0) as u64 <= self.size_limit {
                return Ok((files, evicted));
            }
            let oldest: Option<(i64, i64, Option<String>)> = tx
                .query_row(
                    "SELECT rowid, size, file FROM entries ORDER BY rowid LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            let Some((rowid, size, file)) = oldest else {
                return Ok((files, evicted));
            };
            tx.execute("DELETE FROM entries WHERE rowid = ?1", [rowid])
                .map_err(sql_err)?;
            add_size(tx, -size)?;
            files.extend(file);
            evicted += 1;
        }
    }

    /// Runs `f` in one immediate transaction, evicts, commits, then deletes freed files.
    fn write(
        &self,
        f: impl FnOnce(&Connection, &mut Vec<String>) -> Result<Vec<String>>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let mut created = Vec::new();
        let outcome = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            let mut freed = f(&tx, &mut created)?;
            let (evicted_files, evicted) = self.evict(&tx)?;
            freed.extend(evicted_files);
            // Every change of entries goes through here: the counter rises with it.
            super::sqlite_catalog::bump(&tx)?;
            tx.commit().map_err(sql_err)?;
            Ok((freed, evicted))
        })();
        match outcome {
            Ok((freed, evicted)) => {
                self.evictions
                    .fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
                if !freed.is_empty() {
                    give_back_free_pages(&conn);
                }
                drop(conn);
                self.remove_files(freed);
                Ok(())
            }
            Err(e) => {
                // Rolled back: the files this transaction wrote belong to no row.
                drop(conn);
                self.remove_files(created);
                Err(e)
            }
        }
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // Twice at most: a file deleted under the first read means the row changed.
        for _ in 0..2 {
            let latest = latest_row(&self.conn(), key)?;
            // Missing, or expired (a miss, and its value file is not even opened).
            let Some((stored, true)) = latest else {
                return Ok(None);
            };
            if let Some(value) = self.read_stored(key, stored)? {
                return Ok(Some(value));
            }
        }
        Err(Error::decode(
            "a diskcache entry",
            "diskcache",
            "its value file keeps disappearing",
        ))
    }
}

/// The latest row of `key` and whether it is live now: one seek, as without expiry (a
/// `WHERE` on the expiry would find an older live version in append mode).
fn latest_row(conn: &Connection, key: &[u8]) -> Result<Option<(Stored, bool)>> {
    conn.prepare_cached(&format!(
        "SELECT {STORED}, expires IS NULL OR expires > ?2 \
         FROM entries WHERE key = ?1 ORDER BY version DESC LIMIT 1"
    ))
    .and_then(|mut s| {
        s.query_row(params![key, now_micros()], |r| {
            Ok((Stored::read(r, 0)?, r.get::<_, bool>(6)?))
        })
        .optional()
    })
    .map_err(sql_err)
}

/// Returns the index's free pages to the file system (`auto_vacuum = INCREMENTAL`). Best
/// effort: a failure only leaves the file larger than it needs to be.
fn give_back_free_pages(conn: &Connection) {
    // The pragma frees one page per step: step it to the end.
    if let Ok(mut stmt) = conn.prepare("PRAGMA incremental_vacuum") {
        if let Ok(mut rows) = stmt.query([]) {
            while let Ok(Some(_)) = rows.next() {}
        }
    }
}

fn add_size(tx: &Connection, delta: i64) -> Result<()> {
    tx.execute(
        "UPDATE totals SET amount = amount + ?1 WHERE name = 'size'",
        [delta],
    )
    .map(drop)
    .map_err(sql_err)
}

impl Engine for DiskcacheEngine {
    fn name(&self) -> &'static str {
        "diskcache"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.lookup(key)
    }

    /// The one write path: `set` and `set_many` come here too.
    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        self.write(|tx, created| {
            // One write time for the whole transaction (its items are stored together),
            // taken once it holds the write lock.
            let now = now_micros();
            let mut freed = Vec::new();
            for &(k, v, meta) in items {
                let ts = meta.timestamp_micros.unwrap_or(now);
                freed.extend(self.put(tx, (k, v), ts, meta.expires_micros, created)?);
            }
            Ok(freed)
        })
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        // Present and live: its latest row says so (None: missing).
        self.conn()
            .prepare_cached(
                "SELECT expires IS NULL OR expires > ?2 \
                 FROM entries WHERE key = ?1 ORDER BY version DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![key, now_micros()], |r| r.get::<_, bool>(0))
                    .optional()
            })
            .map(|live| live == Some(true))
            .map_err(sql_err)
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        // One transaction for all of them; the value files go after its commit.
        let mut removed = 0;
        self.write(|tx, _| {
            let mut files = Vec::new();
            for key in keys {
                let rows: Vec<(i64, Option<String>)> = tx
                    .prepare_cached("SELECT size, file FROM entries WHERE key = ?1")
                    .and_then(|mut s| {
                        s.query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
                            .collect()
                    })
                    .map_err(sql_err)?;
                removed += u64::from(!rows.is_empty());
                tx.execute("DELETE FROM entries WHERE key = ?1", [key])
                    .map_err(sql_err)?;
                add_size(tx, -rows.iter().map(|(s, _)| s).sum::<i64>())?;
                files.extend(rows.into_iter().filter_map(|(_, f)| f));
            }
            Ok(files)
        })?;
        Ok(removed)
    }

    fn len(&self) -> Result<usize> {
        count_keys(&self.conn(), self.append_mode)
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        let rows = latest_rows_in_key_order(&self.conn, STORED, |r| Stored::read(r, 1));
        Ok(Box::new(rows.filter_map(move |item| {
            let (key, stored) = match item {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            match self.read_stored(&key, stored) {
                Ok(Some(value)) => Some(Ok((key, value))),
                // Replaced or evicted since its page was read: read it again.
                Ok(None) => self.lookup(&key).transpose().map(|v| v.map(|v| (key, v))),
                Err(e) => Some(Err(e)),
            }
        })))
    }

    fn clear(&self) -> Result<()> {
        self.write(|tx, _| {
            tx.execute_batch(
                "DELETE FROM entries; UPDATE totals SET amount = 0 WHERE name = 'size';",
            )
            .map_err(sql_err)?;
            Ok(Vec::new())
        })?;
        // Every value file no row refers to goes: those of the rows just deleted, and any a
        // crash left behind. Under the write lock, so that no writer is making one.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let referenced: HashSet<String> = tx
            .prepare("SELECT file FROM entries WHERE file IS NOT NULL")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(sql_err)?;
        for shard in std::fs::read_dir(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?
            .flatten()
        {
            if !shard.path().is_dir() {
                continue;
            }
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = format!("{shard_name}/{}", file.file_name().to_string_lossy());
                if !referenced.contains(&name) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
            let _ = std::fs::remove_dir(shard.path());
        }
        tx.commit().map_err(sql_err)?;
        give_back_free_pages(&conn);
        Ok(())
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

/// The stored size the index counts (values inline and in files), for tests and `info`.
impl DiskcacheEngine {
    /// The total size of the stored values, as the index counts it.
    pub fn stored_size(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT amount FROM totals WHERE name = 'size'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(sql_err)
    }

    /// The folder of value files and the index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
