"""``HashStash``: the Python original's class, on the Rust core.

Reads and writes (``stash[key]``, ``get``, ``update``, iteration) run in Rust
(``_native.Stash``); this module adds the original's options, names and conveniences.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from contextlib import contextmanager

from . import _native
from ._codecs import function_name

_MISSING = object()

# The original's engine names as this package spells them (its class-name prefixes too).
_CLASS_PREFIX = {
    "lmdb": "LMDB",
    "pairtree": "Pairtree",
    "sqlite": "Sqlite",
    "diskcache": "DiskCache",
    "redis": "Redis",
    "mongo": "Mongo",
    "memory": "Memory",
    "objectstore": "ObjectStore",
}


class HashStash(_native.Stash):
    """A persistent dictionary: any plain-data key or value, on the engine you pick.

    ``HashStash(root_dir, engine=..., dbname=..., serializer=..., compress=..., b64=...,
    append_mode=..., clear=...)`` as in the Python original; also ``url`` (servers and object
    storage), ``ttl_ms``, ``max_entries``, ``max_bytes``, ``timeout_ms``, ``lease_ms``, ``sync``,
    ``on_corrupt`` (``"fail"``, the default, or ``"skip"``: see ``skipped_corrupt()``).

    - ``root_dir``: a folder; a relative one goes under ``$HASHSTASH_ROOT_DIR`` or
      ``~/.cache/hashstash`` (the original's rule).
    - ``engine``: ``lmdb`` (default), ``pairtree``, ``sqlite``, ``diskcache``, ``redis``,
      ``mongo``, ``objectstore`` or ``memory``.
    - ``serializer``: ``hashstash`` (default: MessagePack, read by Rust, SQL and the CLI),
      ``json``, or ``pickle`` (portable values stay portable; anything else is pickled,
      and only such a stash loads pickles back).
    - ``compress``: ``lz4`` (default), ``zstd``, ``gzip``, ``zlib``, ``bz2``, ``raw``
      (or ``True``/``False``).
    """

    def __new__(
        cls,
        root_dir=None,
        engine=None,
        dbname=None,
        compress=None,
        b64=None,
        serializer=None,
        *,
        append_mode=None,
        clear=None,
        name=None,
        **options,
    ):
        if name is not None and root_dir is None:
            root_dir = name
        return super().__new__(
            cls,
            root_dir=None if root_dir is None else str(root_dir),
            engine=engine,
            dbname=dbname,
            compress=compress,
            b64=b64,
            serializer=serializer,
            append_mode=append_mode,
            clear=clear,
            **options,
        )

    def __init__(self, *args, **kwargs):
        # Everything happened in __new__ (the stash is opened in Rust).
        pass

    def _derived(self, kind: str, name: str = "") -> "HashStash":
        return _native.Stash.__new__(type(self), _derive=(self, kind, name))

    # ----- naming -----

    def __repr__(self) -> str:
        prefix = _CLASS_PREFIX.get(self.engine, self.engine.title())
        return f"{prefix}HashStash({self.path})"

    def to_dict(self) -> dict:
        """The stash's configuration (the original's ``to_dict()``)."""
        config = json.loads(self._config_json())
        config["is_function_stash"] = "/stashed_result/" in f"/{config.get('dbname', '')}"
        config["serializer"] = "pickle" if self.pickle else config.get("serializer")
        return config

    def __reduce__(self):
        # A stash travels to another process as its whole configuration, opened there,
        # with its policy for corrupt entries.
        args = (type(self), self._config_json(False), self.pickle, self.on_corrupt)
        return (_reopen, args)

    # ----- the dictionary -----

    def __iter__(self):
        return self._entries(keys=True, values=False)

    def keys(self):
        """The keys, decoded as they are iterated."""
        return self._entries(keys=True, values=False)

    def values(self):
        """The (latest) values."""
        return self._entries(keys=False, values=True)

    def items(self):
        """``(key, value)`` pairs."""
        return self._entries(keys=True, values=True)

    def _keys(self):
        """The keys as stored: canonical bytes."""
        return (k for k, _ in self._raw_items())

    def _values(self):
        """The values as stored: serialized, compressed, encoded."""
        return (v for _, v in self._raw_items())

    def _items(self):
        """``(key bytes, value bytes)`` as stored."""
        return iter(self._raw_items())

    def update(self, *others, **kwargs) -> None:
        """Stores every entry of dicts, other stashes (any engine) or iterables of pairs;
        each is written in transactions of 4096 entries."""
        for other in others:
            if isinstance(other, _native.Stash):
                self._update_from(other)
            elif hasattr(other, "keys") and not isinstance(other, dict):
                self._update_pairs((k, other[k]) for k in other.keys())
            else:
                self._update_pairs(other)
        if kwargs:
            self._update_pairs(kwargs)

    def __eq__(self, other) -> bool:
        if isinstance(other, HashStash):
            return self.path == other.path
        return NotImplemented

    def __hash__(self) -> int:
        # Equal stashes (one path) hash alike: a stash can key a dict or sit in a set.
        return hash(self.path)

    # ----- related stashes -----

    def sub(self, dbname: str) -> "HashStash":
        """A stash with the same options whose dbname is ``<dbname>/<name>``."""
        return self._derived("sub", dbname)

    @contextmanager
    def tmp(self):
        """A temporary stash with the same options, cleared and removed on leaving::

        with stash.tmp() as tmp_stash:
            tmp_stash["key"] = "value"
        """
        tmp = self._derived("tmp")
        try:
            yield tmp
        finally:
            tmp._drop_tmp()

    # ----- functions -----

    def function_stash(self, func) -> "HashStash":
        """The stash of a function's results (a function, or the name it is stashed
        under). Its keys are ``(args, kwargs)``."""
        name = func if isinstance(func, str) else function_name(func)
        return self._derived("function", name)

    def run(self, func, *args, **kwargs):
        """``func(*args, **kwargs)``, computed once and read back after. Also gives
        ``func`` a ``.stash`` attribute: the stash of its results."""
        name = function_name(func)
        _attach_stash(func, self, name)
        return self._run(name, func, args, kwargs)

    def get_func(self, *args, **kwargs):
        """In a function stash: the result stored for ``func(*args, **kwargs)``, or None."""
        return self.get((args, kwargs))

    def stashed_result(self, func=None, *, _force: bool = False):
        """Decorator: the function's results are stored in this stash and read back on
        later calls with the same arguments (across processes and restarts)::

        @stash.stashed_result
        def expensive(x): ...
        """
        from .memo import stash_decorator

        return stash_decorator(self, func, force=_force)

    def map(self, func, objects=None, options=None, num_proc=1, progress=False, desc=None,
            ordered=True, preload=True, precompute=True, stash_runs=True, stash_map=False,
            _force=False, items=None, **common_kwargs):
        """``func(obj, **common_kwargs, **options[i])`` for each object, each computed once
        (in this or any other process) and stored; with ``num_proc`` > 1 in parallel
        processes (threads for functions a process cannot import). Returns a
        :class:`~hashstash_rs.memo.StashMap`."""
        from .memo import StashMap

        if objects is None:
            objects = items if items is not None else []
        return StashMap(self, func, list(objects), options=options, num_proc=num_proc,
                        progress=progress, desc=desc, force=_force, kwargs=common_kwargs)

    # ----- tables -----

    @property
    def df(self):
        """The stash as a polars DataFrame, one row per entry, nested values flattened
        (``_key``, then a column per field). Call it for options:
        ``stash.df(pandas=True)``, ``stash.df(with_metadata=True)``."""
        from .frames import StashFrame

        return StashFrame.of(self)

    def assemble_df(self, pandas: bool = False, with_metadata: bool = False, as_of=None):
        """The stash as a DataFrame: polars, or pandas (indexed by ``_key``) with
        ``pandas=True``; every version with ``_version`` and ``_timestamp`` with
        ``with_metadata=True`` (append mode)."""
        from .frames import assemble

        return assemble(self, pandas=pandas, with_metadata=with_metadata, as_of=as_of)

    def to_arrow(self, all_versions: bool = False, as_of=None):
        """The stash's table as a ``pyarrow.Table`` (from Rust through the Arrow C Data
        Interface, without copies): ``_key``, then a column per field of the values."""
        from .frames import _seconds

        return _native.to_arrow(self, all_versions, _seconds(as_of))

    def to_parquet(self, path, all_versions: bool = False) -> int:
        """Writes the stash's table to a parquet file (a path, or an ``s3://``, ``gs://``
        or ``az://`` URL); returns the number of rows."""
        return _native.to_parquet(self, str(path), all_versions)

    def load_parquet(self, path) -> int:
        """Stores the rows of a parquet file written by ``to_parquet``; returns how many."""
        return _native.load_parquet(self, str(path))

    @property
    def ld(self) -> list:
        """The stash's rows as a list of flat dicts (the original's ``ld``)."""
        return self.to_arrow().to_pylist()

    def assemble_ld(self, with_metadata: bool = False) -> list:
        return self.to_arrow(all_versions=with_metadata).to_pylist()

    def sql(self, query: str, *, pandas: bool = False, arrow: bool = False, as_of=None, **tables):
        """Runs SQL over this stash (table ``stash``, and ``stash_versions``) and any other
        stashes or parquet files passed by name; returns a polars DataFrame (a
        ``pyarrow.Table`` with ``arrow=True``, pandas with ``pandas=True``)::

        stash.sql("SELECT name, count(*) FROM stash GROUP BY name")
        """
        from .frames import sql

        return sql(query, stash=self, pandas=pandas, arrow=arrow, as_of=as_of, **tables)

    def profile(self, items: int = 1000):
        """Times this stash's options from Python on the original's standard item
        (``{"name": "cat", "i": i, "vals": [0..9]}``): sets, gets and update per second,
        in a temporary stash. A polars DataFrame of one row."""
        from .frames import profile

        return profile(self, items)


_REOPENED: dict = {}


def _reopen(cls, config_json: str, pickle: bool, on_corrupt: str = "fail"):
    # Once per process: a map's worker gets the stash with every call it runs.
    key = (cls, config_json, pickle, on_corrupt)
    stash = _REOPENED.get(key)
    if stash is None:
        stash = _REOPENED[key] = _native.Stash.__new__(cls, _config=(config_json, pickle))
        stash.on_corrupt = on_corrupt
    return stash


def _attach_stash(func, stash: HashStash, name: str) -> None:
    try:
        func.stash = stash._derived("function", name)
    except (AttributeError, TypeError):
        pass  # builtins and methods take no attributes


MutableMapping.register(HashStash)
