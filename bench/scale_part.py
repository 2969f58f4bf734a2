"""``python -m bench --scale``: index, clustering, assignment, table writing and an incremental run at a million.

Every heavy step runs in its own process, so the peak memory given is that step's (the process's
maximum resident set). Fingerprints are synthetic with known origins (``clustering.synthetic``);
the incremental run is real: 10k image files fingerprinted by a flow run into a store that already
holds a million synthetic fingerprints, written there by the store's own first-run code
(``flows.update.update`` over shards in the store's format). Each step's result is kept in
``WORK/results.json``: a rerun after a failure redoes only the steps that have no result.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd

from bench.checkout import child_env
from bench.clustering_scale import scale_fingerprints
from clustering.peak_memory import peak_rss_mb
from clustering.synthetic import SyntheticFingerprints

SIZES = (10_000, 100_000, 1_000_000)
NEW_POINTS = 10_000
DIM = 64
STORE_MODEL = "spectral"  # training-free and fast: the incremental run measures the store, not the network
MEMORY_LIMIT_GB = 8
CLUSTER_MINUTES_LIMIT = 15
SEED_SHARD_SIZE = 10_000

# One step in a child process: `call` it and write its result where the parent reads it.
_CHILD = """
import json, sys
from bench.scale_part import call
from clustering.index import set_threads
set_threads(int(sys.argv[3]))
result = call(sys.argv[1], json.loads(sys.argv[2]))
with open(sys.argv[4], "w") as handle:
    json.dump(result, handle)
"""


def call(target: str, kwargs: dict) -> dict:
    """``module:function(**kwargs)``'s result with its wall time and the process's peak memory so far."""
    module, name = target.split(":")
    start = time.perf_counter()
    result = getattr(import_module(module), name)(**kwargs)
    result["step_wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_rss_gb"] = round(peak_rss_mb() / 1024, 2)
    return result


class _Steps:
    """Runs named steps, each in its own child process (``isolate``), keeping finished steps' results in a JSON file.

    Without ``isolate`` steps run in this process (quicker, for tests): peak memory is then this process's.
    """

    def __init__(self, work: Path, threads: int, log: Callable[[str], None], isolate: bool = True) -> None:
        self.work, self.threads, self.log, self.isolate = work, threads, log, isolate
        self.path = work / "results.json"
        self.results: dict[str, dict] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def run(self, name: str, target: str, **kwargs) -> dict:
        if name in self.results:
            self.log(f"scale: {name}: kept from an earlier run")
            return self.results[name]
        self.log(f"scale: {name} ...")
        self.results[name] = self._child(name, target, kwargs) if self.isolate else call(target, kwargs)
        self.path.write_text(json.dumps(self.results, indent=1))
        self.log(f"scale: {name}: {self.results[name]['step_wall_s']:.1f} s, peak {self.results[name]['peak_rss_gb']:.2f} GB")
        return self.results[name]

    def _child(self, name: str, target: str, kwargs: dict) -> dict:
        out, output = self.work / f"{name}.json", self.work / f"{name}.log"
        with open(output, "w") as handle:
            done = subprocess.run([sys.executable, "-c", _CHILD, target, json.dumps(kwargs), str(self.threads), str(out)],
                                  stdout=handle, stderr=subprocess.STDOUT, env=child_env(self.threads))
        if done.returncode != 0:
            tail = output.read_text()[-3000:]
            raise RuntimeError(f"scale step {name} failed (exit {done.returncode}); its log {output} ends:\n{tail}")
        return json.loads(out.read_text())


# ---- the steps (each runs in a child process) -------------------------------------------------


def cluster_data(n: int, n_new: int, dim: int, fit_path: str, new_path: str) -> dict:
    """Synthetic fingerprints (as ``bench.clustering_scale``): ``n`` to cluster and ``n_new`` more of the same origins to assign."""
    data = _exactly(n + n_new, dim, seed=0)
    np.savez(fit_path, vectors=data.vectors[:n], origins=data.origins[:n])
    np.savez(new_path, vectors=data.vectors[n:], origins=data.origins[n:])
    return {"n": n, "n_new": n_new}


def assign_points(fit_path: str, new_path: str, state_path: str) -> dict:
    """Assign held-out points to a saved clustering without refitting; how many join a cluster of their own origin."""
    from clustering.origin import OriginClusterer

    with np.load(state_path) as arrays:
        state = {name: arrays[name] for name in arrays.files}
    fit_origins = np.load(fit_path)["origins"]
    with np.load(new_path) as new:
        vectors, origins = new["vectors"], new["origins"]
    clusterer = OriginClusterer.from_assignment_state(state)
    start = time.perf_counter()
    labels, _ = clusterer.assign(vectors)
    seconds = time.perf_counter() - start
    # A cluster stands for the origin most of its fitted members have.
    fitted = state["labels"]
    majority = pd.Series(fit_origins[fitted >= 0]).groupby(fitted[fitted >= 0]).agg(lambda s: s.value_counts().index[0])
    origin_of_label = majority.reindex(labels).to_numpy()
    generated = origins >= 0
    joined = labels >= 0
    return {
        "clustered": int(len(fit_origins)), "new": int(len(labels)), "seconds": round(seconds, 3),
        "us_per_point": round(seconds / max(1, len(labels)) * 1e6, 1),
        "generated_joined": round(float(joined[generated].mean()), 4),
        "joined_own_origin": round(float((joined & (origin_of_label == origins))[generated].mean()), 4),
        "real_joined": round(float(joined[~generated].mean()), 4) if (~generated).any() else float("nan"),
    }


def write_vectors_table(n: int, dim: int, path: str) -> dict:
    """The store's fingerprint table (image id, fixed-size float32 vector column) at ``n`` rows: write and read back."""
    import pyarrow.parquet as pq

    from flows.schemas import vectors_from_table, vectors_table

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = _image_ids(n, "table")
    start = time.perf_counter()
    pq.write_table(vectors_table(ids, vectors), path)
    write_s = time.perf_counter() - start
    del vectors
    start = time.perf_counter()
    read_ids, read = vectors_from_table(pq.read_table(path))
    read_s = time.perf_counter() - start
    if len(read_ids) != n or read.shape != (n, dim):
        raise RuntimeError(f"read back {read.shape} from a table of {n} x {dim}")
    return {"rows": n, "dim": dim, "write_s": round(write_s, 2), "read_s": round(read_s, 2),
            "mb": round(Path(path).stat().st_size / 2**20, 1)}


