"""The safe checkpoint format: round trip, checksum, refusal of anything that is not safetensors + json."""
from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from fingerprinting.checkpoint import Calibration, Checkpoint, CheckpointError, config_path, load_checkpoint, save_checkpoint
from fingerprinting.design import HYPERPARAMETERS
from fingerprinting.models import load_fingerprinter
from fingerprinting.network import FingerprintNet, NetworkConfig, to_network_input
from fingerprinting.parsing import parsed_columns


class _WritesMarker:
    """A pickle payload that would create a file if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, FingerprintNet]:
    torch.manual_seed(3)
    net = FingerprintNet(NetworkConfig(encoder_widths=(8, 16, 32), hidden_dim=32, embedding_dim=16, spectrum_bins=8))
    # Non-default batch-norm statistics, so the round trip has to carry buffers too.
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 32, 32))
    net.eval()
    path = save_checkpoint(Checkpoint(net, Calibration(2.0, -0.5), {"zoo": {"seed": 1}, "epochs": 3}, "learned-test"), tmp_path / "model.safetensors")
    return path, net


def test_round_trip_restores_weights_config_and_calibration(saved: tuple[Path, FingerprintNet]) -> None:
    path, net = saved
    loaded = load_checkpoint(path)
    config = json.loads(config_path(path).read_text())
    assert loaded.net.config == net.config
    assert loaded.calibration == Calibration(2.0, -0.5)
    assert loaded.training == {"zoo": {"seed": 1}, "epochs": 3}
    assert loaded.version == config["version"] and loaded.version.startswith("learned-test+")
    assert len(loaded.version.split("+")[1]) == 12
    x = to_network_input(torch.randint(0, 256, (3, 40, 40, 3), dtype=torch.uint8))
    with torch.no_grad():
        assert torch.equal(loaded.net(x).embedding, net(x).embedding)
    assert load_checkpoint(config_path(path)).version == loaded.version  # the .json path works too


def test_learned_fingerprinter_speaks_the_fingerprinter_contract(saved: tuple[Path, FingerprintNet]) -> None:
    path, _ = saved
    fingerprinter = load_fingerprinter(path)
    assert fingerprinter.name == "learned" and fingerprinter.dim == 16 and fingerprinter.size_agnostic
    assert fingerprinter.version == load_checkpoint(path).version
    crops = np.random.default_rng(0).integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    out = fingerprinter.fingerprint(crops)
    assert out.vectors.dtype == np.float32 and out.vectors.shape == (5, 16)
    assert np.allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    assert out.fake_scores.dtype == np.float32 and ((out.fake_scores > 0) & (out.fake_scores < 1)).all()
    assert list(out.parsed.columns) == parsed_columns() and len(out.parsed) == 5
    for h in HYPERPARAMETERS:
        if h.kind == "discrete":
            assert set(out.parsed[f"parsed_{h.name}"]) <= set(h.choices)
        else:
            assert out.parsed[f"parsed_{h.name}"].between(h.low, h.high).all()
    # Batching does not change the answer.
    fingerprinter.batch_size = 2
    assert np.allclose(fingerprinter.fingerprint(crops).vectors, out.vectors, atol=1e-6)


def test_changed_weights_fail_the_checksum(saved: tuple[Path, FingerprintNet]) -> None:
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_a_crafted_pickle_is_never_unpickled(saved: tuple[Path, FingerprintNet], tmp_path: Path) -> None:
    path, _ = saved
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state": _WritesMarker(marker)})
    # Even with a config that vouches for its checksum, a pickle in place of the weights is refused.
    config = json.loads(config_path(path).read_text())
    config["weights_sha256"] = hashlib.sha256(payload).hexdigest()
    config_path(path).write_text(json.dumps(config))
    path.write_bytes(payload)
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_fingerprinter(path)
    for name in ("model.pt", "model.pkl", "model.ckpt"):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(CheckpointError, match="not a genprint checkpoint"):
            load_checkpoint(tmp_path / name)
    assert not marker.exists()


def test_missing_or_foreign_config_is_a_clear_error(saved: tuple[Path, FingerprintNet]) -> None:
    path, _ = saved
    config_path(path).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a genprint checkpoint config"):
        load_checkpoint(path)
    config_path(path).unlink()
    with pytest.raises(CheckpointError, match="missing checkpoint config"):
        load_checkpoint(path)


def test_weights_of_another_architecture_are_refused(saved: tuple[Path, FingerprintNet]) -> None:
    path, _ = saved
    config = json.loads(config_path(path).read_text())
    config["network"]["hidden_dim"] = 48
    config_path(path).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit the recorded architecture"):
        load_checkpoint(path)


def test_vector_with_a_spectral_share(saved: tuple[Path, FingerprintNet], tmp_path: Path) -> None:
    """A checkpoint can append the training-free spectral fingerprint; the mix is part of its version."""
    path, net = saved
    plain = load_checkpoint(path)
    mixed_path = save_checkpoint(Checkpoint(net, plain.calibration, {}, "learned-test", spectral_weight=0.5, spectral_options={"grid": [8, 4], "radial_bins": 16}), tmp_path / "mixed.safetensors")
    mixed = load_fingerprinter(mixed_path)
    assert mixed.version.split("/")[0] != plain.version and "/spectral-" in mixed.version
    crops = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    vectors = mixed.fingerprint(crops).vectors
    learned = load_fingerprinter(path).fingerprint(crops).vectors
    assert vectors.shape == (4, 16 + mixed.spectral.dim) and mixed.dim == vectors.shape[1]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[:, :16], np.sqrt(0.5) * learned, atol=1e-6)
    mixed.batch_size = 1  # four batches side by side (runtime.map_batches): the vectors of one batch
    assert np.allclose(mixed.fingerprint(crops).vectors, vectors, atol=1e-6)
