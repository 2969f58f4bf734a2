"""The HTML report: self-contained pages, verdict counts, the batch map, every member listed, and what Chromium shows."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fingerprinting.parsing import empty_parsed
from flows.parsed_view import described_design
from flows.report import CLUSTERS_SHOWN, MEMBERS_PER_PAGE, _cluster_card, cluster_cards, page_name, render_report, report_pictures, verdict_of
from flows.schemas import NO_CLUSTER

SCREENSHOTS = Path(__file__).resolve().parent.parent / "data" / "cache" / "report-screenshots"  # kept to look at


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("no headless Chromium: install Debian's chromium (scripts/test.sh does)")


def _chromium_run(html: Path, tmp_path: Path, *what: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", *what, html.resolve().as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=120,
    )


def _screenshot(html: Path, out: Path, tmp_path: Path, size: str = "1200,1600") -> np.ndarray:
    _chromium_run(html, tmp_path, f"--screenshot={out}", f"--window-size={size}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, SCREENSHOTS / out.name)
    return np.asarray(Image.open(out).convert("RGB"))


def _colourful(pixels: np.ndarray) -> np.ndarray:
    """Strongly coloured pixels: thumbnails, spectra and map dots are; text and frames are not (but for anti-aliasing)."""
    hsv = np.asarray(Image.fromarray(pixels).convert("HSV"))
    return (hsv[..., 1] > 80) & (hsv[..., 2] > 40)


def _pages(store) -> dict[str, str]:
    return {p.name: p.read_text() for p in (store / "current/report").glob("*.html")}


def test_report_is_self_contained_with_every_cluster_and_member(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    html = (store / store.REPORT).read_text()
    images, clusters = store.images(), store.clusters()
    assert html.count('class="cluster" data-cluster-id=') == len(clusters) > 0
    assert f'id="cluster-count">{len(clusters)}<' in html
    table = [int(i) for i in re.findall(r'<tr data-cluster-id="(-?\d+)"', html)]
    assert table == clusters["cluster_id"].tolist()  # largest first
    assert html.count('class="montage" src="data:image/png;base64,') == len(clusters)
    assert html.count('class="spectrum" src="data:image/png;base64,') == len(clusters)
    assert html.count("<circle ") == len(images)  # the map: one dot per image (fewer than MAP_POINTS here)
    pages = _pages(store)
    assert set(pages) == {page_name(NO_CLUSTER)} | {page_name(int(c)) for c in clusters["cluster_id"]}
    for cluster_id in [NO_CLUSTER, *clusters["cluster_id"]]:
        page = pages[page_name(int(cluster_id))]
        listed = re.findall(r'<tr class="member" data-image-id="([0-9a-f]+)"', page)
        assert sorted(listed) == sorted(images.loc[images["cluster_id"] == cluster_id, "image_id"])
        assert page.count('class="thumbnail" src="data:image/jpeg;base64,') == len(listed)
        assert f'href="{page_name(int(cluster_id))}"' not in page  # one page: no pager
    for text in [html, *pages.values()]:
        assert not re.search(r'(src|href)="(https?:|file:|/)', text)  # nothing to fetch: readable offline
    # Verdict counts: the spectral fingerprint has no detector, so every image is unsure.
    store_counts = re.search(r'id="verdicts-store">.*?count-generated">(\d+)<.*?count-real">(\d+)<.*?count-unsure">(\d+)<', html, re.S)
    assert [int(n) for n in store_counts.groups()] == [0, 0, len(images)]
    snapshot = next((store / "runs").glob("*/*/report.html")).read_text()
    assert 'href="report/' not in snapshot and snapshot.count("<circle ") == len(images)


def test_large_clusters_are_paged_and_stale_pages_deleted(store_copy, tiny_store: SimpleNamespace) -> None:
    from flows.atomic import Transaction

    images, clusters = store_copy.images(), store_copy.clusters()
    top = int(clusters["cluster_id"].iloc[0])
    many = pd.concat([images] * (MEMBERS_PER_PAGE // len(images) + 2), ignore_index=True)
    many = many.assign(image_id=[f"{i:064x}" for i in range(len(many))], cluster_id=top)
    report = render_report(store_copy, many, clusters.head(1).assign(size=len(many)), store_copy.errors(), tiny_store.summary,
                           report_pictures(store_copy, images, clusters.head(1)))
    names = [page_name(top, p) for p in range(-(-len(many) // MEMBERS_PER_PAGE))]
    assert sorted(report.pages) == sorted([*names, page_name(NO_CLUSTER)]) and len(names) >= 2
    listed = [re.findall(r'<tr class="member" data-image-id="([0-9a-f]+)"', report.pages[n]) for n in names]
    assert sorted(sum(listed, [])) == sorted(many["image_id"]) and len(listed[0]) == MEMBERS_PER_PAGE
    assert all(f'href="{names[1]}"' in report.pages[n] for n in names if n != names[1])  # the pager
    transaction = Transaction(store_copy.root)
    report.stage(transaction, store_copy.run_folder(tiny_store.summary.run_id))
    transaction.commit()
    assert set(_pages(store_copy)) == set(report.pages)  # pages of clusters no longer there are gone


def test_verdicts_come_from_the_verdict_column_and_none_reads_unsure() -> None:
    images = pd.DataFrame({"fake_score": [0.9, 0.2, np.nan, 0.5], "verdict": ["real", None, "generated", "unsure"]})
    assert verdict_of(images).tolist() == ["real", "unsure", "generated", "unsure"]


def test_parsed_designs_come_with_how_far_to_trust_them(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    images, clusters = store.images(), store.clusters()
    pictures = report_pictures(store, images, clusters)
    assert not any(card["design"]["described"] for card in pictures.cards)  # the spectral fingerprint parses nothing
    assert 'id="parsing-caveat"' not in render_report(store, images, clusters, store.errors(), tiny_store.summary, pictures).index
    row = empty_parsed(1).iloc[0].to_dict() | {"parsed_upsampling_family": "learned", "parsed_upsampling_family_confidence": 0.93,
                                               "parsed_skip": "unet", "parsed_skip_confidence": 0.8, "parsed_loss_family_adversarial": 0.7}
    pictures.cards[0]["design"]["described"] = described_design(row)
    html = render_report(store, images, clusters, store.errors(), tiny_store.summary, pictures).index
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


def test_member_rows_link_to_their_investigations(store_copy, tiny_store: SimpleNamespace) -> None:
    images, clusters = store_copy.images(), store_copy.clusters()
    member = images[images["cluster_id"] == clusters["cluster_id"].iloc[0]].iloc[0]
    (store_copy / "investigations").mkdir(exist_ok=True)  # other tests may have investigated the shared tiny store
    (store_copy / "investigations/20260101T000000Z.html").write_text(store_copy.investigate([member["path"]], k=3).to_html())
    report = render_report(store_copy, images, clusters, store_copy.errors(), tiny_store.summary)
    row = report.pages[page_name(int(member["cluster_id"]))].split(f'data-image-id="{member["image_id"]}"')[1].split("</tr>")[0]
    assert 'href="../../investigations/20260101T000000Z.html"' in row
    assert 'href="../investigations/20260101T000000Z.html"' in report.index


@pytest.fixture(scope="module")
def demo_like_store(tiny_zoo: SimpleNamespace, prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A store as the demo makes one: the shipped model (fake scores, parsed designs) over the tiny zoo."""
    from flows import Store

    store = Store(tmp_path_factory.mktemp("demo-like") / "store")
    summary = store.run([str(tiny_zoo.root)], model="default", shard_size=64, min_cluster_size=5)
    return SimpleNamespace(store=store, summary=summary)


