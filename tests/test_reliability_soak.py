"""Issue 7 soak: consecutive incremental runs with new and hostile files lose nothing and duplicate nothing."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from bench.hostile import make_hostile_corpus

from bench.soak import soak, to_markdown
from flows import Store


def test_a_short_soak_loses_nothing_duplicates_nothing_and_keeps_cluster_ids(
    tiny_zoo: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path: Path
) -> None:
    pool = list(tiny_zoo.images["path"])
    results = soak(
        Store(tmp_path / "store"), pool, tmp_path, runs=3, first_batch=0.75,
        hostile=lambda folder, seed: make_hostile_corpus(folder, seed=seed), recluster=False, **run_options,
    )  # recluster=False: the first run clusters, the later ones only assign (ids must all be kept)
    table = to_markdown(results)
    assert [r.lost for r in results] == [0, 0, 0], table
    assert [r.duplicates for r in results] == [0, 0, 0], table
    assert [r.clustering for r in results] == ["recluster", "assign", "assign"], table
    assert [r.cluster_ids_kept for r in results] == [1.0, 1.0, 1.0], table
    assert all(r.images_new > 0 for r in results), table
    assert results[-1].images_total == sum(r.images_new for r in results), table
