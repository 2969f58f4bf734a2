"""The shipped recipe retrained leave-one-family-out (bench.outside_retrained), on a tiny zoo and a tiny external-style corpus."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench import outside_part
from bench.outside_retrained import concat_labelled, learnt_from, retrained_fold_fingerprints
from external_style import tiny_external_corpus
from fingerprinting.network import HeadSpec
from fingerprinting.train import TrainConfig
from fingerprinting.training_data import load_labelled_images

SPEC = HeadSpec.from_space()
TINY = TrainConfig(epochs=3, steps_per_epoch=15, members_per_batch=4, images_per_member=3, reals_per_batch=8, crop_sides=(32,), patience=3)


def test_concatenated_parts_keep_their_members_and_content_pairs(tiny_zoo, tmp_path: Path) -> None:
    zoo = load_labelled_images(tiny_zoo.root, SPEC)
    images, generators = tiny_external_corpus(tmp_path)
    external = learnt_from(images, generators, np.flatnonzero(images["family"].eq("span") | ~images["is_fake"]), SPEC, side=32)
    both = concat_labelled([zoo, external])
    assert both.member_ids == zoo.member_ids + external.member_ids
    shifted = both.member[len(zoo.member):]
    assert np.array_equal(shifted >= 0, external.member >= 0)
    assert [both.member_ids[m] for m in shifted[shifted >= 0]] == [external.member_ids[m] for m in external.member[external.member >= 0]]
    assert np.array_equal(both.source[: len(zoo.member)], zoo.source) and (both.source[len(zoo.member):] == -1).all()
    assert both.pixels.shape[1:] == (32, 32, 3) and len(both.pixels) == len(both.member)
    # Only the members with images here are learnt from; the corpus says nothing of their objective.
    learnt = {external.member_ids[i] for i in np.flatnonzero(external.member_split == "train")}
    assert learnt == {"span-a", "span-b"} and (external.split == "train").all()
    assert np.isnan(external.losses).all()


def test_each_fold_retrains_without_its_family_and_scores_it_above_chance(tiny_zoo, tmp_path: Path) -> None:
    images, generators = tiny_external_corpus(tmp_path / "corpus")
    upscalers, _ = tiny_external_corpus(tmp_path / "upscalers", {"zoo-sr": ("zoo-sr-00", "zoo-sr-01")})
    upscalers = upscalers[upscalers["is_fake"]].reset_index(drop=True)
    designs = pd.DataFrame([{"member_id": m, "family": "zoo-sr", "split": "train", "upsampling": u, "loss_l1": True, "loss_l2": False}
                            for m, u in (("zoo-sr-00", "nearest"), ("zoo-sr-01", "transposed"))])
    zoo = load_labelled_images(tiny_zoo.root, SPEC)
    folds = list(outside_part.folds(images))
    prints = retrained_fold_fingerprints(images, generators, folds, zoo, upscalers, designs, TINY, tmp_path / "nets", print)
    fake = images["is_fake"].to_numpy()
    for held, p, train, test in folds:
        record = json.loads((tmp_path / "nets" / f"without-{held}-fold{p}.json").read_text())
        history = record["training"]["history"]
        assert history[-1]["train_total"] < history[0]["train_total"]  # it learns
        vectors, scores = prints.fold(held, p)
        judged = (images["fold"].to_numpy() == p) | np.isin(np.arange(len(images)), train[~fake[train]])
        assert np.isfinite(scores[judged]).all() and np.isnan(scores[~judged]).all()
        assert np.allclose(np.linalg.norm(vectors[test], axis=1), 1, atol=1e-4)
    for held in ("realcugan", "span"):
        scores = np.full(len(images), np.nan)
        for family, p, _, test in folds:
            if family == held:
                scores[test] = prints.fold(held, p)[1][test]
        at = np.isfinite(scores)
        assert roc_auc_score(fake[at], scores[at]) > 0.6, held  # the synthetic trace of the family it never saw
    # A second call reuses the trained checkpoints: the same scores, no training.
    again = retrained_fold_fingerprints(images, generators, folds, zoo, upscalers, designs, TINY, tmp_path / "nets", print)
    assert np.array_equal(np.nan_to_num(again.fake_scores, nan=-1), np.nan_to_num(prints.fake_scores, nan=-1))
