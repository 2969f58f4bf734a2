"""Verdicts in the store: a checkpoint calibrated on the packages' photographs, real runs, investigate, older stores."""
from __future__ import annotations

import re

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from fingerprinting.calibration import VERDICTS, VerdictCalibrator, sidecar_path
from fingerprinting.camera_photos import CROP, WHOLE, bundled_camera_photos, calibrate, camera_samples, leave_one_photo_out
from fingerprinting.models import DEFAULT_CHECKPOINT, load_learned
from fingerprinting.zoo.photos import load_photo
from flows import Store, schemas
from flows.cli import app
from flows.verdicts import VERDICT_META, unknown_generators

RUN = dict(shard_size=16, min_cluster_size=5)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The shipped network in a private folder (its head's scores, no stacked detector: they saturate, which the
    calibrate command's warning needs), with a small calibration of its own beside it."""
    folder = tmp_path_factory.mktemp("calibrated")
    weights = folder / "model.safetensors"
    shutil.copy(DEFAULT_CHECKPOINT, weights)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), weights.with_suffix(".json"))
    fingerprinter = load_learned(weights)
    samples = camera_samples(bundled_camera_photos(), fingerprinter, crops_per_photo=8)
    calibrator = calibrate(samples, fingerprinter.scores_version)
    calibrator.save(sidecar_path(weights))
    # A photograph to hand over as a file (`--photos`): a quarter of the astronaut.
    return SimpleNamespace(model=str(weights), calibrator=calibrator, samples=samples, extra_photo=np.ascontiguousarray(load_photo("astronaut")[256:, 256:]))


@pytest.fixture(scope="module")
def judged_store(calibrated: SimpleNamespace, tiny_zoo: SimpleNamespace, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("judged") / "store")
    store.run([str(tiny_zoo.root)], model=calibrated.model, **RUN)
    return store


def _verdicts(store: Store) -> pd.DataFrame:
    return store.images().set_index("image_id")[["verdict", "ood_score"]].sort_index()


def test_camera_samples_hold_crops_and_whole_photographs(calibrated: SimpleNamespace) -> None:
    samples = calibrated.samples
    assert {"grace_hopper.jpg", "astronaut", "china"} <= set(samples.groups)
    assert set(samples.kinds) == {CROP, WHOLE} and len(samples.scores) == len(samples.vectors)
    table = leave_one_photo_out(samples)
    assert set(table["photo"]) == set(samples.groups) and (table[["generated", "unsure", "real"]].sum(axis=1) == table["images"]).all()


def test_a_run_stores_the_calibrated_verdict_of_every_image(judged_store: Store, calibrated: SimpleNamespace) -> None:
    assert pq.read_schema(judged_store / Store.IMAGES).remove_metadata().equals(schemas.images_schema())
    images = judged_store.images()
    assert set(images["verdict"]) <= set(VERDICTS) and images["verdict"].notna().all()
    assert images["ood_score"].dtype == np.float32 and np.isfinite(images["ood_score"]).all()
    # The rule, recomputed from each image's stored score and fingerprint.
    ids, vectors = judged_store.vectors(images["image_id"].tolist())
    calibrator = calibrated.calibrator
    np.testing.assert_allclose(images["ood_score"], calibrator.ood_score(vectors), rtol=1e-5)
    expected = calibrator.verdicts(images["fake_score"].to_numpy(np.float64), images["ood_score"].to_numpy())
    assert images["verdict"].tolist() == expected.tolist()
    # An unknown generator is what the verdict calls generated and no registered generator made (none is registered here).
    assert images["unknown_generator"].tolist() == (images["verdict"] == "generated").tolist()
    assert judged_store.meta()[VERDICT_META] == calibrator.digest
    report = (judged_store / Store.REPORT).read_text()
    shown = re.search(r'id="verdicts-store">.*?count-generated">(\d+)<.*?count-real">(\d+)<.*?count-unsure">(\d+)<', report, re.S)
    assert [int(n) for n in shown.groups()] == [int((images["verdict"] == v).sum()) for v in VERDICTS]


def test_an_incremental_run_gives_the_verdicts_of_a_single_run(
    judged_store: Store, calibrated: SimpleNamespace, tiny_zoo: SimpleNamespace, tmp_path: Path
) -> None:
    store = Store(tmp_path / "incremental")
    paths = sorted(tiny_zoo.images["path"])
    store.run(paths[::2], model=calibrated.model, **RUN)
    first = _verdicts(store)
    store.run([str(tiny_zoo.root)], model=calibrated.model, **RUN)
    pd.testing.assert_frame_equal(_verdicts(store).loc[first.index], first)  # judged once, kept
    pd.testing.assert_frame_equal(_verdicts(store), _verdicts(judged_store))


