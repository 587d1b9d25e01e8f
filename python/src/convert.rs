//! Python objects to and from the crate's dynamic [`Value`], the form in which both
//! languages meet: a key from Python becomes the same canonical bytes as the equal key from
//! Rust or the CLI, and a value the same MessagePack.
//!
//! | Python                         | key                        | value                      |
//! |--------------------------------|----------------------------|----------------------------|
//! | `None`, `bool`, `float`, `str`, `bytes` | null, bool, float, text, bytes | the same          |
//! | `int`                          | integer (bignum past 64 bits) | integer; past 64 bits ext `I` |
//! | `list`, `tuple`                | array (a tuple is a list)  | array (read back as `list`) |
//! | `dict`                         | map (sorted)               | map (in order)             |
//! | `set`, `frozenset`             | set (tag 258, sorted)      | array (read back as `list`) |
//! | a function                     | tag over `module.qualname@source-hash` | refused         |
//! | anything else                  | the Python hook's answer   | the Python hook's answer   |
//!
//! "The Python hook" is `hashstash_rs._codecs`: DataFrames and numpy arrays become Arrow
//! bytes in a MessagePack extension value, and, only on a stash opened with
//! `serializer="pickle"`, other objects a pickle. Reading does the reverse; a pickle is
//! loaded only when the reading stash allows it.

use hashstash::value::Value;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple,
};

/// The tag of a function key: its text is `module.qualname@<16 hex digits of its source>`.
pub const FUNCTION_TAG: u64 = 0x6873_4658;
/// The crate's set tag (CBOR 258).
const SET_TAG: u64 = 258;
/// The base of the tags MessagePack extension types read as (`0x6873_0000 + type`).
const EXT_BASE: u64 = 0x6873_0000;
/// The extension type of an integer past 64 bits in a value: signed big-endian bytes.
const EXT_BIG_INT: u8 = b'I';
/// The extension type of a DataFrame (Arrow IPC stream bytes), as the crate writes one.
const DATAFRAME_EXT: u8 = 0x44;

/// Whether a tree becomes a key (canonical: sets stay sets, functions are named) or a value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Key,
    Value,
}

/// Python's `hashstash_rs._codecs` module, imported once.
fn codecs(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static CODECS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    CODECS
        .get_or_try_init(py, || py.import("hashstash_rs._codecs").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// `obj` as a tree. `pickle` allows pickling what has no portable form (values only).
pub fn to_value(obj: &Bound<'_, PyAny>, role: Role, pickle: bool) -> PyResult<Value> {
    to_value_at(obj, role, pickle, 0)
}

/// Nesting beyond this is refused, as the crate's readers refuse it.
const MAX_DEPTH: usize = 500;

fn to_value_at<'py>(
    obj: &Bound<'py, PyAny>,
    role: Role,
    pickle: bool,
    depth: usize,
) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "nested more than {MAX_DEPTH} deep: too deep to store"
        )));
    }
    // Subclasses of the builtins (an `IntEnum`, a `str` subclass, a `defaultdict`...) are
    // stored as their base type. Each check is a flag test on the type; `bool` comes before
    // `int`, its base.
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Text(s.to_str()?.to_owned()));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return int_to_value(i, role);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    let nested = |item: Bound<'py, PyAny>| to_value_at(&item, role, pickle, depth + 1);
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            entries.push((nested(k)?, nested(v)?));
        }
        return Ok(Value::Map(entries));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return items(l.iter(), nested).map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return items(t.iter(), nested).map(Value::Array);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(b.to_vec()));
    }
    if let Ok(s) = obj.cast::<PySet>() {
        return items(s.iter(), nested).map(|items| set_value(items, role));
    }
    if let Ok(s) = obj.cast::<PyFrozenSet>() {
        return items(s.iter(), nested).map(|items| set_value(items, role));
    }
    // Everything else: the Python side knows DataFrames, numpy, functions and pickle.
    other_to_value(obj, role, pickle, depth)
}

/// A container's items as trees, in one allocation of the container's length (`update`
/// spends most of its time here).
fn items<'py>(
    container: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    nested: impl Fn(Bound<'py, PyAny>) -> PyResult<Value>,
) -> PyResult<Vec<Value>> {
    let mut out = Vec::with_capacity(container.len());
    for item in container {
        out.push(nested(item)?);
    }
    Ok(out)
}

