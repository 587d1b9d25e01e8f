//! The memory engine: a map in this process, shared by every handle opened on the same path.
//!
//! Nothing is written to disk; the store lives as long as the process. Handles on the same
//! path (in any thread) see one store, as the Python original's shared-memory engine does for
//! its processes.

use super::{
    now_micros, AtomicInsert, Capabilities, Catalog, Engine, EntryIter, History, Housekeeping,
    StoredEntry, StoredIter, TimeWindow, Version, WriteItem, WriteMeta,
};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

type Store = HashMap<Vec<u8>, Vec<Version>>;

/// The memory engine.
#[derive(Debug, Clone)]
pub struct MemoryEngine {
    store: Arc<RwLock<Store>>,
    catalog: Arc<MemoryCatalog>,
    append_mode: bool,
}

/// A store's change counter, raised under its write lock, and its catalog records.
#[derive(Debug, Default)]
struct MemoryCatalog {
    generation: AtomicU64,
    records: Mutex<HashMap<String, Vec<u8>>>,
}

/// Every store of the process by path, with the append mode it was created with (memory
/// stashes have no `format.json`: the registry is their record).
type Registry = HashMap<PathBuf, (bool, Arc<RwLock<Store>>, Arc<MemoryCatalog>)>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The paths of this process's memory stores below the folder `dir` (how a stash finds
/// its function stashes, which have no folder to list).
pub(crate) fn stores_below(dir: &Path) -> Vec<PathBuf> {
    let stores = registry().lock().unwrap_or_else(|e| e.into_inner());
    stores
        .keys()
        .filter(|path| path.starts_with(dir) && path.as_path() != dir)
        .cloned()
        .collect()
}

impl MemoryEngine {
    /// Opens (or joins) the store named by `path`; joining with another append mode than the
    /// store was created with is a format conflict.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        // A poisoned lock only means another thread panicked while holding it; the map inside
        // is still whole (every mutation below is a single call), so keep using it.
        let mut stores = registry().lock().unwrap_or_else(|e| e.into_inner());
        let (created_append, store, catalog) = stores
            .entry(path.to_path_buf())
            .or_insert_with(|| (append_mode, Arc::default(), Arc::default()))
            .clone();
        if created_append != append_mode {
            return Err(Error::FormatConflict {
                path: path.to_path_buf(),
                found: format!("append_mode={created_append}"),
                requested: format!("append_mode={append_mode}"),
            });
        }
        Ok(MemoryEngine {
            store,
            catalog,
            append_mode,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The store to change. The counter rises while the lock is held: a table that reads the
    /// new number reads the store after this change (its reads wait for the lock).
    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        let store = self.store.write().unwrap_or_else(|e| e.into_inner());
        self.catalog.generation.fetch_add(1, Ordering::Relaxed);
        store
    }

    fn put(&self, store: &mut Store, key: &[u8], value: &[u8], meta: WriteMeta, now: i64) {
        let versions = store.entry(key.to_vec()).or_default();
        let next = Version {
            version: versions.last().map_or(1, |v| v.version + 1),
            timestamp_micros: meta.timestamp_micros.unwrap_or(now),
            expires_micros: meta.expires_micros,
            value: value.to_vec(),
        };
        if self.append_mode {
            versions.push(next);
        } else {
            *versions = vec![Version { version: 1, ..next }];
        }
    }
}

/// The latest version under `key`, unless it has expired at `now`.
fn live<'s>(store: &'s Store, key: &[u8], now: i64) -> Option<&'s Version> {
    store.get(key).and_then(|v| latest_live(v, now))
}

fn latest_live(versions: &[Version], now: i64) -> Option<&Version> {
    versions
        .last()
        .filter(|v| v.expires_micros.is_none_or(|at| at > now))
}

impl Engine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(live(&self.read(), key, now_micros()).map(|v| v.value.clone()))
    }

    fn get_with(&self, key: &[u8], read: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let store = self.read();
        let value = live(&store, key, now_micros());
        Ok(value.map(|v| read(&v.value)).is_some())
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let store = self.read();
        let now = now_micros();
        Ok(keys
            .iter()
            .map(|k| live(&store, k, now).map(|v| v.value.clone()))
            .collect())
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        let now = now_micros();
        let mut store = self.write();
        for &(k, v, meta) in items {
            self.put(&mut store, k, v, meta, now);
        }
        Ok(())
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(live(&self.read(), key, now_micros()).is_some())
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        let mut store = self.write();
        Ok(keys.iter().filter(|k| store.remove(**k).is_some()).count() as u64)
    }

    fn len(&self) -> Result<usize> {
        Ok(self.read().len())
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        // A snapshot: memory is already memory, and holding the lock across a user's
        // iteration would block every writer.
        let now = now_micros();
        let entries: Vec<_> = self
            .read()
            .iter()
            .filter_map(|(k, v)| {
                latest_live(v, now).map(|last| Ok((k.clone(), last.value.clone())))
            })
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn clear(&self) -> Result<()> {
        self.write().clear();
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

impl History for MemoryEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        let now = now_micros();
        let entries: Vec<_> = self
            .read()
            .iter()
            .filter_map(|(k, v)| {
                let last = latest_live(v, now).filter(|l| window.contains(l.timestamp_micros))?;
                Some(Ok(StoredEntry {
                    key: k.clone(),
                    value: last.value.clone(),
                    timestamp_micros: last.timestamp_micros,
                    expires_micros: last.expires_micros,
                }))
            })
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let store = self.read();
        Ok(match live(&store, key, now_micros()) {
            Some(_) => store.get(key).cloned().unwrap_or_default(),
            None => Vec::new(),
        })
    }
}

impl AtomicInsert for MemoryEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // The check and the write under one write lock.
        let now = now_micros();
        let mut store = self.write();
        if let Some(found) = live(&store, key, now) {
            return Ok(Some(found.value.clone()));
        }
        self.put(&mut store, key, value, meta, now);
        Ok(None)
    }
}

impl Housekeeping for MemoryEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        let mut store = self.write();
        let before = store.len();
        store.retain(|_, versions| latest_live(versions, now_micros).is_some());
        Ok((before - store.len()) as u64)
    }
}

impl Catalog for MemoryEngine {
    fn generation(&self) -> Result<u64> {
        Ok(self.catalog.generation.load(Ordering::Relaxed))
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let records = self.catalog.records.lock();
        Ok(records
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned())
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut records = self
            .catalog
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        records.insert(name.to_owned(), bytes.to_vec());
        Ok(())
    }
}
