"""Soak test: many consecutive incremental runs on one store, new and hostile files mixed in, checked after each.

Each run adds the next batch of good images (from `pool`) to an upload folder, plus a fresh hostile
corpus (`hostile(folder, seed)`, e.g. bench/hostile.py's `make_hostile_corpus`), runs the store
on the whole folder, and checks what must hold after every run:

- lost: good inputs placed so far that are not in the paths table (must be 0);
- duplicates: repeated image ids, paths, (path, error) pairs or index ids (must be 0);
- cluster ids kept: the share of images clustered before the run that keep their cluster id
  (1.0 when new images are only assigned; a re-clustering may legitimately move some);
- unchanged clusters: clusters whose members before the run are still all together in one cluster
  after it, grown only by images that were in no cluster before (new images, earlier noise); each
  must keep its id (share 1.0), whatever else a re-clustering merged or split (counted from the
  run's cluster_events);
- memory: this process's resident memory after the run (after a garbage collection) and its
  count of live Python objects, and the peak; bounded means they level off.

    python -m bench.soak --pool ZOO_FOLDER --work /tmp/soak --runs 20
"""
from __future__ import annotations

import argparse
import gc
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.hostile import make_hostile_corpus
from clustering.peak_memory import peak_rss_mb
from flows.markdown import markdown_table
from flows.runs import RunSummary
from flows.schemas import NO_CLUSTER
from flows.sources import IMAGE_SUFFIXES
from flows.store import Store

HostileMaker = Callable[[Path, int], object]  # writes a hostile corpus into a folder; returns its description


@dataclass(frozen=True)
class SoakRun:
    """The checks and figures of one run of a soak."""

    run: int
    clustering: str
    offered: int  # files placed in the upload folder by this run (good and hostile)
    images_new: int
    images_total: int
    errors: int  # inputs the run recorded as unusable (the whole folder is offered again each run)
    lost: int
    duplicates: int
    cluster_ids_kept: float  # of images clustered before this run; 1.0 when none were
    unchanged_clusters: int
    unchanged_ids_kept: float  # of the unchanged clusters; 1.0 when there were none
    merges: int
    splits: int
    rss_mb: float
    python_objects: int
    peak_rss_mb: float
    seconds: float


def soak(
    store: Store,
    pool: Sequence[str | os.PathLike],
    work: str | os.PathLike,
    runs: int = 20,
    first_batch: float = 0.5,
    hostile: HostileMaker | None = None,
    on_run: Callable[[SoakRun], None] | None = None,
    **run_options,
) -> list[SoakRun]:
    """`runs` incremental runs of `store` over a growing upload folder under `work`; one SoakRun each.

    The first run gets `first_batch` of `pool`, the others share the rest evenly; `on_run` sees each
    run's checks as soon as they are made; `run_options` go to `Store.run` (model, shard_size,
    min_cluster_size, ...).
    """
    upload = Path(work) / "upload"
    upload.mkdir(parents=True, exist_ok=True)
    batches = _batches(list(pool), runs, first_batch)
    expected: set[str] = set()
    results = []
    for number, batch in enumerate(batches, 1):
        for i, source in enumerate(batch):
            target = upload / f"run{number:03d}-{i:04d}{Path(source).suffix}"
            shutil.copy(source, target)
            expected.add(str(target.absolute()))
        offered = len(batch)
        if hostile is not None:
            corpus = hostile(upload / f"hostile-{number:03d}", number)
            expected.update(corpus.path(name) for name in corpus.good)
            offered += len(corpus.good) + len(corpus.bad)
        before = store.images()[["image_id", "cluster_id"]]
        started = time.perf_counter()
        summary = store.run([str(upload)], **run_options)
        seconds = time.perf_counter() - started
        results.append(_check(store, number, summary, offered, expected, before, seconds))
        if on_run is not None:
            on_run(results[-1])
    restore_permissions(upload)
    return results