/// A set: tagged and sorted in a key (the crate sorts it when it canonicalises), a plain
/// array in a value (as a Rust `HashSet` is written).
fn set_value(items: Vec<Value>, role: Role) -> Value {
    match role {
        Role::Key => Value::Tag(SET_TAG, Box::new(Value::Array(items))),
        Role::Value => Value::Array(items),
    }
}

fn int_to_value(i: &Bound<'_, PyInt>, role: Role) -> PyResult<Value> {
    if let Ok(small) = i.extract::<i64>() {
        return Ok(Value::Integer(i128::from(small)));
    }
    if let Ok(unsigned) = i.extract::<u64>() {
        return Ok(Value::Integer(i128::from(unsigned)));
    }
    // Past 64 bits: signed big-endian bytes, from Python's own `int.to_bytes`.
    let bits: usize = i.call_method0("bit_length")?.extract()?;
    let len = bits / 8 + 1;
    if len > 1 << 20 {
        return Err(PyOverflowError::new_err(
            "an integer of over a million bytes",
        ));
    }
    let kwargs = PyDict::new(i.py());
    kwargs.set_item("signed", true)?;
    let bytes = i.call_method("to_bytes", (len, "big"), Some(&kwargs))?;
    let bytes: Vec<u8> = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
    Ok(match role {
        Role::Key => bignum_key(&bytes),
        Role::Value => Value::Tag(
            EXT_BASE + u64::from(EXT_BIG_INT),
            Box::new(Value::Bytes(bytes)),
        ),
    })
}

/// A key integer past 64 bits as CBOR writes one: tag 2 over `n`, or tag 3 over `-1 - n`
/// (the crate turns it into an integer where it fits 128 bits).
fn bignum_key(signed_be: &[u8]) -> Value {
    let negative = signed_be.first().is_some_and(|b| b & 0x80 != 0);
    // -1 - n flips every bit of n's two's complement: the magnitude of a negative bignum.
    let magnitude: Vec<u8> = if negative {
        signed_be.iter().map(|b| !b).collect()
    } else {
        signed_be.to_vec()
    };
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let tag = if negative { 3 } else { 2 };
    Value::Tag(tag, Box::new(Value::Bytes(magnitude[first..].to_vec())))
}

