"""`python -m bench --soak`: consecutive incremental runs on one store with new and hostile files, checked after each."""
from __future__ import annotations

import gc
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.soak import SoakRun, repository_hostile_corpus, restore_permissions, rss_mb, soak, to_markdown
from fingerprinting.runtime import pin_threads
from fingerprinting.zoo import build_zoo, load_zoo
from flows.store import Store

# A small zoo: a few generators with clusters of ~20 images, enough for re-clusterings to merge and split.
ZOO = dict(members=6, images_per_member=20, size=32, seed=7, steps=20)
RUN_OPTIONS = dict(model="spectral", shard_size=64, min_cluster_size=5)  # training-free fingerprint: no checkpoint
SOAK_RUNS = 20  # issue 7's soak
MEMORY_RUNS = 40  # the same soak continued, to see whether memory levels off
FIRST_BATCH = 0.3
LEAK_SLOPE_MB = 0.5  # per run, over the second half of the repeated runs
REPEATS = 12  # identical full runs after the soak, at its final size: a leak per run would show as steady growth


def measure(work: Path, threads: int, log: Callable[[str], None]) -> str:
    """Build (or reuse) the zoo under `work`, soak a fresh store for MEMORY_RUNS runs; the section's markdown."""
    pin_threads(threads)
    zoo_dir = work / "zoo"
    build_zoo(zoo_dir, **ZOO, on_progress=lambda done, total, what: log(f"zoo {done}/{total}: {what}"))
    pool = sorted(load_zoo(zoo_dir).images["path"])
    scratch = work / "run"
    if scratch.exists():
        restore_permissions(scratch)
        shutil.rmtree(scratch)
    results = soak(
        Store(scratch / "store"), pool, scratch, runs=MEMORY_RUNS, first_batch=FIRST_BATCH,
        hostile=repository_hostile_corpus(), on_run=lambda r: log(_progress(r)), **RUN_OPTIONS,
    )
    repeated = repeated_run_rss(scratch / "upload", scratch / "repeat", REPEATS, log)
    return section(results, len(pool), repeated)


def repeated_run_rss(upload: Path, work: Path, repeats: int, log: Callable[[str], None]) -> list[float]:
    """RSS after each of `repeats` identical full runs of `upload` into a fresh store under `work`."""
    rss = []
    for repeat in range(1, repeats + 1):
        store = Store(work / "store")
        store.run([str(upload)], **RUN_OPTIONS)
        shutil.rmtree(store.root)
        gc.collect()
        rss.append(rss_mb())
        log(f"repeated run {repeat}: RSS {rss[-1]:.0f} MB")
    return rss


def _progress(r: SoakRun) -> str:
    return (f"soak run {r.run}: {r.clustering}, {r.images_new} new, {r.images_total} stored, lost {r.lost}, "
            f"duplicates {r.duplicates}, unchanged ids kept {r.unchanged_ids_kept:.2f}, RSS {r.rss_mb:.0f} MB, {r.seconds:.1f} s")


def slope(values: Sequence[float]) -> float:
    """Least-squares growth per run."""
    return float(np.polyfit(np.arange(len(values)), values, 1)[0]) if len(values) > 1 else 0.0


