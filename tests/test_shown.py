"""The parsing policy: hierarchical upsampling, the null rule and calibration, on synthetic head outputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench.parsing_part import (
    Crops,
    Outside,
    Truth,
    decide,
    expected_calibration_error,
    fit_calibration,
    head_confidence,
    pooled,
    raw_policy,
)
from fingerprinting.checkpoint import Checkpoint, save_checkpoint
from fingerprinting.models import load_learned
from fingerprinting.network import FingerprintNet, HeadSpec, NetworkConfig
from fingerprinting.parsing import FAMILY_COLUMN, aggregate_parsed_by, parsed_columns
from fingerprinting.shown import HeadOutputs, ParsingPolicy, decode_shown, sidecar_path

SPEC = HeadSpec.from_space()
UPSAMPLING = dict(SPEC.discrete)["upsampling"]
NORM = dict(SPEC.discrete)["norm"]
LOSSES = SPEC.loss_types


def heads(upsampling: np.ndarray, norm: np.ndarray | None = None, losses: np.ndarray | None = None) -> HeadOutputs:
    """Head outputs over the whole space: ``upsampling`` and ``norm`` logits as given, every other head flat."""
    n = len(upsampling)
    given = {"upsampling": np.asarray(upsampling, np.float64)} | ({} if norm is None else {"norm": np.asarray(norm, np.float64)})
    return HeadOutputs(
        continuous={name: np.full(n, (low + high) / 2, np.float32) for name, low, high in SPEC.continuous},
        discrete={name: (choices, given.get(name, np.zeros((n, len(choices))))) for name, choices in SPEC.discrete},
        loss_types=LOSSES,
        loss_logits=np.zeros((n, len(LOSSES))) if losses is None else np.asarray(losses, np.float64),
    )


def test_family_is_the_sum_of_its_types_and_the_type_needs_the_threshold() -> None:
    # Row 0: nearest 0.4, bilinear 0.35 -> interpolation 0.75, type below 0.5: family alone.
    # Row 1: transposed 0.9 -> learned, type reported.
    p = np.array([[0.15, 0.4, 0.35, 0.1], [0.9, 0.04, 0.03, 0.03]])
    out = decode_shown(heads(np.log(p)), ParsingPolicy(type_threshold=0.5))
    assert list(out.columns) == parsed_columns()
    assert out[FAMILY_COLUMN].tolist() == ["interpolation", "learned"]
    assert out[f"{FAMILY_COLUMN}_confidence"].to_numpy() == pytest.approx([0.75, 0.93], abs=1e-6)
    assert out["parsed_upsampling"].isna().tolist() == [True, False] and out["parsed_upsampling"][1] == "transposed"
    assert np.isnan(out["parsed_upsampling_confidence"][0]) and out["parsed_upsampling_confidence"][1] == pytest.approx(0.9)


def test_type_is_chosen_within_the_family() -> None:
    # transposed is the single likeliest type (0.4), but interpolation holds 0.6: the type is nearest.
    p = np.array([[0.4, 0.3, 0.3, 0.0001]])
    out = decode_shown(heads(np.log(p)))
    assert out[FAMILY_COLUMN][0] == "interpolation" and out["parsed_upsampling"][0] in {"nearest", "bilinear"}


def test_heads_not_shown_are_null_and_loss_families_combine_types() -> None:
    losses = np.full((2, len(LOSSES)), -20.0)
    losses[0, LOSSES.index("ns_gan")] = losses[0, LOSSES.index("hinge")] = 0.0  # 0.5 each -> adversarial 0.75
    policy = ParsingPolicy(shown={"norm": False, "up_blocks": False, "loss_family_kl": False})
    out = decode_shown(heads(np.zeros((2, 4)), losses=losses), policy)
    assert out["parsed_norm"].isna().all() and out["parsed_norm_confidence"].isna().all() and out["parsed_up_blocks"].isna().all()
    assert out["parsed_loss_family_kl"].isna().all()
    assert out["parsed_loss_family_adversarial"].to_numpy() == pytest.approx([0.75, 0.0], abs=1e-6)
    assert out["parsed_upsampling_family"].notna().all()


def test_a_group_reports_a_type_only_where_half_its_rows_do() -> None:
    p = np.array([[0.9, 0.04, 0.03, 0.03]] * 2 + [[0.45, 0.04, 0.03, 0.48]] * 3)
    rows = decode_shown(heads(np.log(p)), ParsingPolicy(type_threshold=0.6))
    groups = np.array([0, 0, 0, 1, 1])  # group 0: 2 of 3 report transposed; group 1: none does
    out = aggregate_parsed_by(rows, groups, [0, 1])
    assert out[FAMILY_COLUMN].tolist() == ["learned", "learned"]
    assert out["parsed_upsampling"][0] == "transposed" and pd.isna(out["parsed_upsampling"][1])


def synthetic_zoo(members: int, crops: int, seed: int) -> tuple[Crops, Truth]:
    """Members whose upsampling head is informative but far too sure (all of a member's crops agree, right for
    about 3 members in 4), and whose norm head is pure noise."""
    rng = np.random.default_rng(seed)
    truth_up = rng.integers(0, 4, members)
    perceived = np.where(rng.random(members) < 0.65, truth_up, rng.integers(0, 4, members))  # a member-level mistake
    truth_norm = np.where(rng.random(members) < 0.7, 0, 3)  # majority "batch" 0.7, else "none"
    member = np.repeat(np.arange(members), crops)
    logits_up = 8.0 * (np.eye(4)[perceived[member]] + rng.normal(0, 0.3, (len(member), 4)))
    logits_norm = rng.normal(0, 3.0, (len(member), len(NORM)))
    loss_truth = rng.random((members, len(LOSSES))) < 0.4
    loss_logits = np.where(loss_truth[member], 1.0, -1.0) * 3 + rng.normal(0, 2, (len(member), len(LOSSES)))
    crops_out = Crops(heads(logits_up, logits_norm, loss_logits), member)
    truth = Truth(
        discrete={"upsampling": np.array(UPSAMPLING, dtype=object)[truth_up], "norm": np.array(NORM, dtype=object)[truth_norm]},
        continuous={"up_blocks": rng.uniform(2, 4, members)},
        losses=[[t for t, on in zip(LOSSES, row) if on] for row in loss_truth],
    )
    return crops_out, truth


def test_calibration_lowers_the_pooled_expected_calibration_error() -> None:
    crops, truth = synthetic_zoo(members=150, crops=3, seed=1)
    fitted = fit_calibration(crops, truth, 150)
    assert fitted.temperatures["upsampling"] > 1.0  # the synthetic head is overconfident
    fresh, fresh_truth = synthetic_zoo(members=150, crops=3, seed=2)  # measured on members it never saw
    before = expected_calibration_error(*head_confidence(pooled(fresh, 150, raw_policy()), fresh_truth, "upsampling"))
    after = expected_calibration_error(*head_confidence(pooled(fresh, 150, fitted), fresh_truth, "upsampling"))
    assert before > 0.15 and after < 0.1


def test_expected_calibration_error_is_zero_when_confidence_matches_accuracy() -> None:
    confidence = np.full(10, 0.7)
    correct = np.array([True] * 7 + [False] * 3)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.ones(4), np.zeros(4, bool)) == pytest.approx(1.0)


def test_leave_out_decision_shows_informative_heads_and_nulls_noise() -> None:
    crops, truth = synthetic_zoo(members=60, crops=3, seed=3)
    policy, table, _ = decide({"clean": crops, "jpeg75": crops}, truth, 60, "v-test", folds=3)
    assert policy.shown["upsampling"] and policy.shown["upsampling_family"]
    assert not policy.shown["norm"]  # noise never beats the 0.7 majority
    assert not policy.shown["up_blocks"]  # a constant is no better than the mean
    assert policy.model_version == "v-test" and 0.0 <= policy.type_threshold <= 1.0
    out = decode_shown(crops.heads, policy)
    assert out["parsed_norm"].isna().all() and out[FAMILY_COLUMN].notna().all()
    assert set(table["head"]) >= {"upsampling_family", "upsampling", "norm", "loss_family_adversarial", "up_blocks"}


def test_heads_wrong_on_most_generators_trained_by_others_are_not_shown() -> None:
    crops, truth = synthetic_zoo(members=60, crops=3, seed=3)
    # Two outside families of learned upsamplers that the head sees as nearest, with confidence; designs
    # say nothing of their norm; their up_blocks sits where a range-middle guess is nearer than the head.
    generators, per = 6, 4
    member = np.repeat(np.arange(generators), per)
    logits = np.tile([0.0, 9.0, 0.0, 0.0], (len(member), 1))
    outside = Outside(Crops(heads(logits), member),
                      Truth(discrete={"upsampling": np.array(["transposed", "pixel_shuffle"] * 3, dtype=object)},
                            continuous={"up_blocks": np.full(generators, 3.2)}, losses=[[] for _ in range(generators)]),
                      family=np.array(["a", "b"] * 3))
    ranges = {name: (low, high) for name, low, high in SPEC.continuous}
    policy, table, _ = decide({"clean": crops, "jpeg75": crops}, truth, 60, "v-test", folds=3, outside=outside, continuous_ranges=ranges)
    assert not policy.shown["upsampling_family"] and not policy.shown["upsampling"]  # right on the zoo, wrong outside it
    assert not table.set_index("head").at["upsampling_family", "outside"]
    assert policy.shown["loss_family_adversarial"] == table.set_index("head").at["loss_family_adversarial", "shown"]  # no outside evidence
    figures = pd.DataFrame(policy.evaluation["outside"])
    family = figures[figures["head"] == "upsampling_family"]
    assert sorted(family["family"]) == ["a", "b"] and (family["right"] == 0.0).all() and (family["generators"] == 3).all()
    assert decode_shown(crops.heads, policy)[FAMILY_COLUMN].isna().all()  # "not estimable from images" in the product


def test_policy_round_trips_as_json_beside_the_checkpoint(tmp_path) -> None:
    torch.manual_seed(3)
    net = FingerprintNet(NetworkConfig(encoder_widths=(8, 16, 32), hidden_dim=32, embedding_dim=16, spectrum_bins=8)).eval()
    checkpoint = Checkpoint(net, version="learned-test")
    weights = save_checkpoint(checkpoint, tmp_path / "model.safetensors")
    policy = ParsingPolicy(model_version=checkpoint.version, shown={"norm": False}, temperatures={"upsampling": 2.0},
                           loss_family_platt={"kl": (0.5, -1.0)}, type_threshold=0.6, evaluation={"members": 3})
    policy.save(sidecar_path(weights))
    loaded = load_learned(weights).parsing_policy
    assert loaded == policy
    out = load_learned(weights).fingerprint(np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)).parsed
    assert out["parsed_norm"].isna().all() and out[FAMILY_COLUMN].notna().all()
    ParsingPolicy(model_version="other").save(sidecar_path(weights))
    assert load_learned(weights).parsing_policy is None  # decided for other weights: left out


def test_bench_decides_and_stores_a_policy_on_a_tiny_zoo(tiny_zoo, tmp_path, capsys) -> None:
    from bench.parsing_part import main

    torch.manual_seed(5)
    net = FingerprintNet(NetworkConfig(encoder_widths=(8, 16, 32), hidden_dim=32, embedding_dim=16, spectrum_bins=8)).eval()
    weights = save_checkpoint(Checkpoint(net, version="learned-test"), tmp_path / "tiny.safetensors")
    figure = tmp_path / "reliability.png"
    main([str(tiny_zoo.root), "--model", str(weights), "--folds", "2", "--figure", str(figure), "--write"])
    printed = capsys.readouterr().out
    assert "| upsampling_family |" in printed and "Loss-type F1 (clean)" in printed and figure.stat().st_size > 0
    policy = load_learned(weights).parsing_policy
    assert policy is not None and set(policy.shown) >= {"upsampling_family", "upsampling", "loss_family_kl", "up_blocks"}
    assert policy.evaluation["members"] == len(tiny_zoo.generators)
    pixels = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    parsed = load_learned(weights).fingerprint(pixels).parsed
    for head, shown in policy.shown.items():  # a head that did not pass is null everywhere
        column = FAMILY_COLUMN if head == "upsampling_family" else f"parsed_{head}"
        if not shown:
            assert parsed[column].isna().all()