def seed_store(store: str, n: int, model: str, seed: int = 2) -> dict:
    """A store's first run over ``n`` synthetic fingerprints of known origins, through the store's own code.

    The fingerprints (`store_fingerprints`) are written as finished shards (the store's shard
    format and plan), then `flows.update.update` folds them in as any run does: ids, index, full
    clustering with stable ids, tables, report, one commit. Only the images behind them do not exist.
    """
    import pyarrow.parquet as pq

    from clustering import metrics
    from flows import schemas
    from flows.model import cached_identity
    from flows.runs import Prepared, RunContext, RunOptions
    from flows.schemas import vectors_table
    from flows.shards import ERRORS_FILE, RECORDS_FILE, VECTORS_FILE, model_key, plan_shards, shard_dir
    from flows.store import StoreFolder
    from flows.update import update

    shutil.rmtree(store, ignore_errors=True)  # a seed that failed half-way is redone from nothing
    fingerprinter = cached_identity(model)  # the one `update` uses
    data = store_fingerprints(n, fingerprinter.dim, seed=seed)
    count = len(data.origins)
    records = pd.DataFrame({"image_id": _image_ids(count, "seed")})
    records["path"] = [f"{store}-synthetic/{i:07d}.png" for i in range(count)]
    records = records.assign(width=64, height=64, format="PNG", fake_score=np.float32("nan"))
    for field in schemas.shard_records_schema():
        if field.name not in records:
            records[field.name] = None
    # Shards as the run's planner cuts them: by image id order, SEED_SHARD_SIZE per shard.
    order = np.argsort(records["image_id"].to_numpy(), kind="stable")
    records, vectors, origins = records.iloc[order].reset_index(drop=True), data.vectors[order], data.origins[order]
    del data
    shards = plan_shards(records[["image_id", "path"]], SEED_SHARD_SIZE, model_key(fingerprinter))
    folders = []
    for number, shard in enumerate(shards):
        rows = slice(number * SEED_SHARD_SIZE, number * SEED_SHARD_SIZE + len(shard.image_ids))
        part = records.iloc[rows]
        if tuple(part["image_id"]) != shard.image_ids:
            raise RuntimeError("seed shards are not cut as the planner cuts them")
        folder = shard_dir(Path(store), shard.key)
        folder.mkdir(parents=True)
        pq.write_table(schemas.to_table(part, schemas.shard_records_schema()), folder / RECORDS_FILE)
        pq.write_table(vectors_table(part["image_id"].tolist(), vectors[rows]), folder / VECTORS_FILE)
        pq.write_table(schemas.to_table(pd.DataFrame(columns=["path", "error"]), schemas.shard_errors_schema()), folder / ERRORS_FILE)
        folders.append(str(folder))
    del vectors
    identified = records[["path", "image_id"]].assign(size_bytes=0, mtime_ns=0, cached=False)
    prepared = Prepared(identified, pd.DataFrame(columns=["path", "error"]), shards, 0, 0, 0.0)
    context = RunContext.start([f"{store}-synthetic"], {"model": model, "synthetic_fingerprints": count})
    target = StoreFolder(store)
    start = time.perf_counter()
    with target.lock("python -m bench --scale: seed"):
        summary = update(target, context, prepared, folders, RunOptions(model=model, recluster=True))
    seconds = time.perf_counter() - start
    labels = target.images().set_index("image_id")["cluster_id"].reindex(records["image_id"]).to_numpy()
    generated = origins >= 0
    report = metrics.clustering_report(origins[generated], labels[generated])
    return {"images": count, "dim": fingerprinter.dim, "update_s": round(seconds, 1), "clusters": summary.clusters,
            "unassigned": summary.unassigned, "ari": round(report["ari"], 4), "bcubed_f1": round(report["bcubed_f1"], 4)}