def section(results: Sequence[SoakRun], pool_size: int, repeated: Sequence[float]) -> str:
    """The BENCHMARKS.md section: what was run, the invariants over the first SOAK_RUNS and all runs, memory, every run.

    `repeated`: RSS after each identical full run (repeated_run_rss).
    """
    soak_runs, later = list(results[:SOAK_RUNS]), list(results[SOAK_RUNS:])
    rss = [r.rss_mb for r in results]
    objects = [r.python_objects for r in results]
    half = len(results) // 2
    lines = [
        f"## Soak: {SOAK_RUNS} incremental runs with hostile files",
        "",
        f"One store, {len(results)} consecutive incremental runs (issue 7's {SOAK_RUNS}, then {len(later)} more on the same "
        "store to see whether memory levels off), all in one process. The image pool is a small zoo "
        f"({ZOO['members']} generators x {ZOO['images_per_member']} images and real crops, {ZOO['size']} px; {pool_size} images): "
        f"the first run gets {FIRST_BATCH:.0%} of it, each later run a few more, and every run also gets a fresh hostile corpus "
        "(bench/hostile.py: awkward but valid files that must be stored, two names of one image, and bad files that must be "
        "recorded in errors.parquet). Each run offers the whole upload folder again (everything so far, bad files included). "
        f"Fingerprint `{RUN_OPTIONS['model']}`, min_cluster_size {RUN_OPTIONS['min_cluster_size']}; the store re-clusters "
        "when the images assigned since the last clustering exceed 10% of those clustered, and otherwise only assigns.",
        "",
        "What is checked after every run:",
        "",
        "- **lost**: good files placed so far whose path is not in paths.parquet;",
        "- **duplicate rows**: repeated image ids in images.parquet, paths in paths.parquet, (path, error) pairs in "
        "errors.parquet and ids in the index's id map;",
        "- **unchanged clusters keep their ids**: a cluster is *unchanged* by a run when all its members before the run are "
        "still together in one cluster after it, and that cluster's other members were in no cluster before (it only grew by "
        "new images or earlier noise: it neither merged, split nor dissolved). Every unchanged cluster must keep its id; "
        "the share that did is shown beside the raw share of earlier-clustered images that kept their cluster id (a "
        "re-clustering may legitimately move images between clusters, merge or split them; those events are counted from "
        "each run's cluster_events.parquet);",
        "- **memory**: resident memory of the process after each run (after a garbage collection) and its count of live "
        "Python objects.",
        "",
        "| runs | offered files | images stored | errors recorded (last run) | lost | duplicate rows | re-clusterings | "
        "unchanged clusters that kept their id (of cluster-runs) | raw id-kept share (lowest re-clustering) | merges | splits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, chosen in ((f"1-{SOAK_RUNS}", soak_runs), (f"1-{len(results)}", list(results))):
        if chosen:
            lines.append(_totals_row(label, chosen))
    lines += [
        "",
        f"Memory: RSS {rss[0]:.0f} MB after run 1, {rss[min(SOAK_RUNS, len(rss)) - 1]:.0f} MB after run "
        f"{min(SOAK_RUNS, len(rss))}, {rss[-1]:.0f} MB after run {len(rss)} (peak {max(r.peak_rss_mb for r in results):.0f} MB); "
        f"growth {slope(rss[:half]):+.2f} MB/run over runs 1-{half} and {slope(rss[half:]):+.2f} MB/run over runs "
        f"{half + 1}-{len(rss)}. Live Python objects: {objects[0]:,} after run 1, {objects[-1]:,} after run {len(objects)} "
        f"({slope(objects[half:]):+.0f} per run over the second half).",
        "",
        f"Identical full runs after the soak, at its final size (its whole upload folder, {results[-1].images_total} images "
        f"and every bad file, into a fresh store each time; {len(repeated)} runs, same process): RSS "
        f"{', '.join(f'{v:.0f}' for v in repeated)} MB; {slope(repeated[len(repeated) // 2:]):+.2f} MB/run over the "
        f"second half. {_repeat_verdict(slope(repeated[len(repeated) // 2:]))}",
        "",
        MEMORY_FINDINGS,
        "",
        "Every run:",
        "",
        to_markdown(results).rstrip(),
        "",
    ]
    return "\n".join(lines)


def _repeat_verdict(growth: float) -> str:
    if abs(growth) < LEAK_SLOPE_MB:
        return ("The same work repeated does not grow memory, so what the soak adds per run follows its growing data "
                "(store and upload folder), not the number of runs.")
    return f"The same work repeated still changes memory by {growth:+.2f} MB/run: look for a leak per run."


def _totals_row(label: str, runs: list[SoakRun]) -> str:
    unchanged = sum(r.unchanged_clusters for r in runs)
    kept = sum(r.unchanged_clusters * r.unchanged_ids_kept for r in runs)
    reclusterings = [r for r in runs if r.clustering == "recluster"][1:]  # the first clustering has nothing to keep
    # Runs that only assign leave every cluster unchanged; re-clusterings are where ids could be lost.
    at_reclusterings = sum(r.unchanged_clusters for r in reclusterings)
    raw = min((r.cluster_ids_kept for r in reclusterings), default=1.0)
    return (
        f"| {label} | {sum(r.offered for r in runs)} | {runs[-1].images_total} | {runs[-1].errors} | "
        f"{sum(r.lost for r in runs)} | {sum(r.duplicates for r in runs)} | {len(reclusterings)} | "
        f"{kept / unchanged if unchanged else 1.0:.3f} of {unchanged} ({at_reclusterings} at re-clusterings) | {raw:.3f} | "
        f"{sum(r.merges for r in runs)} | {sum(r.splits for r in runs)} |"
    )


# How the growth was traced (2026-11-26, on the tiny 4 x 12 zoo, 30 soak runs; not rerun by this command).
MEMORY_FINDINGS = (
    "Where the early growth comes from (an investigation on this machine, not rerun by this command; 30 soak runs on a "
    "4 x 12 zoo): tracemalloc snapshots diffed between runs show live Python allocations growing by a few KB per run "
    "(Prefect's per-run event objects, released again, and the soak's own list of the paths it placed), against an RSS "
    "rise of a few MB per run over the first ~15 runs; the count of live Python objects stays flat; pyarrow's memory pool "
    "holds about 1 MB at most; `MALLOC_ARENA_MAX=2` gives the same curve (so not glibc's per-thread arenas), and "
    "`malloc_trim` gives back only ~6 MB. Twenty identical full runs (73 images into a fresh store each time) went "
    "605 -> 615 MB over the first 4 and 619 MB by the 12th, then stayed flat to the 20th: warm-up (allocator high-water "
    "marks, library state built on first use), not a leak per run. Nothing of genprint's leaked, so nothing was changed."
)
