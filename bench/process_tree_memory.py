"""Peak memory of the largest process in a child's process tree, each counted from its own start (Linux)."""
from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

_PROC = Path("/proc")


def run_measuring_peak(command: Sequence[str], every_s: float = 0.2, **popen) -> tuple[int, float | None]:
    """Run ``command`` to its end; (its exit code, the largest own peak of it or any descendant, MiB).

    Each process's own ``VmHWM`` (not ``ru_maxrss``, which inherits the forking parent's high-water
    mark across exec), read every ``every_s`` while the tree lives; the high-water mark only rises,
    so a sample misses at most what a process touches after the last look. None where there is no
    ``/proc``.
    """
    process = subprocess.Popen(command, **popen)
    if not _PROC.is_dir():
        return process.wait(), None
    peak = 0.0
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak
        while True:
            peak = max([peak, *_tree_peaks(process.pid)])
            if finished.wait(every_s):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        code = process.wait()
    finally:
        finished.set()
        sampler.join()
    return code, peak


def _tree_peaks(root: int) -> list[float]:
    """``VmHWM`` in MiB of ``root`` and every descendant alive now (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir(_PROC):
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    peaks, pending = [], [root]
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        high_water = _high_water_mb(pid)
        if high_water is not None:
            peaks.append(high_water)
    return peaks


def _parent(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces


def _high_water_mb(pid: int) -> float | None:
    try:
        with open(_PROC / str(pid) / "status") as status:
            return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")), None)
    except OSError:
        return None
