"""A batch run's update after fingerprinting: ids, index, clusters with stable ids, attribution, tables, one commit.

Everything here is computed from the previous committed state plus the finished shards, and
written through one `Transaction`: a crash before the commit leaves the previous state and the
shards (a re-run redoes only this step); a crash during it is rolled forward by the next writer.

Clustering rule (see data/README.md): the whole store is re-clustered on its first run, when asked
(`recluster=True`), and when the images added since the last full clustering exceed
`RECLUSTER_FRACTION` of those it clustered; otherwise new images are only assigned to the existing
clusters, and a run without new images leaves every cluster as it was. Verdicts: see
`flows.verdicts` (new images judged once; every image when the calibration changed).

`update` calls its stages in order (index, clustering, attribution, images, verdicts, tables,
design lending, report pictures, commit), each a named function; the flow runs each as a Prefect task of that name.
"""
from __future__ import annotations

import errno
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from clustering.index import FingerprintIndex, IndexCorruptError
from clustering.votes import cluster_votes
from fingerprinting.fingerprinter import ModelIdentity, attributor_params, parsing_policy
from fingerprinting.parsing import aggregate_parsed_by, parsed_columns
from fingerprinting.shown import ParsingPolicy, calibrate_pooled
from flows import schemas
from flows.atomic import COMMIT_MARKER, STAGING, Transaction
from flows.clustering_step import CLUSTERER_STATE, Clustered, assign_new, recluster, save_state
from flows.designs import MIN_SIMILARITY, lend_designs, match_designs
from flows.known import KnownGenerators
from flows.model import cached_identity
from flows.report import Report, render_report, report_pictures
from flows.runs import Prepared, RunContext, RunOptions, RunSummary, new_meta
from flows.schemas import NO_CLUSTER, vectors_from_table, vectors_table
from flows.shards import SHARDS_DIR, VECTORS_FILE, read_shard
from flows.store import StoreError, StoreFolder, is_in
from flows.verdicts import VERDICT_META, calibration_digest, judge, needs_rejudging

RECLUSTER_FRACTION = 0.10
IMAGES, CLUSTERS, ERRORS, PATHS = StoreFolder.IMAGES, StoreFolder.CLUSTERS, StoreFolder.ERRORS, StoreFolder.PATHS
SCHEMAS = {
    IMAGES: schemas.images_schema(),
    CLUSTERS: schemas.clusters_schema(),
    ERRORS: schemas.errors_schema(),
    PATHS: schemas.paths_schema(),
}
EXEMPLARS = 8
LARGEST_SHOWN = 10


@dataclass
class _NewImages:
    records: pd.DataFrame  # shard records of images not stored before, sorted by image_id
    vectors: np.ndarray  # aligned with records
    errors: pd.DataFrame  # path, error (from fingerprinting)
    parts: list[tuple[str, str, list[str] | None]]  # (shard key, folder, ids kept: None = all of them)


@dataclass
class _Pass:
    """What this run's clustering covered: every stored image (a full pass) or only the new ones."""

    mode: str  # "recluster", "assign" or "unchanged"
    image_ids: list[str]  # every stored image, previous ones first
    vectors: np.ndarray  # every image's (in `image_ids` order) when `every_vector`, else the new images'
    full: bool  # re-clustered, or the registry changed: everything is attributed and designs are matched again
    every_vector: bool  # a full pass, or the store's first images
    clustered: Clustered
    known_digest: str


@dataclass
class _Tables:
    """The analyst tables as this run leaves them (clusters before design lending)."""

    images: pd.DataFrame
    paths: pd.DataFrame
    clusters: pd.DataFrame
    errors: pd.DataFrame
    errors_met: int  # unusable inputs this run met


@dataclass
class _RunResult:
    """Everything a run writes in its one commit."""

    context: RunContext
    summary: RunSummary
    meta: dict
    tables: dict[str, pa.Table]  # only the tables that changed
    index: FingerprintIndex | None  # None: no new vectors, the stored index stays
    clustered: Clustered
    new: _NewImages
    report: Report


StageRunner = Callable[..., Any]


