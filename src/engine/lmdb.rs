//! The LMDB engine (heed): one memory-mapped file, the fastest engine.
//!
//! A key of up to 400 bytes is its own LMDB key, so that keys that sort together are stored
//! together (a read of neighbouring keys stays on pages already in cache, as in a plain heed
//! database). A longer key, which LMDB cannot take (its keys are limited to 511 bytes), is
//! addressed by `0xff` and the xxh3-128 hash of its bytes; no canonical key starts with `0xff`
//! (CBOR's "break" byte), so the two kinds of address never meet. Each entry stores a
//! checksummed record holding the full key, so a hash collision is detected instead of answered with
//! another key's value.
//!
//! ```text
//! by_key:          address              -> Record { key, latest version, time, latest value }
//! history_by_key:  address ++ version   -> Record { version, time, value }   (append mode only)
//! ```
//!
//! Stashes written before this layout (every key hashed, in the databases `entries` and
//! `history`) are moved to it, in one transaction, the first time they are opened.
//!
//! **One environment per path per process**: handles share it through a registry (LMDB forbids
//! opening one file twice in a process). **The map grows by itself**: on `MDB_MAP_FULL` the
//! write is retried after doubling the map, and a map grown by another process is adopted on
//! `MDB_MAP_RESIZED`.
//!
//! **Durability**: every committed write is fsynced (LMDB's default); a successful `set`
//! survives a crash and a power loss. Writers in all processes are serialized by LMDB's lock,
//! which makes append-mode version numbers unique and gap-free.

use super::{
    create_private_dir, key_digest, now_micros, Engine, EntryIter, EntryVisitor, Record,
    StoredEntry, StoredIter, TimeWindow, Version, WriteItem, WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping};
use crate::error::{Error, Result};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, MdbError, RoTxn, RwTxn, WithoutTls};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

#[path = "lmdb_capabilities.rs"]
mod capabilities;

const INITIAL_MAP_SIZE: usize = 1 << 30;
const SCAN_PAGE: usize = 512;
/// The longest key that is its own address: a history address adds 8 bytes, and LMDB keys
/// are limited to 511.
const DIRECT_KEY_MAX: usize = 400;
/// The first byte of a hashed address (CBOR's "break" byte, which starts no canonical key).
const HASHED: u8 = 0xff;

/// Where the entry of `key` lives: the key itself, or `0xff` ++ its xxh3-128 hash.
fn address(key: &[u8]) -> Cow<'_, [u8]> {
    if !key.is_empty() && key.len() <= DIRECT_KEY_MAX && key[0] != HASHED {
        return Cow::Borrowed(key);
    }
    let mut hashed = Vec::with_capacity(17);
    hashed.push(HASHED);
    hashed.extend_from_slice(&key_digest(key));
    Cow::Owned(hashed)
}

/// What every handle on one path shares.
struct Shared {
    /// Without thread-local reader slots: a read transaction's slot is freed when the
    /// transaction ends, not when its thread exits. With them, a scan thread that exits
    /// just as the last handle closes the environment would clear its slot in memory that
    /// is already unmapped, and a process with many threads could run out of slots.
    env: Env<WithoutTls>,
    /// `by_key`: address -> the latest record.
    entries: Database<Bytes, Bytes>,
    /// `history_by_key`: address ++ version -> every version's record (append mode).
    history: Database<Bytes, Bytes>,
    /// Held (shared) by every transaction, and exclusively to resize the map, which LMDB
    /// allows only while this process has no transaction open.
    resize: RwLock<()>,
    path: PathBuf,
}

/// How a page of a scan ended.
enum Page {
    /// It was full: more may follow the entry at this address.
    Full(Vec<u8>),
    /// It was the last.
    Last,
    /// The reader asked to stop.
    Stopped,
}

/// The LMDB engine.
pub struct LmdbEngine {
    shared: Arc<Shared>,
    append_mode: bool,
}

impl std::fmt::Debug for LmdbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbEngine")
            .field("path", &self.shared.path)
            .field("append_mode", &self.append_mode)
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Opens the environment. heed forgets a closed environment only when its last handle has
/// finished dropping, which can race with this open from another thread: wait for that.
fn open_env(path: &Path, map_size: usize) -> Result<Env<WithoutTls>> {
    let mut attempts = 0;
    loop {
        // SAFETY: LMDB's own lock file coordinates processes; the registry makes sure the
        // environment is opened once per process, and files are never truncated by us.
        let opened = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(map_size)
                .max_dbs(4)
                .open(path)
        };
        match opened {
            Err(heed::Error::EnvAlreadyOpened) if attempts < 1000 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => return other.map_err(lmdb_err),
        }
    }
}