def incremental_run(seeded: str, store: str, folder: str, model: str) -> dict:
    """A real run (the Prefect flow) adding the image files under ``folder`` to ``store``, a fresh copy of ``seeded``.

    The copy (not timed) keeps the seeded store as it was, so this step can be measured again alone.
    """
    from flows.api import Store

    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(seeded, store)
    target = Store(store)
    before = target.images()[["image_id", "cluster_id"]]
    start = time.perf_counter()
    summary = target.run([folder], model=model)
    seconds = time.perf_counter() - start
    images = target.images()
    new = images[images["first_seen_run"] == summary.run_id]
    kept = before.merge(images[["image_id", "cluster_id"]], on="image_id", how="left", suffixes=("", "_after"))
    return {"images_before": len(before), "images_new": summary.images_new, "images_total": summary.images_total,
            "clustering": summary.clustering, "new_joined": int((new["cluster_id"] >= 0).sum()),
            "old_cluster_changed": int((kept["cluster_id"] != kept["cluster_id_after"]).sum()), "run_s": round(seconds, 1),
            "fingerprint_s": round(summary.seconds.get("fingerprint", 0.0), 1), "update_s": round(summary.seconds.get("update", 0.0), 1),
            "discover_s": round(summary.seconds.get("discover", 0.0), 1)}


def _exactly(n: int, dim: int, seed: int) -> SyntheticFingerprints:
    """``n`` fingerprints shaped as ``bench.clustering_scale``'s (whose origin sizes vary, so the count is only near what is asked)."""
    data = scale_fingerprints(int(n * 1.1) + 1_000, dim, seed=seed)  # shuffled: the first n are a fair sample
    return SyntheticFingerprints(data.vectors[:n], data.origins[:n])


def store_fingerprints(n: int, dim: int, seed: int) -> SyntheticFingerprints:
    """``n`` synthetic ``DIM``-d fingerprints embedded isometrically in ``dim`` dimensions (a fixed random orthonormal basis).

    The store's clustering then faces the problem the ``DIM``-d figures measure (its PCA finds the
    subspace). Drawn in ``dim`` dimensions directly, a million points of this generator lose their
    origins to PCA: measured, 2 clusters and 99.99 % noise.
    """
    data = _exactly(n, DIM, seed=seed)
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, DIM)))
    lifted = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in chunks: no float64 copy of the whole set
        lifted[start : start + 100_000] = data.vectors[start : start + 100_000] @ basis.T
    return SyntheticFingerprints(lifted, data.origins)


def _image_ids(n: int, salt: str) -> list[str]:
    """Ids shaped like the store's (sha256 hex of content), distinct per ``salt``."""
    return [hashlib.sha256(f"{salt} {i}".encode()).hexdigest() for i in range(n)]


