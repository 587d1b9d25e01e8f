"""What the Rust core hands to Python: objects with no plain-data form.

The core converts ``None``, booleans, numbers, text, bytes, lists, tuples, dicts and sets
itself. For anything else it calls :func:`encode_other`, and for a MessagePack extension
value it reads back, :func:`decode_ext`:

- a pandas or polars DataFrame: Arrow IPC stream bytes (extension ``0x44``, the type the
  Rust crate writes a polars DataFrame as, so either language reads the other's frames);
- a numpy array: an Arrow tensor (extension ``N``); numpy scalars become Python numbers;
- a function, in a key: its name, ``module.qualname@<hash of its source>``;
- anything else: a pickle (extension ``P``), and only on a stash opened with
  ``serializer="pickle"``, since loading a pickle runs code.
"""

from __future__ import annotations

import inspect
import io
import pickle
import re
import sys

DATAFRAME = 0x44
NUMPY = ord("N")
PICKLE = ord("P")


def fnv1a(text: str) -> str:
    """64-bit FNV-1a of UTF-8 text, as 16 hex digits (the Rust macro's version hash)."""
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def function_name(func) -> str:
    """``module.qualname@<16 hex digits>``: the name a function is stashed under.

    The digits hash the function's source (its bytecode where the source cannot be read),
    so an edited function starts a new stash, as the Rust ``#[stashed_result]`` does.
    ``<locals>`` and ``<lambda>`` lose their angle brackets (folder names on every system).
    """
    func = inspect.unwrap(func)
    module = getattr(func, "__module__", None) or "__main__"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if qualname is None:
        raise TypeError(f"{func!r} has no name to be stashed under")
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        source = repr(code.co_code + repr(code.co_consts).encode()) if code else qualname
    name = re.sub(r"[<>]", "", f"{module}.{qualname}")
    return f"{name}@{fnv1a(source)}"


class FunctionKey:
    """A function key read back where the function itself cannot be found (a lambda, a
    local function, an edited one): its name, usable as the same key again."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other) -> bool:
        return isinstance(other, FunctionKey) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("FunctionKey", self.name))

    def __repr__(self) -> str:
        return f"FunctionKey({self.name!r})"


def decode_function(name: str):
    """The function a function key names, if its module is already imported (nothing is
    imported on a stash's word) and its source still hashes the same; else a
    :class:`FunctionKey` holding the name, which works as the same key."""
    path, _, _ = name.rpartition("@")
    parts = path.split(".")
    # The module is the longest prefix of the dotted path that is a loaded module.
    for cut in range(len(parts) - 1, 0, -1):
        obj = sys.modules.get(".".join(parts[:cut]))
        if obj is None:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            if function_name(obj) == name:
                return obj
        except (AttributeError, TypeError):
            pass
        break
    return FunctionKey(name)


def _is_pandas(obj) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def _is_polars(obj) -> bool:
    return type(obj).__module__.startswith("polars") and type(obj).__name__ == "DataFrame"


def _ipc(table) -> bytes:
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def encode_other(obj, role: str, allow_pickle: bool):
    """``(kind, payload)`` for an object the core has no plain form for (see the module)."""
    if _is_pandas(obj):
        import pyarrow as pa

        return "ext", (DATAFRAME, _ipc(pa.Table.from_pandas(obj)))
    if _is_polars(obj):
        return "ext", (DATAFRAME, _ipc(obj.to_arrow()))
    if type(obj).__module__ == "numpy":
        import numpy as np

        if isinstance(obj, np.generic):
            return "value", obj.item()
        if isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
            import pyarrow as pa

            sink = pa.BufferOutputStream()
            pa.ipc.write_tensor(pa.Tensor.from_numpy(np.ascontiguousarray(obj)), sink)
            return "ext", (NUMPY, sink.getvalue().to_pybytes())
    if role == "key" and isinstance(obj, FunctionKey):
        return "function", obj.name
    if role == "key" and (inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj)):
        return "function", function_name(obj)
    if allow_pickle:
        return "ext", (PICKLE, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    raise TypeError(
        f"a {type(obj).__module__}.{type(obj).__qualname__} has no portable form as a {role}: "
        "store plain data (dicts, lists, numbers, text, bytes), a DataFrame or a numpy array, "
        'or open the stash with serializer="pickle" (Python only; loading a pickle runs code)'
    )


def decode_ext(kind: int, data: bytes, allow_pickle: bool):
    """The object a MessagePack extension value holds."""
    if kind == DATAFRAME:
        import pyarrow as pa

        table = pa.ipc.open_stream(data).read_all()
        metadata = table.schema.metadata or {}
        if b"pandas" in metadata:
            return table.to_pandas()
        try:
            import polars as pl
        except ImportError:
            return table.to_pandas()
        return pl.from_arrow(table)
    if kind == NUMPY:
        import pyarrow as pa

        return pa.ipc.read_tensor(pa.BufferReader(data)).to_numpy()
    if kind == PICKLE:
        if not allow_pickle:
            from . import _native

            raise _native.DecodeError(
                "this value was stored pickled: open the stash with serializer=\"pickle\" "
                "to load it (loading a pickle runs code: only for stashes you trust)"
            )
        return pickle.loads(data)
    # An extension type of another writer: its bytes.
    return data
