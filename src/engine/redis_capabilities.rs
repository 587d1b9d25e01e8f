//! What the Redis engine can do beyond the core: its history of versions, insert-if-absent as one script, pruning, leases and the catalog.

use super::*;
use crate::engine::Catalog;

/// How many expired records in a row `insert_if_absent` may find replaced by other writers
/// (each time with another expired one) before it gives up: each try is a full round trip,
/// and only writers storing already-expired values can make it lose.
const MAX_SWAPS: usize = 16;

/// The bytes of a record the prune script compares: its format byte and checksum.
const RECORD_HEAD: usize = 9;

impl History for RedisEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        // The hash holds each key's latest record, with its time: no second read.
        Ok(Box::new(self.raw_scan()?.filter_map(move |item| {
            let (key, stored) = match item {
                Ok(entry) => entry,
                Err(e) => return Some(Err(e)),
            };
            let record = match Record::decode(&stored, || self.describe(&key)) {
                Ok(record) => record,
                Err(e) => return Some(Err(e)),
            };
            let entry = StoredEntry {
                key: key.clone(),
                ..StoredEntry::of_record(&record)
            };
            entry.is_wanted(&window, now_micros()).then_some(Ok(entry))
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let shards = self.shards()?;
        let stored: Vec<Vec<u8>> = if self.append_mode {
            let versions = Self::versions_key(shards, key);
            self.with_conn(|c| redis::cmd("LRANGE").arg(&versions).arg(0).arg(-1).query(c))?
        } else {
            let entries = Self::entries_key(shards, shards.of(key));
            let one: Option<Vec<u8>> =
                self.with_conn(|c| redis::cmd("HGET").arg(&entries).arg(key).query(c))?;
            one.into_iter().collect()
        };
        let versions = stored
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let record = Record::decode(s, || self.describe(key))?;
                Ok(Version {
                    version: i as u64 + 1,
                    ..record.to_version()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // An entry whose latest version has expired has no versions to show; older versions
        // with their own (past) expiry still show while the latest is live.
        let now = now_micros();
        if versions
            .last()
            .is_some_and(|v| v.expires_micros.is_some_and(|at| at <= now))
        {
            return Ok(Vec::new());
        }
        Ok(versions)
    }
}

impl AtomicInsert for RedisEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // One script call checks and writes (see INSERT_IF_ABSENT_SCRIPT). It hands back the
        // record it found instead of writing; a live one is the answer, an expired one is
        // sent back as the record to replace, so that the replacement happens only if no
        // writer got there in between. The record is built once, as a write builds it.
        let native = self.native_expiry_for(&meta)?;
        let record = self.record(value, meta.timestamp_or_now(), &meta)?;
        let native_ms = native_expiry_ms(&meta, native);
        let shards = self.shards()?;
        let shard = shards.of(key);
        let entries = Self::entries_key(shards, shard);
        let list = self.append_mode.then(|| Self::versions_key(shards, key));
        // Empty: the field must be absent.
        let mut expected: Vec<u8> = Vec::new();
        for _ in 0..MAX_SWAPS {
            let mut invocation = self.insert_if_absent_script.key(&entries);
            invocation.key(Self::generation_key(shards, shard));
            if let Some(list) = &list {
                invocation.key(list);
            }
            invocation.arg(key).arg(&record);
            match native_ms {
                Some(at) => invocation.arg(at),
                None => invocation.arg(""),
            };
            invocation.arg(&expected);
            let found: redis::Value = self.with_conn(|c| invocation.invoke(c))?;
            match found {
                redis::Value::Int(_) => return Ok(None),
                redis::Value::BulkString(stored) => {
                    if let Some(live) = self.live_value(key, &stored, now_micros())? {
                        return Ok(Some(live));
                    }
                    expected = stored;
                }
                other => {
                    return Err(Error::engine(
                        "redis",
                        format!("unexpected reply to an insert: {other:?}"),
                    ));
                }
            }
        }
        Err(Error::engine(
            "redis",
            format!(
                "inserting {}: its expired record was replaced by other writers {MAX_SWAPS} \
                 times in a row",
                self.describe(key)
            ),
        ))
    }
}

impl Housekeeping for RedisEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        let shards = self.shards()?;
        let mut removed = 0;
        for shard in 0..shards.count() {
            removed += self.prune_shard(shards, shard, now_micros)?;
        }
        Ok(removed)
    }
}

