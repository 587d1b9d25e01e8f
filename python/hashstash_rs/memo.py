"""Stashed function results: ``@stashed_result``, ``stash.run``, ``stash.map`` and
``@stash_mapped``, as in the Python original.

A function's results live in its own stash, ``<dbname>/stashed_result/<module.qualname@hash>``
under the parent, keyed by ``(args, kwargs)``. The lookup, and the lock under which a
missing result is computed once across threads and processes, are the Rust crate's
(``Stash::try_run_encoded``): a second caller of the same call waits for the first one's
result instead of computing it again.
"""

from __future__ import annotations

import concurrent.futures as futures
import functools
import multiprocessing
import pickle

from ._codecs import function_name


def stash_decorator(stash, func=None, *, force: bool = False):
    """``@stash.stashed_result`` (with or without arguments)."""

    def decorate(func):
        name = function_name(func)
        run = stash._run

        @functools.wraps(func)
        def stashed(*args, **kwargs):
            return run(name, func, args, kwargs, force)

        stashed.stash = stash._derived("function", name)
        stashed.stash_name = name
        stashed.__wrapped__ = func
        return stashed

    return decorate if func is None else decorate(func)


def stashed_result(*stash_args, _force: bool = False, **stash_kwargs):
    """``@stashed_result`` or ``@stashed_result("functions_stash", engine=...)``: results
    stored in ``HashStash(*stash_args, **stash_kwargs)``."""
    from .stash import HashStash

    if len(stash_args) == 1 and callable(stash_args[0]) and not stash_kwargs:
        return stash_decorator(HashStash(), stash_args[0], force=_force)
    return stash_decorator(HashStash(*stash_args, **stash_kwargs), force=_force)


def stash_mapped(*stash_args, num_proc: int = 1, progress: bool = False, **stash_kwargs):
    """``@stash_mapped("function_stash", num_proc=2)``: the function, called with a list of
    objects, maps over them through :meth:`HashStash.map` and returns the
    :class:`StashMap`."""
    from .stash import HashStash

    def decorate(func):
        stash = HashStash(*stash_args, **stash_kwargs)

        @functools.wraps(func)
        def mapped(objects, options=None, **kwargs):
            return stash.map(func, objects, options=options, num_proc=num_proc,
                             progress=progress, **kwargs)

        mapped.stash = stash.function_stash(func)
        return mapped

    return decorate


def _run_in_worker(stash, name, func, args, kwargs, force):
    # In a worker process: the stash arrives as its configuration and opens there.
    return stash._run(name, func, args, kwargs, force)


def _importable(func) -> bool:
    try:
        return pickle.loads(pickle.dumps(func)) is func
    except Exception:
        return False


class StashMapRun:
    """One call of a map: ``func(obj, **kwargs)`` and, once known, its result."""

    __slots__ = ("name", "args", "kwargs", "_future")

    def __init__(self, name, args, kwargs, future):
        self.name, self.args, self.kwargs, self._future = name, args, kwargs, future

    @property
    def result(self):
        return self._future.result()

    def __repr__(self) -> str:
        done = repr(self._future.result()) if self._future.done() else "?"
        call = ", ".join([*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])
        return f"StashMapRun({self.name.rpartition('@')[0]}({call}) >>> {done})"


class StashMap:
    """The calls of ``stash.map(func, objects, ...)``, computing in the background.

    ``results`` waits for all, in order; ``results_iter()`` yields them as they finish (in
    order with ``ordered=True``); ``items()`` gives ``((args, kwargs), result)``."""

    def __init__(self, stash, func, objects, options=None, num_proc=1, progress=False,
                 desc=None, force=False, kwargs=None, ordered=True):
        self.stash = stash
        self.func = func
        self.name = function_name(func)
        self.ordered = ordered
        options = list(options) if options is not None else [{}] * len(objects)
        if len(options) != len(objects):
            raise ValueError(f"{len(options)} options for {len(objects)} objects")
        common = dict(kwargs or {})
        calls = [((obj,), {**common, **opts}) for obj, opts in zip(objects, options)]
        from .stash import _attach_stash

        _attach_stash(func, stash, self.name)
        num_proc = max(1, int(num_proc or 1))
        # Processes need a function another process can import, and a stash it can open.
        use_processes = num_proc > 1 and stash.engine != "memory" and _importable(func)
        if num_proc == 1:
            self._pool = futures.ThreadPoolExecutor(max_workers=1)
        elif use_processes:
            context = multiprocessing.get_context("spawn")
            self._pool = futures.ProcessPoolExecutor(max_workers=num_proc, mp_context=context)
        else:
            self._pool = futures.ThreadPoolExecutor(max_workers=num_proc)
        submit = (functools.partial(self._pool.submit, _run_in_worker, stash)
                  if use_processes else functools.partial(self._pool.submit, stash._run))
        self.runs = [StashMapRun(self.name, args, kw, submit(self.name, func, args, kw, force))
                     for args, kw in calls]
        self._pool.shutdown(wait=False)
        self._progress = progress
        self._desc = desc or f"Mapping {self.name.rpartition('@')[0]} across {len(calls)} objects [{num_proc}x]"

    def __len__(self) -> int:
        return len(self.runs)

    def __repr__(self) -> str:
        inner = ",\n          ".join(map(repr, self.runs))
        return f"StashMap([{inner}])"

    def _bar(self, iterable):
        if not self._progress:
            return iterable
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return iterable
        return tqdm(iterable, total=len(self.runs), desc=self._desc)

    def results_iter(self):
        """The results, as they finish (in input order when the map is ordered)."""
        if self.ordered:
            for run in self._bar(self.runs):
                yield run.result
        else:
            done = futures.as_completed([run._future for run in self.runs])
            for future in self._bar(done):
                yield future.result()

    @property
    def results(self) -> list:
        return list(self.results_iter())

    def items(self):
        for run in self._bar(self.runs):
            yield (run.args, run.kwargs), run.result

    def keys(self):
        return [(run.args, run.kwargs) for run in self.runs]

    def values(self):
        return self.results

    def __iter__(self):
        return self.results_iter()