fn lmdb_err(e: heed::Error) -> Error {
    Error::engine("lmdb", e)
}

/// The LMDB error behind `e`, if it is one.
fn mdb_error(e: &Error) -> Option<MdbError> {
    match e {
        Error::Engine { source, .. } => match source.downcast_ref::<heed::Error>() {
            Some(heed::Error::Mdb(mdb)) => Some(*mdb),
            _ => None,
        },
        _ => None,
    }
}

/// Creates (or opens) the two databases, moving an old layout into them, in one transaction.
fn create_databases(
    env: &Env<WithoutTls>,
) -> Result<(Database<Bytes, Bytes>, Database<Bytes, Bytes>)> {
    let mut wtxn = env.write_txn().map_err(lmdb_err)?;
    let entries = env
        .create_database(&mut wtxn, Some("by_key"))
        .map_err(lmdb_err)?;
    let history = env
        .create_database(&mut wtxn, Some("history_by_key"))
        .map_err(lmdb_err)?;
    move_hashed_layout(env, &mut wtxn, (entries, history))?;
    wtxn.commit().map_err(lmdb_err)?;
    Ok((entries, history))
}

fn history_key(address: &[u8], version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(address.len() + 8);
    k.extend_from_slice(address);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// The history of the entry at `address`, oldest first, as (LMDB key, record bytes). Only
/// keys exactly 8 bytes longer than the address count: an address may be a prefix of
/// another (never for canonical keys, which are prefix-free, but engines take any bytes).
fn history_of<'t>(
    s: &Shared,
    rtxn: &'t RoTxn,
    address: &[u8],
) -> Result<impl Iterator<Item = Result<(&'t [u8], &'t [u8])>>> {
    let (first, last) = (history_key(address, 0), history_key(address, u64::MAX));
    let range = (Bound::Included(&first[..]), Bound::Included(&last[..]));
    let wanted = address.len() + 8;
    Ok(s.history
        .range(rtxn, &range)
        .map_err(lmdb_err)?
        .map(|item| item.map_err(lmdb_err))
        .filter(move |item| item.as_ref().map_or(true, |(k, _)| k.len() == wanted)))
}

