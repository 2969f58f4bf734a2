"""Peak resident memory of this process, counted from its own start (for benchmark children)."""
from __future__ import annotations


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB, counted from its own start.

    Linux's ``ru_maxrss`` carries over what the parent held when this process was forked (the
    kernel keeps the high-water mark across exec), so a benchmark child of a 20 GB parent would
    report 20 GB; ``VmHWM`` belongs to the process's own address space. Elsewhere: ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere
