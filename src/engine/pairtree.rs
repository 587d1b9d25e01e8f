//! The pairtree engine: no database, just folders and files.
//!
//! Each key is addressed by the xxh3-128 hash of its bytes, written as 32 hex digits and
//! spread over two folder levels so that no folder grows too large:
//!
//! ```text
//! data.db/ab/cd/abcd…(32 hex)        one record (see `record.rs`): key, version, time, value
//! data.db/ab/cd/abcd….v/00000000000000000001   append mode: one record per version
//! data.db/ab/cd/abcd….v/latest                 append mode: a hint, the last version written
//! ```
//!
//! **Atomicity**: a record is written to a temporary file beside its target, then renamed
//! into place (or, for a new version, hard-linked: `link` fails if the name exists, which makes
//! version numbers unique and gap-free across processes without a lock). Readers never see a
//! half-written record.
//!
//! **Insert if absent** ([`AtomicInsert::insert_if_absent`], behind `setdefault`): inserters of one
//! key take turns on a lock file, `locks/<key hash>.insert.lock` beside `data.db`.
//!
//! **Durability**: records survive the writing process being killed at any moment. Files are
//! not fsynced by default, so after a power loss the newest writes may be missing (never torn:
//! the record checksum turns a torn file into an error). With `sync`, each record is fsynced
//! before it is renamed into place and its folder after, so a write that returned survives a
//! power loss.

use super::catalog::Catalog;
use super::{
    create_private_dir, disk_usage_of, key_digest, now_micros, Engine, EntryIter, Record,
    StoredEntry, StoredIter, TimeWindow, Version, WriteItem, WriteMeta,
};
use super::{AtomicInsert, Capabilities, History, Housekeeping};
use crate::error::{Error, Result};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// The pairtree engine.
#[derive(Debug)]
pub struct PairtreeEngine {
    root: PathBuf,
    append_mode: bool,
    /// fsync each record before it is renamed into place, and its folder after.
    sync: bool,
}

const VERSIONS_SUFFIX: &str = ".v";
const HINT: &str = "latest";

/// Lower-case hex digits (also the object names of the objectstore engine, which lays out
/// its objects as this tree lays out files).
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A version's file name: 20 digits, so that names sort as numbers.
pub(super) fn version_name(version: u64) -> String {
    format!("{version:020}")
}

