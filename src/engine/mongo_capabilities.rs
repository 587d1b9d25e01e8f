//! What the MongoDB engine can do beyond the core: its history of versions, insert-if-absent on the unique `_id`, pruning, leases and the catalog.

use super::*;
use crate::engine::Catalog;

impl History for MongoEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        // The entry document holds the latest record, with its time: no second read.
        Ok(Box::new(self.entry_docs().filter_map(move |item| {
            let entry = item.and_then(|(key, doc)| {
                let record = self.record_of(&key, &doc)?;
                // The key is the document's (`k`); records here do not repeat it.
                Ok(StoredEntry {
                    key: key.clone(),
                    ..StoredEntry::of_record(&record)
                })
            });
            match entry {
                Ok(e) if !e.is_wanted(&window, now_micros()) => None,
                entry => Some(entry),
            }
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let digest = key_digest(key);
        let Some(entry) = self.entry_by_digest(&digest)? else {
            return Ok(Vec::new());
        };
        let decode = |doc: &Document| -> Result<Version> {
            let bytes = doc
                .get_binary_generic("v")
                .map_err(|e| Error::decode(self.describe(key), "mongo", e))?;
            let record = Record::decode(bytes, || self.describe(key))?;
            Ok(Version {
                version: doc.get_i64("n").unwrap_or(1).max(1) as u64,
                ..record.to_version()
            })
        };
        // The entry holds the latest version: once it has expired, there is nothing to
        // show (older versions with their own past expiry show while the latest is live).
        if self.record_of(key, &entry)?.is_expired(now_micros()) {
            return Ok(Vec::new());
        }
        if !self.append_mode {
            return Ok(vec![decode(&entry)?]);
        }
        let docs: Vec<Document> = self.run("reading versions", async {
            use futures_util::TryStreamExt;
            self.versions
                .find(doc! { "h": bin(&digest) })
                .sort(doc! { "n": 1 })
                .await?
                .try_collect()
                .await
        })?;
        docs.iter().map(decode).collect()
    }
}

impl AtomicInsert for MongoEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        let found = self.store_if_absent(key, value, &meta)?;
        if found.is_none() {
            self.changed()?;
        }
        Ok(found)
    }
}

impl Housekeeping for MongoEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        self.ensure_expiry_index()?;
        // Candidates by the index on `e` (rounded up to the ms, so every expired entry is
        // among them), judged exactly by their record, in pages in `_id` order.
        let due = writes::expiry_date(now_micros);
        let mut after: Option<Bson> = None;
        let mut removed = 0;
        loop {
            let mut filter = doc! { "e": { "$lte": due } };
            if let Some(id) = &after {
                filter.insert("_id", doc! { "$gt": id.clone() });
            }
            let docs = self.page_of_entries("finding expired entries", filter)?;
            for doc in &docs {
                let (Ok(id), Ok(stored), Ok(n)) = (
                    doc.get_binary_generic("_id"),
                    doc.get_binary_generic("v"),
                    doc.get_i64("n"),
                ) else {
                    continue; // not ours to judge: reads report a damaged entry
                };
                let expired = Record::decode(stored, || "an expiring entry".into())
                    .is_ok_and(|r| r.is_expired(now_micros));
                if !expired {
                    continue;
                }
                // Deleted only if it still holds the record read: an entry a writer replaced
                // since (a new record) is kept. One document, so this check is atomic.
                let deleted = self.run(
                    "removing an expired entry",
                    self.entries
                        .delete_one(doc! { "_id": bin(id), "v": bin(stored) })
                        .into_future(),
                )?;
                if deleted.deleted_count == 0 {
                    continue;
                }
                removed += 1;
                if self.append_mode {
                    // Its versions up to the one removed; a version a writer appended
                    // meanwhile (numbered after it) stays, and its entry follows it.
                    self.run(
                        "removing expired versions",
                        self.versions
                            .delete_many(doc! { "h": bin(id), "n": { "$lte": n } })
                            .into_future(),
                    )?;
                }
            }
            if (docs.len() as i64) < SCAN_PAGE {
                if removed > 0 {
                    self.changed()?;
                }
                return Ok(removed);
            }
            after = docs.last().and_then(|d| d.get("_id").cloned());
        }
    }
}

impl Leases for MongoEngine {
    fn try_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        // The unique `_id` lets one insert win; an expired lease is taken over by an update
        // that matches only while it is still expired. Expiry is judged by the clocks of
        // the processes involved, which must roughly agree.
        let id = self.lease_id(name);
        let now = now_micros();
        let expires = lease_deadline(now, ttl);
        let what = "taking a lease";
        let inserted = self.run_raw(
            what,
            self.leases
                .insert_one(doc! { "_id": &id, "owner": bin(owner), "expires": expires })
                .into_future(),
        )?;
        match inserted {
            Ok(_) => return Ok(true),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(self.error(what, e)),
        }
        let taken_over = self.run(
            what,
            self.leases
                .update_one(
                    doc! { "_id": &id, "expires": { "$lt": now } },
                    doc! { "$set": { "owner": bin(owner), "expires": expires } },
                )
                .into_future(),
        )?;
        Ok(taken_over.modified_count == 1)
    }

    fn renew_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        let renewed = self.run(
            "renewing a lease",
            self.leases
                .update_one(
                    doc! { "_id": self.lease_id(name), "owner": bin(owner) },
                    doc! { "$set": { "expires": lease_deadline(now_micros(), ttl) } },
                )
                .into_future(),
        )?;
        Ok(renewed.matched_count == 1)
    }

    fn release_lease(&self, name: &[u8], owner: &[u8]) -> Result<()> {
        self.run(
            "releasing a lease",
            self.leases
                .delete_one(doc! { "_id": self.lease_id(name), "owner": bin(owner) })
                .into_future(),
        )?;
        Ok(())
    }
}

impl Catalog for MongoEngine {
    fn generation(&self) -> Result<u64> {
        let doc = self.meta_field("generation")?;
        let n = doc.and_then(|d| match d.get("generation") {
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            _ => None,
        });
        Ok(n.unwrap_or(0) as u64)
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let field = record_field(name);
        let doc = self.meta_field(&format!("catalog.{field}"))?;
        Ok(doc
            .as_ref()
            .and_then(|d| d.get_document("catalog").ok())
            .and_then(|c| c.get_binary_generic(&field).ok())
            .cloned())
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let what = "writing the catalog";
        let update = doc! { "$set": { format!("catalog.{}", record_field(name)): bin(bytes) } };
        self.run(
            what,
            self.meta
                .update_one(doc! { "_id": &self.name }, update)
                .upsert(true)
                .into_future(),
        )
        .map(drop)
    }

    fn record_format(&self, format: &[u8]) -> Result<Option<Vec<u8>>> {
        let filter = doc! { "_id": &self.name };
        let update =
            doc! { "$setOnInsert": { "namespace": &self.namespace, "format": bin(format) } };
        let what = "recording the format";
        match self.run_raw(
            what,
            self.meta
                .update_one(filter.clone(), update)
                .upsert(true)
                .into_future(),
        )? {
            Ok(_) => {}
            // Two processes created the stash at once: the other one's record stands.
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(self.error(what, e)),
        }
        let recorded = self.run(
            "reading the format",
            self.meta.find_one(filter).into_future(),
        )?;
        Ok(recorded
            .as_ref()
            .and_then(|d| d.get_binary_generic("format").ok())
            .cloned())
    }
}