def run_stage(name: str, step: Callable[..., Any], *args: Any) -> Any:
    """Run one stage of the update (the flow passes a runner that makes each a Prefect task of this name)."""
    return step(*args)


def update(
    store: StoreFolder,
    context: RunContext,
    prepared: Prepared,
    shard_dirs: Sequence[str],
    options: RunOptions,
    seconds: dict[str, float] | None = None,
    stage: StageRunner = run_stage,
) -> RunSummary:
    """Fold the finished shards into the store and commit the new state (tables, index, report, run record).

    `options.model` is resolved (flows.runs.begin_run); its `recluster` and `min_cluster_size` steer the clustering.
    """
    started = time.perf_counter()
    fingerprinter = cached_identity(options.model)  # its identity, calibration and policy: no network
    known = KnownGenerators(store)
    meta = store.meta() or new_meta(fingerprinter, options.model)
    before = {IMAGES: store.images(), CLUSTERS: store.clusters(), ERRORS: store.errors(), PATHS: store.paths()}
    new = _collect(shard_dirs, set(before[IMAGES]["image_id"]), fingerprinter.dim)
    ids, index = stage("index", _index_stage, store, meta, new)
    clustering = stage("clustering", _clustering_stage, store, meta, before[IMAGES], new, known.digest(), options)
    attribution = stage("attribution", _attribution_stage, clustering, new, known, fingerprinter)
    images, paths = stage("images", _images_stage, before, new, prepared, clustering, attribution, context.run_id)
    images = stage("verdicts", _judge, store, images, meta, before[IMAGES], new, clustering, fingerprinter)
    tables = stage("tables", _tables_stage, images, paths, before, new, prepared, context.run_id, parsing_policy(fingerprinter))
    clusters = stage("design-lending", _lend_designs, tables.clusters, before[CLUSTERS], tables.images, clustering, known, fingerprinter)
    timings = dict(seconds or {})
    summary = _summary(store, context, prepared, clustering, len(new.records), tables, clusters, timings)
    # Pictures are the slow part of a report: those of unchanged clusters and images are reused.
    pictures = stage("report", report_pictures, store, tables.images, clusters, new.records["image_id"].tolist(), new.vectors)
    timings["update"] = time.perf_counter() - started  # all but the final write
    timings["total"] = sum(v for k, v in timings.items() if k != "total")
    changed = _changed_tables(store, before, {IMAGES: tables.images, CLUSTERS: clusters, ERRORS: tables.errors, PATHS: tables.paths})
    if len(new.records):
        changed[StoreFolder.IDS] = schemas.to_table(ids, schemas.ids_schema())
    report = render_report(store, tables.images, clusters, tables.errors, summary, pictures)
    meta = _next_meta(meta, clustering, fingerprinter, len(new.records), len(tables.images), context.run_id)
    index_changed = index if len(new.records) else None
    result = _RunResult(context, summary, meta, changed, index_changed, clustering.clustered, new, report)
    stage("commit", _commit, store, result)
    shutil.rmtree(store / str(SHARDS_DIR), ignore_errors=True)  # committed: the shards are history now
    return summary


def _index_stage(store: StoreFolder, meta: dict, new: _NewImages) -> tuple[pd.DataFrame, FingerprintIndex]:
    """The new images' int64 ids (counted on from the store's) and the index with their vectors added."""
    new_int_ids = np.arange(meta["next_int_id"], meta["next_int_id"] + len(new.records), dtype=np.int64)
    ids = pd.concat([store.ids(), pd.DataFrame({"id": new_int_ids, "image_id": new.records["image_id"]})], ignore_index=True)
    index = _load_index(store, meta, new.vectors.shape[1])
    index.add(new.vectors, new_int_ids)
    return ids, index