def _batches(pool: list, runs: int, first_batch: float) -> list[list]:
    first = max(1, int(len(pool) * first_batch))
    rest = pool[first:]
    per_run = -(-len(rest) // max(1, runs - 1)) if rest else 0
    return [pool[:first]] + [rest[i * per_run : (i + 1) * per_run] for i in range(runs - 1)]


def _check(
    store: Store, number: int, summary: RunSummary, offered: int, expected: set[str], before: pd.DataFrame, seconds: float
) -> SoakRun:
    images, paths, errors, ids = store.images(), store.paths(), store.errors(), store.ids()
    duplicates = (
        int(images["image_id"].duplicated().sum()) + int(paths["path"].duplicated().sum())
        + int(errors.duplicated(["path", "error"]).sum()) + int(ids["id"].duplicated().sum())
    )
    clustered = before[before["cluster_id"] != NO_CLUSTER]
    now = dict(zip(images["image_id"], images["cluster_id"]))
    kept = sum(now.get(i) == c for i, c in zip(clustered["image_id"], clustered["cluster_id"]))
    unchanged = unchanged_clusters(clustered, images[["image_id", "cluster_id"]])
    events = pd.read_parquet(store / f"{Store.run_folder(summary.run_id)}/cluster_events.parquet", columns=["kind"])
    gc.collect()  # resident memory of live objects, not of garbage awaiting a collection
    return SoakRun(
        run=number,
        clustering=summary.clustering,
        offered=offered,
        images_new=summary.images_new,
        images_total=len(images),
        errors=summary.errors,
        lost=len(expected - set(paths["path"])),
        duplicates=duplicates,
        cluster_ids_kept=kept / len(clustered) if len(clustered) else 1.0,
        unchanged_clusters=len(unchanged),
        unchanged_ids_kept=float((unchanged["before"] == unchanged["after"]).mean()) if len(unchanged) else 1.0,
        merges=int((events["kind"] == "merged").sum()),
        splits=int((events["kind"] == "split").sum()),
        rss_mb=rss_mb(),
        python_objects=len(gc.get_objects()),
        peak_rss_mb=peak_rss_mb(),
        seconds=seconds,
    )


def unchanged_clusters(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The clusters a run left unchanged: columns `before` and `after` (their ids then and now), one row each.

    `before` holds image_id, cluster_id of the images clustered before the run; `after` the same
    for every image after it. A cluster is unchanged when all its earlier members are now in one
    cluster whose other members were in no cluster before (only grown by new images or earlier
    noise): neither merged with another nor split nor dissolved into noise.
    """
    moved = before.merge(after, on="image_id", how="left", suffixes=("_before", "_after"))
    moved["cluster_id_after"] = moved["cluster_id_after"].fillna(NO_CLUSTER).astype(np.int64)
    fates = moved.groupby("cluster_id_before")["cluster_id_after"].agg(["nunique", "first", "size"])
    earlier_members = moved.groupby("cluster_id_after").size()  # per cluster now: members clustered before
    alone = fates[(fates["nunique"] == 1) & (fates["first"] != NO_CLUSTER)
                  & (fates["first"].map(earlier_members) == fates["size"])]
    return pd.DataFrame({"before": alone.index.to_numpy(np.int64), "after": alone["first"].to_numpy(np.int64)})


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def restore_permissions(folder: Path) -> None:
    """Hostile corpora hold mode-000 files (and an interrupted soak may leave them): make them readable and removable again."""
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            path.chmod(0o755)
        elif path.is_file() and not os.access(path, os.R_OK):
            path.chmod(0o644)


def to_markdown(results: Sequence[SoakRun]) -> str:
    """One row per run, numbers to three significant digits."""
    return markdown_table(pd.DataFrame([asdict(r) for r in results]), float_format=".3g") + "\n"


def repository_hostile_corpus() -> HostileMaker:
    """bench/hostile.py's corpus generator, seeded by run number."""
    return lambda folder, seed: make_hostile_corpus(folder, seed=seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="genprint soak: consecutive incremental runs with hostile files mixed in")
    parser.add_argument("--pool", required=True, help="folder of good images (e.g. a zoo), split over the runs")
    parser.add_argument("--work", required=True, help="empty folder for the upload folder and the store")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--model", default="spectral")
    parser.add_argument("--min-cluster-size", type=int, default=5)
    args = parser.parse_args(argv)
    pool = sorted(str(p) for p in Path(args.pool).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    results = soak(
        Store(Path(args.work) / "store"), pool, args.work, runs=args.runs,
        hostile=repository_hostile_corpus(), model=args.model, min_cluster_size=args.min_cluster_size,
    )
    print(to_markdown(results))


if __name__ == "__main__":
    main()