fn other_to_value(
    obj: &Bound<'_, PyAny>,
    role: Role,
    pickle: bool,
    depth: usize,
) -> PyResult<Value> {
    let py = obj.py();
    let role_name = match role {
        Role::Key => "key",
        Role::Value => "value",
    };
    let answer = codecs(py)?.call_method1("encode_other", (obj, role_name, pickle))?;
    // (kind, payload): "ext" with (type, bytes), "function" with its name, "value" with a
    // plainer object to convert instead (a numpy scalar's Python number, say).
    let (kind, payload): (String, Bound<'_, PyAny>) = answer.extract()?;
    match kind.as_str() {
        "ext" => {
            let (ext, bytes): (u8, Vec<u8>) = payload.extract()?;
            // A DataFrame carries the crate's own tag, as a Rust DataFrame key does.
            let tag = match ext {
                DATAFRAME_EXT => hashstash::value::DATAFRAME_TAG,
                other => EXT_BASE + u64::from(other),
            };
            Ok(Value::Tag(tag, Box::new(Value::Bytes(bytes))))
        }
        "function" => Ok(Value::Tag(
            FUNCTION_TAG,
            Box::new(Value::Text(payload.extract()?)),
        )),
        "value" => to_value_at(&payload, role, pickle, depth + 1),
        other => Err(PyTypeError::new_err(format!(
            "hashstash_rs._codecs.encode_other answered {other:?}"
        ))),
    }
}

/// A tree as a Python object. `pickle` allows loading pickles; `hashable` builds what can
/// be a set item or a dict key (tuples for arrays, frozensets for sets).
pub fn to_python(py: Python<'_>, value: Value, pickle: bool) -> PyResult<Py<PyAny>> {
    to_python_at(py, value, pickle, false)
}

fn to_python_at(py: Python<'_>, value: Value, pickle: bool, hashable: bool) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Value::Integer(i) => match i64::try_from(i) {
            Ok(small) => small.into_pyobject(py)?.into_any().unbind(),
            Err(_) => i.into_pyobject(py)?.into_any().unbind(),
        },
        Value::Float(f) => PyFloat::new(py, f).into_any().unbind(),
        Value::Text(t) => PyString::new(py, &t).into_any().unbind(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Array(items) => {
            let items = items
                .into_iter()
                .map(|item| to_python_at(py, item, pickle, hashable))
                .collect::<PyResult<Vec<_>>>()?;
            if hashable {
                PyTuple::new(py, items)?.into_any().unbind()
            } else {
                PyList::new(py, items)?.into_any().unbind()
            }
        }
        Value::Map(entries) => {
            if hashable {
                // A map inside a set or as a dict key: a tuple of pairs, the nearest
                // hashable thing.
                let pairs = entries
                    .into_iter()
                    .map(|(k, v)| {
                        let pair = (
                            to_python_at(py, k, pickle, true)?,
                            to_python_at(py, v, pickle, true)?,
                        );
                        Ok(PyTuple::new(py, [pair.0, pair.1])?.into_any().unbind())
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                PyTuple::new(py, pairs)?.into_any().unbind()
            } else {
                let dict = PyDict::new(py);
                for (k, v) in entries {
                    dict.set_item(
                        to_python_at(py, k, pickle, true)?,
                        to_python_at(py, v, pickle, false)?,
                    )?;
                }
                dict.into_any().unbind()
            }
        }
        Value::Tag(SET_TAG, inner) => {
            let items = match *inner {
                Value::Array(items) => items,
                other => vec![other],
            };
            let items = items
                .into_iter()
                .map(|item| to_python_at(py, item, pickle, true))
                .collect::<PyResult<Vec<_>>>()?;
            if hashable {
                PyFrozenSet::new(py, &items)?.into_any().unbind()
            } else {
                PySet::new(py, &items)?.into_any().unbind()
            }
        }
        Value::Tag(FUNCTION_TAG, inner) => {
            let name = match *inner {
                Value::Text(name) => name,
                other => return to_python_at(py, other, pickle, hashable),
            };
            codecs(py)?
                .call_method1("decode_function", (name,))?
                .unbind()
        }
        Value::Tag(tag, inner) if (EXT_BASE..=EXT_BASE + 0xff).contains(&tag) => {
            let ext = (tag - EXT_BASE) as u8;
            match *inner {
                Value::Bytes(bytes) if ext == EXT_BIG_INT => {
                    let int = py.get_type::<PyInt>();
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("signed", true)?;
                    int.call_method(
                        "from_bytes",
                        (PyBytes::new(py, &bytes), "big"),
                        Some(&kwargs),
                    )?
                    .unbind()
                }
                Value::Bytes(bytes) => codecs(py)?
                    .call_method1("decode_ext", (ext, PyBytes::new(py, &bytes), pickle))?
                    .unbind(),
                other => to_python_at(py, other, pickle, hashable)?,
            }
        }
        // The DataFrame tag as the crate reads MessagePack's extension 0x44.
        Value::Tag(hashstash::value::DATAFRAME_TAG, inner) => match *inner {
            Value::Bytes(bytes) => codecs(py)?
                .call_method1(
                    "decode_ext",
                    (DATAFRAME_EXT, PyBytes::new(py, &bytes), pickle),
                )?
                .unbind(),
            other => to_python_at(py, other, pickle, hashable)?,
        },
        // Bignums past 128 bits, as keys hold them.
        Value::Tag(tag @ (2 | 3), inner) => match *inner {
            Value::Bytes(magnitude) => {
                let int = py.get_type::<PyInt>();
                let n = int.call_method1("from_bytes", (PyBytes::new(py, &magnitude), "big"))?;
                if tag == 3 {
                    n.neg()?.call_method1("__sub__", (1,))?.unbind()
                } else {
                    n.unbind()
                }
            }
            other => to_python_at(py, other, pickle, hashable)?,
        },
        // Another tag (from Rust): its content.
        Value::Tag(_, inner) => to_python_at(py, *inner, pickle, hashable)?,
    })
}
