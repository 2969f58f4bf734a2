"""The store: one folder holding every table, fingerprint, index and report genprint writes (data/README.md).

`Store(path)` is also the Python entry point for notebooks:

    from flows import Store
    store = Store("data/demo/store")
    store.run(["incoming/"])            # a batch run (a Prefect flow), incremental
    store.images(); store.clusters(); store.errors()
    store.investigate(["query.png"], k=10)
    store.known.add("stylegan-lab", ["refs/stylegan/"])
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from flows import schemas
from flows.atomic import recover
from flows.errors import UserError
from flows.lock import StoreLock
from flows.shards import vectors_from_table

if TYPE_CHECKING:
    from flows.investigate import Investigation
    from flows.known import KnownGenerators
    from flows.runs import RunSummary

FORMAT_VERSION = 1


def is_in(values: pd.Series, members: set[str]) -> np.ndarray:
    """Boolean mask of ``values`` found in ``members``, by set lookups: pandas' ``isin`` would convert a
    million-long collection element by element on every call (the store's ids, its paths)."""
    return values.map(members.__contains__).to_numpy(bool)


class StoreError(UserError, RuntimeError):
    """A store that cannot be used as asked (wrong model, damaged file, empty); the message says what to do."""


class Store:
    """A genprint store folder: `current/` tables, `runs/` history, `index/`, `known/` and work space."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path).expanduser().absolute()

    # ---- layout -------------------------------------------------------------------------------
    CURRENT = "current"
    IMAGES = "current/images.parquet"
    CLUSTERS = "current/clusters.parquet"
    ERRORS = "current/errors.parquet"
    PATHS = "current/paths.parquet"
    REPORT = "current/report.html"
    INDEX = "index/fingerprints.faiss"
    IDS = "index/ids.parquet"
    KNOWN_REFERENCES = "known/references.parquet"
    KNOWN_VECTORS = "known/vectors.parquet"
    KNOWN_DESIGNS = "known/designs.parquet"
    META = "store.json"

    @staticmethod
    def run_folder(run_id: str) -> str:
        """`runs/run_date=YYYY-MM-DD/run_id=<id>` (hive partitions: readers get both as columns)."""
        return f"runs/run_date={run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}/run_id={run_id}"

    def __truediv__(self, rel: str) -> Path:
        return self.root / rel

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---- state --------------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self / self.META).is_file()

    def meta(self) -> dict:
        """The store's own record (model, id counters, clustering state); empty before the first write."""
        try:
            return json.loads((self / self.META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StoreError(f"{self / self.META} is damaged ({exc}); restore it from a backup") from exc

    def lock(self, purpose: str, timeout: float = 0.0) -> StoreLock:
        """The write lock; on entry a commit that a crash interrupted is finished first."""
        return _RecoveringLock(self.root, purpose, timeout)

    # ---- tables (pandas) ----------------------------------------------------------------------

    def images(self) -> pd.DataFrame:
        """One row per distinct image ever seen (see `flows.schemas.images_schema`)."""
        return self._read(self.IMAGES, schemas.images_schema())

    def clusters(self) -> pd.DataFrame:
        """One row per same-origin cluster, largest first."""
        return self._read(self.CLUSTERS, schemas.clusters_schema())

    def errors(self) -> pd.DataFrame:
        """Every input that could not be used: path, error, run_id."""
        return self._read(self.ERRORS, schemas.errors_schema())

    def paths(self) -> pd.DataFrame:
        """Every path ever seen and the image id it held (two names of one image: two rows)."""
        return self._read(self.PATHS, schemas.paths_schema())

    def runs(self) -> pd.DataFrame:
        """One row per finished run, oldest first, with `run_date` and `run_id` from the partition path."""
        files = sorted((self / "runs").glob("run_date=*/run_id=*/run.parquet"))
        if not files:
            return pd.DataFrame(columns=["run_date", "run_id", *schemas.runs_schema().names])
        frames = [
            pq.read_table(f, schema=schemas.runs_schema()).to_pandas().assign(
                run_date=f.parent.parent.name.split("=", 1)[1], run_id=f.parent.name.split("=", 1)[1]
            )
            for f in files
        ]
        frame = pd.concat(frames, ignore_index=True).sort_values("started_at", kind="stable")
        return frame[["run_date", "run_id", *schemas.runs_schema().names]].reset_index(drop=True)

    def ids(self) -> pd.DataFrame:
        """The FAISS index's int64 ids and the image id each stands for."""
        return self._read(self.IDS, schemas.ids_schema())

    def vectors(self, image_ids: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Stored fingerprints (all, or of `image_ids` in that order): (image ids, (n, dim) float32)."""
        dim = int(self.meta().get("dim", 0))
        files = sorted((self / "runs").glob("run_date=*/run_id=*/vectors/*.parquet"))
        if not files:
            return [], np.zeros((0, dim), np.float32)
        dataset = ds.dataset([str(f) for f in files], schema=schemas.vectors_schema(dim), format="parquet")
        if image_ids is None:
            table = dataset.to_table()
        else:
            table = dataset.to_table(filter=ds.field("image_id").isin(pa.array(list(image_ids), pa.string())))
            order = {image_id: i for i, image_id in enumerate(table.column("image_id").to_pylist())}
            missing = [i for i in image_ids if i not in order]
            if missing:
                raise StoreError(f"{len(missing)} images have no stored fingerprint (e.g. {missing[0]}); the store is damaged")
            table = table.take(pa.array([order[i] for i in image_ids]))
        return vectors_from_table(table)

    def _read(self, rel: str, schema: pa.Schema) -> pd.DataFrame:
        path = self / rel
        try:
            table = pq.read_table(path, schema=schema)
        except FileNotFoundError:
            table = schema.empty_table()
        except (pa.ArrowInvalid, OSError) as exc:
            raise StoreError(f"{path} is damaged ({exc}); restore it, or delete the store and run again") from exc
        return table.to_pandas()

    # ---- work ---------------------------------------------------------------------------------

    def run(
        self,
        sources: Sequence[str | os.PathLike],
        model: str | None = None,
        shard_size: int = 256,
        wait: float = 0.0,
        recluster: bool | None = None,
        min_cluster_size: int | None = None,
        progress: bool = False,
        dask_address: str | None = None,
        allowed_roots: Sequence[str | os.PathLike] | None = None,
    ) -> RunSummary:
        """One incremental batch run over `sources` (folders, files, csv/parquet manifests).

        A Prefect flow when PREFECT_API_URL names a Prefect server or `dask_address` a Dask cluster;
        otherwise the same steps run directly, without a temporary Prefect server (flows.batch).

        `model`: left out, the store's own ("default" for a new store); `wait`: seconds to wait for
        the store's lock; `recluster`: True/False forces the choice,
        None applies the documented rule (flows.update); `progress`: a terminal progress bar;
        `dask_address`: fingerprint on the workers of the Dask cluster with this scheduler (tcp://HOST:PORT);
        `allowed_roots`: folders every source and manifest row must lie under (flows.sources).
        """
        from flows.batch import run

        return run(
            store=str(self.root), sources=[os.fspath(s) for s in sources], model=model, shard_size=shard_size,
            wait=wait, recluster=recluster, min_cluster_size=min_cluster_size, progress=progress,
            dask_address=dask_address,
            allowed_roots=None if allowed_roots is None else [os.fspath(r) for r in allowed_roots],
        )

    def investigate(self, images: Sequence[str | os.PathLike], k: int = 10) -> Investigation:
        """Nearest stored fingerprints, cluster, attribution, fake score and parsed design of each query image.

        Queries are not added to the store.
        """
        from flows.investigate import investigate

        return investigate(self, [os.fspath(i) for i in images], k=k)

    def rebuild_index(self, wait: float = 0.0) -> int:
        """Rebuild `index/` from the stored vectors (after a damaged index file); returns the vectors indexed."""
        from clustering.index import FingerprintIndex
        from flows.atomic import Transaction

        with self.lock("rebuild index", timeout=wait):
            ids = self.ids()
            _, vectors = self.vectors(ids["image_id"].tolist())
            index = FingerprintIndex.from_vectors(vectors, ids["id"].to_numpy())
            transaction = Transaction(self.root)
            index.save(transaction.path(self.INDEX))
            transaction.commit()
        return len(ids)

    @property
    def known(self) -> KnownGenerators:
        """Registered generators: `.add(name, sources)`, `.list()`, `.remove(name)`."""
        from flows.known import KnownGenerators

        return KnownGenerators(self)


class _RecoveringLock(StoreLock):
    def __enter__(self) -> StoreLock:
        super().__enter__()
        recover(self.path.parent)
        return self
