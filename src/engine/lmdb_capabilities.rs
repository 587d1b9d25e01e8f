//! What the LMDB engine can do beyond the core: its history of versions, insert-if-absent in one write transaction, pruning, disk usage and the catalog.

use super::*;
use crate::engine::Catalog;

impl History for LmdbEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        let now = now_micros();
        Ok(self.paged(move |record| match record {
            Ok(r) if r.is_expired(now) || !window.contains(r.timestamp_micros) => None,
            record => Some(record.map(|r| StoredEntry::of_record(&r))),
        }))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let address = address(key);
        self.read(|s, rtxn| {
            let Some(bytes) = s.entries.get(rtxn, &address).map_err(lmdb_err)? else {
                return Ok(Vec::new());
            };
            let latest = Record::decode(bytes, || describe(&address))?;
            if latest.key != key {
                return Err(collision(&address));
            }
            if latest.is_expired(now_micros()) {
                return Ok(Vec::new());
            }
            if !self.append_mode {
                return Ok(vec![latest.to_version()]);
            }
            history_of(s, rtxn, &address)?
                .map(|item| {
                    let (_, bytes) = item?;
                    Ok(Record::decode(bytes, || describe(&address))?.to_version())
                })
                .collect()
        })
    }
}

impl AtomicInsert for LmdbEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // One write transaction: LMDB has one writer at a time across processes, so nothing
        // comes between the lookup and the put.
        let address = address(key);
        self.write(|s, wtxn| {
            if let Some(found) = lookup(s, wtxn, key)? {
                return Ok(Some(found.to_vec()));
            }
            let at = (&*address, meta.timestamp_or_now(), meta.expires_micros);
            self.put(s, wtxn, at, (key, value), &mut Vec::new())?;
            Ok(None)
        })
    }
}

impl Housekeeping for LmdbEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        self.write(|s, wtxn| {
            // Addresses first, then the deletions: LMDB cursors cannot delete behind
            // themselves through heed's iterators. Records that do not decode stay for
            // scans to report.
            let mut expired = Vec::new();
            for item in s.entries.iter(wtxn).map_err(lmdb_err)? {
                let (address, bytes) = item.map_err(lmdb_err)?;
                if Record::may_expire(bytes)
                    && Record::decode(bytes, String::new).is_ok_and(|r| r.is_expired(now_micros))
                {
                    expired.push(address.to_vec());
                }
            }
            for address in &expired {
                self.delete_entry(s, wtxn, address)?;
            }
            Ok(expired.len() as u64)
        })
    }

    fn disk_usage(&self) -> Result<u64> {
        self.shared.env.real_disk_size().map_err(lmdb_err)
    }
}

impl Catalog for LmdbEngine {
    fn generation(&self) -> Result<u64> {
        // Every committed write transaction, from any process, raises LMDB's last
        // transaction id. The data file's identity covers a file replaced by another one,
        // whose ids start again from 1.
        let txn = self.shared.env.info().last_txn_id as u64;
        let file = self.shared.path.join("data.mdb");
        let identity = std::fs::metadata(&file).map_err(|e| Error::io(&file, e))?;
        #[cfg(unix)]
        let identity = {
            use std::os::unix::fs::MetadataExt;
            (identity.dev(), identity.ino())
        };
        #[cfg(not(unix))]
        let identity = identity.created().ok();
        let mut bytes = format!("{identity:?}").into_bytes();
        bytes.extend_from_slice(&txn.to_le_bytes());
        Ok(xxhash_rust::xxh3::xxh3_64(&bytes))
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        crate::engine::catalog::read_file(
            crate::engine::catalog::folder_of(&self.shared.path),
            name,
        )
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::engine::catalog::write_file(
            crate::engine::catalog::folder_of(&self.shared.path),
            name,
            bytes,
        )
    }
}
