//! The memory engine: a map in this process, shared by every handle opened on the same path.
//!
//! Nothing is written to disk; the store lives as long as the process. Handles on the same
//! path (in any thread) see one store, as the Python original's shared-memory engine does for
//! its processes.

use super::{now_micros, Engine, EntryIter, Version};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

type Store = HashMap<Vec<u8>, Vec<Version>>;

/// The memory engine.
#[derive(Debug, Clone)]
pub struct MemoryEngine {
    store: Arc<RwLock<Store>>,
    append_mode: bool,
}

/// Every store of the process by path, with the append mode it was created with (memory
/// stashes have no `format.json`: the registry is their record).
type Registry = HashMap<PathBuf, (bool, Arc<RwLock<Store>>)>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

impl MemoryEngine {
    /// Opens (or joins) the store named by `path`; joining with another append mode than the
    /// store was created with is a format conflict.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        // A poisoned lock only means another thread panicked while holding it; the map inside
        // is still whole (every mutation below is a single call), so keep using it.
        let mut stores = registry().lock().unwrap_or_else(|e| e.into_inner());
        let (created_append, store) = stores
            .entry(path.to_path_buf())
            .or_insert_with(|| (append_mode, Arc::default()))
            .clone();
        if created_append != append_mode {
            return Err(Error::FormatConflict {
                path: path.to_path_buf(),
                found: format!("append_mode={created_append}"),
                requested: format!("append_mode={append_mode}"),
            });
        }
        Ok(MemoryEngine { store, append_mode })
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, store: &mut Store, key: &[u8], value: &[u8]) {
        let versions = store.entry(key.to_vec()).or_default();
        let next = Version {
            version: versions.last().map_or(1, |v| v.version + 1),
            timestamp_micros: now_micros(),
            value: value.to_vec(),
        };
        if self.append_mode {
            versions.push(next);
        } else {
            *versions = vec![Version { version: 1, ..next }];
        }
    }
}

impl Engine for MemoryEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .get(key)
            .and_then(|v| v.last())
            .map(|v| v.value.clone()))
    }

    fn get_with(&self, key: &[u8], read: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let store = self.read();
        let value = store.get(key).and_then(|v| v.last());
        Ok(value.map(|v| read(&v.value)).is_some())
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let store = self.read();
        Ok(keys
            .iter()
            .map(|k| {
                store
                    .get(*k)
                    .and_then(|v| v.last())
                    .map(|v| v.value.clone())
            })
            .collect())
    }

    fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut store = self.write();
        self.put(&mut store, key, value);
        Ok(())
    }

    fn set_many(&self, items: &[(&[u8], &[u8])]) -> Result<()> {
        let mut store = self.write();
        for (k, v) in items {
            self.put(&mut store, k, v);
        }
        Ok(())
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.read().contains_key(key))
    }

    fn remove(&self, key: &[u8]) -> Result<bool> {
        Ok(self.write().remove(key).is_some())
    }

    fn len(&self) -> Result<usize> {
        Ok(self.read().len())
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        // A snapshot: memory is already memory, and holding the lock across a user's
        // iteration would block every writer.
        let entries: Vec<_> = self
            .read()
            .iter()
            .filter_map(|(k, v)| v.last().map(|last| Ok((k.clone(), last.value.clone()))))
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        Ok(self.read().get(key).cloned().unwrap_or_default())
    }

    fn clear(&self) -> Result<()> {
        self.write().clear();
        Ok(())
    }
}
