"""Kept benchmark stages: an interrupted run resumes with the same trainings and tables, never with another code's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import methods, quality, stages
from bench.baselines.fen import FenConfig
from bench.stages import StageStore
from fingerprinting.network import HeadSpec
from fingerprinting.training_data import load_labelled_images
from fingerprinting.zoo import build_zoo


@pytest.fixture(scope="module")
def part(tmp_path_factory: pytest.TempPathFactory) -> quality.Partition:
    """A zoo with enough train members for training to hold one out for validation (12: as in the quick suite)."""
    root = tmp_path_factory.mktemp("stages-zoo")
    build_zoo(root, members=12, images_per_member=6, size=32, seed=0, steps=5, on_progress=None)
    return quality.partition(load_labelled_images(root, HeadSpec.from_space()))


def test_a_stage_counts_once_its_record_is_written_and_only_under_its_key(tmp_path) -> None:
    store = StageStore(tmp_path, {"zoo": "z", "epochs": 3}, log=lambda _: None)
    assert store.load("train") is None and store.load_table("quality-x") is None
    store.save("train", {"seconds": 1.5})
    table, vectors = pd.DataFrame({"ari": [0.5, 0.75]}), np.arange(6, dtype=np.float32).reshape(3, 2)
    store.save_table("quality-x", table, vectors, {"cross_format_pairs_together": 0.25})
    store.save("quality-a (b)/c-1", {"seconds": 2.0})  # method labels and versions hold spaces and slashes
    again = StageStore(tmp_path, {"epochs": 3, "zoo": "z"}, log=lambda _: None)  # same key, any order
    assert again.load("train")["seconds"] == 1.5
    saved_table, saved_vectors, extra = again.load_table("quality-x")
    pd.testing.assert_frame_equal(saved_table, table)
    np.testing.assert_array_equal(saved_vectors, vectors)
    assert extra["cross_format_pairs_together"] == 0.25
    assert again.load("quality-a (b)/c-1")["seconds"] == 2.0
    assert [entry.split(" (finished")[0] for entry in again.reused] == ["train", "quality-x", "quality-a (b)/c-1"]
    assert StageStore(tmp_path, {"zoo": "z", "epochs": 4}, log=lambda _: None).load("train") is None
    # A table written without its record (a run killed in between) is not a finished stage.
    (store.root / "quality-y.parquet").write_bytes(b"half")
    assert store.load_table("quality-y") is None


def test_code_digest_follows_the_stage_code(tmp_path, monkeypatch) -> None:
    for entry in ("fingerprinting/a.py", "clustering/b.py", "bench/quality.py", "bench/methods.py", "bench/baselines/c.py",
                  "bench/report.py"):
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry).write_text("x = 1\n")
    monkeypatch.setattr(stages, "ROOT", tmp_path)
    before = stages.stage_code_digest()
    (tmp_path / "bench/report.py").write_text("x = 2\n")  # presentation only: the kept results still hold
    assert stages.stage_code_digest() == before
    trainings_before = stages.stage_code_digest(stages.TRAINING_CODE)
    (tmp_path / "clustering/b.py").write_text("x = 2\n")
    assert stages.stage_code_digest() != before
    assert stages.stage_code_digest(stages.TRAINING_CODE) == trainings_before  # trainings do not use clustering/
    (tmp_path / "fingerprinting/a.py").write_text("x = 2\n")
    assert stages.stage_code_digest(stages.TRAINING_CODE) != trainings_before


def test_code_digest_ignores_docstrings_comments_and_layout(tmp_path, monkeypatch) -> None:
    module = tmp_path / "clustering" / "a.py"
    module.parent.mkdir()
    module.write_text('"""Old words."""\n\n\ndef f(x):\n    """Old words."""\n    return x + 1\n')
    monkeypatch.setattr(stages, "ROOT", tmp_path)
    before = stages.stage_code_digest(("clustering",))
    module.write_text('"""New words,\non two lines."""\n# a comment\n\ndef f(x):  # why\n    """New."""\n\n    return (x\n            + 1)\n')
    assert stages.stage_code_digest(("clustering",)) == before
    module.write_text('"""New words."""\n\n\ndef f(x):\n    return x + 2\n')
    assert stages.stage_code_digest(("clustering",)) != before
    module.write_text('def f(x):\n    "a string that is the whole body is still a docstring"\n')
    docstring_only = stages.stage_code_digest(("clustering",))
    module.write_text("def f(x):\n    pass\n")
    assert stages.stage_code_digest(("clustering",)) == docstring_only


def test_prepare_reuses_the_trainings_an_earlier_run_finished(part: quality.Partition, tmp_path) -> None:
    fen = FenConfig(layers=3, channels=8, hidden_dim=16, batch_size=16, crop=32)
    first_store = StageStore(tmp_path, {"zoo": "tiny"}, log=lambda _: None)
    first = {m.label: m for m in methods.prepare(part, 1, fen, first_store, steps_per_epoch=2)}
    second_store = StageStore(tmp_path, {"zoo": "tiny"}, log=lambda _: None)
    second = {m.label: m for m in methods.prepare(part, 1, fen, second_store, steps_per_epoch=2)}
    assert [entry.split(" (")[0] for entry in second_store.reused] == ["train-learned", "train-fen"] and not first_store.reused
    crops = part.data.pixels[part.query_fakes["unseen_seed"]]
    for label in ("genprint learned", "FEN-style (Asnani)"):
        assert second[label].train_seconds == first[label].train_seconds
        np.testing.assert_allclose(second[label].fingerprinter.fingerprint(crops).vectors, first[label].fingerprinter.fingerprint(crops).vectors, atol=1e-5)
    assert second["genprint learned"].checkpoint.is_file()
