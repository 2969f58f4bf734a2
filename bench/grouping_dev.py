"""Development check of OriginClusterer settings on batch-level grouping (issue 25), one JSON line per set.

    python -m bench.grouping_dev '{"split_excess": 3.0}' --zoo ZOO_DIR --synthetic \\
        --external EXT_DIR --external-fingerprints EXT_FEATS.npz [--cache DIR] \\
        [--never-seen] [--per-member N] [--synthetic-n N]

Sets: a zoo (`genprint zoo build`; its images fingerprinted with the shipped model and spectral, cached
under --cache), with its seed pairs (each `unseen_seed` member and its train parent: pairwise ARI,
told apart at >= 0.8), or with --never-seen its unseen-seed and unseen-architecture members and the
reals only, and with --per-member N subsampled to N images a member (10 N reals); synthetic origins in
pairs sharing a design (`bench.clustering_scale`, 1e4 or --synthetic-n);
an external corpus (images.parquet with `size`, `view`, `member_id`; fingerprints precomputed per
view as `VIEW_learned` / `VIEW_spectral`, rows in that table's order for 64 px), whole and
subsampled to 10 images per generator. Each fingerprint alone and both concatenated (fused).
Metrics over generated images (`clustering.metrics`), reals counted by `real_in_generated_clusters`.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from clustering import metrics
from clustering.origin import OriginClusterer
from clustering.vectors import normalise

Case = tuple[str, np.ndarray, np.ndarray, list[tuple[int, int]]]  # name, vectors, truth (-1 real), seed pairs


def _fused(learned: np.ndarray, spectral: np.ndarray) -> np.ndarray:
    return np.hstack([normalise(learned), normalise(spectral)])


def _variants(learned: np.ndarray, spectral: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    yield from (("learned", learned), ("spectral", spectral), ("fused", _fused(learned, spectral)))


def zoo_cases(root: Path, cache: Path, never_seen: bool = False, per_member: int | None = None) -> Iterator[Case]:
    path = cache / f"{root.resolve().name}_fingerprints.npz"
    if not path.is_file():
        from fingerprinting.models import load_fingerprinter
        from fingerprinting.training_data import read_pixels

        images = pd.read_parquet(root / "images.parquet")
        pixels = read_pixels([str(root / p) for p in images.path])
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, member=images.member_id.fillna("").to_numpy().astype(str),
                 learned=load_fingerprinter("default").fingerprint(pixels).vectors,
                 spectral=load_fingerprinter("spectral").fingerprint(pixels).vectors)
    saved = np.load(path)
    generators = pd.read_parquet(root / "generators.parquet")
    codes = {m: i for i, m in enumerate(sorted(generators.member_id))}
    truth = np.array([codes.get(m, -1) for m in saved["member"]])
    pairs = [(codes[g.member_id], codes[g.parent_id]) for g in generators.itertuples() if g.split == "unseen_seed"]
    keep, label = np.ones(len(truth), bool), ""
    if never_seen:  # the parents are training members: no pair is left to tell apart
        unseen = {codes[g.member_id] for g in generators.itertuples() if g.split in ("unseen_seed", "unseen_arch")}
        keep, pairs, label = (truth < 0) | np.isin(truth, list(unseen)), [], " never-seen"
    if per_member is not None:
        rng = np.random.default_rng(0)
        rows = np.flatnonzero(keep)
        picked = []
        for c in np.unique(truth[rows]):
            of_c = rows[truth[rows] == c]
            picked.append(rng.choice(of_c, min(10 * per_member if c < 0 else per_member, len(of_c)), replace=False))
        keep = np.zeros(len(truth), bool)
        keep[np.concatenate(picked)] = True
        label += f" {per_member} per member"
    for name, vectors in _variants(saved["learned"], saved["spectral"]):
        yield f"zoo {root.name}{label} {name}", vectors[keep], truth[keep], pairs


def external_cases(root: Path, fingerprints: Path) -> Iterator[Case]:
    images = pd.read_parquet(root / "images.parquet")
    images = images[images["size"] == 64]
    saved = np.load(fingerprints)
    for view in ("clean", "jpeg85"):
        rows = images[images.view == view].reset_index(drop=True)
        codes = {m: i for i, m in enumerate(sorted(rows.member_id.dropna().unique()))}
        truth = np.array([codes[m] if isinstance(m, str) else -1 for m in rows.member_id])
        learned, spectral = saved[f"{view}_learned"], saved[f"{view}_spectral"]
        if len(learned) != len(rows):
            raise ValueError(f"{fingerprints}: {len(learned)} {view} rows, the table has {len(rows)}")
        rng = np.random.default_rng(0)
        ten = np.concatenate([rng.choice(np.flatnonzero(truth == c), 10, replace=False) for c in range(truth.max() + 1)]
                             + [rng.choice(np.flatnonzero(truth < 0), 100, replace=False)])
        for name, vectors in _variants(learned, spectral):
            yield f"external {view} {name}", vectors, truth, []
            if view == "clean":
                yield f"external {view} 10 per generator {name}", vectors[ten], truth[ten], []


def synthetic_case(n: int = 10_000) -> Case:
    from bench.clustering_scale import scale_fingerprints

    data = scale_fingerprints(n, 64)
    # scale_fingerprints puts origins 2i and 2i+1 on one design.
    return f"synthetic {n:.0e}", data.vectors, data.origins, [(2 * i + 1, 2 * i) for i in range(data.origins.max() // 2)]


def measure(params: dict, case: Case) -> dict:
    name, vectors, truth, pairs = case
    start = time.perf_counter()
    labels = OriginClusterer(**params).fit_predict(vectors)
    generated = truth >= 0
    report = metrics.clustering_report(truth[generated], labels[generated])
    row = {"set": name, "ari": round(report["ari"], 3), "bcubed_f1": round(report["bcubed_f1"], 3),
           "noise": round(report["noise_fraction"], 3), "clusters": int(labels.max() + 1), "true": len(np.unique(truth[generated])),
           "real_in_generated": round(metrics.real_in_generated_clusters(labels, generated), 3),
           "seconds": round(time.perf_counter() - start, 1)}
    if pairs:
        aris = [metrics.adjusted_rand(truth[(truth == a) | (truth == b)], labels[(truth == a) | (truth == b)]) for a, b in pairs]
        row["pairs_told_apart"] = f"{sum(a >= 0.8 for a in aris)}/{len(aris)}"
        row["pair_ari"] = [round(a, 2) for a in aris] if len(aris) <= 6 else round(float(np.median(aris)), 2)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="{}", help="OriginClusterer parameters as JSON")
    parser.add_argument("--zoo", type=Path, action="append", default=[])
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--external", type=Path)
    parser.add_argument("--external-fingerprints", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("data/grouping_dev"))
    parser.add_argument("--never-seen", action="store_true", help="zoo: only unseen-seed and unseen-architecture members, and the reals")
    parser.add_argument("--per-member", type=int, help="zoo: at most this many images a member (and 10x as many reals)")
    parser.add_argument("--synthetic-n", type=int, default=10_000, help="synthetic: about this many fingerprints")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    cases: list[Iterator[Case]] = [zoo_cases(root, args.cache, args.never_seen, args.per_member) for root in args.zoo]
    if args.synthetic:
        cases.append(iter([synthetic_case(args.synthetic_n)]))
    if args.external is not None:
        cases.append(external_cases(args.external, args.external_fingerprints))
    for group in cases:
        for case in group:
            print(json.dumps({"params": params, **measure(params, case)}), flush=True)


if __name__ == "__main__":
    main()
