//! `hashstash_rs._native`: the Rust core of the Python package `hashstash_rs` (see
//! `python/README.md`). The Python modules beside it (`hashstash_rs/*.py`) give it the
//! Python original's API.

mod convert;
mod entries;
mod errors;
mod stash;
mod tables;

use pyo3::prelude::*;

/// Canonical key bytes of any key, as every stash (and the Rust crate, and the CLI) writes it.
#[pyfunction]
fn encode_key<'py>(key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    Ok(pyo3::types::PyBytes::new(key.py(), &stash::key_bytes(key)?))
}

/// The key canonical `bytes` encode.
#[pyfunction]
fn decode_key(py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    use errors::OrPy;
    convert::to_python(py, hashstash::codec::decode_key_dyn(bytes).or_py()?, false)
}

/// `obj` serialized (`hashstash`: MessagePack; `json`; `pickle`: MessagePack in which
/// what has no portable form is pickled), neither compressed nor base64-encoded.
#[pyfunction]
#[pyo3(signature = (obj, serializer = "hashstash"))]
fn serialize<'py>(
    obj: &Bound<'py, PyAny>,
    serializer: &str,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    use errors::OrPy;
    let (codec, pickle) = plain_codec(serializer)?;
    let value = convert::to_value(obj, convert::Role::Value, pickle)?;
    let bytes = codec.encode_value_dyn_owned(value).or_py()?;
    Ok(pyo3::types::PyBytes::new(obj.py(), &bytes))
}

/// The object [`serialize`] wrote into `data`.
#[pyfunction]
#[pyo3(signature = (data, serializer = "hashstash"))]
fn deserialize(py: Python<'_>, data: &[u8], serializer: &str) -> PyResult<Py<PyAny>> {
    use errors::OrPy;
    let (codec, pickle) = plain_codec(serializer)?;
    convert::to_python(py, codec.decode_value_dyn(data).or_py()?, pickle)
}

fn plain_codec(serializer: &str) -> PyResult<(hashstash::Codec, bool)> {
    use errors::OrPy;
    let pickle = serializer == "pickle";
    let name = if pickle { "hashstash" } else { serializer };
    let codec = hashstash::Codec {
        serializer: name.parse().or_py()?,
        compress: hashstash::Compressor::Raw,
        b64: false,
    };
    Ok((codec, pickle))
}

/// `data` compressed (`lz4` by default; `raw`, `zstd`, `gzip`, `zlib`, `bz2`), then
/// base64-encoded if `b64`.
#[pyfunction]
#[pyo3(signature = (data, compress = "lz4", b64 = true))]
fn encode<'py>(
    py: Python<'py>,
    data: &[u8],
    compress: &str,
    b64: bool,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    transcode(py, data, compress, b64, hashstash::encode)
}

/// The bytes [`encode`] made `data` from.
#[pyfunction]
#[pyo3(signature = (data, compress = "lz4", b64 = true))]
fn decode<'py>(
    py: Python<'py>,
    data: &[u8],
    compress: &str,
    b64: bool,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    transcode(py, data, compress, b64, hashstash::decode)
}

/// [`encode`] or [`decode`]: the compressor parsed, the bytes turned, errors typed.
fn transcode<'py>(
    py: Python<'py>,
    data: &[u8],
    compress: &str,
    b64: bool,
    turn: fn(&[u8], hashstash::Compressor, bool) -> hashstash::Result<Vec<u8>>,
) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    use errors::OrPy;
    let compress: hashstash::Compressor = compress.parse().or_py()?;
    let bytes = turn(data, compress, b64).or_py()?;
    Ok(pyo3::types::PyBytes::new(py, &bytes))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<stash::PyStash>()?;
    m.add_class::<entries::Entries>()?;
    m.add_function(wrap_pyfunction!(tables::sql, m)?)?;
    m.add_function(wrap_pyfunction!(tables::to_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(tables::to_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(tables::load_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(encode_key, m)?)?;
    m.add_function(wrap_pyfunction!(decode_key, m)?)?;
    m.add_function(wrap_pyfunction!(serialize, m)?)?;
    m.add_function(wrap_pyfunction!(deserialize, m)?)?;
    m.add_function(wrap_pyfunction!(encode, m)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add("FUNCTION_TAG", convert::FUNCTION_TAG)?;
    errors::register(m)?;
    Ok(())
}
