"""``python -m bench``: build a fresh zoo, compare the methods on it, measure speed and scale, write BENCHMARKS.md."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.baselines.fen import FenConfig
from bench.stages import TRAINING_CODE, StageStore, stage_code_digest

if TYPE_CHECKING:  # heavy modules: imported by run_bench when a run starts
    from bench.methods import Method
    from bench.quality import Partition

# A zoo seed no shipped checkpoint trains on (checked against the shipped one's recorded seed).
BENCH_ZOO_SEED = 101


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of one benchmark run; ``quick()`` fits in minutes on 2 cores, ``full()`` is paper scale."""

    members: int
    images_per_member: int
    size: int
    zoo_steps: int
    epochs: int
    steps_per_epoch: int | None
    fen: FenConfig
    throughput_counts: dict[str, int]
    throughput_repeats: int
    pipeline_small: int  # images of the small pipeline run (memory against N)
    pipeline_images: int  # images of the large one (and of the incremental runs); capped by the zoo
    scale_sizes: tuple[int, ...]
    threads: int = 2

    @classmethod
    def quick(cls) -> BenchConfig:
        return cls(members=12, images_per_member=32, size=32, zoo_steps=25, epochs=3, steps_per_epoch=None,
                   fen=FenConfig(layers=5, channels=16, hidden_dim=64, crop=32), throughput_counts={"png64": 256, "jpeg512": 128},
                   throughput_repeats=5, pipeline_small=100, pipeline_images=100_000, scale_sizes=(10_000,))

    @classmethod
    def full(cls) -> BenchConfig:
        # Training budget: 20 epochs of 100 batches for both learned methods. The paper's 17 x 64 FEN
        # over one pass of 1e5 images per epoch would take days of CPU here; 17 layers x 32 channels on
        # 32 px crops keeps its depth and fits in about an hour.
        return cls(members=116, images_per_member=1000, size=64, zoo_steps=150, epochs=20, steps_per_epoch=100,
                   fen=FenConfig(layers=17, channels=32, crop=32), throughput_counts={"png64": 2000, "jpeg512": 300}, throughput_repeats=5,
                   pipeline_small=10_000, pipeline_images=100_000, scale_sizes=(10_000, 100_000, 1_000_000))


@dataclass
class BenchResult:
    config: BenchConfig
    zoo_seed: int
    methods: pd.DataFrame
    quality: pd.DataFrame
    formats: pd.DataFrame
    throughput: pd.DataFrame
    memory: pd.DataFrame
    incremental: pd.DataFrame
    index: pd.DataFrame
    clustering: pd.DataFrame
    seconds: dict[str, float]
    reused_stages: list[str]  # stages an earlier run of this configuration and code finished


def zoo_seed() -> int:
    from bench.methods import shipped_training_seed

    return BENCH_ZOO_SEED + 1 if shipped_training_seed() == BENCH_ZOO_SEED else BENCH_ZOO_SEED


def run_bench(config: BenchConfig, work: Path, figures: Path, log: Callable[[str], None] = print) -> BenchResult:
    """Every measurement of the suite; the zoo under ``work`` is reused when a run is repeated."""
    from bench import methods as methods_module
    from bench import quality, speed
    from bench.figures import plot_jpeg_curve, plot_maps
    from fingerprinting.network import HeadSpec
    from fingerprinting.runtime import pin_threads
    from fingerprinting.training_data import load_labelled_images
    from fingerprinting.zoo import build_zoo

    pin_threads(config.threads)
    work.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = time.perf_counter() - clock
        log(f"bench: {name} done in {seconds[name]:.0f} s")
        clock = time.perf_counter()

    seed = zoo_seed()
    zoo_dir = work / f"zoo-{config.members}x{config.images_per_member}-{config.size}px-seed{seed}"
    # One member per worker process and core: the same zoo as a single worker builds, sooner.
    build_zoo(zoo_dir, members=config.members, images_per_member=config.images_per_member, size=config.size, seed=seed, steps=config.zoo_steps,
              workers=config.threads)
    data = load_labelled_images(zoo_dir, HeadSpec.from_space())
    part = quality.partition(data)
    lap("zoo")
    # Trainings and quality tables of this configuration that an interrupted run finished are reused.
    key = {"zoo": zoo_dir.name, "config": asdict(config)}
    trainings = StageStore(work / "stages", key | {"code": stage_code_digest(TRAINING_CODE)}, log)
    stages = StageStore(work / "stages", key | {"code": stage_code_digest()}, log)
    methods = methods_module.prepare(part, config.epochs, config.fen, trainings, config.steps_per_epoch)
    lap("training")
    tables, formats, maps = [], [], {}
    for method in methods:
        table, format_row, map_vectors = _method_quality(part, method, stages)
        tables.append(table.assign(method=method.label))
        formats.append(format_row | {"method": method.label})
        maps[method.label] = map_vectors
        log(f"bench: quality of {method.label}")
    held = np.concatenate([part.query_fakes[s] for s in quality.FAKE_SPLITS[1:]])
    plot_maps(maps, data.member[held], figures / "fingerprint_map.png")
    quality_table = pd.concat(tables, ignore_index=True)
    plot_jpeg_curve(quality_table, figures / "quality_vs_jpeg.png")
    lap("quality")
    flops_rows = []
    for method in methods:
        count, how = methods_module.flops(method, 64)
        flops_rows.append({"method": method.label, "note": method.note, "train_seconds": method.train_seconds,
                           "mflops_per_64px_crop": count / 1e6, "flops_counted_by": how})
    flops_rows.append({"method": "FEN-style at the paper's size", "note": "DnCNN 17 x 64 (FLOPs only: not trained in this run)",
                       "train_seconds": None, "mflops_per_64px_crop": methods_module.paper_fen_flops(64) / 1e6, "flops_counted_by": "torch.utils.flop_counter"})
    fingerprinters = {m.label: m.fingerprinter for m in methods}
    throughput = speed.throughput(work / "throughput", fingerprinters, config.throughput_counts, config.throughput_repeats, config.threads)
    lap("throughput")
    pipeline_model = str(next(m.checkpoint for m in methods if m.checkpoint is not None))
    paths = data_paths(zoo_dir)
    memory, incremental = speed.pipeline_runs(work, paths[: config.pipeline_images], config.pipeline_small, pipeline_model, config.threads)
    lap("pipeline runs")
    index, clustering = speed.scale(list(config.scale_sizes), 64, config.threads)
    lap("index and clustering scale")
    return BenchResult(config, seed, pd.DataFrame(flops_rows), quality_table, pd.DataFrame(formats), throughput, memory, incremental,
                       index, clustering, seconds, trainings.reused + stages.reused)


def _method_quality(part: Partition, method: Method, stages: StageStore) -> tuple[pd.DataFrame, dict, np.ndarray]:
    """``quality.evaluate_method`` for one method, or its tables from an earlier run of this configuration."""
    from bench import quality

    stage = f"quality-{method.label}-{method.fingerprinter.version}"
    if (saved := stages.load_table(stage)) is not None:
        table, map_vectors, format_row = saved
        return table, format_row, map_vectors
    table, format_row, map_vectors = quality.evaluate_method(part, method.fingerprinter)
    stages.save_table(stage, table, map_vectors, format_row)
    return table, format_row, map_vectors


def data_paths(zoo_dir: Path) -> list[str]:
    """Every image of the zoo, shuffled once (fixed seed) so any prefix mixes members and reals."""
    from fingerprinting.zoo import load_zoo

    paths = load_zoo(zoo_dir).images["path"].astype(str).to_numpy()
    return list(np.random.default_rng(0).permutation(paths))