impl PairtreeEngine {
    /// Opens (creating if needed) the folder tree at `path`.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        Self::open_with(path, append_mode, false)
    }

    /// Like [`PairtreeEngine::open`]; `sync`: every write is fsynced before it returns.
    pub fn open_with(path: &Path, append_mode: bool, sync: bool) -> Result<Self> {
        create_private_dir(path)?;
        Ok(PairtreeEngine {
            root: path.to_path_buf(),
            append_mode,
            sync,
        })
    }

    /// The file (or, in append mode, folder) of a key.
    fn entry_path(&self, key: &[u8]) -> PathBuf {
        let h = hex(&key_digest(key));
        let mut p = self.root.join(&h[0..2]).join(&h[2..4]);
        if self.append_mode {
            p.push(format!("{h}{VERSIONS_SUFFIX}"));
        } else {
            p.push(h);
        }
        p
    }

    /// Writes `bytes` to a new temporary file (mode 0600, a random name starting with a dot)
    /// in `dir`; the file is removed if it is dropped before being persisted.
    /// With `sync`, the file's bytes are on disk before it is named.
    fn write_temp(&self, dir: &Path, bytes: &[u8]) -> Result<NamedTempFile> {
        create_private_dir(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp.")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        if self.sync {
            tmp.as_file()
                .sync_all()
                .map_err(|e| Error::io(tmp.path(), e))?;
        }
        Ok(tmp)
    }

    /// With `sync`, makes the names just created or replaced in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.sync {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    }

    /// Reads and verifies the record at `path`; `None` when the file does not exist.
    fn read_record(path: &Path, key: Option<&[u8]>) -> Result<Option<Version>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let record = Record::decode(&bytes, || path.display().to_string())?;
        if let Some(key) = key {
            if record.key != key {
                // Two keys with one 128-bit hash: report it rather than return another's value.
                return Err(Error::decode(
                    path.display().to_string(),
                    "pairtree",
                    "the file holds a different key with the same hash",
                ));
            }
        }
        Ok(Some(record.to_version()))
    }

    /// The version numbers stored in a key's folder, ascending (empty when it has none).
    fn version_numbers(dir: &Path) -> Result<Vec<u64>> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            // Version files are exactly 20 digits; the hint and temp files are not.
            if let Some(n) = name
                .to_str()
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// The latest version number of a key: the hint when the file it names exists (O(1)),
    /// stepped past versions that writers in other processes added since; else a listing.
    fn latest_version_number(dir: &Path) -> Result<Option<u64>> {
        let hint = fs::read_to_string(dir.join(HINT))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| *n > 0 && dir.join(version_name(*n)).exists());
        let Some(mut n) = hint else {
            return Ok(Self::version_numbers(dir)?.last().copied());
        };
        while let Some(next) = n
            .checked_add(1)
            .filter(|m| dir.join(version_name(*m)).exists())
        {
            n = next;
        }
        Ok(Some(n))
    }

    fn append(&self, key: &[u8], value: &[u8], meta: WriteMeta) -> Result<()> {
        let dir = self.entry_path(key);
        let latest = Self::latest_version_number(&dir)?.unwrap_or(0);
        let mut version = latest.checked_add(1).ok_or_else(|| {
            Error::decode(
                dir.display().to_string(),
                "pairtree",
                "version numbers exhausted",
            )
        })?;
        // Each attempt writes a temp file with the candidate version number inside, then
        // links it into place: `link` refuses an existing name, so each number is taken once.
        loop {
            let record = Record {
                key,
                version,
                timestamp_micros: meta.timestamp_or_now(),
                expires_micros: meta.expires_micros,
                value,
            }
            .encode()?;
            let tmp = self.write_temp(&dir, &record)?;
            let target = dir.join(version_name(version));
            // The temporary file is removed when `tmp` drops, linked or not.
            match fs::hard_link(tmp.path(), &target) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    version = version
                        .checked_add(1)
                        .ok_or_else(|| Error::io(&target, e))?;
                }
                Err(e) => return Err(Error::io(&target, e)),
            }
        }
        let hint = self.write_temp(&dir, version.to_string().as_bytes())?;
        hint.persist(dir.join(HINT))
            .map_err(|e| Error::io(dir.join(HINT), e.error))?;
        self.sync_dir(&dir)
    }

    fn all_versions(&self, dir: &Path, key: &[u8]) -> Result<Vec<Version>> {
        let mut out = Vec::new();
        for n in Self::version_numbers(dir)? {
            if let Some(v) = Self::read_record(&dir.join(version_name(n)), Some(key))? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every entry file (or version folder) below the root.
    fn entry_paths(&self) -> impl Iterator<Item = Result<PathBuf>> + Send + '_ {
        let append_mode = self.append_mode;
        list_dir(&self.root)
            .flat_map(|l1| flat_result(l1.map(|d| list_dir(&d))))
            .flat_map(|l2| flat_result(l2.map(|d| list_dir(&d))))
            .filter(move |p| match p {
                Ok(p) => p.extension().is_some_and(|e| e == "v") == append_mode,
                Err(_) => true,
            })
    }

    /// The file holding the latest version of the entry at `path` (the entry file itself
    /// outside append mode; `None` for a version folder without versions).
    fn latest_file(&self, path: &Path) -> Result<Option<PathBuf>> {
        if !self.append_mode {
            return Ok(Some(path.to_path_buf()));
        }
        Ok(Self::latest_version_number(path)?.map(|n| path.join(version_name(n))))
    }

    fn latest_of(&self, path: &Path) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        Ok(self.latest_entry_of(path)?.map(|e| (e.key, e.value)))
    }

    /// The latest version of the entry in `path` with its key and metadata, unless it has
    /// expired or was removed meanwhile.
    fn latest_entry_of(&self, path: &Path) -> Result<Option<StoredEntry>> {
        let Some(record_path) = self.latest_file(path)? else {
            return Ok(None);
        };
        let bytes = match fs::read(&record_path) {
            Ok(bytes) => bytes,
            // Removed while scanning.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&record_path, e)),
        };
        let record = Record::decode(&bytes, || record_path.display().to_string())?;
        if record.is_expired(now_micros()) {
            return Ok(None);
        }
        Ok(Some(StoredEntry::of_record(&record)))
    }

    /// The latest version under `key`, unless it has expired.
    fn live(&self, key: &[u8]) -> Result<Option<Version>> {
        let Some(record_path) = self.latest_file(&self.entry_path(key))? else {
            return Ok(None);
        };
        let latest = Self::read_record(&record_path, Some(key))?;
        Ok(latest.filter(|v| v.expires_micros.is_none_or(|at| at > now_micros())))
    }

    /// Writes one entry (a new version in append mode).
    fn put(&self, key: &[u8], value: &[u8], meta: WriteMeta) -> Result<()> {
        if self.append_mode {
            return self.append(key, value, meta);
        }
        let path = self.entry_path(key);
        let record = Record {
            key,
            version: 1,
            timestamp_micros: meta.timestamp_or_now(),
            expires_micros: meta.expires_micros,
            value,
        }
        .encode()?;
        let dir = path.parent().unwrap_or(&self.root);
        let tmp = self.write_temp(dir, &record)?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        self.sync_dir(dir)
    }

    /// Removes the entry at `path` if its latest version has expired at `now`.
    ///
    /// Outside append mode the file is first renamed aside (atomic), then read: a writer that
    /// replaced it just before keeps its value, which is linked back (`link` never replaces a
    /// value written since). In append mode the folder is checked, then removed: an append
    /// landing between the two is lost with the expired entry, a window of microseconds.
    fn prune_entry(&self, path: &Path, now: i64) -> Result<bool> {
        let expired = |p: &Path| -> Result<bool> {
            let latest = match self.latest_of_record(p)? {
                Some(record) => record,
                None => return Ok(false),
            };
            Ok(latest.expires_micros.is_some_and(|at| at <= now))
        };
        if self.append_mode {
            if !expired(path)? {
                return Ok(false);
            }
            return match fs::remove_dir_all(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(path, e)),
            };
        }
        if !expired(path)? {
            return Ok(false);
        }
        let dir = path.parent().unwrap_or(&self.root);
        static ASIDE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = ASIDE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let aside = dir.join(format!(".prune.{}.{n}", std::process::id()));
        match fs::rename(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        }
        let removed = expired(&aside)?;
        if !removed {
            match fs::hard_link(&aside, path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        fs::remove_file(&aside).map_err(|e| Error::io(&aside, e))?;
        self.sync_dir(dir)?;
        Ok(removed)
    }

    /// The latest record (as a version) of the entry file or version folder at `path`.
    fn latest_of_record(&self, path: &Path) -> Result<Option<Version>> {
        match self.latest_file(path)? {
            Some(record_path) => Self::read_record(&record_path, None),
            None => Ok(None),
        }
    }
}

/// The visible children of a folder, sorted (temporary files start with a dot).
fn list_dir(dir: &Path) -> Box<dyn Iterator<Item = Result<PathBuf>> + Send> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect();
            paths.sort();
            Box::new(paths.into_iter().map(Ok))
        }
        Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
            Box::new(std::iter::empty())
        }
        Err(e) => Box::new(std::iter::once(Err(Error::io(dir, e)))),
    }
}

fn flat_result(
    r: Result<Box<dyn Iterator<Item = Result<PathBuf>> + Send>>,
) -> Box<dyn Iterator<Item = Result<PathBuf>> + Send> {
    match r {
        Ok(it) => it,
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

impl Engine for PairtreeEngine {
    fn name(&self) -> &'static str {
        "pairtree"
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.live(key)?.map(|v| v.value))
    }

    fn write_items(&self, items: &[WriteItem<'_>]) -> Result<()> {
        // No transactions: each entry is written atomically on its own, with one time.
        let now = now_micros();
        let written = items.iter().try_for_each(|&(k, v, meta)| {
            let timestamp_micros = Some(meta.timestamp_micros.unwrap_or(now));
            self.put(
                k,
                v,
                WriteMeta {
                    timestamp_micros,
                    ..meta
                },
            )
        });
        self.changed(); // after the failed ones too: some entries may be written
        written
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(self.live(key)?.is_some())
    }

    fn remove_many(&self, keys: &[&[u8]]) -> Result<u64> {
        let mut removed = 0;
        for key in keys {
            let path = self.entry_path(key);
            let gone = if self.append_mode {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match gone {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    // What was removed before the failure is gone: say so to readers.
                    if removed > 0 {
                        self.changed();
                    }
                    return Err(Error::io(&path, e));
                }
            }
        }
        if removed > 0 {
            self.changed();
        }
        Ok(removed)
    }

    fn len(&self) -> Result<usize> {
        self.entry_paths().try_fold(0, |n, p| p.map(|_| n + 1))
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        Ok(Box::new(self.entry_paths().filter_map(move |p| {
            p.and_then(|p| self.latest_of(&p)).transpose()
        })))
    }

    fn clear(&self) -> Result<()> {
        let removed = fs::remove_dir_all(&self.root);
        self.changed();
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&self.root, e)),
        }
        create_private_dir(&self.root)
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

