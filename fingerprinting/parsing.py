"""The parsed-design columns (``parsed_*``) every fingerprinter emits, and their aggregation.

Columns follow ``fingerprinting.zoo.space``:
- discrete hyperparameter ``h``: ``parsed_h`` (string, the predicted choice) and
  ``parsed_h_confidence`` (float32, its probability);
- continuous ``h``: ``parsed_h`` (float32, natural units, e.g. layers, not the min-max scale);
- each loss type ``t``: ``parsed_loss_t`` (float32, probability that the member was trained with it);
- ``parsed_loss_types``: list of the loss types with probability >= 0.5.

Aggregation over a group (the crops of one image, or a cluster): discrete by confidence-weighted
vote, the winner's share of the total confidence as its confidence; continuous by median; loss
probabilities by mean, and loss types re-derived from the mean probabilities.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from fingerprinting.zoo.space import HYPERPARAMETERS, LOSS_TYPES

LOSS_THRESHOLD = 0.5
LOSS_TYPES_COLUMN = "parsed_loss_types"


def discrete_names() -> list[str]:
    return [h.name for h in HYPERPARAMETERS if h.kind == "discrete"]


def continuous_names() -> list[str]:
    return [h.name for h in HYPERPARAMETERS if h.kind == "continuous"]


def loss_columns() -> list[str]:
    return [f"parsed_loss_{loss}" for loss in LOSS_TYPES]


def parsed_fields() -> list[pa.Field]:
    """The arrow fields of every ``parsed_*`` column, in table order."""
    fields: list[pa.Field] = []
    for h in HYPERPARAMETERS:
        if h.kind == "discrete":
            fields.append(pa.field(f"parsed_{h.name}", pa.string()))
            fields.append(pa.field(f"parsed_{h.name}_confidence", pa.float32()))
        else:
            fields.append(pa.field(f"parsed_{h.name}", pa.float32()))
    fields.extend(pa.field(column, pa.float32()) for column in loss_columns())
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

    Vectorised over groups; keys without rows, or whose rows are all null, get nulls.
    """
    frame = parsed.reset_index(drop=True).assign(_group=np.asarray(groups))
    index = pd.Index(keys, name="_group")
    out = pd.DataFrame(index=index)
    for name in discrete_names():
        value, confidence = f"parsed_{name}", f"parsed_{name}_confidence"
        votes = frame[["_group", value, confidence]].dropna(subset=[value])
        weights = votes[confidence].fillna(0.0).clip(lower=0.0).astype(np.float64)
        totals = (
            votes.assign(_weight=weights.to_numpy())
            .groupby(["_group", value], sort=False)["_weight"]
            .sum()
            .reset_index()
        )
        totals = totals.sort_values(["_group", "_weight", value], ascending=[True, False, True])
        winners = totals.drop_duplicates("_group").set_index("_group")
        share = winners["_weight"] / totals.groupby("_group")["_weight"].sum()
        out[value] = winners[value].reindex(index)
        out[confidence] = share.reindex(index).astype(np.float32)
    grouped = frame.groupby("_group", sort=False)
    for name in continuous_names():
        column = f"parsed_{name}"
        out[column] = grouped[column].median().reindex(index).astype(np.float32)
    loss_means = grouped[loss_columns()].mean().reindex(index).astype(np.float32)
    for column in loss_columns():
        out[column] = loss_means[column]
    out[LOSS_TYPES_COLUMN] = [_loss_types(row) for row in loss_means.to_numpy()]
    return conform_parsed(out.reset_index(drop=True), len(index))


def _loss_types(probabilities: np.ndarray) -> list[str] | None:
    if np.isnan(probabilities).all():
        return None
    return [loss for loss, p in zip(LOSS_TYPES, probabilities) if p >= LOSS_THRESHOLD]
