//! The crate's [`hashstash::Error`] as Python exceptions: one base class, `HashStashError`,
//! and a subclass per kind a caller may treat differently. A missing key is Python's
//! `KeyError`; a bad option is also a `ValueError`, a disk error also an `OSError`.

use hashstash::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyError};
use pyo3::prelude::*;

create_exception!(
    hashstash_rs,
    HashStashError,
    PyException,
    "Every error of a stash."
);
create_exception!(
    hashstash_rs,
    DecodeError,
    HashStashError,
    "Stored bytes that do not decode."
);
create_exception!(
    hashstash_rs,
    EncodeError,
    HashStashError,
    "A key or value that cannot be encoded."
);
create_exception!(
    hashstash_rs,
    EngineError,
    HashStashError,
    "The engine (a server, a database) failed."
);
create_exception!(
    hashstash_rs,
    FormatConflictError,
    HashStashError,
    "A stash opened with another format than it was made with."
);
create_exception!(
    hashstash_rs,
    InvalidOptionError,
    HashStashError,
    "An option with a value that cannot be used."
);
create_exception!(
    hashstash_rs,
    NotCompiledError,
    HashStashError,
    "An engine or compressor this package was built without."
);
create_exception!(
    hashstash_rs,
    SqlError,
    HashStashError,
    "A SQL query that failed to plan or run."
);
create_exception!(
    hashstash_rs,
    UnsupportedError,
    HashStashError,
    "An operation the engine cannot do."
);
create_exception!(
    hashstash_rs,
    StashIOError,
    HashStashError,
    "A file operation that failed."
);

/// The Python exception for a crate error.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::KeyNotFound { .. } => PyKeyError::new_err(message),
        Error::Decode { .. } => DecodeError::new_err(message),
        Error::Encode { .. } | Error::ValueTooLarge { .. } => EncodeError::new_err(message),
        Error::FormatConflict { .. } => FormatConflictError::new_err(message),
        Error::InvalidOption { .. } => InvalidOptionError::new_err(message),
        Error::EngineNotCompiled { .. } => NotCompiledError::new_err(message),
        Error::Sql { .. } => SqlError::new_err(message),
        Error::Unsupported { .. } => UnsupportedError::new_err(message),
        Error::Io { .. } => StashIOError::new_err(message),
        _ => EngineError::new_err(message),
    }
}

/// `?` on a crate result inside a Python method.
pub trait OrPy<T> {
    fn or_py(self) -> PyResult<T>;
}

impl<T> OrPy<T> for hashstash::Result<T> {
    fn or_py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("HashStashError", py.get_type::<HashStashError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("EncodeError", py.get_type::<EncodeError>())?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("FormatConflictError", py.get_type::<FormatConflictError>())?;
    m.add("InvalidOptionError", py.get_type::<InvalidOptionError>())?;
    m.add("NotCompiledError", py.get_type::<NotCompiledError>())?;
    m.add("SqlError", py.get_type::<SqlError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add("StashIOError", py.get_type::<StashIOError>())?;
    Ok(())
}
