//! What scans do with an entry whose stored bytes do not decode, and how errors name entries.
//!
//! A point read (`get`) of a corrupt entry is always an error. A scan (`items`, `values`,
//! `ld`, tables, SQL, DataFrames, exports) follows the stash's [`OnCorrupt`] policy: stop at
//! the first such entry with its error (the default), or skip it and remember it, so that the
//! caller can report how many were skipped ([`crate::Stash::skipped_corrupt`]). Only decoding
//! errors are skipped: a disk or server failure still ends the scan.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The longest key text an error message shows.
const KEY_SHOWN: usize = 200;

/// What a scan does with an entry that does not decode (corrupt bytes, or a value of another
/// type than the one asked for).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hashstash::{EngineExt, OnCorrupt, Stash};
///
/// let stash = Stash::builder().root_dir(dir.path()).on_corrupt(OnCorrupt::Skip).open()?;
/// stash.set("fine", &1)?;
/// stash.engine().set(&stash.encode_key("damaged")?, b"not a value")?; // as a bad disk would
/// assert!(stash.get::<_, i32>("damaged").is_err()); // a point read always says so
/// let values: Vec<i32> = stash.values()?.collect::<Result<_, _>>()?; // a scan leaves it out
/// assert_eq!(values, [1]);
/// assert_eq!(stash.skipped_corrupt().len(), 1); // and tells which
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnCorrupt {
    /// The scan fails with the entry's error (the default: nothing is silently left out).
    #[default]
    Fail,
    /// The scan leaves the entry out and goes on; [`crate::Stash::skipped_corrupt`] lists it.
    Skip,
}

impl OnCorrupt {
    /// The policy's name, as [`str::parse`] reads it back.
    ///
    /// ```
    /// use hashstash::OnCorrupt;
    /// assert_eq!(OnCorrupt::Skip.as_str().parse::<OnCorrupt>()?, OnCorrupt::Skip);
    /// assert_eq!(OnCorrupt::default().as_str(), "fail");
    /// # Ok::<(), hashstash::Error>(())
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            OnCorrupt::Fail => "fail",
            OnCorrupt::Skip => "skip",
        }
    }
}

impl std::str::FromStr for OnCorrupt {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail" => Ok(OnCorrupt::Fail),
            "skip" => Ok(OnCorrupt::Skip),
            _ => Err(Error::InvalidOption {
                option: "on_corrupt",
                message: format!("unknown policy {s:?}; expected fail or skip"),
            }),
        }
    }
}

/// A stash handle's policy and the corrupt entries its scans skipped (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct CorruptEntries {
    skip: AtomicBool,
    /// One error message per skipped entry: a set, because a query may read an entry twice
    /// (once for the schema, once for the rows) and that is still one corrupt entry.
    skipped: Mutex<BTreeSet<String>>,
}

impl CorruptEntries {
    pub(crate) fn policy(&self) -> OnCorrupt {
        if self.skip.load(Ordering::Relaxed) {
            OnCorrupt::Skip
        } else {
            OnCorrupt::Fail
        }
    }

    pub(crate) fn set_policy(&self, policy: OnCorrupt) {
        self.skip
            .store(policy == OnCorrupt::Skip, Ordering::Relaxed);
    }

    /// `Ok(())` if the policy skips `error` (it is then remembered), else the error back.
    pub(crate) fn skip_or_fail(&self, error: Error) -> Result<()> {
        if self.policy() == OnCorrupt::Skip && matches!(error, Error::Decode { .. }) {
            let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
            skipped.insert(error.to_string());
            Ok(())
        } else {
            Err(error)
        }
    }

    /// The skipped entries' errors; `take` also forgets them.
    pub(crate) fn list(&self, take: bool) -> Vec<String> {
        let mut skipped = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        if take {
            std::mem::take(&mut *skipped).into_iter().collect()
        } else {
            skipped.iter().cloned().collect()
        }
    }
}

/// The key of `key_bytes` as JSON text for an error message (shortened), or its first bytes
/// in hex when they do not decode.
pub(crate) fn describe_key(key_bytes: &[u8]) -> String {
    match crate::codec::decode_key_cbor(key_bytes) {
        Ok(key) => {
            let text = crate::value::cbor_to_json(&key).to_string();
            if text.len() <= KEY_SHOWN {
                return text;
            }
            let mut end = KEY_SHOWN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &text[..end])
        }
        Err(_) => {
            let hex: String = key_bytes
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("<undecodable key bytes {hex}>")
        }
    }
}

impl Error {
    /// A decoding error that names the entry of `key_bytes` (other errors are unchanged):
    /// what a scan reports, so that the user can find the entry.
    pub fn for_entry(self, key_bytes: &[u8]) -> Error {
        match self {
            Error::Decode {
                what,
                format,
                source,
            } => Error::Decode {
                what: format!("{what} of key {}", describe_key(key_bytes)),
                format,
                source,
            },
            other => other,
        }
    }
}
