"""Training on the tiny zoo: the loss falls, members separate, `genprint train` writes a usable checkpoint."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from fingerprinting.augment import Augmenter, random_crop
from fingerprinting.checkpoint import config_path
from fingerprinting.models import load_fingerprinter
from fingerprinting.network import HeadSpec
from fingerprinting.train import TrainConfig, _BatchSampler, fit, predict, split_for_validation
from fingerprinting.training_data import LabelledImages, load_labelled_images

TINY_TRAINING = TrainConfig(epochs=4, steps_per_epoch=6, members_per_batch=4, images_per_member=6, reals_per_batch=8, patience=10)


@pytest.fixture(scope="module")
def labelled(tiny_zoo: SimpleNamespace) -> LabelledImages:
    return load_labelled_images(tiny_zoo.root, HeadSpec.from_space())


def _pair_separation(net: torch.nn.Module, data: LabelledImages, members: list[int]) -> float:
    """ROC AUC of cosine similarity for same-member against different-member pairs of images."""
    rows = np.flatnonzero(np.isin(data.member, members))
    embedding, _ = predict(net, data.pixels[rows])
    similarity = embedding @ embedding.T
    same = data.member[rows][:, None] == data.member[rows][None, :]
    upper = np.triu_indices(len(rows), 1)
    return float(roc_auc_score(same[upper], similarity[upper]))


def test_labels_follow_the_zoo_tables(labelled: LabelledImages, tiny_zoo: SimpleNamespace) -> None:
    generators = tiny_zoo.generators.set_index("member_id")
    assert labelled.pixels.dtype == np.uint8 and labelled.pixels.shape[1:] == (32, 32, 3)
    assert (labelled.member >= 0).sum() == tiny_zoo.images["is_fake"].sum()
    spec = HeadSpec.from_space()
    for i, member_id in enumerate(labelled.member_ids):
        upsampling = dict(spec.discrete)["upsampling"]
        assert upsampling[labelled.discrete[i, [n for n, _ in spec.discrete].index("upsampling")]] == generators.loc[member_id, "upsampling"]
        assert {t for t, on in zip(spec.loss_types, labelled.losses[i]) if on} == set(generators.loc[member_id, "losses"])
        assert ((labelled.continuous[i] >= 0) & (labelled.continuous[i] <= 1)).all()


def test_validation_never_sees_a_training_member_or_real(labelled: LabelledImages) -> None:
    split = split_for_validation(labelled, TINY_TRAINING, np.random.default_rng(0))
    assert not set(split.train_rows) & set(split.validation_rows)
    trained = set(labelled.member[split.train_rows]) - {-1}
    assert trained and trained <= set(np.flatnonzero(np.isin(labelled.member_split, TINY_TRAINING.training_splits)))
    # The unseen_arch members (and with them the held-out family) are never learnt from.
    assert set(np.flatnonzero(labelled.member_split == "unseen_arch")) <= set(labelled.member[split.validation_rows])
    assert (labelled.member[split.validation_rows] < 0).any() and (labelled.member[split.train_rows] < 0).any()


def test_batches_draw_members_by_their_weight(labelled: LabelledImages) -> None:
    rows = np.arange(len(labelled.member))
    config = replace(TINY_TRAINING, members_per_batch=1)
    weighted = replace(labelled, member_weight=np.array([0.0, 3.0] + [1.0] * (len(labelled.member_ids) - 2)))
    sample = _BatchSampler(weighted, rows, config, np.random.default_rng(0))
    drawn = np.array([weighted.member[sample()[1].numpy()[0]] for _ in range(200)])
    assert 0 not in drawn  # weight 0: never in a batch
    counts = np.bincount(drawn, minlength=len(labelled.member_ids))
    assert counts[1] > 2 * counts[2:].max()  # weight 3 against 1


def test_training_lowers_the_loss_and_separates_members(labelled: LabelledImages) -> None:
    train_members = list(np.flatnonzero(labelled.member_split == "train"))
    untrained = fit(labelled, replace(TINY_TRAINING, epochs=1, steps_per_epoch=1, learning_rate=1e-12))
    result = fit(labelled, TINY_TRAINING)
    losses = [epoch["train_total"] for epoch in result.history]
    assert losses[-1] < losses[0]
    assert len(result.history) == TINY_TRAINING.epochs and 1 <= result.best_epoch <= TINY_TRAINING.epochs
    separation = _pair_separation(result.checkpoint.net, labelled, train_members)
    assert separation > 0.75  # chance is 0.5
    assert separation > _pair_separation(untrained.checkpoint.net, labelled, train_members)


def test_genprint_train_writes_a_checkpoint_that_loads(tiny_zoo: SimpleNamespace, tmp_path) -> None:
    from flows.cli import app

    out = tmp_path / "model.safetensors"
    result = CliRunner().invoke(app, ["train", str(tiny_zoo.root), "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--seed", "7", "-q"])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and "nn same-member" in result.output
    config = json.loads(config_path(out).read_text())
    assert config["training"]["seed"] == 7
    assert config["training"]["zoo"]["options"]["size"] == 32
    fingerprinter = load_fingerprinter(out)
    crops = np.asarray(load_labelled_images(tiny_zoo.root, HeadSpec.from_space()).pixels[:3])
    output = fingerprinter.fingerprint(crops)
    assert output.vectors.shape == (3, fingerprinter.dim) and output.fake_scores.shape == (3,)


def test_augmentation_keeps_native_pixels_where_it_does_not_degrade() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    crop = random_crop(pixels, 40, rng)
    corners = [(t, l) for t in range(0, 25, 8) for l in range(0, 25, 8)]
    assert any(np.array_equal(crop, pixels[t : t + 40, l : l + 40]) for t, l in corners)
    untouched = Augmenter(rescale_probability=0, blur_probability=0, jpeg_probability=0, unaligned_crop_probability=0)
    assert np.array_equal(untouched(pixels, 64, rng), pixels)
    degraded = Augmenter(rescale_probability=1, blur_probability=1, jpeg_probability=1)(pixels, 48, rng)
    assert degraded.shape == (48, 48, 3) and degraded.dtype == np.uint8
