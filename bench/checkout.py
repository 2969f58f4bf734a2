"""The checkout bench/ runs from: its root, and the environment of the child processes bench starts."""
from __future__ import annotations

import os
from pathlib import Path

# bench/ is not installed with the product: it runs from a git checkout, whose root is the folder above it.
ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def child_env(threads: int) -> dict[str, str]:
    """This process's environment for a child ``python``: BLAS pools of ``threads`` threads, and the checkout
    first on PYTHONPATH, so the child imports bench wherever it was started from."""
    env = dict(os.environ) | {name: str(threads) for name in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env
