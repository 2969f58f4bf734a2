"""Loss-F1 ceilings from labels, grouped cross-validated parsing from pooled features, and member means of a real zoo."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench import identifiability
from fingerprinting.zoo.losses import GAN_LOSSES, RECONSTRUCTION_LOSSES
from fingerprinting.zoo.plan import plan_members
from fingerprinting.zoo.space import LOSS_TYPES


def test_ceiling_of_a_parser_that_cannot_tell_l1_from_l2() -> None:
    # Naming both L1 and L2 beside the known types beats guessing one: {lsgan, l1, l2} scores 0.8 either way.
    ceilings = identifiability.loss_f1_ceiling([["lsgan", "l1"], ["l2"], ["l1", "kl"]], [RECONSTRUCTION_LOSSES])
    assert ceilings == pytest.approx([0.8, 2 / 3, 0.8])


def test_ceiling_is_one_when_everything_shows_and_lower_the_more_look_alike() -> None:
    losses = [["hinge", "l1"], ["l2", "perceptual"]]
    assert identifiability.loss_f1_ceiling(losses, []) == pytest.approx([1.0, 1.0])
    both = identifiability.loss_f1_ceiling(losses, [RECONSTRUCTION_LOSSES, GAN_LOSSES])
    # hinge + L1 among 4 x 2 equally likely truths: at best 0.5 (naming L1 and L2 alone, for one).
    assert both[0] == pytest.approx(0.5)
    assert both[1] == pytest.approx(0.8)


def _planned_generators(members: int = 40) -> pd.DataFrame:
    """A zoo's generators table as planned (no training): designs, splits, parents and loss sets."""
    table = pd.DataFrame([dataclasses.asdict(spec) for spec in plan_members(members, seed=4, size=32, base_steps=10)])
    for loss in LOSS_TYPES:
        table[f"loss_{loss}"] = table["losses"].map(lambda losses, loss=loss: loss in losses)
    return table


def test_design_groups_put_a_reseeded_member_with_its_parent() -> None:
    generators = _planned_generators()
    groups = identifiability.design_groups(generators)
    copies = generators["split"] == "unseen_seed"
    assert copies.any()
    assert (groups[copies.to_numpy()] == generators.loc[copies, "parent_id"].to_numpy()).all()
    assert (groups[~copies.to_numpy()] == generators.loc[~copies, "member_id"].to_numpy()).all()


def test_a_label_the_features_carry_is_found_and_one_they_lack_falls_to_the_majority() -> None:
    generators = _planned_generators()
    upsampling = pd.get_dummies(generators["upsampling"]).to_numpy(float)
    table = identifiability.identifiability_table(upsampling, generators).set_index("hyperparameter")
    assert table.loc["upsampling", "accuracy"] == 1.0
    confusion = identifiability.confusion_table(upsampling, generators).set_index("true upsampling")
    assert np.diag(confusion.loc[:, confusion.index].to_numpy()).sum() == len(generators) == confusion.to_numpy().sum()
    # Features that cannot tell nearest from bilinear: every mistake is one of the two for the other.
    blurred = pd.get_dummies(generators["upsampling"].replace({"bilinear": "nearest"})).to_numpy(float)
    confusion = identifiability.confusion_table(blurred, generators).set_index("true upsampling")
    mistakes = confusion.stack()[[true != predicted for true, predicted in confusion.stack().index]]
    assert mistakes.sum() > 0 and set(mistakes[mistakes > 0].index) <= {("nearest", "bilinear"), ("bilinear", "nearest")}
    labels = np.array(["a"] * 9 + ["b"] * 3)
    accuracy, majority = identifiability.pooled_identifiability(np.zeros((12, 3)), labels, np.arange(12).astype(str))
    assert (accuracy, majority) == (0.75, 0.75)


def test_member_means_and_ceilings_of_a_built_zoo(tiny_zoo) -> None:
    means, generators = identifiability.member_means(tiny_zoo.root, "spectral")
    assert means.shape[0] == len(tiny_zoo.generators) == len(generators)
    assert np.isfinite(means).all()
    table = identifiability.ceiling_table(generators)
    assert set(table["split"]) == {"all", *generators["split"]}
    assert ((table["loss_f1_ceiling"] > 0) & (table["loss_f1_ceiling"] <= 1)).all()
