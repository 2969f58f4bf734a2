"""Ad-hoc investigation: where does this image come from, and what else came from there?

For each query image: its fake score, verdict (generated / real / unsure, as a run gives it) and
out-of-distribution score, its parsed design, the k nearest stored fingerprints (path,
similarity, cluster), its cluster (the stored one if the same bytes are stored, else the cluster
it would be assigned to) with that cluster's members and design, and its attribution. Nothing is
written to the store.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clustering.index import FingerprintIndex, IndexCorruptError
from fingerprinting.embed import embed_images
from fingerprinting.fingerprinter import Fingerprinter, attributor_params
from fingerprinting.images import ImageLoadError, load_image
from fingerprinting.parsing import parsed_columns
from flows.clustering_step import CLUSTERER_STATE, assign_new
from flows.known import KnownGenerators
from flows.model import open_model
from flows.parsed_view import described_design
from flows.schemas import NO_CLUSTER
from flows.store import StoreError, StoreFolder
from flows.verdicts import verdicts_of

CLUSTER_MEMBERS_SHOWN = 20
IMAGE_IDS_META = "genprint-image-ids"  # names the queries' image ids in the page's head: the report links to it from them


@dataclass
class Investigation:
    """`queries`: one row per query image; `neighbours`: k rows per query; `clusters`: the queries' clusters."""

    queries: pd.DataFrame
    neighbours: pd.DataFrame
    clusters: pd.DataFrame

    def to_dict(self) -> dict:
        """JSON-ready: one entry per query with its neighbours and cluster nested."""
        out = []
        clusters = {int(r["cluster_id"]): r for r in _records(self.clusters)}
        for query in _records(self.queries):
            entry = dict(query)
            entry["neighbours"] = [
                {k: v for k, v in n.items() if k != "query"}
                for n in _records(self.neighbours[self.neighbours["query"] == query["query"]])
            ]
            entry["cluster"] = clusters.get(query["cluster_id"]) if query.get("cluster_id") is not None else None
            out.append(entry)
        return {"queries": out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_html(self) -> str:
        """A small self-contained page: per query its facts and its neighbour table."""
        entries = self.to_dict()["queries"]
        ids = " ".join(str(e["image_id"]) for e in entries if isinstance(e.get("image_id"), str))
        parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>genprint investigate</title>",
                 f'<meta name="{IMAGE_IDS_META}" content="{html.escape(ids)}">',
                 "<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse;font-size:13px}"
                 "td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body><h1>genprint investigate</h1>"]
        for entry in entries:
            facts = {k: v for k, v in entry.items() if k not in ("neighbours", "cluster") and not k.startswith("parsed_")}
            parts.append(f"<h2>{html.escape(str(entry['query']))}</h2><table>")
            parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items()]
            parts.append("</table><h3>parsed design</h3><table>")
            parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in described_design(entry)]
            parts.append("</table><h3>nearest stored fingerprints</h3><table><tr><th>rank</th><th>similarity</th><th>cluster</th><th>path</th></tr>")
            parts += [
                f"<tr><td>{n['rank']}</td><td>{n['similarity']:.3f}</td><td>{n['cluster_id']}</td><td>{html.escape(str(n['path']))}</td></tr>"
                for n in entry["neighbours"]
            ]
            parts.append("</table>")
        parts.append("</body></html>")
        return "\n".join(parts)


