"""Do two checkouts of genprint write the same store? Runs both over the same images and compares the files byte for byte.

    python scripts/compare-runs.py OTHER_CHECKOUT [--work DIR]

Builds a tiny zoo (with this checkout's code), then in a fresh process per checkout makes the
same sequence of writes into a store of its own: a first run over half the images, a registered
generator with a known design, a run that only assigns a few more (everything is attributed again:
the registry changed), a run over all of them plus an unusable file (a re-clustering), and a run
with nothing new. Run ids (a timestamp and a random token) are fixed
so that the tables can be compared as bytes; everything else is each checkout's own code. Exits
non-zero when a compared file differs. The report pages (they hold timings) and the registry's
`added_at` are not compared, nor the clusterer's `timings` in `index/clusterer.npz` (wall-clock
seconds of its fit): that file is compared array by array without them.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parents[1]
TINY_ZOO = dict(members=4, images_per_member=12, size=32, seed=0, steps=10)
RUN = dict(model="spectral", shard_size=16, min_cluster_size=5)
DESIGN = {"upsampling": "transposed", "up_blocks": 3, "loss_types": ["l1"]}
COMPARED = ("current/*.parquet", "index/*", "runs/*/*/vectors/*.parquet", "runs/*/*/cluster_events.parquet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="The checkout to compare with this one (e.g. a worktree of the base commit).")
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--model", default="spectral", help="Fingerprint model of both runs ('default' also gives verdicts).")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # internal: the checkout whose code writes --store
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _write_store(args.child, args.corpus, args.store, args.model)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="genprint-compare-"))
    corpus = work / "corpus"
    if not (corpus / "images.parquet").is_file():
        from fingerprinting.zoo import build_zoo

        build_zoo(corpus, **TINY_ZOO, on_progress=None)
    paths = [str(corpus / p) for p in sorted(pd.read_parquet(corpus / "images.parquet")["path"])]
    pd.DataFrame({"path": paths[::2]}).to_csv(work / "first.csv", index=False)
    pd.DataFrame({"path": paths[1:8:2]}).to_csv(work / "second.csv", index=False)
    (work / "extra").mkdir(exist_ok=True)
    (work / "extra" / "broken.png").write_bytes(b"not an image")
    stores = {}
    for name, checkout in (("this", HERE), ("other", args.other.resolve())):
        stores[name] = work / f"store-{name}"
        shutil.rmtree(stores[name], ignore_errors=True)
        env = dict(os.environ, PREFECT_HOME=str(work / f"prefect-{name}"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, __file__, str(checkout), "--child", str(checkout), "--corpus", str(corpus), "--store", str(stores[name]),
                   "--model", args.model]
        subprocess.run(command, env=env, check=True)
    return _compare(stores["this"], stores["other"])


def _write_store(checkout: Path, corpus: Path, store_dir: Path, model: str) -> None:
    """In this process, with `checkout`'s code: the sequence of writes of the module docstring."""
    sys.path.insert(0, str(checkout))
    from datetime import datetime, timezone

    import flows
    from flows import Store
    from flows.runs import RunContext

    assert Path(flows.__file__).resolve().is_relative_to(checkout.resolve()), f"{flows.__file__} is not under {checkout}"
    count = iter(range(1, 10))

    def fixed_start(cls, sources, parameters):
        n = next(count)
        return cls(f"20260101T00000{n}Z-00000{n}", datetime(2026, 1, 1, 0, 0, n, tzinfo=timezone.utc), tuple(sources), parameters)

    RunContext.start = classmethod(fixed_start)
    images = pd.read_parquet(corpus / "images.parquet").sort_values("path")
    fakes = images[images["is_fake"].astype(bool)]
    member = sorted(fakes["member_id"].unique())[0]
    references = [str(corpus / p) for p in fakes.loc[fakes["member_id"] == member, "path"].head(6)]
    first, second = (corpus.parent / name for name in ("first.csv", "second.csv"))  # written by the parent, shared
    store = Store(store_dir)
    run = dict(RUN, model=model)
    summaries = [store.run([str(first)], **run)]  # a first run: clusters half the images
    store.known.add("gen-a", references, model=model, design=DESIGN)
    summaries.append(store.run([str(second)], **run, recluster=False))  # assigns, attributes all again (registry changed)
    summaries.append(store.run([str(corpus), str(corpus.parent / "extra")], **run))  # grew past 10 %: re-clusters
    summaries.append(store.run([str(corpus), str(corpus.parent / "extra")], **run))  # nothing new
    for summary in summaries:
        print(f"{checkout}: {summary.clustering}, {summary.images_total} images, {summary.clusters} clusters, {summary.errors} unusable")


def _compare(this: Path, other: Path) -> int:
    names = sorted({p.relative_to(root).as_posix() for root in (this, other) for pattern in COMPARED for p in root.glob(pattern)})
    differ = 0
    for name in names:
        digests = [_digest(root / name) if (root / name).is_file() else "absent" for root in (this, other)]
        same = digests[0] == digests[1]
        differ += not same
        print(f"{'same  ' if same else 'DIFFER'} {digests[0]} {digests[1]}  {name}")
    print(f"{len(names) - differ} of {len(names)} files identical")
    return 1 if differ else 0


def _digest(path: Path) -> str:
    """The file's bytes; of an .npz, each array's name, dtype, shape and bytes but the fit's timings."""
    if path.suffix != ".npz":
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    digest = hashlib.sha256()
    with np.load(path, allow_pickle=False) as arrays:
        for name in sorted(set(arrays.files) - {"timings"}):
            array = arrays[name]
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    sys.exit(main())