impl LmdbEngine {
    /// Opens (creating if needed) the environment in the folder `path`.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        Self::open_with_map_size(path, append_mode, INITIAL_MAP_SIZE)
    }

    /// Opens with a given initial map size (a multiple of the page size). The map still
    /// grows by itself; a small start is for tests. Ignored when the environment is
    /// already open in this process.
    pub fn open_with_map_size(path: &Path, append_mode: bool, map_size: usize) -> Result<Self> {
        create_private_dir(path)?;
        let canonical = path.canonicalize().map_err(|e| Error::io(path, e))?;
        let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
        reg.retain(|_, weak| weak.strong_count() > 0);
        if let Some(shared) = reg.get(&canonical).and_then(Weak::upgrade) {
            return Ok(LmdbEngine {
                shared,
                append_mode,
            });
        }
        let env = open_env(&canonical, map_size)?;
        let (entries, history) = loop {
            match create_databases(&env) {
                // Moving an old layout can need more room than the map has: the transaction
                // was aborted, so the map can grow before it runs again.
                Err(e) if mdb_error(&e) == Some(MdbError::MapFull) => {
                    let bigger = env.info().map_size.saturating_mul(2);
                    // SAFETY: this environment is new to the process and has no transaction.
                    unsafe { env.resize(bigger) }.map_err(lmdb_err)?;
                }
                other => break other?,
            }
        };
        let shared = Arc::new(Shared {
            env,
            entries,
            history,
            resize: RwLock::new(()),
            path: canonical.clone(),
        });
        reg.insert(canonical, Arc::downgrade(&shared));
        Ok(LmdbEngine {
            shared,
            append_mode,
        })
    }

    /// Adopts a map grown by another process, or doubles ours when it is full.
    fn grow(&self, adopt_only: bool) -> Result<()> {
        let _exclusive = self
            .shared
            .resize
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let new_size = if adopt_only {
            0
        } else {
            self.shared.env.info().map_size.saturating_mul(2)
        };
        // SAFETY: the exclusive lock guarantees no transaction of this process is open.
        unsafe { self.shared.env.resize(new_size) }.map_err(lmdb_err)
    }

    /// Runs `f` in a read transaction.
    /// Reads the page of up to [`SCAN_PAGE`] entries after the address `after`, in its own
    /// short read transaction (a long-lived one would pin old pages and make the file grow
    /// while writers run), handing each entry to `each` until it returns false.
    fn read_page(
        &self,
        after: Option<&[u8]>,
        each: &mut dyn FnMut(&[u8], Result<Record<'_>>) -> bool,
    ) -> Result<Page> {
        let each = std::cell::RefCell::new(each);
        self.read(|s, rtxn| {
            let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut seen = 0;
            let mut last: &[u8] = &[];
            for item in s
                .entries
                .range(rtxn, &(lower, Bound::<&[u8]>::Unbounded))
                .map_err(lmdb_err)?
                .take(SCAN_PAGE)
            {
                let (address, bytes) = item.map_err(lmdb_err)?;
                let record = Record::decode(bytes, || describe(address));
                seen += 1;
                last = address;
                if !(each.borrow_mut())(address, record) {
                    return Ok(Page::Stopped);
                }
            }
            Ok(if seen < SCAN_PAGE {
                Page::Last
            } else {
                Page::Full(last.to_vec())
            })
        })
    }

    /// Every entry's record through `keep` (which drops it with `None`), read lazily a page
    /// (one read transaction) at a time.
    fn paged<'a, T: Send + 'a>(
        &'a self,
        mut keep: impl FnMut(Result<Record<'_>>) -> Option<Result<T>> + Send + 'a,
    ) -> Box<dyn Iterator<Item = Result<T>> + Send + 'a> {
        let mut after: Option<Vec<u8>> = None;
        let mut page: std::vec::IntoIter<Result<T>> = Vec::new().into_iter();
        let mut done = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(item) = page.next() {
                return Some(item);
            }
            if done {
                return None;
            }
            let mut rows = Vec::with_capacity(SCAN_PAGE);
            let read = self.read_page(after.as_deref(), &mut |_, record| {
                rows.extend(keep(record));
                true
            });
            match read {
                Ok(Page::Full(last)) => after = Some(last),
                Ok(Page::Last | Page::Stopped) => done = true,
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
            page = rows.into_iter();
        }))
    }

    fn read<T>(&self, f: impl Fn(&Shared, &RoTxn) -> Result<T>) -> Result<T> {
        loop {
            let guard = self.shared.resize.read().unwrap_or_else(|e| e.into_inner());
            match self.shared.env.read_txn() {
                Ok(rtxn) => return f(&self.shared, &rtxn),
                Err(heed::Error::Mdb(MdbError::MapResized)) => {
                    drop(guard);
                    self.grow(true)?;
                }
                Err(e) => return Err(lmdb_err(e)),
            }
        }
    }

    /// Runs `f` in a write transaction and commits, growing the map when it is full.
    fn write<T>(&self, f: impl Fn(&Shared, &mut RwTxn) -> Result<T>) -> Result<T> {
        loop {
            let guard = self.shared.resize.read().unwrap_or_else(|e| e.into_inner());
            let outcome = self
                .shared
                .env
                .write_txn()
                .map_err(lmdb_err)
                .and_then(|mut wtxn| {
                    let value = f(&self.shared, &mut wtxn)?;
                    wtxn.commit().map_err(lmdb_err)?;
                    Ok(value)
                });
            drop(guard);
            match outcome {
                Err(e) if mdb_error(&e) == Some(MdbError::MapFull) => self.grow(false)?,
                Err(e) if mdb_error(&e) == Some(MdbError::MapResized) => self.grow(true)?,
                other => return other,
            }
        }
    }

    /// Writes `key` (whose entry lives at `address`) with `value`, stamped `timestamp` and
    /// expiring at `expires`; `scratch` is a buffer for the encoded record.
    fn put(
        &self,
        s: &Shared,
        wtxn: &mut RwTxn,
        (address, timestamp, expires): (&[u8], i64, Option<i64>),
        (key, value): (&[u8], &[u8]),
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        let record = |version| Record {
            key,
            version,
            timestamp_micros: timestamp,
            expires_micros: expires,
            value,
        };
        // Written as a new entry (version 1) unless the address is taken: one B-tree search
        // for a new key. A taken address must hold this key (a write never replaces another
        // key that shares a hashed address); its entry is then replaced, one version up in append mode.
        record(1).encode_into(scratch)?;
        let version = match s
            .entries
            .get_or_put(wtxn, address, scratch)
            .map_err(lmdb_err)?
        {
            None => 1,
            Some(bytes) => {
                let previous = Record::decode(bytes, || describe(address))?;
                if previous.key != key {
                    return Err(collision(address));
                }
                let version = if self.append_mode {
                    previous.version.checked_add(1).ok_or_else(|| {
                        Error::decode(describe(address), "lmdb", "version numbers exhausted")
                    })?
                } else {
                    1
                };
                record(version).encode_into(scratch)?;
                s.entries.put(wtxn, address, scratch).map_err(lmdb_err)?;
                version
            }
        };
        if self.append_mode {
            Record {
                key: &[],
                ..record(version)
            }
            .encode_into(scratch)?;
            s.history
                .put(wtxn, &history_key(address, version), scratch)
                .map_err(lmdb_err)?;
        }
        Ok(())
    }
}

