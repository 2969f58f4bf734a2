"""The benchmark suite behind ``python -m bench``: quality side by side with the field's methods, speed and scale."""
from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.suite import BenchConfig

FIGURES = Path("data/bench_figures")


def run_and_write(quick: bool, out: Path, work: Path, threads: int = 2, log: Callable[[str], None] = print,
                  config: BenchConfig | None = None) -> Path:
    """Run the suite (``quick`` or paper scale, or an explicit ``BenchConfig``) and write ``out`` with its figures beside it."""
    from bench.report import write_markdown
    from bench.suite import BenchConfig, run_bench

    config = config or (BenchConfig.quick() if quick else BenchConfig.full())
    config = dataclasses.replace(config, threads=threads)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    figures = out.parent / FIGURES
    result = run_bench(config, work, figures, log)
    write_markdown(result, out, command_line(f"run_and_write(quick={quick})"), figures, started, time.perf_counter() - clock)
    return out


def run_part(name: str, out: Path, work: Path, threads: int = 2, log: Callable[[str], None] = print) -> Path:
    """Measure one separately run part of BENCHMARKS.md (``outside``, ``shipped``, ``zoo``, ``scale``, ``soak`` or ``speed``) and rewrite the page."""
    from importlib import import_module

    from bench.provenance import provenance
    from bench.sections import write_section

    started, clock = datetime.now(timezone.utc), time.perf_counter()
    # Each part's module has ``measure(work, threads, log) -> markdown`` (the tables, without provenance).
    body = import_module(f"bench.{name}_part").measure(work / name, threads, log)
    head, _, rest = body.partition("\n")
    return write_section(out, name, "\n".join([head, "", provenance(command_line(f"run_part({name!r})"), started, time.perf_counter() - clock), rest]))


def command_line(fallback: str) -> str:
    """The command as typed, when it came through ``python -m bench`` (which ``genprint bench`` starts too)."""
    typed = Path(sys.argv[0]).parts[-2:] == ("bench", "__main__.py")
    return " ".join(["python -m bench", *map(shlex.quote, sys.argv[1:])]) if typed else fallback
