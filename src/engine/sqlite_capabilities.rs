//! What the SQLite engine can do beyond the core: its history of versions (the write time is indexed), insert-if-absent in one IMMEDIATE transaction, pruning, disk usage and the catalog.

use super::*;
use crate::engine::Catalog;

impl History for SqliteEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        let rows = latest_rows_written(&self.conn, window, "value, sum, version", |r| {
            Ok((r.get(3)?, r.get(4)?, r.get(5)?))
        })?;
        Ok(Box::new(rows.map(|item| {
            let (key, timestamp_micros, expires_micros, checked) = item?;
            let value = verify_row(&key, timestamp_micros, expires_micros, checked)?;
            Ok(StoredEntry {
                key,
                value,
                timestamp_micros,
                expires_micros,
            })
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let rows = self
            .conn()
            .prepare_cached(
                "SELECT version, ts, value, sum, expires FROM entries WHERE key = ?1 ORDER BY version",
            )
            .and_then(|mut stmt| {
                stmt.query_map([key], |row| {
                    Ok((
                        row.get::<_, i64>(0)? as u64,
                        row.get(1)?,
                        row.get::<_, Vec<u8>>(2)?,
                        row.get(3)?,
                        row.get::<_, Option<i64>>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(sql_err)?;
        // The key's history is visible only while its latest version is live: an expired
        // entry is a miss, as if removed. (Older versions keep their own expiry, reported
        // but not applied.)
        if rows
            .last()
            .is_some_and(|last| is_expired(last.4, now_micros()))
        {
            return Ok(Vec::new());
        }
        rows.into_iter()
            .map(|(version, timestamp_micros, value, sum, expires_micros)| {
                Ok(Version {
                    version,
                    timestamp_micros,
                    expires_micros,
                    value: RowMeta {
                        key,
                        version: version as i64,
                        ts: timestamp_micros,
                        expires: expires_micros,
                    }
                    .verified(value, sum, "sqlite")?,
                })
            })
            .collect()
    }
}

impl AtomicInsert for SqliteEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // The lookup and the write in one IMMEDIATE transaction: it holds SQLite's write
        // lock from its start, so no writer of any process comes in between.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        if let Some(found) = lookup(&tx, key)? {
            return Ok(Some(found));
        }
        self.put(
            &tx,
            key,
            value,
            meta.timestamp_or_now(),
            meta.expires_micros,
        )?;
        bump(&tx)?;
        tx.commit().map_err(sql_err)?;
        Ok(None)
    }
}

impl Housekeeping for SqliteEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        // Counting and deleting in one IMMEDIATE transaction: a writer that replaces an
        // expired entry with a live value does so before it (and the entry is no longer
        // expired) or after it (and writes a new entry), never in between.
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        let keys = count_expired(&tx, now_micros)?;
        if keys > 0 {
            // Every version of those keys goes, the older ones too (append mode).
            tx.execute(
                &format!("DELETE FROM entries WHERE key IN ({EXPIRED_KEYS})"),
                [now_micros],
            )
            .map_err(sql_err)?;
            bump(&tx)?;
        }
        tx.commit().map_err(sql_err)?;
        Ok(keys.max(0) as u64)
    }

    fn disk_usage(&self) -> Result<u64> {
        Ok(["", "-wal", "-shm"]
            .iter()
            .filter_map(|s| std::fs::metadata(with_suffix(&self.path, s)).ok())
            .map(|m| m.len())
            .sum())
    }
}

impl Catalog for SqliteEngine {
    fn generation(&self) -> Result<u64> {
        crate::engine::sqlite_catalog::read(&self.conn())
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        crate::engine::catalog::read_file(crate::engine::catalog::folder_of(&self.path), name)
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::engine::catalog::write_file(
            crate::engine::catalog::folder_of(&self.path),
            name,
            bytes,
        )
    }
}
