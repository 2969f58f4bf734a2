"""Where a benchmark figure comes from: the command, the date, the machine and the commit it was measured with."""
from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np

from bench.checkout import ROOT


def provenance(command: str, started: datetime, wall_seconds: float) -> str:
    """The lines every section starts with: how to reproduce it, when, how long, on what."""
    return "\n".join([
        f"- command: `{command}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; wall time {wall_seconds / 60:.1f} min",
        f"- machine: {machine()}",
        f"- code: {code_revision()}",
    ])


def machine() -> str:
    """CPU model, cores, memory, load and library versions: what the ratios were measured on."""
    from importlib import metadata

    import faiss
    import sklearn
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    memory_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), 0)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}; {os.cpu_count()} logical cores; {memory_kb / 2**20:.1f} GiB memory; load average at the end {load}; "
            f"{platform.platform()}; Python {platform.python_version()}, torch {torch.__version__}, faiss {faiss.__version__}, "
            f"hdbscan {metadata.version('hdbscan')}, numpy {np.__version__}, scikit-learn {sklearn.__version__}")


# Not code: documentation (the bench's own sections and model cards are often edited before a rerun is committed) and figures.
NOT_CODE = (":(exclude,glob)**/*.md", ":(exclude)data/bench_figures")


def code_revision(root: Path = ROOT) -> str:
    """The git commit the figures were measured with, and whether the checkout differed from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE)
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if changed else "")


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []
