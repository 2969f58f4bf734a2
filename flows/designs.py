"""Known designs of registered generators, lent to the clusters whose pooled fingerprint is close to theirs.

The parsing heads generalise poorly to designs they never learnt, but a generator of a registered
design retrained with another seed lands next to it: on three tuning zoos (seeds 0, 5 and 3, the
shipped model) the nearest train member of every unseen-seed member was its parent. So a cluster
whose pooled fingerprint has a cosine similarity of at least ``MIN_SIMILARITY`` with a registered
generator's pooled references (and most of its images are near them) takes that generator's
design, where the analyst registered one, and so does a cluster attributed to that generator; the
heads' parse stays for whatever the design leaves out, and for every other cluster.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from clustering.pooled import pooled_centroids
from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES
from fingerprinting.parsing import (
    FAMILY_COLUMN,
    LOSS_FAMILIES,
    LOSS_TYPES_COLUMN,
    UPSAMPLING,
    conform_parsed,
    empty_parsed,
    parsed_columns,
    upsampling_family,
)
from flows.errors import UserError

LOSS_TYPES_KEY = "loss_types"
# Cosine between pooled fingerprints above which a cluster counts as a registered design, per
# fingerprint (their geometries differ). Chosen on the three tuning zoos, members pooled: for the
# learned fingerprint unseen-seed members had similarity 0.81-0.99 with their parent and
# unseen-architecture members at most 0.916 with any train member; for the spectral one the two
# overlapped up to 0.974, while the two halves of one member's images had at least 0.976.
# Other fingerprints lend nothing.
MIN_SIMILARITY = {"learned": 0.92, "spectral": 0.98}
# And most of the cluster's images must be as close to the generator as its own references mostly
# are (flows.designs.match_designs): on the tuning zoos, 0.48-1.0 of a re-seeded member's images
# against at most 0.35 of an unseen architecture's; in the demo a cluster that merged four members
# sat at 0.95 from one of them with a quarter of its images near it.
MIN_SHARE = 0.5


def design_row(design: Mapping[str, object]) -> pd.DataFrame:
    """A known design as one row of ``parsed_*`` columns, certain (confidence 1, loss probabilities 0 or 1).

    Keys: the hyperparameters of ``fingerprinting.design`` (discrete ones take one of their
    choices, continuous ones a number in natural units) and ``loss_types`` (a list); a key left out
    stays unknown (null), so a partial design only overrides what it says.
    """
    allowed = {h.name: h for h in HYPERPARAMETERS}
    unknown = sorted(set(design) - set(allowed) - {LOSS_TYPES_KEY})
    if unknown:
        raise UserError(f"unknown design keys {unknown}: use {', '.join([*allowed, LOSS_TYPES_KEY])}")
    row = empty_parsed(1)
    for name, value in design.items():
        if name == LOSS_TYPES_KEY:
            continue
        h = allowed[name]
        if h.kind == "discrete":
            if value not in h.choices:
                raise UserError(f"design: {name} must be one of {', '.join(h.choices)}, not {value!r}")
            row[f"parsed_{name}"], row[f"parsed_{name}_confidence"] = value, 1.0
            if name == UPSAMPLING:
                row[FAMILY_COLUMN], row[f"{FAMILY_COLUMN}_confidence"] = upsampling_family(value), 1.0
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"design: {name} must be a number, not {value!r}")
            row[f"parsed_{name}"] = float(value)
    if LOSS_TYPES_KEY in design:
        losses = design[LOSS_TYPES_KEY]
        if isinstance(losses, str) or not isinstance(losses, Sequence) or not set(losses) <= set(LOSS_TYPES) or not losses:
            raise UserError(f"design: {LOSS_TYPES_KEY} must be a non-empty list of {', '.join(LOSS_TYPES)}, not {losses!r}")
        for loss in LOSS_TYPES:
            row[f"parsed_loss_{loss}"] = float(loss in losses)
        for family, types in LOSS_FAMILIES.items():
            row[f"parsed_loss_family_{family}"] = float(bool(set(types) & set(losses)))
        row[LOSS_TYPES_COLUMN] = [[loss for loss in LOSS_TYPES if loss in losses]]
    return conform_parsed(row, 1)


def zoo_member_design(member: Mapping[str, object]) -> dict[str, object]:
    """The design of a zoo member (a row of its ``generators.parquet``), as ``design_row`` takes it."""
    design = {h.name: member[h.name] if h.kind == "discrete" else float(member[h.name]) for h in HYPERPARAMETERS}
    return design | {LOSS_TYPES_KEY: [str(loss) for loss in member["losses"]]}


def match_designs(
    vectors: np.ndarray, groups: np.ndarray, keys: Sequence[int], reference_vectors: np.ndarray,
    reference_names: Sequence[str], min_similarity: float, min_share: float = MIN_SHARE,
    attributed: Sequence[str | None] | None = None,
) -> tuple[list[str | None], np.ndarray]:
    """Per key of ``keys``: the registered name whose design the group takes, if any, and its pooled similarity to it.

    ``vectors`` and ``reference_vectors`` are unit rows; ``groups`` labels the rows of ``vectors``
    (rows of other groups are ignored). A group attributed to a registered name (``attributed``,
    one per key: its images were named after that generator) takes that name. Any other group
    takes its nearest name when its pooled fingerprint is at least ``min_similarity`` from the
    name's pooled references and at least ``min_share`` of its rows are as close to them as 95 % of
    the name's own references are: a cluster that merged several generators can sit near one of
    them on average while most of its images do not. Similarities are NaN for a key without rows,
    or without names.
    """
    similarities = np.full(len(keys), np.nan, np.float32)
    if not len(keys) or not len(reference_names):
        return [None] * len(keys), similarities
    reference_vectors = np.asarray(reference_vectors, np.float32)
    names, name_labels = np.unique(np.asarray(reference_names), return_inverse=True)
    named = pooled_centroids(reference_vectors, name_labels, len(names))
    own = np.einsum("ij,ij->i", reference_vectors, named[name_labels])
    bounds = np.array([np.quantile(own[name_labels == n], 0.05) for n in range(len(names))], np.float32)
    position = pd.Index(keys).get_indexer(pd.Index(np.asarray(groups)))
    vectors = np.asarray(vectors, np.float32)
    pooled = pooled_centroids(vectors, position, len(keys))
    nearest = (pooled @ named.T).argmax(axis=1)
    name_index = {name: n for n, name in enumerate(names)}
    forced = np.array([name in name_index for name in attributed]) if attributed is not None else np.zeros(len(keys), bool)
    if forced.any():
        nearest[forced] = [name_index[name] for name, f in zip(attributed, forced) if f]
    rows = np.flatnonzero(position >= 0)
    counts = np.bincount(position[rows], minlength=len(keys))
    within = np.zeros(len(keys))
    for chunk in np.array_split(rows, max(1, -(-len(rows) // 65536))):  # bounded memory at a million images
        target = nearest[position[chunk]]
        close = np.einsum("ij,ij->i", vectors[chunk], named[target]) >= bounds[target]
        within += np.bincount(position[chunk], weights=close, minlength=len(keys))
    has_rows = counts > 0
    similarities[has_rows] = np.einsum("ij,ij->i", pooled[has_rows], named[nearest[has_rows]])
    chosen = has_rows & (forced | ((similarities >= min_similarity) & (within >= min_share * counts)))
    return [str(names[n]) if ok else None for n, ok in zip(nearest, chosen)], similarities


def lend_designs(parsed: pd.DataFrame, sources: Sequence[str | None], designs: pd.DataFrame) -> pd.DataFrame:
    """``parsed`` (``parsed_*`` rows) where a row's source names a registered design: that design's known fields.

    ``designs``: one row per name (a ``name`` column beside the ``parsed_*`` ones, as ``design_row``
    makes them). Fields the design leaves null keep the row's own parse.
    """
    by_name = designs.set_index("name")
    rows = [(row, by_name.loc[name]) for row, name in enumerate(sources) if name is not None and name in by_name.index]
    out = parsed.copy()
    for column in parsed_columns():
        values = out[column].tolist()
        for row, design in rows:
            value = design[column]
            if column == LOSS_TYPES_COLUMN:
                values[row] = list(value) if value is not None else values[row]
            elif not pd.isna(value):
                values[row] = value
        out[column] = pd.Series(values, index=out.index, dtype=object)
    return conform_parsed(out, len(out))
