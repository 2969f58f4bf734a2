"""Model parsing on the external corpus: what the shipped heads say of generators trained by others (issue 26).

Each external generator's images are pooled as the product pools a cluster's (``aggregate_parsed_by``,
then the checkpoint's pooled calibration, ``calibrate_pooled``), per view, and the heads' values are
held against the design facts `genprint zoo external` read from the generator's ``.param`` file.
Every head is decoded, also those the checkpoint's policy hides; the tables say which ones the
product shows (a hidden head is "not estimable from images" in the report).
Generators are pooled by their true identity, not by the clusters the product would find: grouping
one design's trainings apart fails outside the zoo (the outside section's grouping table), so this
measures the parser on the groups a perfect grouping would give it. The parser never trained on
any external family, so every family here is held out.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import copy
from dataclasses import replace

import numpy as np
import pandas as pd

from fingerprinting.embed import embed_paths
from fingerprinting.fingerprinter import Fingerprinter, parsing_policy
from fingerprinting.parsing import FAMILY_COLUMN, UPSAMPLING, aggregate_parsed_by, discrete_names, parsed_columns, upsampling_family
from fingerprinting.shown import FAMILY_HEAD, calibrate_pooled


def parse_images(images: pd.DataFrame, fingerprinter: Fingerprinter, cache: Path, log: Callable[[str], None]) -> pd.DataFrame:
    """Per corpus image (``images``' rows), the ``parsed_*`` columns of the product's own loading, cropping and
    decoding with every head shown; kept in ``cache`` (a parquet file) since this is minutes of fingerprinting."""
    if cache.is_file():
        return pd.read_parquet(cache)
    policy = parsing_policy(fingerprinter)
    if policy is not None:
        fingerprinter = copy.copy(fingerprinter)
        fingerprinter.parsing_policy = replace(policy, shown={})
    row_of = {path: row for row, path in enumerate(images["path"])}
    parts = []
    for chunk in embed_paths(images["path"], fingerprinter, chunk_size=512):
        if len(chunk.errors):
            raise RuntimeError(f"{fingerprinter.name}: unreadable corpus images: {chunk.errors['path'].tolist()[:3]}")
        parts.append(chunk.records[parsed_columns()].set_axis([row_of[p] for p in chunk.records["path"]]))
    parsed = pd.concat(parts).sort_index()
    cache.parent.mkdir(parents=True, exist_ok=True)
    parsed.to_parquet(cache)
    log(f"outside: {fingerprinter.name} parsed {len(images)} images")
    return parsed


def generator_designs(images: pd.DataFrame, parsed: pd.DataFrame, fingerprinter: Fingerprinter) -> pd.DataFrame:
    """One pooled, calibrated design per (generator, view): ``member_id``, ``view`` and the ``parsed_*`` columns."""
    fakes = images["is_fake"].to_numpy()
    keys = images.loc[fakes, ["member_id", "view"]].drop_duplicates().reset_index(drop=True)
    group = images.loc[fakes, "member_id"] + "|" + images.loc[fakes, "view"]
    pooled = aggregate_parsed_by(parsed[fakes].reset_index(drop=True), group.to_numpy(), list(keys["member_id"] + "|" + keys["view"]))
    return pd.concat([keys, calibrate_pooled(pooled, parsing_policy(fingerprinter))], axis=1)


def parsing_table(designs: pd.DataFrame, generators: pd.DataFrame, fingerprinter: Fingerprinter) -> pd.DataFrame:
    """Per family and view, shares of generators: the upsampling family right, the type reported and right where
    reported, each other discrete head right; a head the product hides is marked so in its column's name."""
    policy = parsing_policy(fingerprinter)

    def named(head: str, text: str) -> str:
        return text if policy is None or policy.is_shown(head) else f"{text} (hidden)"

    truth = generators.set_index("member_id")
    rows = []
    for (family, view), group in designs.join(truth[["family"]], on="member_id").groupby(["family", "view"], sort=False):
        expected = truth.loc[group["member_id"]]
        reported = group[f"parsed_{UPSAMPLING}"].notna().to_numpy()
        right_type = group[f"parsed_{UPSAMPLING}"].to_numpy()[reported] == expected[UPSAMPLING].to_numpy()[reported]
        row = {"family": family, "view": view, "generators": len(group),
               named(FAMILY_HEAD, "upsampling family right"): float(np.mean(group[FAMILY_COLUMN].to_numpy() == [upsampling_family(t) for t in expected[UPSAMPLING]])),
               named(UPSAMPLING, "type reported"): float(reported.mean()),
               named(UPSAMPLING, "type right where reported"): float(right_type.mean()) if reported.any() else float("nan")}
        for name in discrete_names():
            if name != UPSAMPLING and name in expected:
                row[named(name, f"{name} right")] = float(np.mean(group[f"parsed_{name}"].to_numpy() == expected[name].to_numpy()))
        rows.append(row)
    return pd.DataFrame(rows)


def generator_table(designs: pd.DataFrame, generators: pd.DataFrame, view: str = "clean") -> pd.DataFrame:
    """Per generator in one view: its true upsampling, the heads' family and type with their calibrated confidences."""
    shown = designs[designs["view"] == view].set_index("member_id")
    truth = generators.set_index("member_id")

    def worded(value: object, confidence: object, missing: str) -> str:
        return missing if pd.isna(value) else f"{value} ({float(confidence):.2f})"

    return pd.DataFrame([{
        "generator": member, "true upsampling": truth.at[member, UPSAMPLING],
        "heads' family": worded(row[FAMILY_COLUMN], row[f"{FAMILY_COLUMN}_confidence"], "none"),
        "heads' type": worded(row[f"parsed_{UPSAMPLING}"], row[f"parsed_{UPSAMPLING}_confidence"], "not reported"),
    } for member, row in shown.iterrows()])
