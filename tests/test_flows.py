"""Real Prefect flows on the tiny zoo: tables and schemas, incremental runs, stable ids, attribution, investigate."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clustering.attribution import OpenSetAttributor
from flows import Store, schemas

RUN_COLUMNS = {"first_seen_run", "last_seen_run", "run_id"}


def _with_members(store: Store, zoo: SimpleNamespace) -> pd.DataFrame:
    """The store's images with the zoo's truth (member_id; None for real photographs)."""
    truth = zoo.images[["path", "member_id", "is_fake"]]
    return store.images().merge(truth, on="path", how="left", validate="one_to_one")


def _cleanest_member(images: pd.DataFrame) -> str:
    """The member whose images make up most of their majority cluster (the tiny zoo's clearest origin)."""
    fakes = images[images["is_fake"].astype(bool) & (images["cluster_id"] >= 0)]
    best, best_purity = None, -1.0
    for member, rows in fakes.groupby("member_id"):
        cluster = rows["cluster_id"].mode().iloc[0]
        purity = (images.loc[images["cluster_id"] == cluster, "member_id"] == member).mean()
        if purity > best_purity:
            best, best_purity = member, purity
    return best


def _frames(store: Store) -> dict[str, pd.DataFrame]:
    return {"images": store.images(), "clusters": store.clusters(), "errors": store.errors(), "paths": store.paths()}


# ---- one run: the tables ---------------------------------------------------------------------------


def test_tables_have_their_explicit_schemas(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    expected = {
        Store.IMAGES: schemas.images_schema(),
        Store.CLUSTERS: schemas.clusters_schema(),
        Store.ERRORS: schemas.errors_schema(),
        Store.PATHS: schemas.paths_schema(),
        Store.IDS: schemas.ids_schema(),
    }
    for rel, schema in expected.items():
        assert pq.read_schema(store / rel).remove_metadata().equals(schema), rel
    run_files = list((store / "runs").glob("run_date=*/run_id=*/run.parquet"))
    assert len(run_files) == 1 and pq.read_schema(run_files[0]).remove_metadata().equals(schemas.runs_schema())


def test_images_table_holds_every_image_once_by_content(tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace) -> None:
    images = tiny_store.store.images()
    assert len(images) == len(tiny_zoo.images) == tiny_store.summary.images_new
    assert images["image_id"].is_unique and set(images["path"]) == set(tiny_zoo.images["path"])
    for row in images.head(5).itertuples():
        assert row.image_id == hashlib.sha256(Path(row.path).read_bytes()).hexdigest()
    assert (images[["width", "height"]] == 32).all().all() and set(images["format"]) == {"PNG"}
    assert images["first_seen_run"].eq(tiny_store.summary.run_id).all()
    # The spectral fingerprint has no detector: no fake score, so nothing is called an unknown generator.
    assert images["fake_score"].isna().all() and not images["unknown_generator"].any()
    assert images["attributed_generator"].isna().all()


def test_clusters_table_agrees_with_images(tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace) -> None:
    store = tiny_store.store
    images, clusters = store.images(), store.clusters()
    assert len(clusters) >= 2 and tiny_store.summary.clusters == len(clusters)
    counts = images[images["cluster_id"] >= 0]["cluster_id"].value_counts()
    assert dict(zip(clusters["cluster_id"], clusters["size"])) == counts.to_dict()
    assert list(clusters["size"]) == sorted(clusters["size"], reverse=True)
    for row in clusters.itertuples():
        members = set(images.loc[images["cluster_id"] == row.cluster_id, "image_id"])
        assert 0 < len(row.exemplar_image_ids) <= 8 and set(row.exemplar_image_ids) <= members
    assert (images.loc[images["cluster_id"] < 0, "cluster_probability"] == 0).all()
    # The clusters follow origins: no generator's images are scattered over clusters, and clusters hold
    # generated images, not photographs. (Telling the tiny zoo's barely trained generators apart is
    # more than it can show: the zoo benchmarks measure purity.)
    truth = _with_members(store, tiny_zoo).fillna({"member_id": "real"})
    clustered = truth[truth["cluster_id"] >= 0]
    generated = clustered[clustered["member_id"] != "real"]
    assert len(generated) >= len(tiny_zoo.images[tiny_zoo.images["is_fake"]]) // 2
    assert (generated.groupby("member_id")["cluster_id"].nunique() == 1).all()
    assert (clustered["member_id"] != "real").mean() >= 0.9


def test_vectors_index_map_and_run_history(tiny_store: SimpleNamespace) -> None:
    store = tiny_store.store
    images = store.images()
    files = sorted((store / "runs").glob("run_date=*/run_id=*/vectors/*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.schema.field("vector").type == pa.list_(pa.float32(), store.meta()["dim"])
    assert sorted(table.column("image_id").to_pylist()) == sorted(images["image_id"])
    ids, vectors = store.vectors()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    id_map = store.ids()
    assert sorted(id_map["id"]) == list(range(len(images))) and set(id_map["image_id"]) == set(images["image_id"])
    runs = store.runs()
    assert runs["run_id"].tolist() == [tiny_store.summary.run_id]
    assert runs["run_date"].iloc[0] == f"{runs['run_id'].iloc[0][:4]}-{runs['run_id'].iloc[0][4:6]}-{runs['run_id'].iloc[0][6:8]}"
    assert runs["images_new"].iloc[0] == len(images) and runs["model_name"].iloc[0] == "spectral"
    # Each stage's peak memory is measured on its own and printed with the summary.
    peaks = tiny_store.summary.peak_memory_mb
    assert list(peaks) == ["fingerprint", "update"] and all(mb > 50 for mb in peaks.values())
    assert f"peak memory: fingerprint {peaks['fingerprint']:.0f} MiB, update {peaks['update']:.0f} MiB" in tiny_store.summary.describe()
    record = json.loads(next((store / "runs").glob("*/*/run.json")).read_text())
    assert record["parameters"]["shard_size"] == 16 and record["model"]["version"] == store.meta()["model_version"]
    assert (store / Store.REPORT).is_file() and next((store / "runs").glob("*/*/report.html")).is_file()
    assert not (store / "work" / "shards").exists()



def test_the_updates_stages_are_prefect_tasks_of_their_names(
    store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user following a run in Prefect's UI (PREFECT_API_URL set: the run is a flow) sees each stage of the update, the one commit last."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    store_copy.run([str(tiny_zoo.root)], **run_options)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["genprint-run"])))
        (flow_run,) = [run for run in runs if run.parameters.get("store") == str(store_copy.root)]
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])), sort=TaskRunSort.EXPECTED_START_TIME_ASC
        )
    stages = [run.name.rsplit("-", 1)[0] for run in task_runs if not run.name.startswith(("discover", "fingerprint-shard"))]
    assert stages == ["index", "clustering", "attribution", "images", "verdicts", "tables", "design-lending", "report", "commit"]

# ---- incremental behaviour -------------------------------------------------------------------------


def test_second_run_adds_nothing_and_fingerprints_nothing(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    before = _frames(store_copy)
    vector_files = sorted((store_copy / "runs").rglob("vectors/*.parquet"))
    unchanged = [Store.IMAGES, Store.CLUSTERS, Store.INDEX, Store.IDS]
    written = {rel: (store_copy / rel).stat().st_mtime_ns for rel in unchanged}
    summary = store_copy.run([str(tiny_zoo.root)], **run_options)
    assert (summary.images_new, summary.shards, summary.clustering) == (0, 0, "unchanged")
    assert summary.images_known == len(before["images"])
    for name, frame in _frames(store_copy).items():
        pd.testing.assert_frame_equal(frame, before[name], obj=name)
    assert sorted((store_copy / "runs").rglob("vectors/*.parquet")) == vector_files
    assert {rel: (store_copy / rel).stat().st_mtime_ns for rel in unchanged} == written  # nothing rewritten
    assert len(store_copy.runs()) == 2


def test_new_images_duplicates_and_unusable_inputs(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict, tmp_path: Path) -> None:
    previous = store_copy.images()
    extra = tmp_path / "extra"
    extra.mkdir()
    original = Path(tiny_zoo.images["path"].iloc[0])
    shutil.copy(original, extra / "same-bytes.png")
    flipped = np.asarray(Image.open(tiny_zoo.images["path"].iloc[1]))[:, ::-1]
    Image.fromarray(np.ascontiguousarray(flipped)).save(extra / "new.png")
    (extra / "notes.png").write_text("not an image at all")
    summary = store_copy.run([str(tiny_zoo.root), str(extra)], **run_options)

    assert (summary.images_new, summary.errors, summary.clustering) == (1, 1, "assign")
    images = store_copy.images().set_index("image_id")
    assert len(images) == len(previous) + 1
    same = hashlib.sha256(original.read_bytes()).hexdigest()
    assert images.loc[same, "n_paths"] == 2 and images.loc[same, "path"] == str(original)
    paths = store_copy.paths()
    assert set(paths.loc[paths["image_id"] == same, "path"]) == {str(original), str(extra / "same-bytes.png")}
    errors = store_copy.errors()
    assert errors[["path", "error", "run_id"]].values.tolist() == [[str(extra / "notes.png"), "not an image (text)", summary.run_id]]
    # Assignment leaves every earlier image where it was.
    kept = images.loc[previous["image_id"], "cluster_id"].to_numpy()
    assert np.array_equal(kept, previous["cluster_id"].to_numpy())
    assert images.loc[hashlib.sha256((extra / "new.png").read_bytes()).hexdigest(), "first_seen_run"] == summary.run_id
    # The unusable file is not decoded again: a third run reports it from the table.
    third = store_copy.run([str(extra)], **run_options)
    assert (third.images_new, third.shards, third.errors) == (0, 0, 1)


def test_cluster_ids_are_stable_across_a_reclustering(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    before = store_copy.images().set_index("image_id")["cluster_id"]
    summary = store_copy.run([str(tiny_zoo.root)], **run_options, recluster=True)
    assert summary.clustering == "recluster"
    after = store_copy.images().set_index("image_id")["cluster_id"]
    pd.testing.assert_series_equal(after.sort_index(), before.sort_index())
    events = pq.read_table(next((store_copy / "runs").glob(f"*/run_id={summary.run_id}/cluster_events.parquet"))).to_pandas()
    assert set(events["kind"]) == {"continued"} and set(events["cluster_id"]) == set(store_copy.clusters()["cluster_id"])



def test_a_scheduled_run_takes_its_options_as_json_and_makes_the_same_checks(
    store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict
) -> None:
    """`serve` hands its runs their options as a deployment's JSON parameters; each run checks them as `Store.run` does."""
    from flows.flows import scheduled_run_flow
    from flows.lock import StoreLockedError
    from flows.runs import RunOptions

    options = json.loads(json.dumps(asdict(RunOptions(**run_options))))
    summary = scheduled_run_flow(str(store_copy.root), [str(tiny_zoo.root)], options)
    assert (summary.clustering, summary.images_new, summary.images_total) == ("unchanged", 0, len(store_copy.images()))
    with store_copy.lock("another writer"), pytest.raises(StoreLockedError):
        scheduled_run_flow(str(store_copy.root), [str(tiny_zoo.root)], options)

# ---- attribution -----------------------------------------------------------------------------------


def test_registered_generator_is_attributed_from_the_next_run(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    member = _cleanest_member(_with_members(store_copy, tiny_zoo))
    name = f"gen-{member}"
    references = sorted(tiny_zoo.images.loc[tiny_zoo.images["member_id"] == member, "path"])[:6]
    errors = store_copy.known.add(name, references, model="spectral")
    assert errors.empty
    assert store_copy.known.list()[["name", "images"]].values.tolist() == [[name, 6]]

    summary = store_copy.run([str(tiny_zoo.root)], **run_options)
    assert summary.images_new == 0
    images = _with_members(store_copy, tiny_zoo)
    mine = images["member_id"] == member
    assert (images.loc[mine, "attributed_generator"] == name).mean() >= 0.75
    assert (images.loc[~mine, "attributed_generator"] == name).mean() <= 0.2
    assert images.loc[mine, "attribution_score"].notna().all()
    # The member's cluster takes its members' vote (on the tiny zoo it may share the cluster with its
    # seed sibling: then the name has about half the votes).
    home = images.loc[mine, "cluster_id"].mode().iloc[0]
    cluster = store_copy.clusters().set_index("cluster_id").loc[home]
    votes = images.loc[images["cluster_id"] == home, "attributed_generator"]
    assert (votes == name).mean() >= 0.4
    winner, share = OpenSetAttributor.attribute_clusters(np.zeros(len(votes), int), [v if isinstance(v, str) else None for v in votes])[0]
    assert winner in (name, None) and (cluster["attributed_generator"] if isinstance(cluster["attributed_generator"], str) else None) == winner
    assert cluster["attribution_share"] == pytest.approx(share if winner else 0.0)

    assert store_copy.known.remove(name) == 6 and store_copy.known.list().empty
    store_copy.run([str(tiny_zoo.root)], **run_options)
    assert store_copy.images()["attributed_generator"].isna().all()


# ---- investigate -----------------------------------------------------------------------------------


def test_investigate_returns_the_cluster_and_same_origin_neighbours(tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace, tmp_path: Path) -> None:
    store = tiny_store.store
    images = _with_members(store, tiny_zoo)
    member = _cleanest_member(images)
    stored = images[images["member_id"] == member].iloc[0]
    # The same pixels saved again: other bytes (a new image), the same fingerprint.
    resaved = tmp_path / "resaved.png"
    Image.open(stored["path"]).save(resaved, optimize=True, compress_level=1)
    assert hashlib.sha256(resaved.read_bytes()).hexdigest() != stored["image_id"]

    result = store.investigate([stored["path"], str(resaved), str(tmp_path / "missing.png")], k=5)
    queries = result.queries.set_index("query")
    assert bool(queries.loc[stored["path"], "in_store"]) and not bool(queries.loc[str(resaved), "in_store"])
    assert queries.loc[stored["path"], "cluster_id"] == stored["cluster_id"]
    assert queries.loc[str(resaved), "cluster_id"] == stored["cluster_id"]  # assigned like a new image
    assert queries.loc[str(tmp_path / "missing.png"), "error"] == "file not found"

    own = result.neighbours[result.neighbours["query"] == stored["path"]]
    assert len(own) == 5 and stored["image_id"] not in set(own["image_id"])
    same_member = own["path"].map(images.set_index("path")["member_id"]) == member
    assert same_member.sum() >= 4
    twin = result.neighbours[result.neighbours["query"] == str(resaved)].iloc[0]
    assert twin["image_id"] == stored["image_id"] and twin["similarity"] > 0.999

    payload = json.loads(result.to_json())
    assert payload["queries"][0]["cluster"]["cluster_id"] == stored["cluster_id"]
    assert len(payload["queries"][0]["cluster"]["members"]) > 0 and "resaved.png" in result.to_html()
    assert len(store.images()) == len(images)  # nothing was added