# ---- the section --------------------------------------------------------------------------------


def measure(work: Path, threads: int, log: Callable[[str], None] = print, sizes: tuple[int, ...] = SIZES,
            new_points: int = NEW_POINTS, isolate: bool = True) -> str:
    """Every scale figure up to ``max(sizes)`` fingerprints and ``new_points`` new ones, as the section's markdown.

    ``isolate``: each step in its own process, so each peak memory is the step's (False: all in this one, for tests).
    """
    from bench.speed import make_images

    work = Path(work).absolute()
    work.mkdir(parents=True, exist_ok=True)
    steps = _Steps(work, threads, log, isolate)
    largest = max(sizes)
    index = [steps.run(f"index-{n}", "bench.clustering_scale:bench_index", n=n, dim=DIM) for n in sizes]
    clusters, assigned = [], []
    for n in sizes:
        fit, new, state = (str(work / f"{name}-{n}.npz") for name in ("fit", "new", "state"))
        steps.run(f"data-{n}", f"{__name__}:cluster_data", n=n, n_new=new_points, dim=DIM, fit_path=fit, new_path=new)
        clusters.append(steps.run(f"cluster-{n}", "bench.clustering_scale:cluster_child", path=fit, state_out=state))
        assigned.append(steps.run(f"assign-{n}", f"{__name__}:assign_points", fit_path=fit, new_path=new, state_path=state))
    table = steps.run(f"table-{largest}", f"{__name__}:write_vectors_table", n=largest, dim=DIM, path=str(work / "vectors.parquet"))
    seeded_store = str(work / "store-seeded")
    seeded = steps.run(f"seed-{largest}", f"{__name__}:seed_store", store=seeded_store, n=largest, model=STORE_MODEL)
    folder = work / "new-images"
    make_images(folder, "png64", new_points)
    incremental = steps.run(f"incremental-{largest}", f"{__name__}:incremental_run", seeded=seeded_store,
                            store=str(work / "store"), folder=str(folder / "png64"), model=STORE_MODEL)
    return _markdown(index, clusters, assigned, table, seeded, incremental, threads)


