"""Peak resident memory of each stage of a run (the process's high-water mark, reset as a stage starts)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from clustering.peak_memory import peak_rss_mb


def reset_peak() -> bool:
    """Start the process's high-water mark afresh; False where that is impossible (not Linux).

    Writing 5 to /proc/self/clear_refs resets VmHWM to the current resident size, so a stage's peak
    is its own and not that of an earlier run in a long-lived process (a served flow, a notebook).
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class StagePeaks:
    """Peak memory in MiB per stage, in the order the stages ran.

    Where the mark cannot be reset, each figure is the peak since the process started.
    """

    def __init__(self) -> None:
        self.mb: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        reset_peak()
        try:
            yield
        finally:
            self.mb[name] = round(peak_rss_mb(), 1)
