"""Issue 7: the hostile corpus through a whole real run, and manifests refused before any work."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.hostile import HostileCorpus, make_hostile_corpus
from flows import Store
from flows.sources import SourceError

ZOO_IMAGES = 6  # a few good generated images beside the hostile ones


@pytest.fixture(scope="module")
def hostile_run(tiny_zoo: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path_factory: pytest.TempPathFactory):
    """One real run over the hostile corpus mixed with a few tiny-zoo images."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = make_hostile_corpus(root / "incoming")
    zoo_paths = [str(p) for p in tiny_zoo.images["path"][:ZOO_IMAGES]]
    for path in zoo_paths:
        shutil.copy(path, corpus.root / f"zoo-{Path(path).name}")
    store = Store(root / "store")
    summary = store.run([str(corpus.root)], **run_options)
    yield SimpleNamespace(corpus=corpus, store=store, summary=summary, zoo=len(zoo_paths))
    (corpus.root / corpus.unreadable).chmod(0o644)  # let pytest clean up


def test_every_bad_input_is_recorded_with_its_reason(hostile_run: SimpleNamespace) -> None:
    corpus: HostileCorpus = hostile_run.corpus
    errors = hostile_run.store.errors()
    reasons = dict(zip(errors["path"], errors["error"]))
    for name, expected in corpus.bad.items():
        assert reasons.get(corpus.path(name)) == expected, name
    assert reasons[corpus.non_utf8_path] == "path is not valid UTF-8"
    assert errors["run_id"].eq(hostile_run.summary.run_id).all()
    assert not errors.duplicated(["path", "error"]).any()


def test_every_valid_input_is_stored_and_the_run_went_on(hostile_run: SimpleNamespace) -> None:
    corpus: HostileCorpus = hostile_run.corpus
    images, paths = hostile_run.store.images(), hostile_run.store.paths()
    stored_paths = set(paths["path"])
    for name in corpus.good:
        assert corpus.path(name) in stored_paths, corpus.good[name]
    assert {p for p in stored_paths if Path(p).name.startswith("zoo-")} == {
        str(p) for p in corpus.root.glob("zoo-*")
    }
    # root reads a mode-000 file; anyone else gets "permission denied" in errors.parquet
    locked = corpus.path(corpus.unreadable)
    if os.geteuid() == 0:
        assert locked in stored_paths
    else:
        assert hostile_run.store.errors().set_index("path").loc[locked, "error"] == "permission denied"
    assert not images["image_id"].duplicated().any() and not paths["path"].duplicated().any()
    assert len(images) == len(paths) - 1  # only the duplicate pair shares an image
    assert hostile_run.summary.images_total == len(images)


def test_same_bytes_under_two_names_are_one_image_with_both_paths(hostile_run: SimpleNamespace) -> None:
    corpus: HostileCorpus = hostile_run.corpus
    paths = hostile_run.store.paths().set_index("path")
    first, second = (corpus.path(n) for n in corpus.duplicates)
    assert paths.loc[first, "image_id"] == paths.loc[second, "image_id"]
    images = hostile_run.store.images().set_index("image_id")
    row = images.loc[paths.loc[first, "image_id"]]
    assert row["n_paths"] == 2 and row["path"] in (first, second)


def test_valid_inputs_are_decoded_as_documented(hostile_run: SimpleNamespace) -> None:
    corpus: HostileCorpus = hostile_run.corpus
    images = hostile_run.store.images().set_index("path")
    size = lambda name: tuple(images.loc[corpus.path(name), ["width", "height"]])  # noqa: E731
    assert size("rotated.jpg") == (40, 72)  # EXIF orientation applied: stored 72 x 40
    assert size("panorama.png") == (3000, 40)
    assert size("animated.gif") == size("animated.webp") == (48, 48)


# ---- manifests: one clear error before any work -----------------------------------------------


def _write_manifest(folder: Path, frame: pd.DataFrame, suffix: str) -> Path:
    path = folder / f"manifest{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"file": ["a.png"]}), "has no 'path' column (its columns: file)"),
        (pd.DataFrame({"path": ["a.png", "", "b.png", " "]}), "empty or non-text 'path' at"),
    ],
)
def test_malformed_manifest_stops_the_run_before_any_work(
    tmp_path: Path, frame: pd.DataFrame, message: str, suffix: str, prefect_api: str
) -> None:
    manifest = _write_manifest(tmp_path, frame, suffix)
    store = Store(tmp_path / "store")
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.run([str(manifest)], model="spectral")
    assert not (store / Store.META).exists() and not (store / "work").exists()


def test_manifest_rows_outside_the_allowed_roots_stop_the_run(tmp_path: Path) -> None:
    from flows.sources import discover

    allowed = tmp_path / "uploads"
    allowed.mkdir()
    (allowed / "a.png").write_bytes(b"")
    frame = pd.DataFrame({"path": ["a.png", "../secret.png", "/etc/passwd"]})
    manifest = _write_manifest(allowed, frame, ".csv")
    with pytest.raises(SourceError, match=r"lists 2 paths outside the allowed roots .*secret\.png, /etc/passwd"):
        discover([manifest], allowed_roots=[allowed])
    with pytest.raises(SourceError, match="source .* is outside the allowed roots"):
        discover([tmp_path], allowed_roots=[allowed])
    assert discover([manifest])[0]  # without allowed roots a manifest may point anywhere


def test_a_symlink_pointing_out_of_the_allowed_roots_is_recorded_not_read(tmp_path: Path) -> None:
    from flows.sources import discover

    allowed = tmp_path / "uploads"
    allowed.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    (allowed / "inside.png").write_bytes(b"x")
    (allowed / "escape.png").symlink_to(tmp_path / "secret.png")
    paths, errors = discover([allowed], allowed_roots=[allowed])
    assert paths == [str(allowed / "inside.png")]
    assert errors.to_dict("records") == [
        {"path": str(allowed / "escape.png"), "error": "outside the allowed roots (a symlink pointing out)"}
    ]


def test_allow_root_refuses_a_manifest_pointing_out_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    allowed = tmp_path / "uploads"
    allowed.mkdir()
    manifest = _write_manifest(allowed, pd.DataFrame({"path": ["../../etc/passwd"]}), ".csv")
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app, ["run", str(manifest), "--store", str(store), "--model", "spectral", "--allow-root", str(allowed), "--threads", "1", "--quiet"]
    )
    assert result.exit_code == 2
    assert "lists 1 paths outside the allowed roots" in result.output and "Traceback" not in result.output
    assert not store.exists()