def test_screenshots_show_verdicts_map_members_and_unassigned(demo_like_store: SimpleNamespace, tmp_path: Path) -> None:
    store, summary = demo_like_store.store, demo_like_store.summary
    images, clusters = store.images(), store.clusters()
    assert len(clusters) and (images["cluster_id"] == NO_CLUSTER).any()
    index = store / store.REPORT
    html = index.read_text()
    counts = verdict_of(images).value_counts()
    for key in ("run", "store"):  # the first run: every image is new
        found = re.search(rf'id="verdicts-{key}">.*?count-generated">(\d+)<.*?count-real">(\d+)<.*?count-unsure">(\d+)<', html, re.S)
        assert [int(n) for n in found.groups()] == [int(counts.get(v, 0)) for v in ("generated", "real", "unsure")]
    # The shipped calibration calls most of this tiny zoo's fakes unsure (none generated): at least two verdicts show.
    assert sum(counts) == len(images) and (counts > 0).sum() >= 2

    page = _screenshot(index, tmp_path / "report-index.png", tmp_path, "1200,2400")
    without = render_report(store, images.assign(cluster_id=-1), clusters.head(0), store.errors(), summary)
    (tmp_path / "empty.html").write_text(without.index)
    empty = _screenshot(tmp_path / "empty.html", tmp_path / "report-empty.png", tmp_path, "1200,2400")
    assert page.std() > 20 and _colourful(page).mean() > 2 * _colourful(empty).mean()
    # The map: coloured dots of several clusters in the map's box, which the empty report (one grey group) lacks.
    hues = np.asarray(Image.fromarray(page).convert("HSV"))[..., 0][_colourful(page)]
    assert len(np.unique(hues // 16)) >= min(3, len(clusters))
    dom = _chromium_run(index, tmp_path, "--dump-dom").stdout
    assert 'id="batch-map"' in dom and dom.count("<circle ") == len(images)
    assert 'id="unassigned-link" href="report/unassigned.html"' in dom

    # A cluster page: every member, a thumbnail each.
    top = int(clusters["cluster_id"].iloc[0])
    members = _screenshot(store / "current/report" / page_name(top), tmp_path / "report-cluster.png", tmp_path)
    rows = np.flatnonzero(_colourful(members).sum(axis=1) > 20)
    assert len(rows) > 300  # thumbnail after thumbnail down the page
    listed = _chromium_run(store / "current/report" / page_name(top), tmp_path, "--dump-dom").stdout
    assert listed.count('class="member"') == int(clusters["size"].iloc[0]) == listed.count('class="thumbnail"')
    unassigned = _chromium_run(store / "current/report" / page_name(NO_CLUSTER), tmp_path, "--dump-dom").stdout
    assert unassigned.count('class="member"') == int((images["cluster_id"] == NO_CLUSTER).sum())


def test_cluster_table_sorts_in_chromium(demo_like_store: SimpleNamespace, tmp_path: Path) -> None:
    store = demo_like_store.store
    html = (store / store.REPORT).read_text()
    click = "<script>document.querySelector('#cluster-table thead th:nth-child(2)').click();</script></body>"
    (tmp_path / "sorted.html").write_text(html.replace("</body>", click))
    dom = _chromium_run(tmp_path / "sorted.html", tmp_path, "--dump-dom").stdout
    table = dom.split('id="cluster-table"')[1].split("</table>")[0]
    sizes = [int(s) for s in re.findall(r'<tr data-cluster-id="-?\d+">.*?<td class="num">(\d+)</td>', table, re.S)]
    assert sizes == sorted(sizes) and len(sizes) == len(store.clusters())  # smallest first after one click


def test_cluster_cards_drawn_on_every_core_are_those_drawn_one_at_a_time(tiny_store: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    images, clusters = tiny_store.store.images(), tiny_store.store.clusters()
    path_of = dict(zip(images["image_id"], images["path"]))
    one_at_a_time = [_cluster_card(row, images, path_of) for row in clusters.head(CLUSTERS_SHOWN).itertuples(index=False)]
    monkeypatch.setattr("flows.report.pinned_threads", lambda: 2)  # other tests pin one thread: take the threaded path here
    assert len(one_at_a_time) > 1 and cluster_cards(images, clusters) == one_at_a_time
