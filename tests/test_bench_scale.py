"""`python -m bench --scale` end to end at small N: a seeded store, then a real incremental run of image files."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from bench import scale_part
from clustering.index import FingerprintIndex
from flows import Store

SEEDED = 1_500
NEW_FILES = 120


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, prefect_api: str):
    """Every step in this process (a child per step costs seconds of imports each): same steps, same store."""
    work = tmp_path_factory.mktemp("scale")
    markdown = scale_part.measure(work, threads=1, log=lambda _: None, sizes=(SEEDED,), new_points=NEW_FILES, isolate=False)
    return work, markdown


def test_section_has_every_table(measured) -> None:
    _, markdown = measured
    assert markdown.startswith("## Scale: a million fingerprints on one machine\n")
    for title in ("### Index", "### Clustering", "### Assigning new fingerprints", "### Writing the fingerprint table", "### A store of a million"):
        assert title in markdown


def test_seeded_store_holds_the_synthetic_fingerprints_under_their_ids(measured) -> None:
    work, _ = measured
    store = Store(work / "store")
    expected = scale_part.store_fingerprints(SEEDED, store.meta()["dim"], seed=2)
    ids = scale_part._image_ids(SEEDED, "seed")
    _, vectors = store.vectors(ids)
    np.testing.assert_array_equal(vectors, expected.vectors)


def test_incremental_run_adds_each_new_file_once_and_assigns_without_reclustering(measured) -> None:
    work, _ = measured
    store = Store(work / "store")
    files = sorted((work / "new-images" / "png64").iterdir())
    assert len(files) == NEW_FILES
    new_ids = {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    images = store.images()
    assert images["image_id"].is_unique
    assert len(images) == SEEDED + len(new_ids)
    assert new_ids <= set(images["image_id"])
    assert store.runs()["clustering"].tolist() == ["recluster", "assign"]
    # New images are in an existing cluster or in none; the seeded ones keep theirs (checked by the step).
    new = images[images["image_id"].isin(new_ids)]
    assert set(new["cluster_id"]) <= {-1} | set(store.clusters()["cluster_id"])
    result = json.loads((work / "results.json").read_text())[f"incremental-{SEEDED}"]
    assert result["old_cluster_changed"] == 0
    assert result["images_new"] == len(new_ids) and result["images_total"] == len(images)
    # One int id per image, and the index holds every one of them.
    ids = store.ids()
    assert ids["id"].is_unique and set(ids["image_id"]) == set(images["image_id"])
    index = FingerprintIndex.load(store / Store.INDEX)
    assert set(index.ids().tolist()) == set(ids["id"].tolist())


def test_steps_are_kept_and_not_redone(measured) -> None:
    work, markdown = measured
    logged: list[str] = []
    again = scale_part.measure(work, threads=1, log=logged.append, sizes=(SEEDED,), new_points=NEW_FILES)
    assert all("kept from an earlier run" in line for line in logged)
    assert again == markdown


def test_an_isolated_step_runs_in_its_own_process(tmp_path) -> None:
    steps = scale_part._Steps(tmp_path, threads=1, log=lambda _: None)
    fit, new = tmp_path / "fit.npz", tmp_path / "new.npz"
    result = steps.run("data", f"{scale_part.__name__}:cluster_data", n=300, n_new=50, dim=8, fit_path=str(fit), new_path=str(new))
    assert result["n"] == 300 and result["peak_rss_gb"] > 0
    assert np.load(fit)["vectors"].shape == (300, 8) and np.load(new)["vectors"].shape == (50, 8)
    with pytest.raises(RuntimeError, match="scale step broken failed"):
        steps.run("broken", f"{scale_part.__name__}:no_such_step")
