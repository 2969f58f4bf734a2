"""`python -m bench --zoo`: time a fresh paper-size zoo build (100 members x 1000 images, 64 px) and measure its size."""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.process_tree_memory import run_measuring_peak
from fingerprinting.zoo import load_zoo

PAPER_ZOO = dict(members=100, images_per_member=1000, size=64, seed=7)


def measure(work: Path, threads: int, log: Callable[[str], None], zoo: dict | None = None) -> str:
    """Build the zoo from nothing in a child process (its wall and CPU time, peak memory), then describe it."""
    options = zoo or PAPER_ZOO
    out = work / "zoo-{members}x{images_per_member}-{size}px-seed{seed}".format(**options)
    if out.exists():
        shutil.rmtree(out)  # a timing needs a build from nothing, not a reuse
    command = [sys.executable, "-m", "flows.cli", "zoo", "build", str(out), "--quiet", "--workers", str(threads),
               *[f"--{k.replace('_', '-')}={v}" for k, v in options.items()]]
    log("zoo: " + " ".join(command[2:]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    code, peak_mb = run_measuring_peak(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    if code:
        raise subprocess.CalledProcessError(code, command)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if peak_mb is None:  # no /proc: the kernel's figure, an upper bound (it carries over this parent's own peak)
        peak_mb = after.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB elsewhere
    return render(out, options, workers=threads, wall_s=wall, cpu_s=cpu, peak_rss_mb=peak_mb, load=os.getloadavg())


def render(out: Path, options: dict, workers: int, wall_s: float, cpu_s: float, peak_rss_mb: float, load: tuple[float, ...]) -> str:
    """The section: time (wall and CPU), memory, what was built, its size on disk, and the sample picture."""
    zoo = load_zoo(out)
    images = zoo.images
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    splits = zoo.generators["split"].value_counts().to_dict()
    families = zoo.generators["family"].value_counts().to_dict()
    return "\n".join([
        "## Zoo build at paper size",
        "",
        f"`genprint zoo build` of {options['members']} members x {options['images_per_member']} images, {options['size']} px, "
        f"seed {options['seed']}, {workers} worker processes (one thread each), from nothing.",
        "",
        "| wall time | CPU time (all processes) | CPU time / workers | peak memory of one process | generated images | real images | size on disk |",
        "|---|---|---|---|---|---|---|",
        f"| {wall_s / 60:.1f} min | {cpu_s / 60:.1f} min | {cpu_s / workers / 60:.1f} min | {peak_rss_mb:.0f} MB | "
        f"{int(images['is_fake'].sum()):,} | {int((~images['is_fake']).sum()):,} | {disk / 1e6:.0f} MB |",
        "",
        f"Load average when it finished: {', '.join(f'{x:.1f}' for x in load)}. CPU time / workers is what the build would take "
        "with its cores to itself: the wall time is longer where other work shared them.",
        "",
        f"Members by split: {', '.join(f'{k} {v}' for k, v in splits.items())}; by family: {', '.join(f'{k} {v}' for k, v in families.items())}.",
        "",
        "What its images look like (one row per family, and the real crops): [data/zoo_samples.png](data/zoo_samples.png).",
        "",
    ])
