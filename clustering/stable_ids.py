"""Stable cluster ids across re-clusterings: carry ids over by member overlap, record what changed.

Analysts bookmark cluster ids, so an id never changes meaning silently:

- a fresh cluster *continues* the earlier cluster from which the majority (>= min_overlap) of its
  previously labelled members come, or which it absorbed (>= min_overlap of that cluster's
  members now in it); each earlier id goes to at most one fresh cluster, the one sharing the
  most members with it (greedy by overlap count, ties by the lower id);
- a *merge* (a fresh cluster that absorbed several earlier ones) keeps the id of the parent it
  shares the most members with; the other parents are recorded as merged into it and their ids
  are retired;
- a *split* (several fresh clusters drawing their majority from one earlier cluster) keeps the id
  for the part sharing the most members with it; the other parts get new ids;
- everything else is *new* (a fresh id, never one used before) or, for earlier ids nobody
  carries, *ended*. Ids are issued from `next_id` upwards and never recycled.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_KINDS = ("continued", "new", "merged", "split", "ended")


@dataclass
class StableIds:
    """Fresh labels renamed to stable ids (-1 stays noise), the events, and the next free id."""

    labels: np.ndarray
    events: pd.DataFrame  # kind, cluster_id, from_ids, to_ids, overlap
    next_id: int


def _overlap_table(previous_labels: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per (fresh, earlier) pair sharing members, with both shares of that overlap."""
    both = (previous_labels >= 0) & (labels >= 0)
    pairs = pd.DataFrame({"fresh": labels[both], "prev": previous_labels[both]})
    table = pairs.value_counts().rename("count").reset_index()
    prev_labelled = pairs["fresh"].value_counts()  # per fresh cluster: members labelled before
    present = pd.Series(previous_labels[previous_labels >= 0]).value_counts()  # per earlier id
    table["share_of_fresh"] = table["count"] / table["fresh"].map(prev_labelled)
    table["share_of_prev"] = table["count"] / table["prev"].map(present)
    return table


def carry_over_ids(
    previous: Mapping[str, int],
    image_ids: Sequence[str],
    labels: np.ndarray,
    next_id: int,
    min_overlap: float = 0.5,
) -> StableIds:
    """Rename fresh cluster `labels` (aligned with `image_ids`) to ids stable across runs.

    `previous` maps image id -> earlier cluster id (-1 or absent = none); `next_id` is the first
    id never issued (raised past every earlier id if needed).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(image_ids):
        raise ValueError(f"{len(image_ids)} image ids but {len(labels)} labels")
    previous_labels = np.array([previous.get(i, -1) for i in image_ids], dtype=np.int64)
    earlier_ids = {int(v) for v in previous.values() if v >= 0}
    next_id = max(int(next_id), max(earlier_ids, default=-1) + 1)

    table = _overlap_table(previous_labels, labels)
    absorbed = table[table["share_of_prev"] >= min_overlap]
    majority = table[table["share_of_fresh"] >= min_overlap]
    eligible = pd.concat([absorbed, majority]).drop_duplicates(["fresh", "prev"])
    eligible = eligible.sort_values(["count", "prev", "fresh"], ascending=[False, True, True])

    carried: dict[int, int] = {}  # fresh label -> earlier id it keeps
    taken: set[int] = set()
    for fresh, prev in zip(eligible["fresh"], eligible["prev"]):
        if int(fresh) not in carried and int(prev) not in taken:
            carried[int(fresh)] = int(prev)
            taken.add(int(prev))

    stable: dict[int, int] = {}
    for fresh in np.unique(labels[labels >= 0]):
        if int(fresh) in carried:
            stable[int(fresh)] = carried[int(fresh)]
        else:
            stable[int(fresh)], next_id = next_id, next_id + 1

    events = _events(table, absorbed, majority, stable, carried, earlier_ids)
    out = np.array([stable.get(int(f), -1) for f in labels], dtype=np.int64)
    return StableIds(labels=out, events=events, next_id=next_id)


def _events(
    table: pd.DataFrame,
    absorbed: pd.DataFrame,
    majority: pd.DataFrame,
    stable: dict[int, int],
    carried: dict[int, int],
    earlier_ids: set[int],
) -> pd.DataFrame:
    rows: list[dict] = []
    accounted: set[int] = set(carried.values())

    shares = table.set_index(["fresh", "prev"])["share_of_fresh"].to_dict()
    prev_shares = table.set_index(["fresh", "prev"])["share_of_prev"].to_dict()

    def share(fresh: int, prev: int) -> float:
        return float(shares.get((fresh, prev), 0.0))

    # Splits: one earlier cluster is the majority source of several fresh ones.
    split_sources = majority.groupby("prev")["fresh"].apply(sorted)
    split_sources = split_sources[split_sources.map(len) > 1]
    in_split = {int(f) for parts in split_sources for f in parts}
    for prev, parts in split_sources.items():
        keeper = next((f for f in parts if carried.get(int(f)) == prev), None)
        rows.append(
            dict(kind="split", cluster_id=int(prev), from_ids=[int(prev)],
                 to_ids=sorted(stable[int(f)] for f in parts),
                 overlap=prev_shares.get((keeper, prev), 0.0))
        )
        accounted.add(int(prev))

    parents = {int(f): sorted(int(p) for p in group) for f, group in absorbed.groupby("fresh")["prev"]}
    for fresh, cluster_id in stable.items():
        own = carried.get(fresh)
        merged_from = sorted(set(parents.get(fresh, [])) | ({own} if own is not None else set()))
        if len(merged_from) > 1:
            rows.append(
                dict(kind="merged", cluster_id=cluster_id, from_ids=merged_from,
                     to_ids=[cluster_id], overlap=share(fresh, own) if own is not None else 0.0)
            )
            accounted.update(merged_from)
        elif fresh in in_split:
            continue
        elif own is not None:
            rows.append(
                dict(kind="continued", cluster_id=cluster_id, from_ids=[own],
                     to_ids=[cluster_id], overlap=share(fresh, own))
            )
        else:
            rows.append(dict(kind="new", cluster_id=cluster_id, from_ids=[], to_ids=[cluster_id],
                             overlap=0.0))
    for prev in sorted(earlier_ids - accounted):
        rows.append(dict(kind="ended", cluster_id=prev, from_ids=[prev], to_ids=[], overlap=0.0))

    events = pd.DataFrame(rows, columns=["kind", "cluster_id", "from_ids", "to_ids", "overlap"])
    return events.astype({"cluster_id": np.int64, "overlap": np.float64})
