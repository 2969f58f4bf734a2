"""The bench's "outside the zoo" section on a small external corpus: folds that never leak, and every table."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ncnn", reason="the external extra is not installed (pip install 'genprint[external]')")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import outside_part, outside_parsing  # noqa: E402
from fingerprinting.models import load_fingerprinter  # noqa: E402
from fingerprinting.zoo.external import build_external  # noqa: E402
from fingerprinting.zoo.external.catalogue import generator  # noqa: E402

SMALL = dict(images_per_generator=6, sizes=(64,), seed=0, real_images=48,
             generators=tuple(generator(g) for g in ("realcugan-se-up2x-conservative", "realcugan-se-up2x-no-denoise",
                                                     "span-spanx2_ch48", "span-spanx2_ch52")))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_external(tmp_path_factory.mktemp("outside") / "corpus", **SMALL).out


@pytest.fixture(scope="module")
def images(corpus: Path):
    return outside_part.load_images(corpus)


def test_folds_hold_out_a_family_and_half_of_the_photographs(images):
    seen = set()
    for held, fold, train, test in outside_part.folds(images):
        seen.add(held)
        assert not set(images["photo"].iloc[train]) & set(images["photo"].iloc[test])  # no photograph on both sides
        assert held not in set(images["family"].iloc[train].dropna())
        assert set(images["family"].iloc[test].dropna()) == {held}
        assert (~images["is_fake"].iloc[train]).any() and (~images["is_fake"].iloc[test]).any()
    assert seen == {"realcugan", "span"}


def test_every_table_has_a_row_per_method_family_and_view(images, corpus: Path, tmp_path: Path):
    spectral = load_fingerprinter("spectral")
    prints = {"spectral": outside_part.fingerprint_corpus(images, spectral, print),
              "self-description (real only)": outside_part.self_descriptions(images, print)}
    assert prints["spectral"].vectors.shape == (len(images), spectral.dim) and prints["spectral"].fake_scores is None
    detection = outside_part.detection_table(images, prints)
    # spectral has no head of its own: only its trained detector; the self-description has both.
    assert len(detection) == (1 + 2) * 2 * len(outside_part.VIEWS)
    assert detection["auc"].between(0, 1).all()
    assert detection[["photos_generated", "photos_real", "family_generated", "family_flagged"]].stack().between(0, 1).all()
    assert (detection["family_generated"] <= detection["family_flagged"]).all()
    assert (detection["worst_photo_generated"].between(detection["photos_generated"], 1)).all()
    grouping = outside_part.grouping_table(images, prints)
    assert len(grouping) == 2 * 2 * len(outside_part.VIEWS) and grouping["ari"].between(-1, 1).all()
    attribution = outside_part.attribution_table(images, prints, {"spectral": spectral, "self-description (real only)": None})
    assert attribution["closed_set_accuracy"].between(0, 1).all() and len(attribution) == len(grouping)
    generators = pd.read_parquet(corpus / "generators.parquet")
    designs = outside_parsing.generator_designs(images, outside_parsing.parse_images(images, load_fingerprinter("default"), tmp_path / "p.parquet", print),
                                                load_fingerprinter("default"))
    markdown = outside_part.render(_Summary(), images, detection, grouping, attribution, detection.head(0), designs, generators,
                                   load_fingerprinter("default"))
    assert "### Detection per held-out family" in markdown
    assert "| method | view | realcugan | span |" in markdown  # AUC per held-out family, side by side
    assert "### Parsing: what the shipped heads say of each external generator" in markdown


def test_parsing_pools_each_generator_and_view_as_a_cluster_and_scores_it_against_its_param_file(images, corpus: Path, tmp_path: Path):
    shipped = load_fingerprinter("default")
    parsed = outside_parsing.parse_images(images, shipped, tmp_path / "parsed.parquet", print)
    assert len(parsed) == len(images) and parsed.loc[images["is_fake"].to_numpy(), "parsed_upsampling_family"].notna().all()
    assert outside_parsing.parse_images(images.head(0), shipped, tmp_path / "parsed.parquet", print).equals(parsed)  # kept, not recomputed
    designs = outside_parsing.generator_designs(images, parsed, shipped)
    assert len(designs) == 4 * len(outside_part.VIEWS) and set(designs["parsed_upsampling_family"]) <= {"learned", "interpolation"}
    generators = pd.read_parquet(corpus / "generators.parquet")
    table = outside_parsing.parsing_table(designs, generators, shipped)
    assert sorted(table["family"].unique()) == ["realcugan", "span"] and (table["generators"] == 2).all()
    # Both families' upsampling is learned (transposed, pixel shuffle): "right" means the shown family says so.
    expected = {(f, v): float(np.mean(g["parsed_upsampling_family"] == "learned"))
                for (f, v), g in designs.assign(family=designs["member_id"].str.split("-").str[0]).groupby(["family", "view"])}
    hidden = not shipped.parsing_policy.is_shown("upsampling_family")
    assert dict(zip(zip(table["family"], table["view"]), table["upsampling family right" + " (hidden)" * hidden])) == expected
    per_generator = outside_parsing.generator_table(designs, generators)
    assert len(per_generator) == 4 and set(per_generator["true upsampling"]) == {"transposed", "pixel_shuffle"}


class _Summary:
    generators_by_family = {"realcugan": 2, "span": 2}
    options = {"images_per_generator": 6, "seed": 0, "sizes": [64]}
