//! `hashstash_rs._native.Stash`: a [`hashstash::Stash`] for Python. The Python class
//! `HashStash` subclasses it and adds what is easier written in Python (decorators, `map`,
//! DataFrames); everything on the path of a read or a write is here, in Rust.
//!
//! Each call converts under the GIL (Python objects to canonical key bytes and encoded
//! values, or back) and releases it around the engine call, so that other Python threads
//! run while a disk or a server answers.

use crate::convert::{to_python, to_value, Role};
use crate::entries::Entries;
use crate::errors::{to_py, OrPy};
use hashstash::engine::EngineExt;
use hashstash::{codec, Codec, EngineKind, Stash, StashBuilder};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::sync::Mutex;

/// Entries written to the engine in one transaction by `update`.
const BATCH: usize = 4096;

/// A stash. Options as the Python original's `HashStash(...)`, by keyword.
#[pyclass(subclass, frozen, module = "hashstash_rs._native", name = "Stash")]
pub struct PyStash {
    pub(crate) stash: Stash,
    codec: Codec,
    /// Whether values may be pickled and unpickled (`serializer="pickle"`).
    pub(crate) pickle: bool,
    /// A temporary stash's guard: dropping it removes what the stash wrote.
    tmp: Mutex<Option<hashstash::TmpStash>>,
}

impl PyStash {
    pub(crate) fn wrap(stash: Stash, pickle: bool) -> Self {
        PyStash {
            codec: stash.codec(),
            stash,
            pickle,
            tmp: Mutex::new(None),
        }
    }

    /// A stash made from this one (`HashStash(_derive=(parent, kind, name))`): `sub`, a
    /// sub-stash `<dbname>/<name>`; `tmp`, a temporary stash removed by `_drop_tmp`;
    /// `function`, the stash of function `name`'s results.
    fn derive(&self, py: Python<'_>, kind: &str, name: &str) -> PyResult<PyStash> {
        match kind {
            "sub" => {
                let sub = py.detach(|| self.stash.sub(name)).or_py()?;
                Ok(PyStash::wrap(sub, self.pickle))
            }
            "tmp" => {
                let tmp = py.detach(|| self.stash.tmp()).or_py()?;
                let stash = PyStash::wrap((*tmp).clone(), self.pickle);
                *stash.tmp.lock().unwrap_or_else(|e| e.into_inner()) = Some(tmp);
                Ok(stash)
            }
            "function" => {
                let stash = py.detach(|| self.stash.function_stash(name)).or_py()?;
                Ok(PyStash::wrap(stash, self.pickle))
            }
            other => Err(PyTypeError::new_err(format!("no derived stash {other:?}"))),
        }
    }

    fn key(&self, key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        key_bytes(key)
    }

    fn encode(&self, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
        let value = to_value(value, Role::Value, self.pickle)?;
        self.codec.encode_value_dyn_owned(value).or_py()
    }

    fn decode(&self, py: Python<'_>, stored: &[u8]) -> PyResult<Py<PyAny>> {
        let value = self.codec.decode_value_dyn(stored).or_py()?;
        to_python(py, value, self.pickle)
    }

    /// Encodes `pairs` (a dict, or an iterable of `(key, value)`) into batches of
    /// [`BATCH`] entries handed to `send`, which says whether to go on.
    fn encode_batches(
        &self,
        pairs: &Bound<'_, PyAny>,
        mut send: impl FnMut(Vec<(Vec<u8>, Vec<u8>)>) -> bool,
    ) -> PyResult<()> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut push = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<bool> {
            batch.push((self.key(k)?, self.encode(v)?));
            if batch.len() < BATCH {
                return Ok(true);
            }
            Ok(send(std::mem::replace(
                &mut batch,
                Vec::with_capacity(BATCH),
            )))
        };
        if let Ok(dict) = pairs.cast::<PyDict>() {
            for (k, v) in dict.iter() {
                if !push(&k, &v)? {
                    return Ok(());
                }
            }
        } else {
            for pair in pairs.try_iter()? {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
                if !push(&k, &v)? {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            send(batch);
        }
        Ok(())
    }

    /// The stored bytes under `key`, read without the GIL.
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
        let key = self.key(key)?;
        py.detach(|| self.stash.get_raw(&key)).or_py()
    }
}