def _markdown(index: list[dict], clusters: list[dict], assigned: list[dict], table: dict, seeded: dict,
              incremental: dict, threads: int) -> str:
    from flows.markdown import markdown_table

    index_frame = pd.DataFrame([{
        "vectors": r["n"], "index": r["factory"], "nprobe": r["nprobe"] or "-", "build s": r["build_s"],
        "recall@10 vs exact": r["recall_at_10"], "ms/query (one)": r["query_ms_single"],
        "ms/query (batch of 1000)": r["query_ms_batched"], "peak GB": r["peak_rss_gb"]} for r in index])
    cluster_frame = pd.DataFrame([{
        "vectors": r["n"], "wall s": r["seconds"], "CPU s": r["cpu_seconds"], "peak GB": r["peak_rss_gb"],
        "ARI": r["ari"], "B-cubed F1": r["bcubed_f1"], "noise": r["noise_fraction"],
        "clusters found / true": f"{r['clusters_found']} / {r['clusters_true']}",
        "reals in generated clusters": r["real_in_generated_clusters"]} for r in clusters])
    assign_frame = pd.DataFrame([{
        "clustered vectors": r["clustered"], "new points": r["new"], "seconds": r["seconds"], "µs/point": r["us_per_point"],
        "generated joining a cluster": r["generated_joined"], "joining their own origin's": r["joined_own_origin"],
        "reals joining a cluster": r["real_joined"], "peak GB": r["peak_rss_gb"]} for r in assigned])
    table_frame = pd.DataFrame([{"rows": table["rows"], "dim": table["dim"], "write s": table["write_s"],
                                 "read s": table["read_s"], "MB on disk": table["mb"], "peak GB": table["peak_rss_gb"]}])
    store_frame = pd.DataFrame([
        {"run": f"first run: {seeded['images']:,} synthetic fingerprints ({DIM}-d, embedded in the {seeded['dim']}-d "
                f"{STORE_MODEL} space; full clustering)",
         "wall s": seeded["update_s"], "fingerprint s": "-", "update s": seeded["update_s"], "peak GB": seeded["peak_rss_gb"],
         "result": f"{seeded['clusters']} clusters, ARI {seeded['ari']}, B-cubed F1 {seeded['bcubed_f1']}"},
        {"run": f"incremental: {incremental['images_new']:,} new image files (flow run, {incremental['clustering']}; "
                f"fingerprinting {incremental['images_new'] / max(incremental['fingerprint_s'], 1e-9):.0f} images/s)",
         "wall s": incremental["run_s"], "fingerprint s": incremental["fingerprint_s"], "update s": incremental["update_s"],
         "peak GB": incremental["peak_rss_gb"],
         "result": f"{incremental['images_total']:,} images; {incremental['new_joined']:,} new ones joined a cluster; "
                   f"{incremental['old_cluster_changed']:,} earlier images changed cluster"},
    ])
    largest = clusters[-1]
    verdicts = [
        f"- clustering {largest['n']:,} fingerprints: {largest['seconds'] / 60:.1f} min wall, {largest['cpu_seconds'] / 60:.1f} min CPU "
        f"(target < {CLUSTER_MINUTES_LIMIT} min), "
        f"peak {largest['peak_rss_gb']:.2f} GB (target < {MEMORY_LIMIT_GB}): "
        f"{'met' if largest['seconds'] < 60 * CLUSTER_MINUTES_LIMIT and largest['peak_rss_gb'] < MEMORY_LIMIT_GB else 'NOT met'}",
        f"- recall@10 at {index[-1]['n']:,}: {index[-1]['recall_at_10']} (target >= 0.95)",
        f"- adding {incremental['images_new']:,} images to a store of {incremental['images_before']:,}: "
        f"{incremental['run_s'] / 60:.1f} min, peak {incremental['peak_rss_gb']:.2f} GB, no re-clustering "
        f"({incremental['clustering']}); every step peaked at "
        f"{max(r['peak_rss_gb'] for r in [*index, *clusters, *assigned, table, seeded, incremental]):.2f} GB or less",
        f"- the steps took {sum(r['step_wall_s'] for r in [*index, *clusters, *assigned, table, seeded, incremental]) / 60:.1f} min "
        "in all (the measured steps' own wall times added up)",
    ]
    return "\n".join([
        "## Scale: a million fingerprints on one machine",
        "",
        f"Synthetic {DIM}-d fingerprints with known origins (`clustering.synthetic`: about 100 images per origin, "
        f"origins in pairs sharing a design, 10 % real images with no origin), {threads} threads. Every step "
        "runs in its own process; *peak GB* is that process's maximum resident memory, data generation included "
        "where the step generates its data. A rerun keeps the steps already measured (`results.json` in the work folder) "
        "and measures the rest: the command and date above are those of the last invocation. Targets (issues #4, #8):",
        "",
        *verdicts,
        "",
        "### Index (FAISS, inner product on normalised vectors; type chosen by size)",
        "",
        markdown_table(index_frame),
        "",
        "### Clustering (OriginClusterer with its defaults)",
        "",
        "The defaults leave pooled refinement off (tuned on zoo fingerprints, where its split step cuts one generator's output modes apart); "
        "these synthetic origins in pairs sharing a design are the case it serves, so they group less well without it "
        "(`python -m bench.clustering_scale refine` measures each step on such sets).",
        "",
        markdown_table(cluster_frame),
        "",
        "### Assigning new fingerprints to an existing clustering (no refit)",
        "",
        "New points of the same origins, held out of the clustering; a cluster stands for the origin most of its members have.",
        "",
        markdown_table(assign_frame),
        "",
        "### Writing the fingerprint table (image id + fixed-size float32 vector column, parquet)",
        "",
        markdown_table(table_frame),
        "",
        f"### A store of a million, then an incremental run ({STORE_MODEL} fingerprint)",
        "",
        "The store's first run is `flows.update.update` over shards of synthetic fingerprints written in the store's "
        "shard format (the images behind them do not exist); the incremental run is `Store.run` (the Prefect flow) over "
        "new 64 px PNG crops of the photographs scikit-learn ships: they are hashed, fingerprinted, indexed and assigned "
        "to the existing clusters, and the store's tables, index and report are rewritten, without re-fingerprinting or "
        "re-clustering the million. The new images are real photographs with no synthetic origin: those that join a cluster "
        "join it wrongly (the assignment's accuracy on images of known origin is the table above).",
        "",
        markdown_table(store_frame),
    ])
