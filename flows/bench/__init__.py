"""The benchmark suite behind ``genprint bench``: quality side by side with the field's methods, speed and scale."""
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
    from flows.bench.suite import BenchConfig

FIGURES = Path("data/bench_figures")


def run_and_write(quick: bool, out: Path, work: Path, threads: int = 2, log: Callable[[str], None] = print,
                  config: BenchConfig | None = None) -> Path:
    """Run the suite (``quick`` or paper scale, or an explicit ``BenchConfig``) and write ``out`` with its figures beside it."""
    from flows.bench.report import write_markdown
    from flows.bench.suite import BenchConfig, run_bench

    config = config or (BenchConfig.quick() if quick else BenchConfig.full())
    config = dataclasses.replace(config, threads=threads)
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    figures = out.parent / FIGURES
    result = run_bench(config, work, figures, log)
    command = "genprint " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if Path(sys.argv[0]).name == "genprint" else f"run_and_write(quick={quick})"
    write_markdown(result, out, command, figures, started, time.perf_counter() - clock)
    return out
