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
//! **Durability**: records survive the writing process being killed at any moment. Files are
//! not fsynced, so after a power loss the newest writes may be missing (never torn: the record
//! checksum turns a torn file into an error).

use super::{
    create_private_dir, disk_usage_of, key_digest, now_micros, Engine, EntryIter, Record, Version,
};
use crate::error::{Error, Result};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The pairtree engine.
#[derive(Debug)]
pub struct PairtreeEngine {
    root: PathBuf,
    append_mode: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const VERSIONS_SUFFIX: &str = ".v";
const HINT: &str = "latest";

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn version_name(version: u64) -> String {
    format!("{version:020}")
}

impl PairtreeEngine {
    /// Opens (creating if needed) the folder tree at `path`.
    pub fn open(path: &Path, append_mode: bool) -> Result<Self> {
        create_private_dir(path)?;
        Ok(PairtreeEngine {
            root: path.to_path_buf(),
            append_mode,
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

    /// Writes `bytes` to a new temporary file in `dir` and returns its path.
    fn write_temp(dir: &Path, bytes: &[u8]) -> Result<PathBuf> {
        create_private_dir(dir)?;
        let tmp = dir.join(format!(
            ".tmp.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        Ok(tmp)
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

    fn latest_version_number(dir: &Path) -> Result<Option<u64>> {
        let hint = fs::read_to_string(dir.join(HINT))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mut n = match hint {
            Some(n) => n,
            None => match fs::read_dir(dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(dir, e)),
            },
        };
        // The hint may lag behind writers in other processes: step past it.
        while dir.join(version_name(n + 1)).exists() {
            n += 1;
        }
        Ok((n > 0).then_some(n))
    }

    fn append(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let dir = self.entry_path(key);
        let start = Self::latest_version_number(&dir)?.unwrap_or(0) + 1;
        let mut version = start;
        // Each attempt writes a temp file with the candidate version number inside, then
        // links it into place: `link` refuses an existing name, so each number is taken once.
        loop {
            let record = Record {
                key,
                version,
                timestamp_micros: now_micros(),
                value,
            }
            .encode();
            let tmp = Self::write_temp(&dir, &record)?;
            let target = dir.join(version_name(version));
            let linked = fs::hard_link(&tmp, &target);
            let _ = fs::remove_file(&tmp);
            match linked {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(Error::io(&target, e)),
            }
        }
        let hint = Self::write_temp(&dir, version.to_string().as_bytes())?;
        fs::rename(&hint, dir.join(HINT)).map_err(|e| Error::io(dir.join(HINT), e))
    }

    fn all_versions(&self, dir: &Path, key: &[u8]) -> Result<Vec<Version>> {
        let Some(latest) = Self::latest_version_number(dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(latest.min(4096) as usize);
        for n in 1..=latest {
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

    fn latest_of(&self, path: &Path) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let record_path = if self.append_mode {
            match Self::latest_version_number(path)? {
                Some(n) => path.join(version_name(n)),
                None => return Ok(None),
            }
        } else {
            path.to_path_buf()
        };
        let Ok(bytes) = fs::read(&record_path) else {
            // Removed while scanning.
            return Ok(None);
        };
        let record = Record::decode(&bytes, || record_path.display().to_string())?;
        Ok(Some((record.key.to_vec(), record.value.to_vec())))
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
        let path = self.entry_path(key);
        let record_path = if self.append_mode {
            match Self::latest_version_number(&path)? {
                Some(n) => path.join(version_name(n)),
                None => return Ok(None),
            }
        } else {
            path
        };
        Ok(Self::read_record(&record_path, Some(key))?.map(|v| v.value))
    }

    fn set(&self, key: &[u8], value: &[u8]) -> Result<()> {
        if self.append_mode {
            return self.append(key, value);
        }
        let path = self.entry_path(key);
        let record = Record {
            key,
            version: 1,
            timestamp_micros: now_micros(),
            value,
        }
        .encode();
        let dir = path.parent().unwrap_or(&self.root);
        let tmp = Self::write_temp(dir, &record)?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(&path, e)
        })
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        let path = self.entry_path(key);
        if self.append_mode {
            return Ok(Self::latest_version_number(&path)?.is_some());
        }
        Ok(self.get(key)?.is_some())
    }

    fn remove(&self, key: &[u8]) -> Result<bool> {
        let path = self.entry_path(key);
        let removed = if self.append_mode {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn len(&self) -> Result<usize> {
        self.entry_paths().try_fold(0, |n, p| p.map(|_| n + 1))
    }

    fn scan(&self) -> Result<EntryIter<'_>> {
        Ok(Box::new(self.entry_paths().filter_map(move |p| {
            p.and_then(|p| self.latest_of(&p)).transpose()
        })))
    }

    fn versions(&self, key: &[u8]) -> Result<Vec<Version>> {
        let path = self.entry_path(key);
        if self.append_mode {
            self.all_versions(&path, key)
        } else {
            Ok(Self::read_record(&path, Some(key))?.into_iter().collect())
        }
    }

    fn clear(&self) -> Result<()> {
        match fs::remove_dir_all(&self.root) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&self.root, e)),
        }
        create_private_dir(&self.root)
    }

    fn disk_usage(&self) -> Result<u64> {
        Ok(disk_usage_of(&self.root))
    }
}
