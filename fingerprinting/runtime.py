"""Thread pinning, so torch, BLAS and OpenMP do not oversubscribe small machines, and batches run side by side."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import repeat
from typing import TypeVar

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

Item = TypeVar("Item")
Result = TypeVar("Result")

_pinned: int | None = None  # pin_threads's count in this process
_pending_torch_threads: int | None = None  # that count, until torch has it


def default_threads() -> int:
    """All cores of this machine, at most 8 (beyond that small convolutions stop scaling)."""
    return max(1, min(8, os.cpu_count() or 1))


def pin_threads(threads: int | None = None) -> int:
    """Pin torch and the BLAS/OpenMP pools to `threads` (default: `default_threads()`); returns it.

    Torch is pinned now if it is loaded, else when the learned model loads it (`pin_torch`): a
    command that needs no network (a run with nothing new, --help) never imports torch.
    """
    global _pending_torch_threads, _pinned
    threads = threads or default_threads()
    for name in _THREAD_VARIABLES:  # for pools not loaded yet (torch reads them at import), and child processes
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # pools already loaded (numpy's BLAS) ignore the variables above
    _pinned = _pending_torch_threads = threads
    if "torch" in sys.modules:
        pin_torch()
    return threads


def pin_torch() -> None:
    """Give torch the count `pin_threads` chose, if it has not had it yet (call before torch computes)."""
    global _pending_torch_threads
    if _pending_torch_threads is None:
        return
    import torch

    torch.set_num_threads(_pending_torch_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # inter-op pool already started in this process; it can only be set once
    _pending_torch_threads = None


def pinned_threads() -> int:
    """The count `pin_threads` chose in this process, else `default_threads()`: how many decode threads to run."""
    return _pinned or default_threads()


def map_batches(function: Callable[[Item], Result], batches: Sequence[Item]) -> list[Result]:
    """``[function(batch) for batch in batches]``, run on as many threads as torch may use here, each op single-threaded.

    Small batches side by side keep every core busy; one batch at a time on a thread team spends
    much of its time in the team's barriers (the learned fingerprint: about 1.4x the throughput on
    2 cores). With one torch thread or one batch it runs inline. ``function`` must be thread-safe
    and enter ``torch.inference_mode`` itself if it needs it (that mode is per thread).
    """
    import torch

    threads = torch.get_num_threads()
    if threads <= 1 or len(batches) <= 1:
        return [function(batch) for batch in batches]
    try:
        return list(_batch_pool(threads, os.getpid()).map(_single_threaded, repeat(function), batches))
    finally:
        # A worker's set_num_threads also changes the count that threads started later begin with: restore it.
        torch.set_num_threads(threads)


def _single_threaded(function: Callable[[Item], Result], batch: Item) -> Result:
    import torch

    torch.set_num_threads(1)  # OpenMP's thread count is per calling thread: the caller's stays as it was
    return function(batch)


@lru_cache(maxsize=4)
def _batch_pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """One pool per thread count and process: a forked child must not reuse its parent's (threadless) pool."""
    return ThreadPoolExecutor(threads, thread_name_prefix="genprint-batch")