impl LmdbEngine {
    /// Deletes the entry at `address` and, in append mode, its history; true if it was there.
    fn delete_entry(&self, s: &Shared, wtxn: &mut RwTxn, address: &[u8]) -> Result<bool> {
        let existed = s.entries.delete(wtxn, address).map_err(lmdb_err)?;
        if self.append_mode {
            let versions: Vec<Vec<u8>> = history_of(s, wtxn, address)?
                .map(|item| item.map(|(k, _)| k.to_vec()))
                .collect::<Result<_>>()?;
            for version in versions {
                s.history.delete(wtxn, &version).map_err(lmdb_err)?;
            }
        }
        Ok(existed)
    }
}

fn collision(address: &[u8]) -> Error {
    Error::decode(
        describe(address),
        "lmdb",
        "a different key has the same address",
    )
}

/// Names an entry in errors by its address, in hex (the stash adds the key itself).
fn describe(address: &[u8]) -> String {
    let hex: String = address
        .iter()
        .take(32)
        .map(|b| format!("{b:02x}"))
        .collect();
    let more = if address.len() > 32 { "..." } else { "" };
    format!("lmdb entry {hex}{more}")
}

/// Moves the entries and history of the layout before `by_key` (every entry at the hash of its
/// key, in `entries` and `history`) to their addresses now, within the transaction that opens
/// the stash: a crash before its commit leaves the old layout whole. Records are unchanged.
/// Entries move a batch at a time, so a large stash is never held in memory.
fn move_hashed_layout(
    env: &Env<WithoutTls>,
    wtxn: &mut RwTxn,
    (entries, history): (Database<Bytes, Bytes>, Database<Bytes, Bytes>),
) -> Result<()> {
    const BATCH: usize = 1024;
    let old = |name| -> Result<Option<Database<Bytes, Bytes>>> {
        env.open_database(wtxn, Some(name)).map_err(lmdb_err)
    };
    let (Some(old_entries), old_history) = (old("entries")?, old("history")?) else {
        return Ok(());
    };
    let owned = |item: heed::Result<(&[u8], &[u8])>| {
        item.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(lmdb_err)
    };
    loop {
        // Read a batch out first: LMDB cannot write while a cursor of the transaction reads.
        // Moved entries are deleted, so each batch starts where the last one ended.
        let batch: Vec<(Vec<u8>, Vec<u8>)> = old_entries
            .iter(wtxn)
            .map_err(lmdb_err)?
            .take(BATCH)
            .map(owned)
            .collect::<Result<_>>()?;
        if batch.is_empty() {
            break;
        }
        for (digest, bytes) in &batch {
            // A record that fails its check cannot name its key: it keeps its hash as a
            // hashed address, where scans still meet it as corrupt.
            let address = match Record::decode(bytes, String::new) {
                Ok(record) => address(record.key).into_owned(),
                Err(_) => [&[HASHED][..], digest].concat(),
            };
            entries.put(wtxn, &address, bytes).map_err(lmdb_err)?;
            if let Some(old_history) = old_history {
                let (first, last) = (history_key(digest, 0), history_key(digest, u64::MAX));
                let range = (Bound::Included(&first[..]), Bound::Included(&last[..]));
                let versions: Vec<(Vec<u8>, Vec<u8>)> = old_history
                    .range(wtxn, &range)
                    .map_err(lmdb_err)?
                    .map(owned)
                    .collect::<Result<_>>()?;
                for (old_key, record) in &versions {
                    let version = old_key.get(digest.len()..).unwrap_or_default();
                    let new_key = [&address[..], version].concat();
                    history.put(wtxn, &new_key, record).map_err(lmdb_err)?;
                    old_history.delete(wtxn, old_key).map_err(lmdb_err)?;
                }
            }
            old_entries.delete(wtxn, digest).map_err(lmdb_err)?;
        }
    }
    // Versions without an entry had no key to move to (a removed key leaves none).
    if let Some(old_history) = old_history {
        old_history.clear(wtxn).map_err(lmdb_err)?;
    }
    Ok(())
}

