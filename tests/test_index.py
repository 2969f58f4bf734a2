"""FingerprintIndex: search, incremental add with type change, removal, range search, save/load."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clustering import index as index_module
from clustering.index import FingerprintIndex, IndexCorruptError, choose_factory


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_choose_factory_follows_size():
    assert choose_factory(1_000, 64) == "IDMap2,Flat"
    assert choose_factory(1_000_000, 64) == "IVF4096,Flat"
    assert choose_factory(50_000_000, 64).endswith("PQ16")


def test_search_returns_exact_neighbours_under_their_ids():
    x = unit_vectors(500, 16)
    ids = np.arange(500, dtype=np.int64) * 10 + 7
    index = FingerprintIndex.from_vectors(x, ids)
    sims, found = index.search(x[:20], k=3)
    assert found.dtype == np.int64 and sims.dtype == np.float32
    np.testing.assert_array_equal(found[:, 0], ids[:20])
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    brute = x[:20] @ x.T
    np.testing.assert_allclose(sims, -np.sort(-brute, axis=1)[:, :3], atol=1e-5)


def test_fewer_vectors_than_k_are_padded_with_minus_one():
    index = FingerprintIndex(dim=8)
    index.add(unit_vectors(2, 8), np.array([5, 6]))
    sims, ids = index.search(unit_vectors(1, 8, seed=1), k=4)
    assert sorted(ids[0, :2]) == [5, 6] and (ids[0, 2:] == -1).all()
    assert np.isneginf(sims[0, 2:]).all()


def test_incremental_add_changes_type_and_keeps_every_vector(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_MAX", 300)
    dim = 16
    x = unit_vectors(2_000, dim)
    ids = np.arange(2_000, dtype=np.int64) + 1_000
    index = FingerprintIndex(dim=dim)
    index.add(x[:200], ids[:200])
    assert index.factory_ == "IDMap2,Flat"
    index.add(x[200:400], ids[200:400])
    assert index.factory_.startswith("IVF") and index.ntotal == 400
    index.add(x[400:], ids[400:])
    assert index.ntotal == 2_000
    stored, stored_ids = index.vectors_and_ids()
    order = np.argsort(stored_ids)
    np.testing.assert_array_equal(stored_ids[order], ids)
    np.testing.assert_allclose(stored[order], x, atol=1e-6)
    np.testing.assert_array_equal(np.sort(index.ids()), ids)
    index.nprobe = 10_000  # probe every list: results must be exact
    _, found = index.search(x[::100], k=1)
    np.testing.assert_array_equal(found[:, 0], ids[::100])


def test_duplicate_ids_are_refused():
    index = FingerprintIndex(dim=8)
    index.add(unit_vectors(3, 8), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="already"):
        index.add(unit_vectors(1, 8), np.array([2]))
    with pytest.raises(ValueError, match="unique"):
        index.add(unit_vectors(2, 8), np.array([9, 9]))


def test_remove_drops_ids_from_results():
    x = unit_vectors(50, 8)
    index = FingerprintIndex.from_vectors(x, np.arange(50))
    assert index.remove(np.array([0, 1, 999])) == 2
    assert index.ntotal == 48 and 0 not in index and 2 in index
    assert sorted(index.ids()) == list(range(2, 50))
    _, found = index.search(x[:2], k=5)
    assert not np.isin(found, [0, 1]).any()


def test_range_search_matches_brute_force():
    x = unit_vectors(300, 8)
    index = FingerprintIndex.from_vectors(x, np.arange(300) + 100)
    results = index.range_search(x[:5], min_similarity=0.6)
    brute = x[:5] @ x.T
    for row, (ids, sims) in zip(brute, results):
        assert set(ids - 100) == set(np.flatnonzero(row > 0.6))
        assert (np.diff(sims) <= 0).all()


def test_save_load_round_trip(tmp_path):
    x = unit_vectors(400, 16)
    ids = np.arange(400, dtype=np.int64) * 3
    index = FingerprintIndex.from_vectors(x, ids, factory="IVF8,Flat")
    index.nprobe = 3
    path = tmp_path / "index" / "fingerprints.faiss"
    index.save(path)
    meta = json.loads(FingerprintIndex.sidecar_path(path).read_text())
    assert meta["count"] == 400 and meta["dim"] == 16 and meta["factory"] == "IVF8,Flat"
    loaded = FingerprintIndex.load(path)
    assert (loaded.ntotal, loaded.factory_, loaded.nprobe, loaded.auto) == (400, "IVF8,Flat", 3, False)
    np.testing.assert_array_equal(loaded.search(x[:10], 5)[1], index.search(x[:10], 5)[1])
    loaded.add(unit_vectors(5, 16, seed=2), np.arange(5) + 10_000)
    assert loaded.ntotal == 405
    assert not list(path.parent.glob(".*tmp*"))


def test_corrupt_or_missing_files_are_detected(tmp_path):
    path = tmp_path / "fingerprints.faiss"
    FingerprintIndex.from_vectors(unit_vectors(100, 8), np.arange(100)).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum.*rebuild"):
        FingerprintIndex.load(path)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(IndexCorruptError):
        FingerprintIndex.load(path)
    FingerprintIndex.sidecar_path(path).unlink()
    with pytest.raises(IndexCorruptError, match="sidecar"):
        FingerprintIndex.load(path)


def test_compressed_index_searches_but_never_rebuilds_itself():
    x = unit_vectors(3_000, 16)
    index = FingerprintIndex.from_vectors(x[:2_000], np.arange(2_000), factory="IVF16,PQ4x4")
    assert not index.lossless
    index.add(x[2_000:], np.arange(2_000, 3_000))
    assert index.factory_ == "IVF16,PQ4x4" and index.ntotal == 3_000
    with pytest.raises(NotImplementedError):
        index.vectors_and_ids()
    index.nprobe = 16
    _, found = index.search(x[:50], k=10)
    assert np.mean([i in row for i, row in enumerate(found)]) > 0.8
    assert index.remove(np.arange(10)) == 10 and 5 not in index
