"""Speed and scale: decode+fingerprint throughput beside decode alone, a pipeline run's peak memory
against N, incremental runs, and (via ``bench.clustering_scale``) index and clustering at scale.

Wall-clock rates are medians of interleaved repeats (the machine may be shared); CPU milliseconds
per image (process time) are given beside them because they are robust to other users.
"""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench.checkout import child_env
from fingerprinting.embed import embed_paths
from fingerprinting.images import load_image
from fingerprinting.models import Fingerprinter

IMAGE_KINDS = {"png64": "64 px PNG", "jpeg512": "512x427 px JPEG (q90)"}


def make_images(folder: Path, kind: str, count: int) -> list[Path]:
    """``count`` crops of the photographs that ship with scikit-learn, as 64 px PNGs or 512 px-wide JPEGs."""
    from sklearn.datasets import load_sample_images

    folder = folder / kind
    if folder.is_dir() and len(list(folder.iterdir())) >= count:
        return sorted(folder.iterdir())[:count]
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photos = load_sample_images().images
    for index in range(count):
        photo = photos[index % 2][:, ::-1] if (index // 2) % 2 else photos[index % 2]
        if kind == "png64":
            y, x = rng.integers(0, photo.shape[0] - 64), rng.integers(0, photo.shape[1] - 64)
            Image.fromarray(np.ascontiguousarray(photo[y : y + 64, x : x + 64])).save(folder / f"{index:05d}.png")
        else:  # 512 px wide, the photos' full 427 px height
            x = rng.integers(0, photo.shape[1] - 512)
            Image.fromarray(np.ascontiguousarray(photo[:, x : x + 512])).save(folder / f"{index:05d}.jpg", quality=90)
    return sorted(folder.iterdir())


def _timed(function, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _load_alone(paths: list[Path], workers: int) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(load_image, paths))


def _load_and_fingerprint(paths: list[Path], workers: int, fingerprinter: Fingerprinter) -> None:
    for _ in embed_paths(paths, fingerprinter, chunk_size=256, max_crops=4, workers=workers):
        pass


def throughput(folder: Path, fingerprinters: dict[str, Fingerprinter], counts: dict[str, int], repeats: int, workers: int) -> pd.DataFrame:
    """Images/s and CPU-ms/image of decode alone and of decode + each method, per image kind."""
    rows = []
    for kind, count in counts.items():
        paths = make_images(folder, kind, count)
        for fingerprinter in fingerprinters.values():  # warm-up: reference statistics, lazy imports
            fingerprinter.fingerprint(np.zeros((1, 64, 64, 3), np.uint8))
        runs: dict[str, list[tuple[float, float]]] = {"decode alone": []} | {name: [] for name in fingerprinters}
        for _ in range(repeats):  # interleaved: each repeat sees the same neighbours on the machine
            runs["decode alone"].append(_timed(_load_alone, paths, workers))
            for name, fingerprinter in fingerprinters.items():
                runs[name].append(_timed(_load_and_fingerprint, paths, workers, fingerprinter))
        floor = len(paths) / statistics.median(w for w, _ in runs["decode alone"])
        for name, timings in runs.items():
            rate = len(paths) / statistics.median(w for w, _ in timings)
            rows.append({"images": IMAGE_KINDS[kind], "count": len(paths), "what": name if name == "decode alone" else f"decode + {name}",
                         "images_per_s": rate, "cpu_ms_per_image": 1000 * statistics.median(c for _, c in timings) / len(paths),
                         "share_of_decode_rate": rate / floor})
    return pd.DataFrame(rows)


# The child process of one pipeline measurement: runs, each with its time and its stages' peak memory.
_PIPELINE_CHILD = """
import json, sys, time
from flows import Store
store, model, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
results = []
for manifest in runs:
    start = time.perf_counter()
    summary = Store(store).run([manifest], model=model)
    results.append({"seconds": time.perf_counter() - start, "peak_memory_mb": summary.peak_memory_mb})
print(json.dumps(results))
"""


def _manifest(path: Path, paths: list[str]) -> str:
    pd.DataFrame({"path": paths}).to_csv(path, index=False)
    return str(path)


def _pipeline(store: Path, model: str, manifests: list[str], threads: int) -> list[dict]:
    shutil.rmtree(store, ignore_errors=True)  # every measurement starts from an empty store
    out = subprocess.run([sys.executable, "-c", _PIPELINE_CHILD, str(store), model, json.dumps(manifests)],
                         check=True, capture_output=True, text=True, env=child_env(threads))
    return json.loads(out.stdout.strip().splitlines()[-1])


def pipeline_runs(work: Path, paths: list[str], small: int, model: str, threads: int, new_share: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Peak memory of a pipeline run's stages against N, and incremental runs against the first run's time.

    Two fresh processes over fresh stores: one first run over ``small`` images; one first run over
    all but ``new_share`` of ``paths``, the same sources again, then all of ``paths`` (the new 1 %).
    Each stage's peak is its own (``flows.stage_memory`` resets the process's mark as a stage starts).
    """
    small_runs = _pipeline(work / "store-small", model, [_manifest(work / "small.csv", paths[:small])], threads)
    base = paths[: len(paths) - max(1, round(new_share * len(paths)))]
    first = _manifest(work / "incremental-base.csv", base)
    grown = _manifest(work / "incremental-grown.csv", paths)
    runs = _pipeline(work / "store-incremental", model, [first, first, grown], threads)
    memory = pd.DataFrame([_memory_row(n, run) for n, run in ((small, small_runs[0]), (len(base), runs[0]))])
    names = [("first run", len(base)), ("same sources again", len(base)), (f"{len(paths) - len(base)} new images ({new_share:.0%})", len(paths))]
    incremental = pd.DataFrame([{"run": name, "images": n, "seconds": run["seconds"], "share_of_first_run": run["seconds"] / runs[0]["seconds"],
                                 "peak MiB": max(run["peak_memory_mb"].values())} for (name, n), run in zip(names, runs)])
    return memory, incremental


def _memory_row(images: int, run: dict) -> dict:
    peaks = run["peak_memory_mb"]
    return {"images": images, "first run seconds": run["seconds"], "peak MiB while fingerprinting": peaks["fingerprint"],
            "peak MiB of the update": peaks["update"]}


def scale(sizes: list[int], dim: int, threads: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Index (build, recall@10, latency) and clustering (time, CPU time, peak memory, quality) at each N."""
    from bench.clustering_scale import bench_cluster, bench_index
    from clustering.index import set_threads

    set_threads(threads)
    index = pd.DataFrame([bench_index(n, dim) for n in sizes])
    clusters = pd.DataFrame([bench_cluster(n, dim, threads, {}) for n in sizes]).drop(columns=["steps", "params"], errors="ignore")
    return index, clusters
