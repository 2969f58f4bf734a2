"""`genprint export fiftyone`: a small store as a FiftyOne dataset in FiftyOne's own database, read back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from flows.errors import UserError

READ_BACK = """
import json, sys
import fiftyone as fo
dataset = fo.load_dataset(sys.argv[1])
first = dataset.sort_by("image_id").first()
nearest = dataset.sort_by_similarity(first.id, k=4, brain_key="fingerprint_similarity")
print(json.dumps({
    "persistent": dataset.persistent,
    "count": len(dataset),
    "fields": sorted(dataset.get_field_schema()),
    "loss_types_field": type(dataset.get_field("parsed_loss_types")).__name__,
    "image_ids": dataset.values("image_id"),
    "cluster_ids": dataset.values("cluster_id"),
    "verdicts": dataset.values("verdict"),
    "labels": dataset.values("cluster.label"),
    "embeddings": [list(map(float, v)) for v in dataset.values("fingerprint")],
    "brain_runs": sorted(dataset.list_brain_runs()),
    "map_shape": list(dataset.load_brain_results("fingerprint_map").points.shape),
    "first": first.image_id,
    "nearest": nearest.values("image_id"),
}))
"""


def _fiftyone_env(tmp_path: Path) -> dict[str, str]:
    # FiftyOne starts its bundled database itself, here in a private folder.
    return dict(os.environ, FIFTYONE_DATABASE_DIR=str(tmp_path / "fiftyone-db"), FIFTYONE_DO_NOT_TRACK="true",
                OMP_NUM_THREADS="1")


def test_export_writes_samples_embeddings_and_brain_results(tiny_store: SimpleNamespace, tmp_path: Path) -> None:
    store = tiny_store.store
    env = _fiftyone_env(tmp_path)
    export = subprocess.run(
        [sys.executable, "-m", "flows.cli", "export", "fiftyone", "--store", str(store.root), "--name", "genprint-test"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert export.returncode == 0, export.stderr
    assert "open it: fiftyone app launch genprint-test" in export.stdout
    read = subprocess.run([sys.executable, "-c", READ_BACK, "genprint-test"], env=env, capture_output=True, text=True, timeout=600)
    assert read.returncode == 0, read.stderr
    got = json.loads(read.stdout.strip().splitlines()[-1])

    images = store.images().set_index("image_id")
    assert got["persistent"] and got["count"] == len(images) == len(set(got["image_ids"]))
    for field in ("filepath", "image_id", "cluster_id", "cluster", "verdict", "fake_score", "attributed_generator",
                  "attribution_score", "unknown_generator", "fingerprint", "parsed_upsampling", "parsed_loss_types"):
        assert field in got["fields"]
    assert got["loss_types_field"] == "ListField"
    assert got["cluster_ids"] == images.loc[got["image_ids"], "cluster_id"].tolist()
    assert set(got["verdicts"]) == {"unsure"}  # the spectral fingerprint has no detector
    assert {label for label, c in zip(got["labels"], got["cluster_ids"]) if c < 0} <= {"unassigned"}
    _, vectors = store.vectors(got["image_ids"])
    np.testing.assert_allclose(np.array(got["embeddings"]), vectors, atol=1e-6)
    assert got["brain_runs"] == ["fingerprint_map", "fingerprint_similarity"]
    assert got["map_shape"] == [len(images), 2]
    # The similarity index answers as cosine similarity over the stored fingerprints does.
    query = vectors[got["image_ids"].index(got["first"])]
    order = np.argsort(-(vectors @ query), kind="stable")
    assert got["nearest"][0] == got["first"]
    assert set(got["nearest"][1:]) <= {got["image_ids"][i] for i in order[:6]}


def test_missing_fiftyone_is_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.export_fiftyone import _import_fiftyone

    monkeypatch.setitem(sys.modules, "fiftyone", None)  # as if it were not installed
    with pytest.raises(UserError, match=r"pip install 'genprint\[fiftyone\]'"):
        _import_fiftyone()
