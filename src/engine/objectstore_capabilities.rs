//! What the object-storage engine can do beyond the core: history, insert-if-absent and
//! leases by create-only and conditional puts, housekeeping, and the catalog.

use super::objectstore::{ObjectStoreEngine, MAX_RACES};
use super::pairtree::{hex, random_token, version_name};
use super::{now_micros, AtomicInsert, Catalog, History, Housekeeping, Leases, Version, WriteMeta};
use crate::error::{Error, Result};
use object_store::path::Path as ObjPath;
use object_store::{PutMode, UpdateVersion};
use std::time::Duration;

impl History for ObjectStoreEngine {
    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        self.block(async {
            if self.live(key).await?.is_none() {
                return Ok(Vec::new());
            }
            let path = self.entry_path(key);
            if !self.append_mode {
                let found = self.fetch(&path).await?;
                return found
                    .map(|(bytes, _)| self.decode(&path, &bytes, Some(key)))
                    .into_iter()
                    .collect();
            }
            let mut versions = Vec::new();
            for meta in self.list(&path).await? {
                if let Some((bytes, _)) = self.fetch(&meta.location).await? {
                    if bytes.is_empty() {
                        continue; // a removal's tombstone
                    }
                    versions.push(self.decode(&meta.location, &bytes, Some(key))?);
                }
            }
            versions.sort_by_key(|v| v.version);
            Ok(versions)
        })
    }
}

impl AtomicInsert for ObjectStoreEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        self.block(async {
            let path = self.entry_path(key);
            for _ in 0..MAX_RACES {
                let stored = if self.append_mode {
                    let (latest, next) = self.latest(key).await?;
                    if let Some(live) = latest.filter(is_live) {
                        return Ok(Some(live.value));
                    }
                    // A new version number: a create-only put, which one inserter wins.
                    let record = Self::record(key, next, value, meta)?;
                    let version = path.clone().join(version_name(next));
                    self.put(&version, record, PutMode::Create).await?
                } else {
                    let record = Self::record(key, 1, value, meta)?;
                    match self.insert_or_find(&path, key, record).await? {
                        Inserted::Stored => true,
                        Inserted::Found(live) => return Ok(Some(live)),
                        Inserted::Raced => false,
                    }
                };
                if stored {
                    self.changed().await;
                    return Ok(None);
                }
            }
            Err(self.error_races(key))
        })
    }
}

/// What an insert outside append mode did.
enum Inserted {
    Stored,
    /// The live value it found.
    Found(Vec<u8>),
    /// Another writer changed the entry between two requests: look again.
    Raced,
}

fn is_live(version: &Version) -> bool {
    version.expires_micros.is_none_or(|at| at > now_micros())
}

impl ObjectStoreEngine {
    /// Creates the entry object at `path`, or replaces the one there if it holds no live
    /// entry (expired, or a removal's tombstone) and is still the one read.
    async fn insert_or_find(
        &self,
        path: &ObjPath,
        key: &[u8],
        record: Vec<u8>,
    ) -> Result<Inserted> {
        if self.put(path, record.clone(), PutMode::Create).await? {
            return Ok(Inserted::Stored);
        }
        let Some((current, version)) = self.fetch(path).await? else {
            return Ok(Inserted::Raced); // removed meanwhile: look again
        };
        if !current.is_empty() {
            let found = self.decode(path, &current, Some(key))?;
            if is_live(&found) {
                return Ok(Inserted::Found(found.value));
            }
        }
        Ok(match self.replace(path, record, version).await? {
            true => Inserted::Stored,
            false => Inserted::Raced,
        })
    }

    /// Replaces the object at `path` if it is still `version`. A local folder has no
    /// conditional replacement: it deletes, then creates (two writers replacing one expired
    /// object at once may then both succeed).
    async fn replace(
        &self,
        path: &ObjPath,
        bytes: Vec<u8>,
        version: UpdateVersion,
    ) -> Result<bool> {
        if self.can_update {
            return self.put(path, bytes, PutMode::Update(version)).await;
        }
        self.delete(path).await?;
        self.put(path, bytes, PutMode::Create).await
    }

    fn lease_path(&self, name: &[u8]) -> ObjPath {
        let name = hex(&super::key_digest(name));
        self.base.clone().join("leases").join(name)
    }

