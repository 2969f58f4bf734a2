"""Known designs of registered generators: checked on entry, matched to clusters by pooled fingerprint, lent in a real run."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fingerprinting.parsing import LOSS_TYPES_COLUMN, empty_parsed
from fingerprinting.zoo.space import HYPERPARAMETERS
from flows import Store
from flows.designs import MIN_SIMILARITY, design_row, lend_designs, match_designs, zoo_member_design
from flows.errors import UserError


def test_a_design_becomes_certain_parsed_values_and_leaves_the_rest_unknown() -> None:
    row = design_row({"upsampling": "pixel_shuffle", "up_blocks": 3, "loss_types": ["hinge", "l1"]}).iloc[0]
    assert row["parsed_upsampling"] == "pixel_shuffle" and row["parsed_upsampling_confidence"] == 1.0
    assert row["parsed_up_blocks"] == 3.0
    assert row["parsed_loss_hinge"] == 1.0 and row["parsed_loss_l1"] == 1.0 and row["parsed_loss_l2"] == 0.0
    assert list(row[LOSS_TYPES_COLUMN]) == ["hinge", "l1"]
    assert pd.isna(row["parsed_norm"]) and pd.isna(row["parsed_norm_confidence"]) and pd.isna(row["parsed_base_width"])


@pytest.mark.parametrize(("design", "message"), [
    ({"upsampling": "lanczos"}, "upsampling must be one of transposed"),
    ({"colour": "red"}, "unknown design keys \\['colour'\\]"),
    ({"up_blocks": "three"}, "up_blocks must be a number"),
    ({"loss_types": ["l3"]}, "loss_types must be a non-empty list"),
    ({"loss_types": "l1"}, "loss_types must be a non-empty list"),
])
def test_a_wrong_design_is_refused_with_the_reason(design: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        design_row(design)


def test_clusters_match_the_nearest_registered_generator_only_when_close_enough() -> None:
    rng = np.random.default_rng(0)
    a, b, far = np.eye(8, dtype=np.float32)[:3]
    references = np.stack([a + 0.05 * rng.standard_normal(8) for _ in range(5)] + [b + 0.05 * rng.standard_normal(8) for _ in range(5)])
    names = ["gen-a"] * 5 + ["gen-b"] * 5
    vectors = np.stack([a, a, b + 0.1 * a, far, far + 0.3 * a, b]).astype(np.float32)
    groups = np.array([10, 10, 20, 30, 30, 99])  # group 99 is not asked for
    sources, similarity = match_designs(vectors, groups, [20, 10, 30, 40], references, names, min_similarity=0.9)
    assert sources == ["gen-b", "gen-a", None, None]
    assert similarity[0] > 0.99 and similarity[1] > 0.99
    assert similarity[2] < 0.9 and np.isnan(similarity[3])  # 30: nearest is gen-a at about 0.29; 40 has no rows
    # A group attributed to a registered name takes it however far it is; an unregistered name changes nothing.
    sources, similarity = match_designs(vectors, groups, [20, 10, 30, 40], references, names, 0.9, attributed=[None, "gen-b", "gen-b", "gen-z"])
    assert sources == ["gen-b", "gen-b", "gen-b", None]
    assert similarity[1] < 0.1 and similarity[2] < 0.1  # the similarity is to the name taken


def test_a_cluster_near_a_generator_only_on_average_is_not_taken_for_it() -> None:
    rng = np.random.default_rng(1)
    basis = np.eye(16, dtype=np.float32)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    references = unit(basis[0] + 0.03 * rng.standard_normal((20, 16)))
    # A quarter of the group is the generator's kind; the rest stray each its own way, so their
    # mean still points at the generator (pooled similarity above 0.9) while each image does not.
    strays = unit(basis[0] + 0.8 * basis[1 + np.arange(30) % 15])
    group = np.concatenate([unit(basis[0] + 0.03 * rng.standard_normal((10, 16))), strays])
    groups = np.zeros(len(group), int)
    sources, similarity = match_designs(group, groups, [0], references, ["gen-a"] * 20, min_similarity=0.9)
    assert similarity[0] > 0.9 and sources == [None]
    assert match_designs(group, groups, [0], references, ["gen-a"] * 20, min_similarity=0.9, min_share=0.2)[0] == ["gen-a"]


def test_a_lent_design_overrides_only_what_it_knows() -> None:
    parsed = empty_parsed(2)
    parsed["parsed_upsampling"], parsed["parsed_upsampling_confidence"] = ["nearest", "bilinear"], np.float32(0.4)
    parsed["parsed_norm"], parsed["parsed_norm_confidence"] = ["batch", "none"], np.float32(0.6)
    designs = design_row({"upsampling": "transposed", "loss_types": ["l2"]}).assign(name="gen-a")
    lent = lend_designs(parsed, [None, "gen-a"], designs)
    assert lent["parsed_upsampling"].tolist() == ["nearest", "transposed"]
    assert lent["parsed_upsampling_confidence"].tolist() == pytest.approx([0.4, 1.0])
    assert lent["parsed_norm"].tolist() == ["batch", "none"]  # the design does not say: the heads' parse stays
    assert lent[LOSS_TYPES_COLUMN].iloc[0] is None and list(lent[LOSS_TYPES_COLUMN].iloc[1]) == ["l2"]


def test_a_zoo_members_design_is_its_row_of_the_zoo(tiny_zoo: SimpleNamespace) -> None:
    member = tiny_zoo.generators.iloc[0]
    row = design_row(zoo_member_design(member)).iloc[0]
    for h in HYPERPARAMETERS:
        assert row[f"parsed_{h.name}"] == (member[h.name] if h.kind == "discrete" else pytest.approx(member[h.name]))
    assert list(row[LOSS_TYPES_COLUMN]) == list(member["losses"])


def test_a_registered_design_is_lent_to_its_generators_cluster(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    images = store_copy.images().merge(tiny_zoo.images[["path", "member_id"]], on="path")
    clustered = images[images["cluster_id"] >= 0]
    member = clustered.groupby("member_id")["cluster_id"].agg(lambda c: c.value_counts(normalize=True).iloc[0]).idxmax()
    home = clustered.loc[clustered["member_id"] == member, "cluster_id"].mode().iloc[0]
    references = sorted(tiny_zoo.images.loc[tiny_zoo.images["member_id"] == member, "path"])
    # A design the member does not have, so the lent values cannot come from the heads (spectral has none anyway).
    design = {"upsampling": "pixel_shuffle", "norm": "instance", "up_blocks": 4, "loss_types": ["wgan_gp", "perceptual"]}
    store_copy.known.add("gen-x", references, model="spectral", design=design)
    assert store_copy.known.list()[["name", "design"]].values.tolist() == [["gen-x", True]]

    store_copy.run([str(tiny_zoo.root)], **run_options)  # the registry changed: a full pass
    clusters = store_copy.clusters().set_index("cluster_id")
    lent = clusters[clusters["design_source"].notna()]
    assert home in lent.index and set(lent["design_source"]) == {"gen-x"}
    assert (lent["design_similarity"] >= MIN_SIMILARITY["spectral"]).all()
    assert clusters["design_similarity"].isna().equals(clusters["design_source"].isna())
    mine = clusters.loc[home]
    assert mine["parsed_upsampling"] == "pixel_shuffle" and mine["parsed_norm"] == "instance" and mine["parsed_up_blocks"] == 4
    assert list(mine[LOSS_TYPES_COLUMN]) == ["wgan_gp", "perceptual"]
    assert pd.isna(mine["parsed_skip"])  # left out of the design, and the spectral fingerprint parses nothing
    card = (store_copy / store_copy.REPORT).read_text().split(f'class="cluster" data-cluster-id="{home}"')[1].split("</section>")[0]
    assert "known design</td><td><span class=\"tag\">gen-x</span>" in card and "<b>wgan_gp, perceptual</b>" in card

    summary = store_copy.run([str(tiny_zoo.root)], **run_options)  # nothing new: the last full pass's match is kept
    assert summary.clustering == "unchanged"
    assert store_copy.clusters().set_index("cluster_id").loc[home, "design_source"] == "gen-x"

    assert store_copy.known.remove("gen-x") == len(references) and store_copy.known.designs().empty
    store_copy.run([str(tiny_zoo.root)], **run_options)
    assert store_copy.clusters()["design_source"].isna().all()


def test_known_add_takes_a_design_file_and_refuses_a_wrong_one(store_copy: Store, tiny_zoo: SimpleNamespace, tmp_path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    references = sorted(tiny_zoo.images.loc[tiny_zoo.images["is_fake"].astype(bool), "path"])[:3]
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"upsampling": "lanczos"}))
    result = CliRunner().invoke(app, ["known", "add", "gen-y", *references, "--store", str(store_copy.root), "--model", "spectral", "--design", str(wrong), "--quiet"])
    assert result.exit_code != 0 and "upsampling must be one of" in result.output and store_copy.known.list().empty
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"upsampling": "bilinear", "loss_types": ["l1"]}))
    result = CliRunner().invoke(app, ["known", "add", "gen-y", *references, "--store", str(store_copy.root), "--model", "spectral", "--design", str(good), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "gen-y\t3 images" in result.output and "known design" in result.output
    assert store_copy.known.designs()["parsed_upsampling"].tolist() == ["bilinear"]
