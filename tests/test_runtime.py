"""map_batches: batches side by side on single-threaded workers, results in order, caller's threads kept."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from fingerprinting.runtime import map_batches, pin_threads


def _sum_and_threads(batch: np.ndarray) -> tuple[float, int, int]:
    with torch.inference_mode():
        total = float(torch.from_numpy(batch).square().sum())
    return total, torch.get_num_threads(), threading.get_ident()


def test_results_in_order_on_single_threaded_workers() -> None:
    threads = torch.get_num_threads()
    batches = [np.full((50, 8), value, dtype=np.float32) for value in range(6)]
    results = map_batches(_sum_and_threads, batches)
    assert [total for total, _, _ in results] == [50 * 8 * value**2 for value in range(6)]
    if threads > 1:
        assert {count for _, count, _ in results} == {1}
        assert threading.get_ident() not in {ident for _, _, ident in results}
    assert torch.get_num_threads() == threads
    # Threads started afterwards begin with the caller's count again, not the workers' one.
    fresh: list[int] = []
    worker = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert fresh == [threads]


def test_one_batch_runs_inline_and_errors_propagate() -> None:
    [(_, count, ident)] = map_batches(_sum_and_threads, [np.ones((2, 2), np.float32)])
    assert (count, ident) == (torch.get_num_threads(), threading.get_ident())
    assert map_batches(_sum_and_threads, []) == []
    with pytest.raises(ValueError, match="bad batch"):
        map_batches(_raise, [1, 2, 3])


def _raise(batch: int) -> None:
    if batch == 2:
        raise ValueError("bad batch")


def test_pin_threads_limits_blas_pools_loaded_before_it() -> None:
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    try:
        pin_threads(1)  # numpy (and its BLAS) was imported long before: the environment variables alone would not reach it
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
        assert torch.get_num_threads() == 1
    finally:
        pin_threads(before)
