"""Thread pinning, so torch, BLAS and OpenMP do not oversubscribe small machines."""
from __future__ import annotations

import os

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def default_threads() -> int:
    """All cores of this machine, at most 8 (beyond that small convolutions stop scaling)."""
    return max(1, min(8, os.cpu_count() or 1))


def pin_threads(threads: int | None = None) -> int:
    """Pin torch and the BLAS/OpenMP pools to `threads` (default: `default_threads()`); returns it."""
    threads = threads or default_threads()
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # inter-op pool already started in this process; it can only be set once
    return threads
