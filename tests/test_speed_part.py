"""The speed benchmark (`python -m bench --speed`): distinct images, whole processes timed, its section, run small."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

import bench.speed_part as speed_part
from bench.sections import ORDER
from bench.speed_photos import photo_crops


@pytest.mark.parametrize("kind, size", [("jpeg512", (512, 384)), ("png64", (64, 64))])
def test_photo_crops_are_distinct_files_made_once(kind: str, size: tuple[int, int], tmp_path: Path) -> None:
    paths = photo_crops(tmp_path, kind, 40)
    assert len({hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}) == 40
    assert {Image.open(p).size for p in paths} == {size}
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert photo_crops(tmp_path, kind, 40) == paths and [p.stat().st_mtime_ns for p in paths] == stamps  # reused, not made again


def test_the_speed_section_times_whole_commands_against_its_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speed_part, "BATCH_IMAGES", 24)
    monkeypatch.setattr(speed_part, "NOOP_IMAGES", 12)
    monkeypatch.setattr(speed_part, "REPEATS", 1)
    lines = []
    markdown = speed_part.measure(tmp_path, threads=2, log=lines.append)
    assert markdown.startswith("## Speed as a user feels it") and "speed" in ORDER
    targets = [line for line in markdown.splitlines() if line.startswith("| ") and line.rstrip().endswith(("| yes |", "| no |"))]
    assert len(targets) == 4, markdown  # two ratios and the no-op run's two
    assert "| `genprint run` over 512x384 px JPEG (q90), fresh store | 24 (24 distinct) | 1 |" in markdown
    noop_store = tmp_path / "stores" / "noop"
    assert len(list((noop_store / "runs").rglob("run.json"))) == 2  # the first run and one no-op repeat
    assert any(line.startswith("no-op run:") for line in lines)
