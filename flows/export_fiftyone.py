"""`genprint export fiftyone`: the store as a FiftyOne dataset, with FiftyOne Brain's similarity index and map.

One sample per stored image: its file, `cluster_id` (and `cluster`, a label the App colours by),
verdict, fake score, attribution and parsed design as fields, its fingerprint as the embedding
field `fingerprint`. The Brain results are computed from those embeddings (no model is run):
`fingerprint_similarity` (a cosine similarity index, scikit-learn backend) and `fingerprint_map`
(2-D, PCA or UMAP). The dataset is persistent, so `fiftyone app launch NAME` opens it later.
FiftyOne is an optional extra (`pip install 'genprint[fiftyone]'`), imported only here.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from flows import schemas
from flows.errors import UserError
from flows.report import verdict_of
from flows.schemas import NO_CLUSTER

if TYPE_CHECKING:
    import fiftyone

    from flows.store import Store

EMBEDDINGS_FIELD = "fingerprint"
SIMILARITY_KEY = "fingerprint_similarity"
MAP_KEY = "fingerprint_map"
FIELDS = ("image_id", "width", "height", "format", "fake_score", "cluster_probability", "attributed_generator",
          "attribution_score", "unknown_generator", "first_seen_run", "ood_score")


def default_name(store: Store) -> str:
    """`genprint-<store folder>`: one dataset per store unless a name is given."""
    return "genprint-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", store.root.name)


def export_fiftyone(store: Store, name: str | None = None, method: str = "pca") -> fiftyone.Dataset:
    """Write the store's images into the persistent FiftyOne dataset `name` (replacing one of that name)."""
    fo, fob = _import_fiftyone()
    images = store.images()
    if not len(images):
        raise UserError(f"the store {store.root} holds no images yet: run `genprint run SOURCE --store {store.root}` first")
    _, vectors = store.vectors(images["image_id"].tolist())
    verdicts = verdict_of(images)
    parsed = [c for c in images.columns if c.startswith("parsed_")]
    samples = []
    for (_, row), verdict, vector in zip(images.iterrows(), verdicts, vectors):
        cluster_id = int(row["cluster_id"])
        fields = {f: _plain(row[f]) for f in (*FIELDS, *parsed) if f in images.columns}
        samples.append(fo.Sample(
            filepath=row["path"], cluster_id=cluster_id, verdict=verdict,
            cluster=fo.Classification(label="unassigned" if cluster_id == NO_CLUSTER else f"cluster {cluster_id}"),
            **{EMBEDDINGS_FIELD: np.asarray(vector, np.float32)}, **fields,
        ))
    dataset = fo.Dataset(name or default_name(store), persistent=True, overwrite=True)
    # Declared up front: a field whose values are all null (no detector, no parsing heads) is still a field.
    dataset.add_sample_field("verdict", fo.StringField)
    for column in (*FIELDS, *parsed):
        if column in images.columns:
            kind, options = _field_type(fo, images[column])
            dataset.add_sample_field(column, kind, **options)
    dataset.add_samples(samples, progress=False)
    dataset.info = {"genprint_store": str(store.root), "model": store.meta().get("model")}
    dataset.save()
    fob.compute_similarity(dataset, embeddings=EMBEDDINGS_FIELD, brain_key=SIMILARITY_KEY, backend="sklearn",
                           metric="cosine", progress=False)
    fob.compute_visualization(dataset, embeddings=EMBEDDINGS_FIELD, brain_key=MAP_KEY, method=method, num_dims=2,
                              seed=0, progress=False)
    return dataset


def _field_type(fo: Any, column: pd.Series) -> tuple[Any, dict]:
    """The FiftyOne field type of a table column, from its arrow type in the store's schema when it has one."""
    known = schemas.images_schema()
    kind = known.field(column.name).type if column.name in known.names else pa.Schema.from_pandas(column.to_frame()).field(0).type
    if pa.types.is_list(kind):
        return fo.ListField, {"subfield": fo.StringField}
    if pa.types.is_boolean(kind):
        return fo.BooleanField, {}
    if pa.types.is_integer(kind):
        return fo.IntField, {}
    if pa.types.is_floating(kind):
        return fo.FloatField, {}
    return fo.StringField, {}


def _import_fiftyone() -> tuple[Any, Any]:
    try:
        import fiftyone
        import fiftyone.brain
    except ImportError as exc:
        raise UserError(f"FiftyOne is not installed ({exc}): pip install 'genprint[fiftyone]'") from None
    return fiftyone, fiftyone.brain


def _plain(value: object) -> object:
    """A table value as FiftyOne stores it: Python scalars and lists, None for missing."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value
