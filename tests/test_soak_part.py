"""The soak benchmark (`python -m bench --soak`): its invariants on a short soak that re-clusters, and its section."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from bench.soak import repository_hostile_corpus, soak, to_markdown, unchanged_clusters
from bench.soak_part import section, slope
from flows import Store


def frame(pairs: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"image_id": list(pairs), "cluster_id": list(pairs.values())})


def test_unchanged_clusters_are_those_only_grown_by_images_from_no_cluster() -> None:
    before = frame({"a1": 1, "a2": 1, "b1": 2, "b2": 2, "c1": 3, "c2": 3, "d1": 4, "d2": 4, "e1": 5, "e2": 5, "f1": 6, "f2": 6})
    after = frame({
        "a1": 1, "a2": 1, "new": 1, "noise-before": 1,  # grown by a new image and earlier noise: unchanged
        "b1": 7, "b2": 7, "c1": 7, "c2": 7,  # merged: changed
        "d1": 4, "d2": 8,  # split: changed
        "e1": -1, "e2": -1,  # dissolved into noise: changed
        "f1": 9, "f2": 9,  # unchanged, but renamed: must be reported, to fail the check
    })
    found = unchanged_clusters(before, after)
    assert found.to_dict("list") == {"before": [1, 6], "after": [1, 9]}


def test_a_soak_run_that_reclusters_keeps_the_ids_of_unchanged_clusters_and_loses_nothing(
    tiny_zoo: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path: Path
) -> None:
    pool = sorted(tiny_zoo.images["path"])
    results = soak(Store(tmp_path / "store"), pool, tmp_path, runs=2, first_batch=0.6,
                   hostile=repository_hostile_corpus(), **run_options)  # the second run adds > 10%: re-clusters
    table = to_markdown(results)
    assert [r.clustering for r in results] == ["recluster"] * 2, table
    assert [r.lost for r in results] == [0, 0], table
    assert [r.duplicates for r in results] == [0, 0], table
    assert results[1].unchanged_clusters > 0, table  # the check had something to check
    assert [r.unchanged_ids_kept for r in results] == [1.0, 1.0], table
    assert all(r.offered > r.images_new > 0 and r.errors > 0 for r in results), table
    assert results[-1].images_total == sum(r.images_new for r in results), table

    markdown = section(results, len(pool), repeated=[r.rss_mb for r in results])
    assert markdown.startswith("## Soak: 20 incremental runs with hostile files\n")
    assert "| 1-2 | " in markdown and f"| {sum(r.offered for r in results)} | {results[-1].images_total} |" in markdown
    assert f"1.000 of {results[1].unchanged_clusters} ({results[1].unchanged_clusters} at re-clusterings)" in markdown


def test_slope_is_the_growth_per_run() -> None:
    assert slope([600.0, 603.0, 606.0, 609.0]) == pytest.approx(3.0) and slope([5.0]) == 0.0
