"""The parsed-design columns (``parsed_*``) every fingerprinter emits, and their aggregation.

Columns follow ``fingerprinting.design``:
- discrete hyperparameter ``h``: ``parsed_h`` (string, the predicted choice) and
  ``parsed_h_confidence`` (float32, its probability);
- continuous ``h``: ``parsed_h`` (float32, natural units, e.g. layers, not the min-max scale);
- upsampling also as a family (``UPSAMPLING_FAMILIES``): ``parsed_upsampling_family`` and its
  confidence (the sum of its types' probabilities), before ``parsed_upsampling``, the type, which is
  null where its calibrated confidence does not clear the checkpoint's threshold (family alone);
- each loss type ``t``: ``parsed_loss_t`` (float32, probability that the member was trained with it);
- each loss family ``f`` of ``LOSS_FAMILIES``: ``parsed_loss_family_f`` (float32, probability that
  the member was trained with at least one loss of that family);
- ``parsed_loss_types``: the set of loss types with the highest expected F1 under those
  probabilities (see `decode_loss_types`).

A column is null where the checkpoint's leave-out evaluation found its head no better than the
majority class (``fingerprinting.shown``): "not estimable from images".

Aggregation over a group (the crops of one image, or a cluster): discrete by confidence-weighted
vote, the winner's share of the total confidence as its confidence; continuous by median; loss
probabilities by mean, and loss types re-derived from the mean probabilities. The upsampling type
is voted among the rows that report one in the group's family, and reported only where those rows
are at least half of the rows with a family: a group whose rows mostly name the family alone does too.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES

LOSS_TYPES_COLUMN = "parsed_loss_types"
UPSAMPLING = "upsampling"
FAMILY_COLUMN = "parsed_upsampling_family"
# Interpolation then a convolution, against upsampling whose weights are learnt: the pairs inside
# each family compute near-identical functions in the zoo (data/MODEL_CARD.md), the families do not.
UPSAMPLING_FAMILIES: dict[str, tuple[str, ...]] = {"interpolation": ("nearest", "bilinear"), "learned": ("transposed", "pixel_shuffle")}
# What a user asks of a training objective: adversarial or not, a reconstruction term or not, a VAE's KL or not.
LOSS_FAMILIES: dict[str, tuple[str, ...]] = {
    "adversarial": ("ns_gan", "lsgan", "wgan_gp", "hinge"),
    "reconstruction": ("l1", "l2", "perceptual"),
    "kl": ("kl",),
}


def discrete_names() -> list[str]:
    return [h.name for h in HYPERPARAMETERS if h.kind == "discrete"]


def continuous_names() -> list[str]:
    return [h.name for h in HYPERPARAMETERS if h.kind == "continuous"]


def loss_columns() -> list[str]:
    return [f"parsed_loss_{loss}" for loss in LOSS_TYPES]


def loss_family_columns() -> list[str]:
    return [f"parsed_loss_family_{family}" for family in LOSS_FAMILIES]


def upsampling_family(choice: str) -> str:
    """The family of an upsampling type (``UPSAMPLING_FAMILIES``)."""
    return next(family for family, types in UPSAMPLING_FAMILIES.items() if choice in types)


def loss_family_probabilities(probabilities: np.ndarray, loss_types: Sequence[str]) -> np.ndarray:
    """(rows, types) loss probabilities -> (rows, families): P(at least one of the family), the types taken as independent."""
    p = np.asarray(probabilities, dtype=np.float64)
    columns = [1 - np.prod(1 - p[:, [loss_types.index(t) for t in types if t in loss_types]], axis=1) for types in LOSS_FAMILIES.values()]
    return np.stack(columns, 1).astype(np.float32)


def parsed_fields() -> list[pa.Field]:
    """The arrow fields of every ``parsed_*`` column, in table order."""
    fields: list[pa.Field] = []
    for h in HYPERPARAMETERS:
        if h.name == UPSAMPLING:
            fields.append(pa.field(FAMILY_COLUMN, pa.string()))
            fields.append(pa.field(f"{FAMILY_COLUMN}_confidence", pa.float32()))
        if h.kind == "discrete":
            fields.append(pa.field(f"parsed_{h.name}", pa.string()))
            fields.append(pa.field(f"parsed_{h.name}_confidence", pa.float32()))
        else:
            fields.append(pa.field(f"parsed_{h.name}", pa.float32()))
    fields.extend(pa.field(column, pa.float32()) for column in loss_columns())
    fields.extend(pa.field(column, pa.float32()) for column in loss_family_columns())
    fields.append(pa.field(LOSS_TYPES_COLUMN, pa.list_(pa.string())))
    return fields


def parsed_columns() -> list[str]:
    return [field.name for field in parsed_fields()]


def conform_parsed(parsed: pd.DataFrame | None, rows: int) -> pd.DataFrame:
    """``parsed`` with exactly the ``parsed_*`` columns, in order and with their types; nulls if None."""
    schema = pa.schema(parsed_fields())
    if parsed is None or (rows == 0 and parsed.empty):
        table = pa.Table.from_arrays([pa.nulls(rows, field.type) for field in schema], schema=schema)
    else:
        if len(parsed) != rows:
            raise ValueError(f"parsed design has {len(parsed)} rows, expected {rows}")
        missing = [name for name in schema.names if name not in parsed.columns]
        if missing:
            raise ValueError(f"parsed design lacks columns {missing}")
        table = pa.Table.from_pandas(parsed[schema.names], schema=schema, preserve_index=False)
    return table.to_pandas()


def empty_parsed(rows: int) -> pd.DataFrame:
    """All-null ``parsed_*`` columns for ``rows`` rows (fingerprinters without parsing heads)."""
    return conform_parsed(None, rows)


def aggregate_parsed(parsed: pd.DataFrame) -> dict[str, object]:
    """One parsed design for a whole group of rows (a cluster): see the module docstring."""
    groups = np.zeros(len(parsed), dtype=np.int64)
    return aggregate_parsed_by(parsed, groups, [0]).iloc[0].to_dict()


def aggregate_parsed_by(parsed: pd.DataFrame, groups: np.ndarray, keys: Sequence[Hashable]) -> pd.DataFrame:
    """One aggregated row per key in ``keys`` (in that order) from the rows whose ``groups`` equal it.

    Vectorised over groups in numpy (it runs on every chunk of images); rows whose group is not a
    key are ignored; keys without rows, or whose rows are all null, get nulls.
    """
    wanted = pd.Index(keys)
    unique_keys = wanted.unique()
    owner = unique_keys.get_indexer(pd.Index(np.asarray(groups)))
    rows = owner >= 0
    owner, count = owner[rows], len(unique_keys)

    def floats(column: str) -> np.ndarray:
        return parsed[column].to_numpy(np.float64, na_value=np.nan)[rows]

    columns: dict[str, np.ndarray] = {}
    family = parsed[FAMILY_COLUMN].to_numpy(object)[rows]
    columns[FAMILY_COLUMN], columns[f"{FAMILY_COLUMN}_confidence"] = _vote(family, floats(f"{FAMILY_COLUMN}_confidence"), owner, count)
    for name in discrete_names():
        value, confidence = f"parsed_{name}", f"parsed_{name}_confidence"
        values = parsed[value].to_numpy(object)[rows]
        if name == UPSAMPLING:
            values = _types_in_family(values, family, owner, columns[FAMILY_COLUMN])
        columns[value], columns[confidence] = _vote(values, floats(confidence), owner, count)
    for name in continuous_names():
        columns[f"parsed_{name}"] = _group_median(floats(f"parsed_{name}"), owner, count).astype(np.float32)
    loss_means = np.stack([_group_mean(floats(column), owner, count) for column in loss_columns()], 1).astype(np.float32)
    columns.update(zip(loss_columns(), loss_means.T))
    columns.update((column, _group_mean(floats(column), owner, count).astype(np.float32)) for column in loss_family_columns())
    columns[LOSS_TYPES_COLUMN] = decode_loss_types(loss_means, LOSS_TYPES)
    take = unique_keys.get_indexer(wanted)
    return conform_parsed(pd.DataFrame({name: column[take] for name, column in columns.items()}), len(wanted))


def _types_in_family(types: np.ndarray, families: np.ndarray, owner: np.ndarray, group_family: np.ndarray) -> np.ndarray:
    """``types`` with null wherever the group as a whole reports none: a type is voted only among
    rows in the group's family (any, where the group has none), and only where such rows are at
    least half of the group's rows with a family (a row's type implies its family)."""
    family_of_type = {t: family for family, members in UPSAMPLING_FAMILIES.items() for t in members}
    derived = pd.Series(types, dtype=object).map(family_of_type).to_numpy(object)
    derived = np.where(pd.isna(derived), families, derived)
    target = group_family[owner]
    reporting = ~pd.isna(types) & (pd.isna(target) | (derived == target))
    with_family = np.bincount(owner, weights=~pd.isna(derived), minlength=len(group_family))
    reported = np.bincount(owner, weights=reporting, minlength=len(group_family))
    kept = reporting & (2 * reported[owner] >= with_family[owner])
    return np.where(kept, types, None)


def _vote(values: np.ndarray, confidences: np.ndarray, owner: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the value with the largest total confidence (ties: the first name in sort order), and its share of the total."""
    present = ~pd.isna(values)
    weights = np.clip(np.nan_to_num(confidences[present], nan=0.0), 0.0, None)
    choices, code = np.unique(values[present].astype(str), return_inverse=True)  # codes in name order
    winners = np.full(count, None, dtype=object)
    if len(choices) == 0:
        return winners, np.full(count, np.nan, dtype=np.float32)
    cells = owner[present] * len(choices) + code
    totals = np.bincount(cells, weights=weights, minlength=count * len(choices)).reshape(count, len(choices))
    voted = np.bincount(cells, minlength=count * len(choices)).reshape(count, len(choices)) > 0
    winner = np.argmax(np.where(voted, totals, -np.inf), axis=1)  # argmax takes the first of tied maxima
    has_votes = voted.any(axis=1)
    with np.errstate(invalid="ignore"):  # all-zero confidences: no share
        share = totals[np.arange(count), winner] / totals.sum(axis=1)
    winners[has_votes] = choices.astype(object)[winner[has_votes]]
    return winners, np.where(has_votes, share, np.nan).astype(np.float32)


