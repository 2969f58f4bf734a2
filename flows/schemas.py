"""Explicit arrow schemas of every table the store writes (no types guessed from pandas)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from fingerprinting.parsing import parsed_fields

NO_CLUSTER = -1  # cluster_id of an image in no cluster (HDBSCAN noise or not yet assigned)


def images_schema() -> pa.Schema:
    """`current/images.parquet`: one row per distinct image (image_id = sha256 of the file's bytes)."""
    return pa.schema(
        [
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),  # the first path it was seen under
            pa.field("n_paths", pa.int32(), nullable=False),  # all of them: current/paths.parquet
            pa.field("width", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("format", pa.string(), nullable=False),
            pa.field("fake_score", pa.float32()),
            pa.field("cluster_id", pa.int64(), nullable=False),
            pa.field("cluster_probability", pa.float32(), nullable=False),
            pa.field("attributed_generator", pa.string()),
            pa.field("attribution_score", pa.float32()),
            pa.field("unknown_generator", pa.bool_(), nullable=False),
            # "generated", "real" or "unsure" (flows.verdicts); null without a calibrated detector.
            pa.field("verdict", pa.string()),
            pa.field("ood_score", pa.float32()),  # 1.0 = the edge of the calibration photographs
            pa.field("first_seen_run", pa.string(), nullable=False),
            *parsed_fields(),
        ]
    )


def clusters_schema() -> pa.Schema:
    """`current/clusters.parquet`: one row per same-origin cluster (stable `cluster_id` across runs)."""
    return pa.schema(
        [
            pa.field("cluster_id", pa.int64(), nullable=False),
            pa.field("size", pa.int64(), nullable=False),
            pa.field("first_seen_run", pa.string(), nullable=False),
            pa.field("last_seen_run", pa.string(), nullable=False),
            pa.field("exemplar_image_ids", pa.list_(pa.string()), nullable=False),
            pa.field("fake_score_mean", pa.float32()),
            pa.field("attributed_generator", pa.string()),
            pa.field("attribution_score", pa.float32()),
            pa.field("attribution_share", pa.float32()),
            # The registered generator whose known design the parsed_* columns carry, and the cosine between the
            # cluster's pooled fingerprint and that generator's pooled references (both null: the heads' parse).
            pa.field("design_source", pa.string()),
            pa.field("design_similarity", pa.float32()),
            *parsed_fields(),
        ]
    )


def errors_schema() -> pa.Schema:
    """`current/errors.parquet`: every input that could not be used, with the run that first met it.

    `image_id` is the sha256 of the bytes when they could be read: bytes that failed to decode are
    not decoded again by later runs.
    """
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("error", pa.string(), nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("image_id", pa.string()),
        ]
    )


def paths_schema() -> pa.Schema:
    """`current/paths.parquet`: every path ever seen and the image it held (also the hash cache)."""
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("size_bytes", pa.int64(), nullable=False),
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("first_seen_run", pa.string(), nullable=False),
        ]
    )


def shard_records_schema() -> pa.Schema:
    """`work/shards/<key>/records.parquet`: what fingerprinting says about each image of a shard."""
    return pa.schema(
        [
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("format", pa.string(), nullable=False),
            pa.field("fake_score", pa.float32()),
            *parsed_fields(),
        ]
    )


def shard_errors_schema() -> pa.Schema:
    return pa.schema([pa.field("path", pa.string(), nullable=False), pa.field("error", pa.string(), nullable=False)])


def vectors_schema(dim: int) -> pa.Schema:
    """Fingerprint vectors: `runs/.../vectors/*.parquet` and `known/vectors.parquet` (fixed-size lists)."""
    return pa.schema(
        [
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def ids_schema() -> pa.Schema:
    """`index/ids.parquet`: the FAISS index's int64 ids and the image each one stands for."""
    return pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("image_id", pa.string(), nullable=False)])


def known_schema() -> pa.Schema:
    """`known/references.parquet`: reference images registered for a named generator."""
    return pa.schema(
        [
            pa.field("name", pa.string(), nullable=False),
            pa.field("image_id", pa.string(), nullable=False),
            pa.field("path", pa.string(), nullable=False),
            pa.field("added_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    )


def known_designs_schema() -> pa.Schema:
    """`known/designs.parquet`: the known design of a registered generator, as certain ``parsed_*`` values."""
    return pa.schema([pa.field("name", pa.string(), nullable=False), *parsed_fields()])


def cluster_events_schema() -> pa.Schema:
    """`runs/.../cluster_events.parquet`: what a re-clustering did to cluster ids (continued, new, merged, split, ended)."""
    return pa.schema(
        [
            pa.field("kind", pa.string(), nullable=False),
            pa.field("cluster_id", pa.int64(), nullable=False),
            pa.field("from_ids", pa.list_(pa.int64()), nullable=False),
            pa.field("to_ids", pa.list_(pa.int64()), nullable=False),
            pa.field("overlap", pa.float64(), nullable=False),
        ]
    )


def runs_schema() -> pa.Schema:
    """`runs/run_date=.../run_id=.../run.parquet`: one row of run metadata (date and id come from the path)."""
    return pa.schema(
        [
            pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("finished_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("sources", pa.list_(pa.string()), nullable=False),
            pa.field("parameters_json", pa.string(), nullable=False),
            pa.field("model_name", pa.string(), nullable=False),
            pa.field("model_version", pa.string(), nullable=False),
            pa.field("clustering", pa.string(), nullable=False),  # "recluster" or "assign"
            pa.field("inputs", pa.int64(), nullable=False),
            pa.field("images_new", pa.int64(), nullable=False),
            pa.field("images_known", pa.int64(), nullable=False),
            pa.field("images_total", pa.int64(), nullable=False),
            pa.field("errors", pa.int64(), nullable=False),
            pa.field("shards", pa.int64(), nullable=False),
            pa.field("shards_reused", pa.int64(), nullable=False),
            pa.field("clusters", pa.int64(), nullable=False),
            pa.field("unassigned", pa.int64(), nullable=False),
            pa.field("seconds_discover", pa.float64(), nullable=False),
            pa.field("seconds_fingerprint", pa.float64(), nullable=False),
            pa.field("seconds_update", pa.float64(), nullable=False),
            pa.field("seconds_total", pa.float64(), nullable=False),
        ]
    )


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` as an arrow table of exactly `schema` (columns in order; missing or extra columns raise)."""
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"table lacks columns {missing}")
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