impl RedisEngine {
    /// Prunes one shard: HSCAN for fields whose record has expired, then remove them a page
    /// at a time by a script that checks each is still the record read (see PRUNE_SCRIPT).
    fn prune_shard(&self, shards: &Shards, shard: usize, now_micros: i64) -> Result<u64> {
        let entries = Self::entries_key(shards, shard);
        let mut removed = 0;
        let mut page: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(SCAN_PAGE);
        let mut scan = self.hscan(entries.clone());
        loop {
            let item = scan.next().transpose()?;
            if let Some((key, stored)) = item.as_ref() {
                // A record that does not decode is not judged expired: pruning is no place
                // to lose data silently; reads report it.
                let expired = Record::decode(stored, || self.describe(key))
                    .is_ok_and(|r| r.is_expired(now_micros));
                if expired {
                    if let Some(head) = stored.get(..RECORD_HEAD) {
                        page.push((key.clone(), head.to_vec()));
                    }
                }
            }
            if page.len() == SCAN_PAGE || (item.is_none() && !page.is_empty()) {
                let mut invocation = self.prune_script.key(&entries);
                invocation.key(Self::generation_key(shards, shard));
                for (key, head) in &page {
                    if self.append_mode {
                        invocation.key(Self::versions_key(shards, key));
                    }
                    invocation.arg(key).arg(head);
                }
                let n: u64 = self.with_conn(|c| invocation.invoke(c))?;
                removed += n;
                page.clear();
            }
            if item.is_none() {
                return Ok(removed);
            }
        }
    }
}

impl Leases for RedisEngine {
    fn try_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        // SET NX PX: taken only if absent; Redis drops it by itself when it expires.
        let key = self.redis_key(&[b"lease:", name]);
        let taken: Option<String> = self.with_conn(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(lease_millis(ttl))
                .query(c)
        })?;
        Ok(taken.is_some())
    }

    fn renew_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        let mut invocation = self.lease_script.key(self.redis_key(&[b"lease:", name]));
        invocation.arg(owner).arg(lease_millis(ttl));
        let renewed: i64 = self.with_conn(|c| invocation.invoke(c))?;
        Ok(renewed == 1)
    }

    fn release_lease(&self, name: &[u8], owner: &[u8]) -> Result<()> {
        let mut invocation = self.lease_script.key(self.redis_key(&[b"lease:", name]));
        invocation.arg(owner);
        self.with_conn(|c| invocation.invoke::<i64>(c))?;
        Ok(())
    }
}

impl Catalog for RedisEngine {
    fn generation(&self) -> Result<u64> {
        // The sum of the shards' counters: each only grows, so the sum moves with any.
        let shards = self.shards()?;
        let counters = (0..shards.count()).map(|shard| {
            let mut cmd = redis::cmd("GET");
            cmd.arg(Self::generation_key(shards, shard));
            cmd
        });
        let counts: Vec<Option<u64>> = self.query_each(counters.collect())?;
        Ok(counts.into_iter().flatten().fold(0u64, u64::wrapping_add))
    }

    // Beside the entries, under the stash's prefix: every process that shares the stash
    // shares its catalog.
    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let key = self.redis_key(&[b"catalog:", name.as_bytes()]);
        self.with_conn(|c| redis::cmd("GET").arg(&key).query(c))
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let key = self.redis_key(&[b"catalog:", name.as_bytes()]);
        self.with_conn(|c| redis::cmd("SET").arg(&key).arg(bytes).query(c))
    }

    fn record_format(&self, format: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut invocation = self.format_script.key(self.redis_key(&[b"format"]));
        invocation.arg(format);
        let recorded: Vec<u8> = self.with_conn(|c| invocation.invoke(c))?;
        Ok(Some(recorded))
    }
}