def _group_median(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Per-group median of the non-null values (mean of the middle two for even counts); NaN if none."""
    valid = ~np.isnan(values)
    order = np.lexsort((values[valid], owner[valid]))
    ordered = values[valid][order]
    sizes = np.bincount(owner[valid], minlength=count)
    starts = np.cumsum(sizes) - sizes
    medians = np.full(count, np.nan)
    has = sizes > 0
    low, high = starts[has] + (sizes[has] - 1) // 2, starts[has] + sizes[has] // 2
    medians[has] = (ordered[low] + ordered[high]) / 2
    return medians


def _group_mean(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Per-group mean of the non-null values; NaN if none."""
    valid = ~np.isnan(values)
    sizes = np.bincount(owner[valid], minlength=count)
    sums = np.bincount(owner[valid], weights=values[valid], minlength=count)
    return np.where(sizes > 0, sums / np.maximum(sizes, 1), np.nan)


def decode_loss_types(probabilities: np.ndarray, loss_types: Sequence[str]) -> np.ndarray:
    """Per row of per-type probabilities, the non-empty set of loss types with the highest expected F1.

    A threshold at 0.5 names nothing when the heads are unsure: a generator trained with L1 or L2
    whose heads say 0.45 for each gets an empty set (F1 0) where naming both scores 0.67. So each
    row takes the F1-optimal decision (Jansche 2007; Ye et al. 2012): every non-empty candidate set
    scored against every possible true set, weighted by its probability with the types taken as
    independent; 2^8 sets each way, one matrix product. Never empty, since every generator is
    trained with something. A null probability counts as 0 (never named); an all-null row gets None.
    Returns an object array of lists of names.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(len(probabilities), len(loss_types))
    unknown = np.isnan(p).all(axis=1)
    p = np.clip(np.nan_to_num(p, nan=0.0), 1e-12, 1 - 1e-12)
    sets, f1 = _subset_f1(len(loss_types))
    truth_log_probability = np.log(p) @ sets.T + np.log1p(-p) @ (1 - sets).T  # (rows, sets)
    expected_f1 = np.exp(truth_log_probability) @ f1  # f1 is symmetric: candidates along columns
    expected_f1[:, 0] = -1.0  # the empty set (row 0 of `sets`) is never the answer
    best = sets[expected_f1.argmax(axis=1)].astype(bool)
    decoded = np.empty(len(p), dtype=object)
    decoded[:] = [None if none else [t for t, chosen in zip(loss_types, row) if chosen] for row, none in zip(best, unknown)]
    return decoded


@functools.lru_cache(maxsize=4)
def _subset_f1(types: int) -> tuple[np.ndarray, np.ndarray]:
    """Every subset of ``types`` labels as 0/1 rows (the empty one first), and F1 between each pair of them."""
    sets = np.array(list(itertools.product((0.0, 1.0), repeat=types)))
    overlap, sizes = sets @ sets.T, sets.sum(axis=1)
    total = sizes[:, None] + sizes[None, :]
    return sets, np.divide(2 * overlap, total, out=np.zeros_like(overlap), where=total > 0)