    /// The lease object at `path`: its holder, expiry, and version.
    async fn read_lease(&self, path: &ObjPath) -> Result<Option<(Vec<u8>, i64, UpdateVersion)>> {
        let Some((bytes, version)) = self.fetch(path).await? else {
            return Ok(None);
        };
        let Some((expiry, owner)) = bytes.split_first_chunk::<8>() else {
            return Err(Error::decode(
                format!("{}/{path}", self.shown_url),
                "objectstore lease",
                "shorter than its expiry",
            ));
        };
        Ok(Some((owner.to_vec(), i64::from_le_bytes(*expiry), version)))
    }
}

fn lease_bytes(owner: &[u8], ttl: Duration) -> Vec<u8> {
    let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    let mut bytes = now_micros().saturating_add(ttl).to_le_bytes().to_vec();
    bytes.extend_from_slice(owner);
    bytes
}

impl Leases for ObjectStoreEngine {
    fn try_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        let path = self.lease_path(name);
        self.block(async {
            for _ in 0..MAX_RACES {
                if self
                    .put(&path, lease_bytes(owner, ttl), PutMode::Create)
                    .await?
                {
                    return Ok(true);
                }
                let Some((holder, expiry, version)) = self.read_lease(&path).await? else {
                    continue; // released meanwhile: try to create it again
                };
                if holder != owner && expiry > now_micros() {
                    return Ok(false);
                }
                // Expired, or already ours: take it over, unless someone else just did.
                if self
                    .replace(&path, lease_bytes(owner, ttl), version)
                    .await?
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    fn renew_lease(&self, name: &[u8], owner: &[u8], ttl: Duration) -> Result<bool> {
        let path = self.lease_path(name);
        self.block(async {
            match self.read_lease(&path).await? {
                Some((holder, _, version)) if holder == owner => {
                    self.replace(&path, lease_bytes(owner, ttl), version).await
                }
                _ => Ok(false),
            }
        })
    }

    fn release_lease(&self, name: &[u8], owner: &[u8]) -> Result<()> {
        let path = self.lease_path(name);
        self.block(async {
            if let Some((holder, _, _)) = self.read_lease(&path).await? {
                if holder == owner {
                    self.delete(&path).await?;
                }
            }
            Ok(())
        })
    }
}

impl Housekeeping for ObjectStoreEngine {
    /// Checks, then deletes: a write that lands between the two is lost with the expired
    /// entry (object stores have no conditional delete), a window of one request.
    fn prune_expired(&self, now: i64) -> Result<u64> {
        let objects = self.block(self.entry_objects())?;
        self.block(async {
            let mut removed = 0;
            for meta in objects {
                let Some((bytes, _)) = self.fetch(&meta.location).await? else {
                    continue;
                };
                // An entry that does not decode is left for scans to report.
                let Ok(latest) = self.decode(&meta.location, &bytes, None) else {
                    continue;
                };
                if latest.expires_micros.is_none_or(|at| at > now) {
                    continue;
                }
                let entry = if self.append_mode {
                    meta.location
                        .as_ref()
                        .rsplit_once('/')
                        .map(|(dir, _)| ObjPath::from(dir))
                } else {
                    None
                };
                match entry {
                    Some(dir) => {
                        for version in self.list(&dir).await? {
                            self.delete(&version.location).await?;
                        }
                    }
                    None => {
                        self.delete(&meta.location).await?;
                    }
                }
                removed += 1;
            }
            if removed > 0 {
                self.changed().await;
            }
            Ok(removed)
        })
    }

    /// The bytes of the stash's objects in the store.
    fn disk_usage(&self) -> Result<u64> {
        let objects = self.block(self.list(&self.base))?;
        Ok(objects.iter().map(|m| m.size).sum())
    }
}

impl Catalog for ObjectStoreEngine {
    fn generation(&self) -> Result<u64> {
        let found = self.block(self.fetch(&self.base.clone().join("generation")))?;
        Ok(
            match found.and_then(|(t, _)| <[u8; 8]>::try_from(t.as_ref()).ok()) {
                Some(token) => u64::from_le_bytes(token),
                None => random_token(),
            },
        )
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.base.clone().join("catalog").join(name);
        Ok(self.block(self.fetch(&path))?.map(|(b, _)| b.to_vec()))
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.base.clone().join("catalog").join(name);
        self.block(self.put(&path, bytes.to_vec(), PutMode::Overwrite))
            .map(drop)
    }

    fn record_format(&self, format: &[u8]) -> Result<Option<Vec<u8>>> {
        let path = self.base.clone().join("format.json");
        self.block(async {
            if self.put(&path, format.to_vec(), PutMode::Create).await? {
                return Ok(Some(format.to_vec()));
            }
            Ok(self.fetch(&path).await?.map(|(b, _)| b.to_vec()))
        })
    }
}
