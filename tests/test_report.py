"""The HTML report: self-contained, one card per cluster, and clusters visible when Chromium renders it."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from fingerprinting.parsing import empty_parsed
from flows.parsed_view import described_design
from flows.report import cluster_cards, render_report


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("no headless Chromium: install Debian's chromium (scripts/test.sh does)")


def _screenshot(html: Path, out: Path, tmp_path: Path) -> np.ndarray:
    subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={out}", "--window-size=1200,1600",
            html.resolve().as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )
    return np.asarray(Image.open(out).convert("RGB"))


def _colourful_fraction(pixels: np.ndarray) -> float:
    """Share of strongly coloured pixels: thumbnails and spectra are; text and frames are not (but for anti-aliasing)."""
    hsv = np.asarray(Image.fromarray(pixels).convert("HSV"))
    return float(((hsv[..., 1] > 80) & (hsv[..., 2] > 40)).mean())


def test_report_is_self_contained_with_one_card_per_cluster(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    html = (store / store.REPORT).read_text()
    clusters = store.clusters()
    assert html.count('class="cluster" data-cluster-id=') == len(clusters) > 0
    assert f'id="cluster-count">{len(clusters)}<' in html
    shown = [int(i) for i in re.findall(r'data-cluster-id="(-?\d+)"', html)]
    assert shown == clusters["cluster_id"].tolist()  # largest first
    assert html.count('class="montage" src="data:image/png;base64,') == len(clusters)
    assert html.count('class="spectrum" src="data:image/png;base64,') == len(clusters)
    assert not re.search(r'(src|href)="(https?:|file:|/)', html)  # nothing to fetch: readable offline
    assert f"{len(store.images())}</b>images" in html


def test_parsed_designs_come_with_how_far_to_trust_them(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    images, clusters = store.images(), store.clusters()
    cards = cluster_cards(images, clusters)
    assert not any(card["design"]["described"] for card in cards)  # the tiny store's spectral fingerprint parses nothing
    assert 'id="parsing-caveat"' not in render_report(store, images, clusters, store.errors(), tiny_store.summary, cards)
    row = empty_parsed(1).iloc[0].to_dict() | {"parsed_upsampling_family": "learned", "parsed_upsampling_family_confidence": 0.93,
                                               "parsed_skip": "unet", "parsed_skip_confidence": 0.8, "parsed_loss_family_adversarial": 0.7}
    cards[0]["design"]["described"] = described_design(row)
    html = render_report(store, images, clusters, store.errors(), tiny_store.summary, cards)
    assert 'id="parsing-caveat"' in html and "upsampling family: learned (93 %)" in html and "skip: unet (80 %)" in html
    assert "upsampling type: not reported (family alone)" in html and "norm: not estimable from images" in html
    assert "adversarial loss: yes (P 0.70)" in html and "kl loss: not estimable from images" in html


def test_described_design_words_types_families_and_nulls() -> None:
    row = empty_parsed(1).iloc[0].to_dict()
    assert described_design(row) == []  # no parsing heads: nothing to word
    row |= {"parsed_upsampling_family": "interpolation", "parsed_upsampling_family_confidence": 0.97,
            "parsed_upsampling": "bilinear", "parsed_upsampling_confidence": 0.88}
    described = dict(described_design(row))
    assert described["upsampling family"] == "interpolation (97 %)" and described["upsampling type"] == "bilinear (88 %)"
    assert described["activation"] == described["up blocks"] == "not estimable from images"


def test_screenshot_shows_the_clusters(tiny_store: SimpleNamespace, tmp_path: Path) -> None:
    store = tiny_store.store
    with_clusters = _screenshot(store / store.REPORT, tmp_path / "report.png", tmp_path)
    # The same page without its clusters, as the control.
    images = store.images().assign(cluster_id=-1)
    empty = render_report(store, images, store.clusters().head(0), store.errors(), tiny_store.summary)
    (tmp_path / "empty.html").write_text(empty)
    without = _screenshot(tmp_path / "empty.html", tmp_path / "empty.png", tmp_path)

    assert with_clusters.shape == (1600, 1200, 3)
    assert with_clusters.std() > 20  # not a blank page
    assert _colourful_fraction(with_clusters) > 0.02
    assert _colourful_fraction(without) < _colourful_fraction(with_clusters) / 10  # text alone is grey
    # Rows crossed by pictures (hundreds of coloured pixels, where a line of text has a few): the
    # cluster cards', below the page's header and numbers.
    hsv = np.asarray(Image.fromarray(with_clusters).convert("HSV"))
    rows = np.flatnonzero(((hsv[..., 1] > 80) & (hsv[..., 2] > 40)).sum(axis=1) > 400)
    assert 300 < rows.min() < 900 and len(rows) >= 100