/// Canonical key bytes of a Python key. A `str`, the most common key, takes the crate's
/// fast path.
pub(crate) fn key_bytes(key: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(text) = key.cast_exact::<pyo3::types::PyString>() {
        return codec::encode_key(text.to_str()?).or_py();
    }
    codec::encode_key_value(to_value(key, Role::Key, false)?).or_py()
}

/// Applies the options of `HashStash(...)` (already named as the crate names them).
fn builder(options: Option<&Bound<'_, PyDict>>) -> PyResult<(StashBuilder, bool)> {
    let mut builder = Stash::builder();
    let mut pickle = false;
    let Some(options) = options else {
        return Ok((builder, pickle));
    };
    for (name, value) in options.iter() {
        if value.is_none() {
            continue;
        }
        let name: String = name.extract()?;
        builder = match name.as_str() {
            "root_dir" => builder.root_dir(value.extract::<std::path::PathBuf>()?),
            "dbname" => builder.dbname(value.extract::<String>()?),
            "engine" => builder.engine(value.extract::<String>()?.parse::<EngineKind>().or_py()?),
            "serializer" => {
                let name: String = value.extract()?;
                // Pickled values live in the portable serializer's MessagePack, marked.
                pickle = name == "pickle";
                let serializer = if pickle { "hashstash" } else { name.as_str() };
                builder.serializer(serializer.parse().or_py()?)
            }
            "compress" => builder.compress(compressor(&value)?),
            "b64" => builder.b64(value.extract()?),
            "append_mode" => builder.append_mode(value.extract()?),
            "clear" => builder.clear(value.extract()?),
            "url" => builder.url(value.extract::<String>()?),
            "timeout_ms" => builder.timeout_ms(value.extract()?),
            "lease_ms" => builder.lease_ms(value.extract()?),
            "ttl_ms" => builder.ttl_ms(value.extract()?),
            "max_entries" => builder.max_entries(value.extract()?),
            "max_bytes" => builder.max_bytes(value.extract()?),
            "size_limit" => builder.size_limit(value.extract()?),
            "sync" => builder.sync(value.extract()?),
            "on_corrupt" => builder.on_corrupt(value.extract::<String>()?.parse().or_py()?),
            other => {
                return Err(PyTypeError::new_err(format!(
                    "HashStash() got an unexpected option {other:?}"
                )))
            }
        };
    }
    Ok((builder, pickle))
}

/// `compress=`: a name, or the original's booleans (True: lz4, False: raw).
fn compressor(value: &Bound<'_, PyAny>) -> PyResult<hashstash::Compressor> {
    if let Ok(on) = value.cast_exact::<pyo3::types::PyBool>() {
        let name = if on.is_true() { "lz4" } else { "raw" };
        return name.parse().or_py();
    }
    value.extract::<String>()?.parse().or_py()
}