/// The value stored under `key`, checked against the stored key bytes, borrowed from the map.
fn lookup<'t>(s: &Shared, rtxn: &'t RoTxn, key: &[u8]) -> Result<Option<&'t [u8]>> {
    let address = address(key);
    let Some(bytes) = s.entries.get(rtxn, &address).map_err(lmdb_err)? else {
        return Ok(None);
    };
    let record = Record::decode(bytes, || describe(&address))?;
    if record.key != key {
        return Err(collision(&address));
    }
    // The clock is read only for records that can expire.
    if record.expires_micros.is_some() && record.is_expired(now_micros()) {
        return Ok(None);
    }
    Ok(Some(record.value))
}

impl Engine for LmdbEngine {
    fn name(&self) -> &'static str {
        "lmdb"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(|s, rtxn| Ok(lookup(s, rtxn, key)?.map(<[u8]>::to_vec)))
    }

    fn get_with(&self, key: &[u8], read: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let read = std::cell::RefCell::new(read);
        self.read(|s, rtxn| {
            Ok(lookup(s, rtxn, key)?
                .map(|value| (read.borrow_mut())(value))
                .is_some())
        })
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        self.read(|s, rtxn| {
            keys.iter()
                .map(|k| Ok(lookup(s, rtxn, k)?.map(<[u8]>::to_vec)))
                .collect()
        })
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        // In address order, each B-tree search walks pages the one before just walked. The
        // sort is stable: a key written twice in one batch keeps its writes in order.
        let mut order: Vec<(Cow<[u8]>, usize)> = items
            .iter()
            .enumerate()
            .map(|(i, (key, _, _))| (address(key), i))
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let now = now_micros();
        self.write(|s, wtxn| {
            let mut scratch = Vec::new();
            order.iter().try_for_each(|(address, i)| {
                let (key, value, meta) = items[*i];
                let at = (
                    &**address,
                    meta.timestamp_micros.unwrap_or(now),
                    meta.expires_micros,
                );
                self.put(s, wtxn, at, (key, value), &mut scratch)
            })
        })
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        let address = address(key);
        self.read(|s, rtxn| {
            match s.entries.get(rtxn, &address).map_err(lmdb_err)? {
                // Only a record that can expire needs decoding to tell.
                Some(bytes) if Record::may_expire(bytes) => Ok(lookup(s, rtxn, key)?.is_some()),
                found => Ok(found.is_some()),
            }
        })
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        // One transaction: one commit (and fsync) for all of them.
        self.write(|s, wtxn| {
            let mut removed = 0;
            for key in keys {
                removed += u64::from(self.delete_entry(s, wtxn, &address(key))?);
            }
            Ok(removed)
        })
    }

    fn len(&self) -> Result<usize> {
        self.read(|s, rtxn| Ok(s.entries.len(rtxn).map_err(lmdb_err)? as usize))
    }

    fn scan_each(&self, visit: &mut EntryVisitor<'_>) -> Result<()> {
        // The bytes go to `visit` straight from the memory map.
        let mut after: Option<Vec<u8>> = None;
        let now = now_micros();
        loop {
            let page = self.read_page(after.as_deref(), &mut |_, record| match record {
                Ok(r) if r.is_expired(now) => true,
                record => visit(record.map(|r| (r.key, r.value))),
            })?;
            match page {
                Page::Full(last) => after = Some(last),
                Page::Last | Page::Stopped => return Ok(()),
            }
        }
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        let now = now_micros();
        Ok(self.paged(move |record| match record {
            Ok(r) if r.is_expired(now) => None,
            record => Some(record.map(|r| (r.key.to_vec(), r.value.to_vec()))),
        }))
    }

    fn clear(&self) -> Result<()> {
        self.write(|s, wtxn| {
            s.entries.clear(wtxn).map_err(lmdb_err)?;
            s.history.clear(wtxn).map_err(lmdb_err)
        })
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