def investigate(store: StoreFolder, images: Sequence[str], k: int = 10) -> Investigation:
    """See the module docstring; raises `StoreError` for an empty or damaged store."""
    meta = store.meta()
    if not meta.get("next_int_id"):
        raise StoreError(f"the store {store.root} holds no fingerprints yet: run `genprint run SOURCE --store {store.root}` first")
    try:
        index = FingerprintIndex.load(store / store.INDEX)
    except IndexCorruptError as exc:
        raise StoreError(str(exc)) from exc
    _, fingerprinter = open_model(store, None)
    loaded, failed = [], []
    for path in images:
        try:
            loaded.append(load_image(path))
        except ImageLoadError as exc:
            failed.append({"query": path, "error": exc.reason})
    chunk = embed_images(loaded, fingerprinter)
    stored = store.images().set_index("image_id")
    clusters = store.clusters()
    ids = store.ids().set_index("id")["image_id"]

    queries = chunk.records.rename(columns={"path": "query"})
    in_store = queries["image_id"].isin(stored.index).to_numpy()
    cluster_ids = np.full(len(queries), NO_CLUSTER, np.int64)
    probabilities = np.zeros(len(queries), np.float32)
    if in_store.any():
        cluster_ids[in_store] = stored.loc[queries["image_id"][in_store], "cluster_id"].to_numpy()
        probabilities[in_store] = stored.loc[queries["image_id"][in_store], "cluster_probability"].to_numpy()
    fresh = ~in_store
    if fresh.any() and (store / CLUSTERER_STATE).is_file():
        assigned = assign_new(store.root, queries["image_id"][fresh].tolist(), chunk.vectors[fresh], 0)
        cluster_ids[fresh], probabilities[fresh] = assigned.labels, assigned.probabilities
    queries = queries.assign(in_store=in_store, cluster_id=cluster_ids, cluster_probability=probabilities)
    sizes = clusters.set_index("cluster_id")["size"]
    queries["cluster_size"] = queries["cluster_id"].map(sizes).fillna(0).astype(np.int64)
    queries = _attribute(store, queries, chunk.vectors, attributor_params(fingerprinter))
    queries = _judge(queries, chunk.vectors, fingerprinter)

    neighbours = _neighbours(index, ids, stored, queries, chunk.vectors, k)
    shown = clusters[clusters["cluster_id"].isin(queries["cluster_id"])].copy()
    members = stored.reset_index().sort_values(["cluster_probability", "path"], ascending=[False, True])
    member_paths = members.groupby("cluster_id")["path"].apply(lambda s: list(s[:CLUSTER_MEMBERS_SHOWN]))
    shown["members"] = shown["cluster_id"].map(member_paths)
    columns = ["query", "image_id", "in_store", "width", "height", "format", "fake_score", "verdict", "ood_score", "cluster_id",
               "cluster_probability", "cluster_size", "attributed_generator", "attribution_score", *parsed_columns()]
    queries = pd.concat([queries[columns], pd.DataFrame(failed)], ignore_index=True)
    return Investigation(queries=queries, neighbours=neighbours, clusters=shown.reset_index(drop=True))


def _attribute(store: StoreFolder, queries: pd.DataFrame, vectors: np.ndarray, rule: dict[str, object]) -> pd.DataFrame:
    names, scores = KnownGenerators(store).attribute(vectors, rule)
    return queries.assign(attributed_generator=names, attribution_score=scores)


def _judge(queries: pd.DataFrame, vectors: np.ndarray, fingerprinter: Fingerprinter) -> pd.DataFrame:
    """The verdict and out-of-distribution score a run gives an image (flows.verdicts), for each query."""
    verdicts, ood = verdicts_of(queries["fake_score"].to_numpy(np.float64), vectors, fingerprinter)
    return queries.assign(verdict=verdicts, ood_score=ood)


def _neighbours(
    index: FingerprintIndex, ids: pd.Series, stored: pd.DataFrame, queries: pd.DataFrame, vectors: np.ndarray, k: int
) -> pd.DataFrame:
    """The k nearest stored images of each query, the query's own bytes excluded."""
    columns = ["query", "rank", "image_id", "path", "similarity", "cluster_id", "attributed_generator", "fake_score"]
    if not len(queries):
        return pd.DataFrame(columns=columns)
    sims, found = index.search(vectors, k + 1)
    rows = []
    for q, (query, own_id) in enumerate(zip(queries["query"], queries["image_id"])):
        rank = 0
        for similarity, int_id in zip(sims[q], found[q]):
            image_id = ids.get(int(int_id)) if int_id >= 0 else None
            if image_id is None or image_id == own_id or image_id not in stored.index or rank == k:
                continue
            rank += 1
            image = stored.loc[image_id]
            rows.append((query, rank, image_id, image["path"], float(similarity), int(image["cluster_id"]),
                         image["attributed_generator"], image["fake_score"]))
    return pd.DataFrame(rows, columns=columns)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values (NaN -> None, numpy scalars and arrays -> Python)."""
    return json.loads(frame.to_json(orient="records", default_handler=str))