def test_investigate_json_carries_the_verdict(judged_store: Store, tiny_zoo: SimpleNamespace) -> None:
    query = tiny_zoo.images["path"].iloc[0]
    result = CliRunner().invoke(app, ["investigate", query, "--store", str(judged_store.root), "-k", "3", "--json", "--threads", "2"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["queries"]
    stored = judged_store.images().set_index("path").loc[query]
    assert entry["verdict"] == stored["verdict"] and entry["ood_score"] == pytest.approx(float(stored["ood_score"]), rel=1e-5)
    text = CliRunner().invoke(app, ["investigate", query, "--store", str(judged_store.root), "-k", "3", "--threads", "2"])
    assert text.exit_code == 0 and f"{stored['verdict']} (fake" in text.stdout


def test_a_store_made_before_verdicts_loads_and_is_judged_on_its_next_run(
    judged_store: Store, calibrated: SimpleNamespace, tiny_zoo: SimpleNamespace, tmp_path: Path
) -> None:
    shutil.copytree(judged_store.root, tmp_path / "old")
    old = Store(tmp_path / "old")
    table = pq.read_table(old / Store.IMAGES)
    pq.write_table(table.drop_columns(["verdict", "ood_score"]), old / Store.IMAGES)
    meta = old.meta()
    del meta[VERDICT_META]
    (old / Store.META).write_text(json.dumps(meta))
    images = old.images()
    assert images["verdict"].isna().all() and images["ood_score"].isna().all()
    summary = old.run([str(tiny_zoo.root)], model=calibrated.model, **RUN)
    assert summary.images_new == 0
    pd.testing.assert_frame_equal(_verdicts(old), _verdicts(judged_store))


def test_unknown_generator_follows_the_verdict_and_the_raw_score_only_without_one() -> None:
    images = pd.DataFrame({"verdict": ["generated", "unsure", "real", None, None, "generated"],
                           "fake_score": [0.99, 0.97, 0.9, 0.7, np.nan, 0.99],
                           "attributed_generator": [None, None, None, None, None, "gan-a"]})
    # unsure at 0.97 is not generated; a detector without calibration reads 0.5; no score, no call; attributed, not unknown.
    assert unknown_generators(images).tolist() == [True, False, False, True, False, False]


def test_without_a_calibrated_detector_there_is_no_verdict(tiny_store: SimpleNamespace) -> None:
    images = tiny_store.store.images()  # the spectral fingerprint: no fake score
    assert images["verdict"].isna().all() and images["ood_score"].isna().all()
    assert "n/a (no calibrated detector)" in (tiny_store.store / Store.REPORT).read_text()


def test_calibrate_command_writes_a_calibration_and_shows_it_left_out(calibrated: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "check.verdict.safetensors"
    photo = tmp_path / "extra.png"
    Image.fromarray(calibrated.extra_photo).save(photo)
    result = CliRunner().invoke(
        app, ["calibrate", "--model", calibrated.model, "--out", str(out), "--crops-per-photo", "4", "--photos", str(photo), "--threads", "2"]
    )
    assert result.exit_code == 0, result.output
    loaded = VerdictCalibrator.load(out)
    assert loaded.n_groups_ == 13 and loaded.model_version_ == load_learned(calibrated.model).scores_version
    assert "extra.png" in result.stdout and "crop:" in result.stdout and "called generated" in result.stdout
    assert loaded.photo_coverage == 0.95
    without = CliRunner().invoke(
        app, ["calibrate", "--model", calibrated.model, "--out", str(out), "--crops-per-photo", "4", "--photos", str(photo), "--photo-coverage", "0"]
    )
    assert without.exit_code == 0, without.output
    assert VerdictCalibrator.load(out).photo_coverage is None and VerdictCalibrator.load(out).generated_threshold_ <= loaded.generated_threshold_
    strict = CliRunner().invoke(
        app, ["calibrate", "--model", calibrated.model, "--out", str(out), "--crops-per-photo", "4", "--photos", str(photo), "--photo-coverage", "0.9999"]
    )
    assert strict.exit_code == 0 and "only scores saturated at 1.0 will be called generated" in strict.output
    assert VerdictCalibrator.load(out).generated_threshold_ >= 1 - 2.0**-24
    bad = CliRunner().invoke(app, ["calibrate", "--model", calibrated.model, "--out", str(out), "--crops-per-photo", "4", "--photo-coverage", "1.5"])
    assert bad.exit_code == 2 and "--photo-coverage" in bad.output
    refused = CliRunner().invoke(app, ["calibrate", "--model", "spectral", "--out", str(out)])
    assert refused.exit_code == 2 and "no detector" in refused.output
