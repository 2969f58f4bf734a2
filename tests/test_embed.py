"""embed_paths / embed_images, the fingerprinter registry and the parsed-design columns."""
from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fingerprinting import models
from fingerprinting.crops import crop_grid
from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES
from fingerprinting.embed import ERROR_COLUMNS, RECORD_COLUMNS, EmbeddedChunk, embed_images, embed_paths
from fingerprinting.fingerprinter import FingerprintOutput
from fingerprinting.images import load_image
from fingerprinting.models import load_fingerprinter
from fingerprinting.parsing import (
    LOSS_TYPES_COLUMN,
    aggregate_parsed,
    aggregate_parsed_by,
    conform_parsed,
    decode_loss_types,
    empty_parsed,
    parsed_columns,
    parsed_fields,
)
from fingerprinting.spectral import SpectralFingerprinter

RNG = np.random.default_rng(5)


@pytest.fixture(scope="module")
def spectral() -> SpectralFingerprinter:
    return SpectralFingerprinter()


def write_png(path: Path, height: int = 64, width: int = 64) -> Path:
    Image.fromarray(RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def mixed_folder(tmp_path: Path) -> list[Path]:
    """Seven usable images (one large, one small, one duplicate) and three broken inputs, in order."""
    paths = [write_png(tmp_path / f"good{i}.png") for i in range(4)]
    paths.append(write_png(tmp_path / "large.png", 300, 260))
    paths.append(write_png(tmp_path / "small.png", 40, 48))
    shutil.copyfile(paths[0], tmp_path / "duplicate.png")
    paths.append(tmp_path / "duplicate.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "dir.png").mkdir()
    broken = [tmp_path / "empty.png", tmp_path / "notes.png", tmp_path / "dir.png"]
    return paths[:3] + broken[:1] + paths[3:5] + broken[1:] + paths[5:]


def test_chunks_records_errors_and_progress(
    mixed_folder: list[Path], spectral: SpectralFingerprinter
) -> None:
    progress: list[int] = []
    chunks = list(embed_paths(mixed_folder, spectral, chunk_size=4, on_progress=progress.append))
    assert progress == [4, 4, 2] and len(chunks) == 3
    records = pd.concat([chunk.records for chunk in chunks], ignore_index=True)
    errors = pd.concat([chunk.errors for chunk in chunks], ignore_index=True)
    assert list(records.columns) == RECORD_COLUMNS + parsed_columns()
    assert list(errors.columns) == ERROR_COLUMNS
    usable = [p for p in mixed_folder if p.name not in {"empty.png", "notes.png", "dir.png"}]
    assert records["path"].tolist() == [str(p) for p in usable]  # input order kept, errors skipped
    assert dict(zip(errors["path"], errors["error"])) == {
        str(mixed_folder[3]): "empty file",
        str(mixed_folder[6]): "not an image (text)",
        str(mixed_folder[7]): "is a directory",
    }
    for chunk in chunks:
        assert chunk.vectors.shape == (len(chunk.records), spectral.dim) and chunk.vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(chunk.vectors, axis=1), 1.0, atol=1e-5)


def test_ids_are_sha256_and_duplicates_keep_both_paths(
    mixed_folder: list[Path], spectral: SpectralFingerprinter
) -> None:
    chunk = next(embed_paths(mixed_folder, spectral, chunk_size=100))
    for path, image_id in zip(chunk.records["path"], chunk.records["image_id"]):
        assert image_id == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    duplicates = chunk.records[chunk.records["image_id"] == chunk.records["image_id"].iloc[0]]
    assert sorted(Path(p).name for p in duplicates["path"]) == ["duplicate.png", "good0.png"]
    np.testing.assert_array_equal(chunk.vectors[duplicates.index[0]], chunk.vectors[duplicates.index[1]])
    rows = chunk.records.set_index("path")
    assert rows.loc[str(mixed_folder[4]), ["width", "height", "format"]].tolist() == [64, 64, "PNG"]


def test_spectral_records_have_null_scores_and_parsed(
    mixed_folder: list[Path], spectral: SpectralFingerprinter
) -> None:
    records = next(embed_paths(mixed_folder, spectral, chunk_size=100)).records
    assert records["fake_score"].isna().all()
    assert records[parsed_columns()].isna().all().all()


def test_large_image_vector_is_the_normalised_mean_of_its_crops(
    tmp_path: Path, spectral: SpectralFingerprinter
) -> None:
    path = write_png(tmp_path / "large.png", 300, 260)
    chunk = next(embed_paths([path], spectral, max_crops=4))
    crops = crop_grid(load_image(path).pixels, spectral.crop_size, 4)
    assert len(crops) == 4
    mean = spectral.fingerprint(crops).vectors.mean(axis=0)
    np.testing.assert_allclose(chunk.vectors[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_streams_without_reading_ahead(tmp_path: Path, spectral: SpectralFingerprinter) -> None:
    pulled: list[int] = []

    def paths() -> Iterator[Path]:
        for index in range(10):
            pulled.append(index)
            yield write_png(tmp_path / f"{index}.png")

    chunks = embed_paths(paths(), spectral, chunk_size=3)
    first = next(chunks)
    assert len(first.records) == 3 and len(pulled) == 3
    assert sum(len(chunk.records) for chunk in chunks) == 7 and len(pulled) == 10


def test_thread_pool_gives_identical_results(
    mixed_folder: list[Path], spectral: SpectralFingerprinter
) -> None:
    serial = list(embed_paths(mixed_folder, spectral, chunk_size=4))
    pooled = list(embed_paths(mixed_folder, spectral, chunk_size=4, workers=2))
    for one, other in zip(serial, pooled, strict=True):
        pd.testing.assert_frame_equal(one.records, other.records)
        pd.testing.assert_frame_equal(one.errors, other.errors)
        np.testing.assert_array_equal(one.vectors, other.vectors)


def test_embed_images_matches_embed_paths(mixed_folder: list[Path], spectral: SpectralFingerprinter) -> None:
    usable = [p for p in mixed_folder if p.suffix == ".png" and p.is_file() and p.stat().st_size > 100]
    from_paths = next(embed_paths(usable, spectral, chunk_size=100))
    in_memory = embed_images([load_image(p) for p in usable], spectral)
    assert isinstance(in_memory, EmbeddedChunk) and in_memory.errors.empty
    pd.testing.assert_frame_equal(from_paths.records, in_memory.records)
    np.testing.assert_allclose(from_paths.vectors, in_memory.vectors, atol=1e-6)


class BrightnessHeads:
    """A fingerprinter with detection and parsing heads whose outputs are easy to predict.

    Score = mean brightness of the crop; upsampling "nearest" for bright crops, else "bilinear".
    """

    name, version, dim, crop_size = "brightness", "test", 4, 32

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        brightness = crops.reshape(len(crops), -1).mean(axis=1).astype(np.float32) / 255
        vectors = np.stack([brightness, 1 - brightness, np.ones_like(brightness), brightness**2], axis=1)
        parsed = empty_parsed(len(crops))
        parsed["parsed_upsampling"] = np.where(brightness > 0.5, "nearest", "bilinear")
        parsed["parsed_upsampling_confidence"] = np.float32(0.9)
        parsed["parsed_up_blocks"] = (brightness * 4).astype(np.float32)
        parsed["parsed_loss_l1"] = brightness
        parsed[LOSS_TYPES_COLUMN] = [["l1"] if b >= 0.5 else [] for b in brightness]
        return FingerprintOutput(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), brightness, parsed)


def test_heads_are_combined_over_an_images_crops(tmp_path: Path) -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)  # a 2x2 grid of 32 px crops:
    pixels[:32] = 200  # two bright crops on top,
    pixels[32:, :32] = 230  # a brighter one bottom left, a black one bottom right
    Image.fromarray(pixels).save(tmp_path / "split.png")
    records = next(embed_paths([tmp_path / "split.png"], BrightnessHeads())).records
    row = records.iloc[0]
    assert row["fake_score"] == pytest.approx(630 / 255 / 4, abs=1e-6)
    assert row["parsed_upsampling"] == "nearest"
    assert row["parsed_upsampling_confidence"] == pytest.approx(0.75)
    assert row["parsed_up_blocks"] == pytest.approx(200 / 255 * 4, abs=1e-5)  # median
    assert row["parsed_loss_l1"] == pytest.approx(630 / 255 / 4, abs=1e-6)
    assert list(row[LOSS_TYPES_COLUMN]) == ["l1"]  # re-derived from the mean probability 0.62


# --- parsed columns ----------------------------------------------------------------------------


def test_parsed_fields_cover_the_generator_space() -> None:
    names = parsed_columns()
    for h in HYPERPARAMETERS:
        assert f"parsed_{h.name}" in names
        assert (f"parsed_{h.name}_confidence" in names) == (h.kind == "discrete")
    assert all(f"parsed_loss_{loss}" in names for loss in LOSS_TYPES)
    assert names[-1] == LOSS_TYPES_COLUMN and len(set(names)) == len(names) == len(parsed_fields())


def test_conform_parsed_orders_types_and_checks_columns() -> None:
    parsed = empty_parsed(2)
    reordered = conform_parsed(parsed[parsed.columns[::-1]], 2)
    assert list(reordered.columns) == parsed_columns()
    assert list(conform_parsed(pd.DataFrame(), 0).columns) == parsed_columns()
    with pytest.raises(ValueError, match="lacks columns"):
        conform_parsed(parsed.drop(columns=["parsed_norm"]), 2)
    with pytest.raises(ValueError, match="rows"):
        conform_parsed(parsed, 3)


def test_aggregate_parsed_votes_by_confidence() -> None:
    parsed = empty_parsed(3)
    parsed["parsed_upsampling"] = ["nearest", "bilinear", "bilinear"]
    parsed["parsed_upsampling_confidence"] = np.array([0.9, 0.3, 0.3], dtype=np.float32)
    parsed["parsed_conv_layers"] = np.array([4, 10, 6], dtype=np.float32)
    parsed["parsed_loss_hinge"] = np.array([0.9, 0.6, 0.3], dtype=np.float32)
    parsed["parsed_loss_kl"] = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    result = aggregate_parsed(parsed)
    assert result["parsed_upsampling"] == "nearest"
    assert result["parsed_upsampling_confidence"] == pytest.approx(0.6)
    assert result["parsed_conv_layers"] == 6
    assert result["parsed_loss_hinge"] == pytest.approx(0.6)
    assert list(result[LOSS_TYPES_COLUMN]) == ["hinge"]
    assert result["parsed_norm"] is None or pd.isna(result["parsed_norm"])


def test_aggregate_parsed_by_groups_keeps_key_order() -> None:
    parsed = empty_parsed(4)
    parsed["parsed_skip"] = ["none", "residual", "residual", "none"]
    parsed["parsed_skip_confidence"] = np.float32(1.0)
    result = aggregate_parsed_by(parsed, np.array([7, 3, 3, 7]), [3, 7, 9])
    assert result["parsed_skip"].tolist()[:2] == ["residual", "none"]
    assert pd.isna(result["parsed_skip"].iloc[2])  # key without rows


def test_aggregate_parsed_by_hand_computed_groups() -> None:
    """Ties go to the first name, even counts take the middle mean, nulls are skipped, other groups ignored."""
    parsed = empty_parsed(7)
    parsed["parsed_skip"] = ["residual", "none", "dense", None, "none", "none", "dense"]
    parsed["parsed_skip_confidence"] = np.array([0.5, 0.5, 0.2, 0.9, np.nan, 0.0, 1.0], dtype=np.float32)
    parsed["parsed_conv_layers"] = np.array([2, 10, 4, 6, np.nan, np.nan, 1], dtype=np.float32)
    parsed["parsed_loss_hinge"] = np.array([0.2, 0.6, np.nan, 0.9, np.nan, np.nan, 0.3], dtype=np.float32)
    groups = np.array(["a", "a", "b", "b", "c", "c", "x"])  # "x" is not asked for
    result = aggregate_parsed_by(parsed, groups, ["b", "a", "c", "d", "a"])
    # a: residual 0.5 vs none 0.5 -> tie, "none" sorts first; b: dense (the null vote does not count)
    assert result["parsed_skip"].tolist()[:3] == ["dense", "none", "none"]
    assert result["parsed_skip_confidence"].tolist()[:2] == [pytest.approx(1.0), pytest.approx(0.5)]
    assert pd.isna(result["parsed_skip_confidence"].iloc[2])  # c's confidences total 0: no share
    assert result["parsed_conv_layers"].tolist()[:2] == [pytest.approx(5.0), pytest.approx(6.0)]
    assert pd.isna(result["parsed_conv_layers"].iloc[2])
    assert result["parsed_loss_hinge"].tolist()[:2] == [pytest.approx(0.9), pytest.approx(0.4)]
    # hinge is the only known type: named however unsure (a generator is trained with something)
    assert list(result[LOSS_TYPES_COLUMN].iloc[0]) == ["hinge"] and list(result[LOSS_TYPES_COLUMN].iloc[1]) == ["hinge"]
    assert result[LOSS_TYPES_COLUMN].iloc[2] is None  # no loss probabilities at all
    assert result.iloc[3].drop(LOSS_TYPES_COLUMN).isna().all()  # key without rows
    pd.testing.assert_series_equal(result.iloc[4], result.iloc[1], check_names=False)  # a repeated key repeats its row


def test_loss_types_name_both_of_two_unsure_alternatives() -> None:
    # p = 0.45 each: naming both expects F1 2 * 0.2475 * 2/3 + 0.2025 = 0.5325, one alone 0.3825,
    # a 0.5 threshold names nothing (F1 0 for every generator, each trained with something).
    decoded = decode_loss_types(np.array([[0.45, 0.45, 0.01], [0.9, 0.2, 0.01]]), ["l1", "l2", "kl"])
    assert list(decoded[0]) == ["l1", "l2"]
    assert list(decoded[1]) == ["l1"]  # 0.84 alone against 0.67 with l2


def test_loss_types_maximise_expected_f1_by_enumeration() -> None:
    """Against a direct loop over every candidate and true set, on random probabilities."""
    types = ["a", "b", "c", "d"]
    rng = np.random.default_rng(3)
    probabilities = rng.uniform(0, 1, (40, 4)) ** rng.uniform(0.3, 3, (40, 1))
    subsets = [set(s) for k in range(5) for s in itertools.combinations(types, k)]

    def expected_f1(candidate: set, p: np.ndarray) -> float:
        total = 0.0
        for truth in subsets:
            weight = np.prod([p[i] if t in truth else 1 - p[i] for i, t in enumerate(types)])
            denominator = len(candidate) + len(truth)
            total += weight * (2 * len(candidate & truth) / denominator if denominator else 0.0)
        return total

    for p, named in zip(probabilities, decode_loss_types(probabilities, types)):
        best = max(expected_f1(s, p) for s in subsets if s)
        assert expected_f1(set(named), p) == pytest.approx(best, abs=1e-9)


def test_loss_types_skip_null_probabilities() -> None:
    decoded = decode_loss_types(np.array([[np.nan, 0.3], [np.nan, np.nan]]), ["l1", "l2"])
    assert list(decoded[0]) == ["l2"] and decoded[1] is None


# --- the registry --------------------------------------------------------------------------------


def test_load_spectral() -> None:
    assert isinstance(load_fingerprinter("spectral"), SpectralFingerprinter)


def test_default_without_checkpoint_falls_back_to_spectral(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(models, "DEFAULT_CHECKPOINT", tmp_path / "absent.safetensors")
    with caplog.at_level(logging.WARNING, logger="fingerprinting.models"):
        fingerprinter = load_fingerprinter()
    assert isinstance(fingerprinter, SpectralFingerprinter)
    assert "spectral" in caplog.text


def test_unknown_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown fingerprinter"):
        load_fingerprinter(str(tmp_path / "no-such-model.safetensors"))
