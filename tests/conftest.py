"""Shared test set-up: pinned threads and a private, offline Prefect home for the whole session."""
from __future__ import annotations

import os
import tempfile

# Prefect reads its settings at import time: set them before anything imports it.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="genprint-prefect-"))
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"

from fingerprinting.runtime import pin_threads  # noqa: E402

pin_threads(2)


# ---- the pipeline's shared fixtures (tests/test_flows*.py, test_cli.py, test_report.py) -----------
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402

TINY_ZOO = dict(members=4, images_per_member=12, size=32, seed=0, steps=10)  # brief training: tests need members, not quality
# Run options of the pipeline tests: the training-free fingerprint (deterministic, no checkpoint
# needed), shards small enough that a run has several, clusters of the tiny zoo's size.
TINY_RUN = dict(model="spectral", shard_size=16, min_cluster_size=5)


@pytest.fixture(scope="session")
def run_options() -> dict:
    return dict(TINY_RUN)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A tiny zoo corpus (4 generators x 12 images of 32 px, and real crops), built once per session."""
    from fingerprinting.zoo import build_zoo, load_zoo

    root = tmp_path_factory.mktemp("tiny-zoo")
    build_zoo(root, **TINY_ZOO, on_progress=None)
    zoo = load_zoo(root)  # paths absolute, under the resolved root
    return SimpleNamespace(root=zoo.root, images=zoo.images, generators=zoo.generators)


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One Prefect test server for the whole session; its URL lets subprocesses report to it too."""
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield prefect.settings.PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def tiny_store(tiny_zoo: SimpleNamespace, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A store after one real run over the tiny zoo (spectral fingerprint). Copy it before changing it."""
    from flows import Store

    store = Store(tmp_path_factory.mktemp("tiny-store") / "store")
    summary = store.run([str(tiny_zoo.root)], **TINY_RUN)
    return SimpleNamespace(store=store, summary=summary)



@pytest.fixture()
def store_copy(tiny_store: SimpleNamespace, tmp_path: Path):
    """A private copy of the tiny store, for tests that change it."""
    from flows import Store

    shutil.copytree(tiny_store.store.root, tmp_path / "store")
    return Store(tmp_path / "store")
