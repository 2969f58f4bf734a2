"""Re-clustering with stable ids, and assignment of new images between re-clusterings.

After a re-clustering the fitted clusterer's state (`OriginClusterer.assignment_state`: its
parameters, PCA projection, labels, pooled fingerprints, acceptance bounds, with the stable id of
each cluster as its `cluster_ids`) is kept in `index/clusterer.npz` (plain arrays, loaded with
allow_pickle=False), so a later run can assign new images exactly as `OriginClusterer.assign`
would, without refitting.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from clustering.stable_ids import carry_over_ids
from flows.store import StoreError

if TYPE_CHECKING:
    from clustering.origin import OriginClusterer

CLUSTERER_STATE = "index/clusterer.npz"
_EVENT_COLUMNS = ["kind", "cluster_id", "from_ids", "to_ids", "overlap"]


@dataclass
class Clustered:
    """Cluster labels (stable ids, -1 none) of `image_ids`; other images keep theirs."""

    image_ids: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    events: pd.DataFrame
    next_id: int
    state: dict[str, np.ndarray] | None = None  # assignment state to save (after a re-clustering)


def recluster(
    image_ids: list[str],
    vectors: np.ndarray,
    previous: Mapping[str, int],
    next_id: int,
    min_cluster_size: int | None = None,
) -> Clustered:
    """Cluster every stored image afresh (in image id order, so the result does not depend on arrival order)."""
    order = np.argsort(np.asarray(image_ids), kind="stable")
    ids = [image_ids[i] for i in order]
    vectors = vectors[order]
    from clustering.origin import OriginClusterer  # hdbscan and scikit-learn: only when clustering

    params = {} if min_cluster_size is None else {"min_cluster_size": min_cluster_size}
    clusterer = OriginClusterer(**params)
    if len(ids) <= clusterer.min_cluster_size:  # too few images for any cluster
        labels = np.full(len(ids), -1, np.int64)
        stable = carry_over_ids(previous, ids, labels, next_id)
        return Clustered(ids, stable.labels, np.zeros(len(ids), np.float32), stable.events, stable.next_id)
    clusterer.fit(vectors)
    stable = carry_over_ids(previous, ids, clusterer.labels_, next_id)
    # Each fitted cluster's stable id, so later assignments return stable ids directly.
    stable_of = np.full(len(clusterer.cluster_ids_), -1, np.int64)
    for label in clusterer.cluster_ids_:
        stable_of[label] = stable.labels[np.flatnonzero(clusterer.labels_ == label)[0]]
    state = clusterer.assignment_state() | {"cluster_ids": stable_of}
    return Clustered(ids, stable.labels, clusterer.probabilities_, stable.events, stable.next_id, state)


def assign_new(store_root: Path, image_ids: list[str], vectors: np.ndarray, next_id: int) -> Clustered:
    """Assign new images to the clusters of the last re-clustering (no events, no new ids)."""
    events = pd.DataFrame(columns=_EVENT_COLUMNS)
    if not image_ids:
        return Clustered([], np.zeros(0, np.int64), np.zeros(0, np.float32), events, next_id)
    clusterer = _restore(Path(store_root) / CLUSTERER_STATE)
    labels, probabilities = clusterer.assign(vectors)
    return Clustered(list(image_ids), labels, probabilities, events, next_id)


def save_state(state: dict[str, np.ndarray], path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **state)


def _restore(path: Path) -> OriginClusterer:
    """An OriginClusterer able to `assign`, from the assignment state `save_state` wrote."""
    from clustering.origin import OriginClusterer

    try:
        with np.load(path, allow_pickle=False) as arrays:
            return OriginClusterer.from_assignment_state({name: arrays[name] for name in arrays.files})
    except (OSError, ValueError, EOFError) as exc:  # a pickle, a truncated or foreign file: never trusted
        raise StoreError(
            f"{path} is damaged ({exc}); run again with --recluster (Store.run(recluster=True)), which "
            "re-clusters the whole store from its stored fingerprints and writes a new one"
        ) from exc
