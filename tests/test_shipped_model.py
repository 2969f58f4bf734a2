"""The checkpoint that ships in fingerprinting/weights: it is the default, loads safely and works on images it never saw."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
from sklearn.metrics import roc_auc_score

from fingerprinting.evaluation import nearest_neighbour_same_label_rate
from fingerprinting.fingerprinter import attributor_params
from fingerprinting.models import DEFAULT_CHECKPOINT, load_fingerprinter
from fingerprinting.network import HeadSpec
from fingerprinting.training_data import load_labelled_images


def test_the_default_model_is_the_shipped_checkpoint() -> None:
    record = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    model = load_fingerprinter("default")
    assert model.name == "learned" and model.version == record["version"] + "/" + model.version.split("/", 1)[1]
    assert DEFAULT_CHECKPOINT.stat().st_size < 8 * 2**20  # "a few MB"
    # The card's claims are the checkpoint's own record.
    assert record["training"]["zoo"]["options"]["seed"] == 13 and record["training"]["zoo"]["options"]["members"] == 200
    # Its space names generators best whitened (chosen on tuning zoos); the spectral one's does not.
    assert attributor_params(model) == {"whiten": True} and attributor_params(load_fingerprinter("spectral")) == {}


def test_shipped_model_detects_and_groups_members_of_a_zoo_it_never_saw(tiny_zoo: SimpleNamespace) -> None:
    data = load_labelled_images(tiny_zoo.root, HeadSpec.from_space())
    output = load_fingerprinter("default").fingerprint(data.pixels)
    assert np.allclose(np.linalg.norm(output.vectors, axis=1), 1, atol=1e-4)
    # The tiny zoo (32 px, generators trained 10 steps) is far from the 64 px training zoo: well above chance, not perfect.
    assert roc_auc_score(data.is_fake, output.fake_scores) > 0.75
    fakes = data.is_fake
    members = data.member[fakes]
    chance = max(np.mean(members == m) for m in np.unique(members))
    assert nearest_neighbour_same_label_rate(output.vectors[fakes], members) > max(0.8, 2 * chance)
