"""DataFrames, SQL and profiling for Python.

The Rust core makes Arrow record batches (the crate's flattened table of a stash, or a
DataFusion query's result) and hands them to pyarrow through the Arrow C Data Interface,
without copies; polars and pandas take them from there.
"""

from __future__ import annotations

import time

from . import _native


def _polars():
    try:
        import polars as pl
    except ImportError as e:  # pragma: no cover - polars is a dependency
        raise ImportError("stash.df needs polars (pip install polars), or use pandas=True") from e
    return pl


def _frame(table, pandas: bool, index: bool = True):
    if pandas:
        df = table.to_pandas()
        keys = [c for c in ("_key", "_version", "_timestamp") if c in df.columns]
        if index and "_key" in keys:
            df = df.set_index(keys)
        return df
    return _polars().from_arrow(table, rechunk=False)


def assemble(stash, pandas: bool = False, with_metadata: bool = False, as_of=None):
    table = stash.to_arrow(all_versions=with_metadata, as_of=_seconds(as_of))
    return _frame(table, pandas)


def _seconds(moment):
    """``as_of`` as seconds since the epoch: a number, or a ``datetime``."""
    if moment is None or isinstance(moment, (int, float)):
        return moment
    if hasattr(moment, "timestamp"):
        return moment.timestamp()
    raise TypeError(f"as_of takes seconds since the epoch or a datetime, not {moment!r}")


class _Callable:
    """Calling ``stash.df`` re-assembles it with options (``stash.df(pandas=True)``)."""

    _stash = None

    def __call__(self, pandas: bool = False, with_metadata: bool = False, as_of=None):
        return assemble(self._stash, pandas=pandas, with_metadata=with_metadata, as_of=as_of)


class StashFrame:
    """``stash.df``: a polars DataFrame that can also be called for options."""

    @staticmethod
    def of(stash):
        pl = _polars()
        cls = _FRAME_CLASSES.get(pl.DataFrame)
        if cls is None:
            cls = _FRAME_CLASSES[pl.DataFrame] = type("StashFrame", (_Callable, pl.DataFrame), {})
        frame = assemble(stash)
        out = cls.__new__(cls)
        out._df = frame._df
        out._stash = stash
        return out


_FRAME_CLASSES: dict = {}


def sql(query: str, pandas: bool = False, arrow: bool = False, as_of=None, **tables):
    """Runs SQL over stashes and parquet files, each a table under its keyword:
    ``sql("SELECT ... FROM a JOIN b USING (_key)", a=stash_a, b="snap.parquet")``. A stash
    ``NAME`` also gives ``NAME_versions`` (every version). Returns a polars DataFrame, a
    ``pyarrow.Table`` (``arrow=True``) or pandas (``pandas=True``)."""
    stashes, files = [], []
    for name, table in tables.items():
        if isinstance(table, _native.Stash):
            stashes.append((name, table))
        else:
            files.append((name, str(table)))
    result = _native.sql(query, stashes, files, _seconds(as_of))
    if arrow:
        return result
    return _frame(result, pandas, index=False)


def profile(stash, items: int = 1000):
    """Sets, gets and update per second from Python on the standard item."""
    data = [(f"key{i}", {"name": "cat", "i": i, "vals": list(range(10))}) for i in range(items)]
    with stash.tmp() as tmp:
        start = time.perf_counter()
        for key, value in data:
            tmp[key] = value
        sets = time.perf_counter() - start
        start = time.perf_counter()
        for key, _ in data:
            tmp[key]
        gets = time.perf_counter() - start
        tmp.clear()
        start = time.perf_counter()
        tmp.update(data)
        update = time.perf_counter() - start
    row = {
        "engine": stash.engine,
        "serializer": stash.to_dict().get("serializer"),
        "compress": stash.to_dict().get("compress"),
        "items": items,
        "set_per_s": items / sets,
        "get_per_s": items / gets,
        "update_per_s": items / update,
    }
    return _polars().DataFrame([row])