def _clustering_stage(
    store: StoreFolder, meta: dict, previous: pd.DataFrame, new: _NewImages, known_digest: str, options: RunOptions
) -> _Pass:
    """Re-cluster the whole store or assign the new images to its clusters, by the rule of the module docstring."""
    mode = _clustering_mode(meta, len(previous), len(new.records), options.recluster)
    image_ids = previous["image_id"].tolist() + new.records["image_id"].tolist()
    full = mode == "recluster" or known_digest != meta["known_digest"]
    if full and len(previous):
        _, old_vectors = store.vectors(previous["image_id"].tolist())
        vectors = np.concatenate([old_vectors, new.vectors])
    else:
        vectors = new.vectors
    prior = dict(zip(previous["image_id"], previous["cluster_id"]))
    if mode == "recluster":
        clustered = recluster(image_ids, vectors, prior, meta["next_cluster_id"], options.min_cluster_size)
    else:
        clustered = assign_new(store.root, new.records["image_id"].tolist(), new.vectors, meta["next_cluster_id"])
    # A store's first run holds no previous images: its new vectors are every image's.
    return _Pass(mode, image_ids, vectors, full, full or not len(previous), clustered, known_digest)


def _attribution_stage(
    clustering: _Pass, new: _NewImages, known: KnownGenerators, fingerprinter: ModelIdentity
) -> tuple[list[str], list[str | None], np.ndarray]:
    """Open-set attribution against the registered generators: of every image on a full pass, else of the new ones.

    Returns (image ids, names, scores), aligned.
    """
    image_ids = clustering.image_ids if clustering.full else new.records["image_id"].tolist()
    if not image_ids:
        return [], [], np.zeros(0, np.float32)
    names, scores = known.attribute(clustering.vectors, attributor_params(fingerprinter))
    return image_ids, names, scores


