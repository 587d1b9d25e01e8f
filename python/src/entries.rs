//! `keys()`, `values()` and `items()`: a stash's entries streamed to Python.
//!
//! A reader thread scans the engine with its own handle on the stash and hands the stored
//! bytes over a bounded channel, [`BATCH`] entries at a time (one wake-up per batch, not per
//! entry). Memory stays bounded by [`AHEAD`] batches however large the stash is, and the
//! engine reads while Python decodes. When the iterator is dropped, the thread ends at its
//! next hand-over.

use crate::convert::to_python;
use crate::errors::OrPy;
use hashstash::{codec, Codec, Stash};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Mutex;

/// Entries handed over at a time.
const BATCH: usize = 256;

/// How many batches the reader may read ahead of Python.
const AHEAD: usize = 4;

/// One stored entry as the engine gave it: its key and value bytes, or the engine's error
/// for an entry it could not read (kept in place, for `on_corrupt` to judge).
type RawEntry = hashstash::Result<(Vec<u8>, Vec<u8>)>;

/// The batches from the reader thread, and the one being handed out.
struct Batches {
    batch: std::vec::IntoIter<RawEntry>,
    receiver: Receiver<Vec<RawEntry>>,
}

/// What [`Batches::next`] has: an entry or the end (`None`), or nothing yet.
enum Next {
    Ready(Option<RawEntry>),
    Pending,
}
use Next::{Pending, Ready};

impl Batches {
    /// The next entry; without `wait`, `Pending` when the reader has not caught up.
    fn next(&mut self, wait: bool) -> Next {
        loop {
            if let Some(entry) = self.batch.next() {
                return Ready(Some(entry));
            }
            let batch = match (wait, self.receiver.try_recv()) {
                (_, Ok(batch)) => batch,
                (_, Err(TryRecvError::Disconnected)) => return Ready(None),
                (false, Err(TryRecvError::Empty)) => return Pending,
                (true, Err(TryRecvError::Empty)) => match self.receiver.recv() {
                    Ok(batch) => batch,
                    Err(_) => return Ready(None),
                },
            };
            self.batch = batch.into_iter();
        }
    }
}

/// An iterator over a stash's entries (`keys()`, `values()`, `items()`): the stored bytes
/// come from the reader thread, and each entry is decoded when it is reached.
#[pyclass(module = "hashstash_rs._native")]
pub struct Entries {
    raw: Mutex<Batches>,
    /// The stash read: its `on_corrupt` policy says whether an entry that does not decode
    /// ends the iteration or is left out (and listed by `skipped_corrupt()`).
    stash: Stash,
    codec: Codec,
    pickle: bool,
    keys: bool,
    values: bool,
}

impl Entries {
    /// Starts the reader thread. An engine error (a server that is down) reaches Python at
    /// the first `next()`, as a generator's would.
    pub fn start(
        stash: &Stash,
        codec: Codec,
        pickle: bool,
        keys: bool,
        values: bool,
    ) -> PyResult<Entries> {
        let (sender, receiver) = sync_channel(AHEAD);
        let reader = stash.clone();
        std::thread::Builder::new()
            .name("hashstash-scan".into())
            .spawn(move || {
                let entries = match reader.raw_items() {
                    Ok(entries) => entries,
                    Err(error) => return drop(sender.send(vec![Err(error)])),
                };
                let mut batch = Vec::with_capacity(BATCH);
                for entry in entries {
                    batch.push(entry);
                    // A failed send means the iterator is gone: stop reading.
                    if batch.len() == BATCH && sender.send(std::mem::take(&mut batch)).is_err() {
                        return;
                    }
                }
                if !batch.is_empty() {
                    let _ = sender.send(batch);
                }
            })
            .map_err(|e| PyOSError::new_err(format!("cannot start a thread to read: {e}")))?;
        Ok(Entries {
            raw: Mutex::new(Batches {
                batch: Vec::new().into_iter(),
                receiver,
            }),
            stash: stash.clone(),
            codec,
            pickle,
            keys,
            values,
        })
    }

    /// The next stored entry, `None` at the end.
    fn next_raw(&self, py: Python<'_>) -> Option<RawEntry> {
        // An entry already here is taken without giving up the GIL.
        if let Ok(mut batches) = self.raw.try_lock() {
            if let Ready(entry) = batches.next(false) {
                return entry;
            }
        }
        // Otherwise wait without the GIL, taking the lock there too: a thread that held the
        // GIL while it waited for the lock would keep the lock's holder from returning.
        py.detach(|| {
            match self
                .raw
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next(true)
            {
                Ready(entry) => entry,
                Pending => None, // not reached: a wait is never pending
            }
        })
    }

    /// One entry as its Python object: the key, the value or the `(key, value)` pair. The
    /// error is the crate's when the stored bytes do not decode, Python's when the decoded
    /// tree does not become a Python object.
    fn entry(
        &self,
        py: Python<'_>,
        key: &[u8],
        value: &[u8],
    ) -> Result<Py<PyAny>, Result<hashstash::Error, PyErr>> {
        let key = match self.keys {
            true => Some(codec::decode_key_dyn(key).map_err(Ok)?),
            false => None,
        };
        let value = match self.values {
            true => Some(self.codec.decode_value_dyn(value).map_err(Ok)?),
            false => None,
        };
        let python = |tree, pickle| to_python(py, tree, pickle).map_err(Err);
        Ok(match (key, value) {
            (Some(k), Some(v)) => {
                let pair = [python(k, false)?, python(v, self.pickle)?];
                PyTuple::new(py, pair).map_err(Err)?.into_any().unbind()
            }
            (Some(k), None) => python(k, false)?,
            (None, Some(v)) => python(v, self.pickle)?,
            (None, None) => py.None(),
        })
    }
}

#[pymethods]
impl Entries {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            let (key, value) = match self.next_raw(py) {
                None => return Ok(None),
                Some(Ok(entry)) => entry,
                Some(Err(unreadable)) => {
                    self.stash.skip_or_fail(unreadable).or_py()?;
                    continue;
                }
            };
            match self.entry(py, &key, &value) {
                Ok(entry) => return Ok(Some(entry)),
                // Bytes that do not decode follow the stash's policy, as the crate's scans
                // do; a Python error (a pickle the stash may not load...) is raised.
                Err(Ok(corrupt)) => self.stash.skip_or_fail(corrupt.for_entry(&key)).or_py()?,
                Err(Err(python)) => return Err(python),
            }
        }
    }
}
