"""hashstash_rs: the Python original HashStash's API on the Rust ``hashstash`` core.

Switch from the original by changing the import::

    from hashstash_rs import HashStash   # was: from hashstash import HashStash

Stashes are shared with the Rust crate and the ``hashstash`` command line: a key written
here is found there, and the other way round. See ``python/README.md``.
"""

from . import _native
from ._codecs import FunctionKey, function_name
from ._native import (
    DecodeError,
    EncodeError,
    EngineError,
    FormatConflictError,
    HashStashError,
    InvalidOptionError,
    NotCompiledError,
    SqlError,
    StashIOError,
    UnsupportedError,
    decode,
    decode_key,
    deserialize,
    encode,
    encode_key,
    serialize,
)
from .frames import sql
from .memo import StashMap, stash_mapped, stashed_result
from .stash import HashStash

__all__ = [
    "HashStash",
    "stashed_result",
    "stash_mapped",
    "StashMap",
    "sql",
    "serialize",
    "deserialize",
    "encode",
    "decode",
    "encode_key",
    "decode_key",
    "function_name",
    "FunctionKey",
    "HashStashError",
    "DecodeError",
    "EncodeError",
    "EngineError",
    "FormatConflictError",
    "InvalidOptionError",
    "NotCompiledError",
    "SqlError",
    "StashIOError",
    "UnsupportedError",
]