def _images_stage(
    before: dict[str, pd.DataFrame], new: _NewImages, prepared: Prepared, clustering: _Pass,
    attribution: tuple[list[str], list[str | None], np.ndarray], run_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The images table (with clusters and attribution) and the paths table, from the committed ones and this run's."""
    paths = _paths_table(before[PATHS], prepared.identified, set(clustering.image_ids), run_id)
    images = _images_table(before[IMAGES], new.records, paths, clustering.clustered, run_id)
    return _attribute(images, *attribution), paths


def _judge(
    store: StoreFolder, images: pd.DataFrame, meta: dict, previous: pd.DataFrame, new: _NewImages, clustering: _Pass,
    fingerprinter: ModelIdentity,
) -> pd.DataFrame:
    """Verdicts of the new images; of every image when the calibration changed (flows.verdicts)."""
    if not needs_rejudging(meta, fingerprinter):
        return judge(images, new.records["image_id"].tolist(), new.vectors, fingerprinter)
    every_vector = clustering.vectors if clustering.every_vector else None
    if every_vector is None:
        _, old_vectors = store.vectors(previous["image_id"].tolist())
        every_vector = np.concatenate([old_vectors, new.vectors])
    return judge(images, previous["image_id"].tolist() + new.records["image_id"].tolist(), every_vector, fingerprinter)


def _tables_stage(
    images: pd.DataFrame, paths: pd.DataFrame, before: dict[str, pd.DataFrame], new: _NewImages, prepared: Prepared, run_id: str,
    policy: ParsingPolicy | None,
) -> _Tables:
    """The clusters and errors tables beside the images and paths tables (parsed designs calibrated under ``policy``)."""
    clusters = _clusters_table(images, before[CLUSTERS], run_id, policy)
    errors, errors_met = _errors_table(before[ERRORS], prepared, new.errors, paths, run_id)
    return _Tables(images, paths, clusters, errors, errors_met)


def _next_meta(meta: dict, clustering: _Pass, fingerprinter: ModelIdentity, images_new: int, images_total: int, run_id: str) -> dict:
    """The store's record after this run: id counters, registry digest, verdict calibration, clustering bookkeeping."""
    meta = dict(meta)
    meta.update(
        next_int_id=int(meta["next_int_id"] + images_new),
        next_cluster_id=int(clustering.clustered.next_id),
        known_digest=clustering.known_digest,
        last_run_id=run_id,
        **{VERDICT_META: calibration_digest(fingerprinter)},
    )
    if clustering.mode == "recluster":
        # Too few images to cluster leaves nothing to assign to: the next run re-clusters again.
        meta.update(clustered_images=images_total if clustering.clustered.state else 0, assigned_since_recluster=0)
    else:
        meta["assigned_since_recluster"] = int(meta["assigned_since_recluster"] + images_new)
    return meta


def _summary(
    store: StoreFolder, context: RunContext, prepared: Prepared, clustering: _Pass, images_new: int, tables: _Tables,
    clusters: pd.DataFrame, seconds: dict[str, float],
) -> RunSummary:
    return RunSummary(
        run_id=context.run_id,
        store=str(store.root),
        clustering=clustering.mode,
        inputs=prepared.inputs,
        images_new=images_new,
        images_known=prepared.images_known,
        images_total=len(tables.images),
        errors=tables.errors_met,
        shards=len(prepared.shards),
        shards_reused=prepared.shards_done,
        clusters=len(clusters),
        unassigned=int((tables.images["cluster_id"] == NO_CLUSTER).sum()),
        largest_clusters=_largest(clusters),
        seconds=seconds,
    )


def _changed_tables(store: StoreFolder, before: dict[str, pd.DataFrame], frames: dict[str, pd.DataFrame]) -> dict[str, pa.Table]:
    """Only what changed is rewritten: at a million images a no-op run must not rewrite the index."""
    tables = {rel: schemas.to_table(frame, SCHEMAS[rel]) for rel, frame in frames.items()}
    return {
        rel: table for rel, table in tables.items()
        if not (store / rel).is_file() or not table.equals(schemas.to_table(before[rel], SCHEMAS[rel]))
    }


def _commit(store: StoreFolder, result: _RunResult) -> None:
    """Write the new state in one transaction: changed tables, index, clusterer state, vectors, report, run record.

    A full disk while staging leaves the previous state and frees what was staged: the run stops
    with a StoreError saying so.
    """
    transaction = Transaction(store.root)
    try:
        _stage_and_commit(transaction, result)
    except OSError as exc:
        if not (store.root / STAGING / COMMIT_MARKER).is_file():  # not committed: drop the staged files
            transaction.abort()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
            raise StoreError(
                f"no space left on the device of {store.root} while writing the run's results; the store keeps its "
                "previous state: free some space and run again (finished fingerprints are reused)"
            ) from exc
        raise


def _stage_and_commit(transaction: Transaction, result: _RunResult) -> None:
    context, summary, meta, new = result.context, result.summary, result.meta, result.new
    run_folder = StoreFolder.run_folder(context.run_id)
    for rel, table in result.tables.items():
        transaction.write_parquet(rel, table)
    if result.index is not None:
        result.index.save(transaction.path(StoreFolder.INDEX))
    if result.clustered.state:
        save_state(result.clustered.state, transaction.path(CLUSTERER_STATE))
    row_of = {image_id: i for i, image_id in enumerate(new.records["image_id"])}
    for key, folder, kept in new.parts:
        part = f"{run_folder}/vectors/part-{key}.parquet"
        if kept is None:
            transaction.link(Path(folder) / VECTORS_FILE, part)
        elif kept:  # a shard that also held images stored meanwhile: only its new rows
            transaction.write_parquet(part, vectors_table(kept, new.vectors[[row_of[i] for i in kept]]))
    transaction.write_parquet(
        f"{run_folder}/cluster_events.parquet", schemas.to_table(result.clustered.events, schemas.cluster_events_schema())
    )
    result.report.stage(transaction, run_folder)
    transaction.write_parquet(f"{run_folder}/run.parquet", _run_row(context, summary, meta))
    transaction.write_json(f"{run_folder}/run.json", _run_record(context, summary, meta))
    transaction.write_json(StoreFolder.META, meta)
    transaction.commit()


def _collect(shard_dirs: Sequence[str], stored: set[str], dim: int) -> _NewImages:
    records, vectors, errors, parts = [], [], [], []
    seen = set(stored)
    for folder in shard_dirs:
        shard_records, shard_vectors, shard_errors = read_shard(folder)
        ids, array = vectors_from_table(shard_vectors)
        if ids != shard_records["image_id"].tolist():
            raise StoreError(f"shard {folder} is inconsistent (records and vectors differ); delete it and run again")
        keep = ~is_in(shard_records["image_id"], seen) & ~shard_records["image_id"].duplicated().to_numpy()
        seen.update(shard_records["image_id"])
        records.append(shard_records[keep])
        vectors.append(array[keep])
        errors.append(shard_errors)
        kept = None if keep.all() else shard_records["image_id"][keep].tolist()
        parts.append((Path(folder).name, folder, kept))
    if not records:
        columns = schemas.shard_records_schema().names
        return _NewImages(pd.DataFrame(columns=columns), np.zeros((0, dim), np.float32), pd.DataFrame(columns=["path", "error"]), [])
    frame = pd.concat(records, ignore_index=True)
    array = np.concatenate(vectors)
    order = np.argsort(frame["image_id"].to_numpy(), kind="stable")
    return _NewImages(frame.iloc[order].reset_index(drop=True), array[order], pd.concat(errors, ignore_index=True), parts)


def _load_index(store: StoreFolder, meta: dict, dim: int) -> FingerprintIndex:
    path = store / StoreFolder.INDEX
    if meta["next_int_id"] == 0:
        return FingerprintIndex(dim=dim)
    try:
        return FingerprintIndex.load(path)
    except IndexCorruptError as exc:
        raise StoreError(f"{exc} (or run `genprint rebuild-index --store {store.root}`, which rebuilds it from the stored vectors)") from exc


def _clustering_mode(meta: dict, stored: int, new: int, forced: bool | None) -> str:
    if forced is True or meta["clustered_images"] == 0:
        return "recluster"
    if new == 0 or forced is False:
        return "assign" if new else "unchanged"
    grown = meta["assigned_since_recluster"] + new
    return "recluster" if grown > RECLUSTER_FRACTION * meta["clustered_images"] else "assign"


def _paths_table(previous: pd.DataFrame, identified: pd.DataFrame, stored_ids: set[str], run_id: str) -> pd.DataFrame:
    """Every path whose image is stored; a path whose content changed points to its new image."""
    seen = identified[is_in(identified["image_id"], stored_ids)][["path", "image_id", "size_bytes", "mtime_ns"]]
    merged = seen.merge(previous[["path", "image_id", "first_seen_run"]], on=["path", "image_id"], how="left")
    merged["first_seen_run"] = merged["first_seen_run"].fillna(run_id)
    kept = previous[~previous["path"].isin(seen["path"])]
    return pd.concat([kept, merged], ignore_index=True).sort_values("path", ignore_index=True)


def _images_table(
    previous: pd.DataFrame, records: pd.DataFrame, paths: pd.DataFrame, clustered: Clustered, run_id: str
) -> pd.DataFrame:
    fresh = records.assign(
        first_seen_run=run_id, attributed_generator=None, attribution_score=np.nan, unknown_generator=False, verdict=None, ood_score=np.nan
    )
    columns = schemas.images_schema().names
    fresh = fresh.assign(n_paths=0, cluster_id=NO_CLUSTER, cluster_probability=0.0)[columns]
    images = pd.concat([previous[columns], fresh], ignore_index=True) if len(previous) else fresh
    images["n_paths"] = images["image_id"].map(paths.groupby("image_id").size()).fillna(1).astype(np.int32)
    if clustered.image_ids:
        labels = images["image_id"].map(dict(zip(clustered.image_ids, clustered.labels.tolist())))
        probabilities = images["image_id"].map(dict(zip(clustered.image_ids, clustered.probabilities.tolist())))
        images["cluster_id"] = labels.fillna(images["cluster_id"]).astype(np.int64)
        images["cluster_probability"] = probabilities.fillna(images["cluster_probability"]).astype(np.float32)
    return images.sort_values("path", ignore_index=True)


def _attribute(images: pd.DataFrame, image_ids: list[str], names: list[str | None], scores: np.ndarray) -> pd.DataFrame:
    """`images` with the attribution of `image_ids` (aligned with `names` and `scores`) set."""
    images = images.set_index("image_id")
    if image_ids:
        images.loc[image_ids, "attributed_generator"] = pd.Series(names, index=image_ids, dtype=object)
        images.loc[image_ids, "attribution_score"] = scores
    return images.reset_index()[schemas.images_schema().names]


def _clusters_table(images: pd.DataFrame, previous: pd.DataFrame, run_id: str, policy: ParsingPolicy | None = None) -> pd.DataFrame:
    members = images[images["cluster_id"] != NO_CLUSTER]
    columns = schemas.clusters_schema().names
    if members.empty:
        return pd.DataFrame(columns=columns)
    grouped = members.groupby("cluster_id", sort=True)
    keys = list(grouped.groups)
    table = pd.DataFrame({"cluster_id": np.asarray(keys, dtype=np.int64)})
    table["size"] = grouped.size().reindex(keys).to_numpy()
    born = dict(zip(previous["cluster_id"], previous["first_seen_run"]))
    table["first_seen_run"] = [born.get(k, run_id) for k in keys]
    # The latest run that brought this origin a new image.
    table["last_seen_run"] = grouped["first_seen_run"].max().reindex(keys).to_numpy()
    ranked = members.sort_values(["cluster_probability", "image_id"], ascending=[False, True])
    exemplars = ranked.groupby("cluster_id", sort=True)["image_id"].apply(lambda s: list(s[:EXEMPLARS]))
    table["exemplar_image_ids"] = exemplars.reindex(keys).to_numpy()
    table["fake_score_mean"] = grouped["fake_score"].mean().reindex(keys).astype(np.float32).to_numpy()
    votes = _cluster_attribution(members, keys)
    table = pd.concat([table, votes], axis=1).assign(design_source=None, design_similarity=np.float32(np.nan))  # see _lend_designs
    # Calibrated once, here, as a cluster: a cluster's vote is right more or less often than its share says.
    parsed = calibrate_pooled(aggregate_parsed_by(members[parsed_columns()], members["cluster_id"].to_numpy(), keys), policy)
    table = pd.concat([table, parsed], axis=1)
    return table.sort_values(["size", "cluster_id"], ascending=[False, True], ignore_index=True)[columns]


def _lend_designs(
    clusters: pd.DataFrame, previous: pd.DataFrame, images: pd.DataFrame, clustering: _Pass, known: KnownGenerators,
    fingerprinter: ModelIdentity,
) -> pd.DataFrame:
    """``clusters`` with the known design of the registered generator each is close to, where there is one (flows.designs).

    Every image's vectors are pooled per cluster; without them (a run that only assigned new images
    to the clusters it had) each cluster keeps the match the last full pass made: the registry has
    not changed since, or this would be a full pass.
    """
    designs, threshold, keys = known.designs(), MIN_SIMILARITY.get(fingerprinter.name), clusters["cluster_id"].tolist()
    if designs.empty or threshold is None or not keys:
        return clusters
    if clustering.every_vector:
        cluster_of = images.set_index("image_id")["cluster_id"].reindex(clustering.image_ids).to_numpy()
        references, names = known.training_set()
        designed = np.isin(names, designs["name"])
        attributed = [name if isinstance(name, str) else None for name in clusters["attributed_generator"]]
        sources, similarity = match_designs(
            clustering.vectors, cluster_of, keys, references[designed], np.asarray(names)[designed], threshold, attributed=attributed
        )
    else:
        carried = previous.set_index("cluster_id").reindex(keys)
        sources = [name if isinstance(name, str) else None for name in carried["design_source"]]
        similarity = carried["design_similarity"].to_numpy(np.float32)
    lent = np.array([name is not None for name in sources])
    clusters = clusters.assign(design_source=pd.Series(sources, dtype=object), design_similarity=np.where(lent, similarity, np.nan).astype(np.float32))
    clusters[parsed_columns()] = lend_designs(clusters[parsed_columns()], sources, designs)
    return clusters


def _cluster_attribution(members: pd.DataFrame, keys: list[int]) -> pd.DataFrame:
    """A cluster's generator: the name a majority of its members are attributed to, that share, their mean score."""
    names = [n if isinstance(n, str) else None for n in members["attributed_generator"]]
    votes = cluster_votes(members["cluster_id"].to_numpy(), names)
    winners = [votes[k][0] for k in keys]
    mean_score = members.groupby(["cluster_id", "attributed_generator"])["attribution_score"].mean()
    return pd.DataFrame(
        {
            "attributed_generator": pd.Series(winners, dtype=object),
            "attribution_score": np.array(
                [mean_score.get((k, name), np.nan) if name else np.nan for k, name in zip(keys, winners)], np.float32
            ),
            "attribution_share": np.array([votes[k][1] if votes[k][0] else 0.0 for k in keys], np.float32),
        }
    )


def _errors_table(
    previous: pd.DataFrame, prepared: Prepared, shard_errors: pd.DataFrame, paths: pd.DataFrame, run_id: str
) -> tuple[pd.DataFrame, int]:
    """Every unusable input, and how many this run met.

    Earlier rows stay, with the run that first met them, unless their path is now stored. Same
    bytes under other names fail the same way: each name gets its row.
    """
    image_of = dict(zip(prepared.identified["path"], prepared.identified["image_id"]))
    current = pd.concat([prepared.errors, shard_errors[["path", "error"]]], ignore_index=True)
    current["image_id"] = current["path"].map(image_of)
    failed = current.dropna(subset=["image_id"]).drop_duplicates("image_id").set_index("image_id")["error"]
    others = prepared.identified[prepared.identified["image_id"].isin(failed.index) & ~prepared.identified["path"].isin(current["path"])]
    echoed = pd.DataFrame({"path": others["path"], "error": others["image_id"].map(failed), "image_id": others["image_id"]})
    current = pd.concat([current, echoed], ignore_index=True).assign(run_id=run_id)
    kept = previous[~is_in(previous["path"], set(paths["path"]))]
    table = pd.concat([kept, current], ignore_index=True).drop_duplicates(["path", "error"], keep="first")
    return table.sort_values(["path", "error"], ignore_index=True), int(current["path"].nunique())


def _largest(clusters: pd.DataFrame) -> list[dict]:
    shown = clusters.head(LARGEST_SHOWN)
    return [
        {
            "cluster_id": int(row.cluster_id),
            "size": int(row.size),
            "fake_score_mean": None if pd.isna(row.fake_score_mean) else round(float(row.fake_score_mean), 3),
            "attributed_generator": row.attributed_generator if isinstance(row.attributed_generator, str) else None,
            "first_seen_run": row.first_seen_run,
        }
        for row in shown.itertuples(index=False)
    ]


def _run_record(context: RunContext, summary: RunSummary, meta: dict) -> dict:
    return {
        "run_id": context.run_id,
        "started_at": context.started_at.isoformat(),
        "finished_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "sources": list(context.sources),
        "parameters": context.parameters,
        "model": {"name": meta["model_name"], "version": meta["model_version"], "argument": meta["model"]},
        "summary": summary.to_dict(),
    }


def _run_row(context: RunContext, summary: RunSummary, meta: dict):
    seconds = summary.seconds
    row = {
        "started_at": pd.Timestamp(context.started_at),
        "finished_at": pd.Timestamp.now(tz="UTC"),
        "sources": list(context.sources),
        "parameters_json": json.dumps(context.parameters, sort_keys=True, default=str),
        "model_name": meta["model_name"],
        "model_version": meta["model_version"],
        "clustering": summary.clustering,
        "inputs": summary.inputs,
        "images_new": summary.images_new,
        "images_known": summary.images_known,
        "images_total": summary.images_total,
        "errors": summary.errors,
        "shards": summary.shards,
        "shards_reused": summary.shards_reused,
        "clusters": summary.clusters,
        "unassigned": summary.unassigned,
        "seconds_discover": float(seconds.get("discover", 0.0)),
        "seconds_fingerprint": float(seconds.get("fingerprint", 0.0)),
        "seconds_update": float(seconds.get("update", 0.0)),
        "seconds_total": float(seconds.get("total", 0.0)),
    }
    return schemas.to_table(pd.DataFrame([row]), schemas.runs_schema())
