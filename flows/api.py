"""`Store`: the Python entry point for notebooks, the store's folder with the verbs that work on it.

    from flows import Store
    store = Store("data/demo/store")
    store.run(["incoming/"])            # a batch run, incremental
    store.images(); store.clusters(); store.errors()
    store.investigate(["query.png"], k=10)
    store.known.add("stylegan-lab", ["refs/stylegan/"])

The command line is a thin layer over these verbs.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from clustering.index import FingerprintIndex
from flows.atomic import Transaction
from flows.investigate import Investigation, investigate
from flows.known import KnownGenerators
from flows.prefect_env import uses_prefect
from flows.runs import RunOptions, RunSummary, begin_run
from flows.store import StoreFolder


class Store(StoreFolder):
    """A genprint store folder (tables, history, index, registry) and what a user does with it."""

    def run(self, sources: Sequence[str | os.PathLike], **options) -> RunSummary:
        """One incremental batch run over `sources` (folders, files, csv/parquet manifests).

        A Prefect flow when PREFECT_API_URL names a Prefect server or `dask_address` a Dask cluster;
        otherwise the same steps run directly, without a temporary Prefect server (flows.batch).

        `options`: the fields of `flows.runs.RunOptions` (model, shard_size, wait, recluster,
        min_cluster_size, progress, dask_address, allowed_roots). A user error (a missing source,
        another model than the store's, a busy store) is raised before any work starts.
        """
        sources = [os.fspath(s) for s in sources]
        with begin_run(self, sources, RunOptions(**options)) as checked:
            # Imported here: reading tables from a notebook should not pay for importing the run's steps (or Prefect).
            if uses_prefect(checked.dask_address):
                from flows.flows import run_flow

                return run_flow(str(self.root), sources, checked)
            from flows.batch import DIRECT, execute

            return execute(str(self.root), sources, checked, DIRECT, logging.getLogger("genprint"))

    def investigate(self, images: Sequence[str | os.PathLike], k: int = 10) -> Investigation:
        """Nearest stored fingerprints, cluster, attribution, fake score and parsed design of each query image.

        Queries are not added to the store.
        """
        return investigate(self, [os.fspath(i) for i in images], k=k)

    def rebuild_index(self, wait: float = 0.0) -> int:
        """Rebuild `index/` from the stored vectors (after a damaged index file); returns the vectors indexed."""
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
        return KnownGenerators(self)


def add_known(
    store: str, name: str, sources: list[str], model: str | None = None, wait: float = 0.0, design: dict[str, object] | None = None
) -> int:
    """`genprint known add` (and the demo's): `Store.known.add` as a Prefect flow when `uses_prefect`, else directly.

    Returns the number of unusable inputs, each logged as a warning.
    """
    if uses_prefect():
        from flows.flows import known_add_flow

        return known_add_flow(store, name, sources, model, wait, design)
    errors = KnownGenerators(StoreFolder(store)).add(name, sources, model=model, wait=wait, design=design)
    for row in errors.itertuples(index=False):
        logging.getLogger("genprint").warning("reference not usable: %s: %s", row.path, row.error)
    return len(errors)
