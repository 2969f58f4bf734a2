"""Scale and quality benchmarks of clustering/ on synthetic fingerprints.

    python -m bench.clustering_scale index --n 100000 --dim 64       # build time, recall@10, latency
    python -m bench.clustering_scale cluster --n 100000 --dim 64     # time and peak memory (subprocess)
    python -m bench.clustering_scale refine                          # gain of each refinement step

Every run prints one JSON line per measurement. Threads: --threads (FAISS and BLAS).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.checkout import child_env
from clustering import metrics
from clustering.index import set_threads
from clustering.peak_memory import peak_rss_mb
from clustering.synthetic import SyntheticFingerprints, make_fingerprints

IMAGES_PER_ORIGIN = 100
REAL_SHARE = 0.1


def scale_fingerprints(n: int, dim: int, seed: int = 0) -> SyntheticFingerprints:
    """About ``n`` synthetic fingerprints: origins of ``IMAGES_PER_ORIGIN`` images and a ``REAL_SHARE`` of reals."""
    n_real = int(n * REAL_SHARE)
    n_origins = max(2, (n - n_real) // IMAGES_PER_ORIGIN)
    return make_fingerprints(n_origins, IMAGES_PER_ORIGIN, n_real, dim, noise=0.9, seed_distance=1.0, seed=seed)


def _quality(origins: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    generated = origins >= 0
    report = metrics.clustering_report(origins[generated], labels[generated])
    report["real_in_generated_clusters"] = metrics.real_in_generated_clusters(labels, generated)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}


def bench_index(n: int, dim: int, n_queries: int = 1_000, k: int = 10) -> dict:
    """Auto-typed FingerprintIndex against exact search on the same vectors."""
    import faiss

    from clustering.index import FingerprintIndex

    data = scale_fingerprints(n + n_queries, dim, seed=1)
    vectors, queries = data.vectors[:n], data.vectors[n:]
    ids = np.arange(n, dtype=np.int64)
    start = time.perf_counter()
    index = FingerprintIndex.from_vectors(vectors, ids)
    build_s = time.perf_counter() - start
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    start = time.perf_counter()
    _, found = index.search(queries, k)
    batch_s = time.perf_counter() - start
    start = time.perf_counter()
    for q in queries[:200]:
        index.search(q[None], k)
    single_ms = (time.perf_counter() - start) / 200 * 1e3
    recall = np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)])
    return dict(bench="index", n=n, dim=dim, factory=index.factory_, nprobe=index.nprobe,
                build_s=round(build_s, 2), recall_at_10=round(float(recall), 4),
                query_ms_single=round(single_ms, 3),
                query_ms_batched=round(batch_s / len(queries) * 1e3, 4))


def cluster_child(path: str, state_out: str | None = None, **params) -> dict:
    """Fit OriginClusterer on saved vectors; runs in a child so its peak memory is its own.

    `state_out`: also save the fitted labels and assignment state there (npz), for assigning new points later."""
    from clustering.origin import OriginClusterer

    arrays = np.load(path)
    vectors, origins = arrays["vectors"], arrays["origins"]
    start, cpu_start = time.perf_counter(), time.process_time()
    clusterer = OriginClusterer(**params).fit(vectors)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_gb = peak_rss_mb() / 1024
    if state_out:
        np.savez(state_out, **clusterer.assignment_state())
    # CPU seconds beside wall seconds: on a shared machine the wall clock measures the neighbours.
    return dict(bench="cluster", n=len(vectors), dim=vectors.shape[1], seconds=round(seconds, 1),
                cpu_seconds=round(cpu_seconds, 1), peak_rss_gb=round(peak_gb, 2),
                steps=clusterer.timings_, params=params,
                **_quality(origins, clusterer.labels_))


def bench_cluster(n: int, dim: int, threads: int, params: dict) -> dict:
    data = scale_fingerprints(n, dim)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "data.npz")
        np.savez(path, vectors=data.vectors, origins=data.origins)
        del data
        code = (
            "import json, sys; from bench.clustering_scale import cluster_child; from clustering.index import set_threads;"
            f"set_threads({threads}); print(json.dumps(cluster_child({path!r}, **json.loads(sys.argv[1]))))"
        )
        out = subprocess.run([sys.executable, "-c", code, json.dumps(params)], check=True,
                             capture_output=True, text=True, env=child_env(threads))
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_refine(seed: int = 5) -> list[dict]:
    """The gain of each refinement step on zoo-like synthetic sets: 40 origins in pairs sharing a
    design, 1,500 real images; an easier set (nearest neighbour same origin ~0.99) and a harder
    one (~0.86)."""
    from clustering.origin import OriginClusterer

    settings = {"easier": dict(noise=0.9, seed_distance=1.0), "harder": dict(noise=1.2, seed_distance=0.7)}
    steps = {
        "hdbscan only (default)": dict(),
        "+ reassign": dict(refine=True, merge_evidence=None),
        "+ merge + reassign": dict(refine=True),
        "+ split + reassign": dict(refine=True, split_evidence=4.0, merge_evidence=None),
        "+ split + merge + reassign": dict(refine=True, split_evidence=4.0),
    }
    rows = []
    for setting, shape in settings.items():
        data = make_fingerprints(n_origins=40, images_per_origin=100, n_real=1_500, dim=64,
                                 seed=seed, **shape)
        for name, params in steps.items():
            clusterer = OriginClusterer(**params).fit(data.vectors)
            rows.append(dict(bench="refine", data=setting, step=name,
                             **_quality(data.origins, clusterer.labels_)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["index", "cluster", "refine"])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--params", default="{}", help="OriginClusterer parameters as JSON")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if args.what == "refine":
        for row in bench_refine():
            print(json.dumps(row), flush=True)
        return
    for n in args.n:
        if args.what == "index":
            row = bench_index(n, args.dim)
        else:
            row = bench_cluster(n, args.dim, args.threads, json.loads(args.params))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
