//! What the diskcache engine can do beyond the core: its history of versions (the write time is indexed), insert-if-absent in one IMMEDIATE transaction, pruning, disk usage, evictions and the catalog.

use super::*;
use crate::engine::Catalog;

impl History for DiskcacheEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        // Rows of (key, ts, expires, value, file, sum, version): the checked columns are
        // read where they stand.
        let rows = latest_rows_written(&self.conn, window, "value, file, sum, version", |r| {
            Ok(Stored {
                value: r.get(3)?,
                file: r.get(4)?,
                sum: r.get(5)?,
                version: r.get(6)?,
                ts: r.get(1)?,
                expires: r.get(2)?,
            })
        })?;
        Ok(Box::new(rows.filter_map(move |item| {
            let (key, timestamp_micros, expires_micros, stored) = match item {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let entry = |value| StoredEntry {
                key: key.clone(),
                value,
                timestamp_micros,
                expires_micros,
            };
            match self.read_stored(&key, stored) {
                Ok(Some(value)) => Some(Ok(entry(value))),
                // Replaced or evicted since its page was read: its new version, if any, was
                // written after the scan started and is not this scan's to report.
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let rows: Vec<Stored> = self
            .conn()
            .prepare_cached(&format!(
                "SELECT {STORED} FROM entries WHERE key = ?1 ORDER BY version"
            ))
            .and_then(|mut s| s.query_map([key], |r| Stored::read(r, 0))?.collect())
            .map_err(sql_err)?;
        // The key's history is visible only while its latest version is live: an expired
        // entry is a miss, as if removed (and none of its value files is read). Older
        // versions keep their own expiry, reported but not applied.
        if rows
            .last()
            .is_some_and(|last| is_expired(last.expires, now_micros()))
        {
            return Ok(Vec::new());
        }
        let mut versions = Vec::with_capacity(rows.len());
        for stored in rows {
            let (version, timestamp_micros, expires_micros) =
                (stored.version as u64, stored.ts, stored.expires);
            // A version evicted since the rows were read is left out.
            if let Some(value) = self.read_stored(key, stored)? {
                versions.push(Version {
                    version,
                    timestamp_micros,
                    expires_micros,
                    value,
                });
            }
        }
        Ok(versions)
    }
}

impl AtomicInsert for DiskcacheEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // The lookup and the write in one IMMEDIATE transaction (SQLite's write lock, held
        // from its start): no writer of any process comes in between, and no value file
        // read here is deleted meanwhile (files go only after a writer's commit).
        let mut found = None;
        self.write(|tx, created| {
            if let Some((stored, true)) = latest_row(tx, key)? {
                if let Some(value) = self.read_stored(key, stored)? {
                    found = Some(value);
                    return Ok(Vec::new());
                }
            }
            let ts = meta.timestamp_or_now();
            self.put(tx, (key, value), ts, meta.expires_micros, created)
        })?;
        Ok(found)
    }
}

impl Housekeeping for DiskcacheEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        let mut pruned = 0;
        // In one write transaction, as `remove` does: which keys have expired is decided
        // under the write lock, so a key a writer has just replaced with a live value is
        // not among them; their sizes leave the running total in the same transaction, and
        // their value files are deleted after it commits.
        self.write(|tx, _| {
            let keys = count_expired(tx, now_micros)?;
            if keys <= 0 {
                return Ok(Vec::new());
            }
            // Every version of those keys goes, the older ones too (append mode).
            let rows: Vec<(i64, Option<String>)> = tx
                .prepare(&format!(
                    "SELECT size, file FROM entries WHERE key IN ({EXPIRED_KEYS})"
                ))
                .and_then(|mut s| {
                    s.query_map([now_micros], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .map_err(sql_err)?;
            tx.execute(
                &format!("DELETE FROM entries WHERE key IN ({EXPIRED_KEYS})"),
                [now_micros],
            )
            .map_err(sql_err)?;
            add_size(tx, -rows.iter().map(|(size, _)| size).sum::<i64>())?;
            pruned = keys as u64;
            Ok(rows.into_iter().filter_map(|(_, file)| file).collect())
        })?;
        Ok(pruned)
    }

    fn evictions(&self) -> u64 {
        self.evictions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn disk_usage(&self) -> Result<u64> {
        Ok(disk_usage_of(&self.dir))
    }
}

impl Catalog for DiskcacheEngine {
    fn generation(&self) -> Result<u64> {
        crate::engine::sqlite_catalog::read(&self.conn())
    }

    // Beside the cache folder, in the stash's folder, as the other file engines keep theirs.
    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        crate::engine::catalog::read_file(crate::engine::catalog::folder_of(&self.dir), name)
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::engine::catalog::write_file(
            crate::engine::catalog::folder_of(&self.dir),
            name,
            bytes,
        )
    }
}