impl History for PairtreeEngine {
    fn scan_written(&self, window: TimeWindow) -> Result<StoredIter<'_>> {
        Ok(Box::new(self.entry_paths().filter_map(move |p| {
            match p.and_then(|p| self.latest_entry_of(&p)) {
                Ok(Some(e)) if !window.contains(e.timestamp_micros) => None,
                found => found.transpose(),
            }
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        if self.live(key)?.is_none() {
            return Ok(Vec::new());
        }
        let path = self.entry_path(key);
        if self.append_mode {
            self.all_versions(&path, key)
        } else {
            Ok(Self::read_record(&path, Some(key))?.into_iter().collect())
        }
    }
}

impl AtomicInsert for PairtreeEngine {
    fn insert_if_absent(
        &self,
        key: &[u8],
        value: &[u8],
        meta: WriteMeta,
    ) -> Result<Option<Vec<u8>>> {
        // No transactions: inserters of one key take turns on a lock file beside the tree
        // (`locks/<key hash>.insert.lock`), and each reads the entry once it holds the lock.
        // A plain `set` does not wait for it: it replaces whatever is there anyway.
        let locks = self.root.with_file_name("locks");
        let _turn = super::KeyLock::take(&locks, key, ".insert.lock")?;
        if let Some(found) = self.live(key)? {
            return Ok(Some(found.value));
        }
        self.put(key, value, meta)?;
        self.changed();
        Ok(None)
    }
}

impl Housekeeping for PairtreeEngine {
    fn prune_expired(&self, now_micros: i64) -> Result<u64> {
        let mut removed = 0;
        for path in self.entry_paths() {
            match self.prune_entry(&path?, now_micros) {
                Ok(true) => removed += 1,
                // An entry that does not decode is left for scans to report.
                Ok(false) | Err(Error::Decode { .. }) => {}
                Err(e) => {
                    self.changed();
                    return Err(e);
                }
            }
        }
        if removed > 0 {
            self.changed();
        }
        Ok(removed)
    }

    fn disk_usage(&self) -> Result<u64> {
        Ok(disk_usage_of(&self.root))
    }
}

/// The change counter is a token file beside the tree (`generation`, out of `clear`'s way),
/// replaced with a new random token after every change; the token is the generation. A
/// token that cannot be replaced is removed, and a missing one reads as a new random number
/// each time, so that no table trusts a catalog until a write succeeds in writing one.
const GENERATION: &str = "generation";

impl PairtreeEngine {
    fn catalog_dir(&self) -> &Path {
        super::catalog::folder_of(&self.root)
    }

    /// Records that entries changed (after the change: a table that reads the new token
    /// reads the tree after it).
    fn changed(&self) {
        let token = random_token().to_le_bytes();
        if super::catalog::write_file(self.catalog_dir(), GENERATION, &token).is_err() {
            let _ = fs::remove_file(self.catalog_dir().join(GENERATION));
        }
    }
}

/// A number no other write picks: the time, the process and a count, hashed.
pub(super) fn random_token() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (
        nanos,
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed),
    );
    xxhash_rust::xxh3::xxh3_64(format!("{seed:?}").as_bytes())
}

impl Catalog for PairtreeEngine {
    fn generation(&self) -> Result<u64> {
        let token = super::catalog::read_file(self.catalog_dir(), GENERATION)?;
        Ok(
            match token.and_then(|t| <[u8; 8]>::try_from(t.as_slice()).ok()) {
                Some(token) => u64::from_le_bytes(token),
                None => random_token(),
            },
        )
    }

    fn read_record(&self, name: &str) -> Result<Option<Vec<u8>>> {
        super::catalog::read_file(self.catalog_dir(), name)
    }

    fn write_record(&self, name: &str, bytes: &[u8]) -> Result<()> {
        super::catalog::write_file(self.catalog_dir(), name, bytes)
    }
}