#[pymethods]
impl PyStash {
    #[new]
    #[pyo3(signature = (*, _derive = None, _config = None, **options))]
    fn new(
        py: Python<'_>,
        _derive: Option<(PyRef<'_, PyStash>, String, String)>,
        _config: Option<(String, bool)>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if let Some((parent, kind, name)) = _derive {
            return parent.derive(py, &kind, &name);
        }
        if let Some((json, pickle)) = _config {
            // Another process's stash, from `_config_json(False)`: the same stash exactly.
            let json: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| PyTypeError::new_err(format!("a stash configuration: {e}")))?;
            let config = hashstash::StashConfig::from_dict(&json).or_py()?;
            let stash = py.detach(|| Stash::open_config(config, false)).or_py()?;
            return Ok(PyStash::wrap(stash, pickle));
        }
        let (builder, pickle) = builder(options)?;
        let stash = py.detach(|| builder.open()).or_py()?;
        Ok(PyStash::wrap(stash, pickle))
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match self.lookup(py, key)? {
            Some(stored) => self.decode(py, &stored),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (key, value) = (self.key(key)?, self.encode(value)?);
        py.detach(|| self.stash.set_raw(&key, &value)).or_py()
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = self.key(key)?;
        if py.detach(|| self.stash.remove_raw(&bytes)).or_py()? {
            Ok(())
        } else {
            Err(PyKeyError::new_err(key.clone().unbind()))
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = self.key(key)?;
        py.detach(|| self.stash.engine().contains(&key)).or_py()
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| self.stash.len()).or_py()
    }

    /// The value under `key`, or `default`.
    #[pyo3(signature = (key, default = None))]
    fn get(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.lookup(py, key)? {
            Some(stored) => self.decode(py, &stored),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// Stores `value` under `key` (a new version in append mode).
    fn set(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.__setitem__(py, key, value)
    }

    /// Removes `key` and returns its value; `default` (or `KeyError`) when it is missing.
    #[pyo3(signature = (key, *default))]
    fn pop(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let bytes = self.key(key)?;
        let Some(stored) = py.detach(|| self.stash.get_raw(&bytes)).or_py()? else {
            return match default.len() {
                0 => Err(PyKeyError::new_err(key.clone().unbind())),
                _ => Ok(default.get_item(0)?.unbind()),
            };
        };
        // Decoded before it is removed: a value that does not decode is not lost.
        let value = self.decode(py, &stored)?;
        py.detach(|| self.stash.remove_raw(&bytes)).or_py()?;
        Ok(value)
    }

    /// The value under `key`; where there is none, stores `default` and returns it (one
    /// step against every other writer: of several callers exactly one stores).
    #[pyo3(signature = (key, default = None))]
    fn setdefault(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        default: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let key = self.key(key)?;
        let value = match default {
            Some(default) => self.encode(default)?,
            None => self.encode(&py.None().into_bound(py))?,
        };
        let stored = py
            .detach(|| self.stash.setdefault_raw(&key, &value))
            .or_py()?;
        self.decode(py, &stored)
    }

    /// Stores many entries: pairs from an iterable (a dict's items, say), written to the
    /// engine in transactions of 4096. A writer thread commits one batch while this thread
    /// (holding the GIL, which reading Python objects needs) encodes the next; a failed
    /// write stops the encoding and is raised.
    fn _update_pairs(&self, py: Python<'_>, pairs: &Bound<'_, PyAny>) -> PyResult<usize> {
        let stash = &self.stash;
        std::thread::scope(|scope| {
            let (to_writer, batches) = std::sync::mpsc::sync_channel::<Vec<(Vec<u8>, Vec<u8>)>>(1);
            let writer = scope.spawn(move || -> hashstash::Result<usize> {
                let mut written = 0;
                for batch in batches {
                    stash.set_many_raw(&batch)?;
                    written += batch.len();
                }
                Ok(written)
            });
            let encoded = self.encode_batches(pairs, |batch| {
                // Waits (without the GIL) while the writer is still on the batch before.
                py.detach(|| to_writer.send(batch)).is_ok()
            });
            drop(to_writer);
            let written = py.detach(|| writer.join());
            let written =
                written.map_err(|_| PyTypeError::new_err("the update's writer thread panicked"))?;
            // An encoding error first (the writer then only stopped early), else the engine's.
            encoded?;
            written.or_py()
        })
    }

    /// Copies every entry of another stash (any engine and format) into this one.
    fn _update_from(&self, py: Python<'_>, other: &PyStash) -> PyResult<()> {
        py.detach(|| self.stash.update_from(&other.stash)).or_py()
    }

    /// Removes every entry (and the function stashes below this stash).
    fn clear(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        let stash = slf.get().stash.clone();
        slf.py().detach(|| stash.clear()).or_py()?;
        Ok(slf)
    }

    /// The stored entries, streamed from the engine and decoded as they are iterated.
    #[pyo3(signature = (keys = true, values = true))]
    fn _entries(&self, keys: bool, values: bool) -> PyResult<Entries> {
        Entries::start(&self.stash, self.codec, self.pickle, keys, values)
    }

    /// The stored `(key bytes, value bytes)` pairs (the original's `_items`).
    fn _raw_items(&self, py: Python<'_>) -> PyResult<Vec<(Vec<u8>, Vec<u8>)>> {
        py.detach(|| -> hashstash::Result<_> { self.stash.raw_items()?.collect() })
            .or_py()
    }

    /// Canonical key bytes of `key` (the original's `encode_key`).
    fn encode_key<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        Ok(pyo3::types::PyBytes::new(py, &self.key(key)?))
    }

    /// The key `bytes` encode.
    fn decode_key(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
        to_python(py, codec::decode_key_dyn(bytes).or_py()?, false)
    }

    /// `value` as this stash stores it (serializer, compressor, base64).
    fn encode_value<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        Ok(pyo3::types::PyBytes::new(py, &self.encode(value)?))
    }

    /// The value stored `bytes` hold.
    fn decode_value(&self, py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
        self.decode(py, bytes)
    }

    /// Every version under `key`, oldest first, each as a value or, with metadata, as
    /// `{"_version": n, "_timestamp": seconds, "_value": value}`.
    #[pyo3(signature = (key, with_metadata = false))]
    fn get_all(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        with_metadata: bool,
    ) -> PyResult<Py<PyList>> {
        let key = self.key(key)?;
        let versions = py
            .detach(|| -> hashstash::Result<_> { self.stash.engine().history()?.versions(&key) })
            .or_py()?;
        let out = PyList::empty(py);
        for version in versions {
            let value = self.decode(py, &version.value)?;
            if with_metadata {
                let entry = PyDict::new(py);
                entry.set_item("_version", version.version)?;
                entry.set_item("_timestamp", version.timestamp_micros as f64 / 1e6)?;
                entry.set_item("_value", value)?;
                out.append(entry)?;
            } else {
                out.append(value)?;
            }
        }
        Ok(out.unbind())
    }

    /// Clears and removes a temporary stash (nothing for another stash).
    fn _drop_tmp(&self, py: Python<'_>) {
        let guard = self.tmp.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(|| drop(guard));
    }

    /// The names of this stash's function stashes, sorted.
    fn function_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.stash.function_names()).or_py()
    }

    /// `func(*args, **kwargs)` computed once under `name` and read back after: the result
    /// stored in the function stash under the key `[args, kwargs]`. Several threads or
    /// processes asking at once compute it once; the others wait for it. A raised
    /// exception is raised again and nothing is stored.
    #[pyo3(signature = (name, func, args, kwargs, force = false))]
    fn _run(
        &self,
        py: Python<'_>,
        name: &str,
        func: Py<PyAny>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
        force: bool,
    ) -> PyResult<Py<PyAny>> {
        let kwargs = kwargs.unwrap_or_else(|| PyDict::new(py).unbind());
        let call_key = PyTuple::new(
            py,
            [
                args.clone_ref(py).into_any(),
                kwargs.clone_ref(py).into_any(),
            ],
        )?;
        let key =
            codec::encode_key_value(to_value(call_key.as_any(), Role::Key, false)?).or_py()?;
        let compute = || -> PyResult<Vec<u8>> {
            Python::attach(|py| {
                let result = func.bind(py).call(args.bind(py), Some(kwargs.bind(py)))?;
                self.encode(&result)
            })
        };
        let stored = if force {
            let results = py.detach(|| self.stash.function_stash(name)).or_py()?;
            let stored = py.detach(compute)?;
            py.detach(|| results.set_raw(&key, &stored)).or_py()?;
            stored
        } else {
            py.detach(|| self.stash.try_run_encoded(name, key, compute))
                .or_py()??
        };
        self.decode(py, &stored)
    }

    /// The configuration as JSON: as the original's `to_dict()` shows it (a URL's secrets
    /// hidden), or whole, for opening the same stash in another process.
    #[pyo3(signature = (redacted = true))]
    fn _config_json(&self, redacted: bool) -> PyResult<String> {
        let json = if redacted {
            serde_json::to_string(&self.stash.to_dict())
        } else {
            serde_json::to_string(self.stash.config())
        };
        json.map_err(|e| {
            to_py(hashstash::Error::InvalidOption {
                option: "config",
                message: e.to_string(),
            })
        })
    }

    /// What scans do with an entry whose bytes do not decode: `"fail"` (the default) or
    /// `"skip"`. Sub-stashes and function stashes take the policy when they are made.
    #[getter]
    fn on_corrupt(&self) -> &'static str {
        self.stash.on_corrupt().as_str()
    }

    #[setter]
    fn set_on_corrupt(&self, policy: &str) -> PyResult<()> {
        self.stash.set_on_corrupt(policy.parse().or_py()?);
        Ok(())
    }

    /// The entries that scans through this stash left out under `on_corrupt="skip"`, one
    /// message per entry, naming it.
    fn skipped_corrupt(&self) -> Vec<String> {
        self.stash.skipped_corrupt()
    }

    /// The stash's file or folder.
    #[getter]
    fn path(&self) -> String {
        self.stash.path().display().to_string()
    }

    /// The engine's name (`lmdb`, `pairtree`...).
    #[getter]
    fn engine(&self) -> String {
        self.stash.config().engine.to_string()
    }

    /// Whether the stash keeps every version of a key.
    #[getter]
    fn append_mode(&self) -> bool {
        self.stash.config().append_mode
    }

    /// Whether values may be pickled (`serializer="pickle"`).
    #[getter]
    fn pickle(&self) -> bool {
        self.pickle
    }
}
