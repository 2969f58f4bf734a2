"""`genprint demo`: a small zoo of generators mixed with real photographs, the whole pipeline, where to look."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from flows.export_fiftyone import default_name
from flows.progress import progress_bar
from flows.runs import RunSummary
from flows.api import Store, add_known
from flows.store import StoreError

# Small enough for a few minutes on two cores (the zoo build dominates), broad enough to show clusters.
DEMO_ZOO = dict(members=8, images_per_member=30, size=64, seed=2026, steps=40)
KNOWN_MEMBERS = 2  # zoo generators registered as known, so attribution has names to give
REFERENCES_PER_MEMBER = 10


@dataclass
class DemoResult:
    zoo: Path
    store: Store
    known: list[str]
    summary: RunSummary
    seconds: float

    def describe(self) -> str:
        clusters = self.store.clusters()
        images = self.store.images()
        example = ""
        if len(clusters):
            top = clusters.iloc[0]
            path = images.set_index("image_id").loc[top["exemplar_image_ids"][0], "path"]
            example = f"\ntry:    genprint investigate {path} --store {self.store.root}"
        return (
            f"{self.summary.describe()}\n"
            f"zoo:    {self.zoo} (generators.parquet, images.parquet: the true origin of every image)\n"
            f"known:  {', '.join(self.known)} (registered from {REFERENCES_PER_MEMBER} images each, with their designs)\n"
            f"vectors: {self.store.root}/runs/*/*/vectors/*.parquet; index: {self.store.root / Store.INDEX}\n"
            f"open:   {self.store.root / Store.REPORT} (verdicts, map, every cluster; member pages in {self.store.root / Store.CURRENT}/report/)\n"
            f"fiftyone: genprint export fiftyone --store {self.store.root}  (pip install 'genprint[fiftyone]'), "
            f"then fiftyone app launch {default_name(self.store)}\n"
            f"demo finished in {self.seconds:.0f} s" + example
        )


def run_demo(out: Path, model: str = "default", progress: bool = True) -> DemoResult:
    """Build (or reuse) the demo zoo under OUT/zoo, register known generators, run into OUT/store."""
    import time

    from fingerprinting.zoo import build_zoo, load_zoo
    from flows.designs import zoo_member_design

    started = time.perf_counter()
    zoo_dir = Path(out) / "zoo"
    with progress_bar("demo zoo", enabled=progress) as on_progress:
        build_zoo(zoo_dir, on_progress=on_progress, **DEMO_ZOO)
    zoo = load_zoo(zoo_dir)
    store = Store(Path(out) / "store")
    known = []
    generators = zoo.generators.set_index("member_id")
    try:
        for member, paths in _references(zoo.images, zoo_dir).items():
            name = f"zoo-member-{member}"
            if name not in set(store.known.list()["name"]):  # registered with the design the zoo knows it has
                add_known(str(store.root), name, paths, model, design=zoo_member_design(generators.loc[member]))
            known.append(name)
        summary = store.run([zoo_dir], model=model, progress=progress)
    except StoreError as error:  # most often a demo store an earlier genprint made with another model version
        raise StoreError(f"{error} (the demo's store: remove {store.root} to start it again, or pass another --out)") from None
    return DemoResult(zoo_dir, store, known, summary, time.perf_counter() - started)


def _references(images: pd.DataFrame, zoo_dir: Path) -> dict[str, list[str]]:
    """The first images of the first fake members (by id): the references registered as known generators."""
    fakes = images[images["is_fake"].astype(bool)].sort_values(["member_id", "path"])
    members = sorted(fakes["member_id"].unique())[:KNOWN_MEMBERS]
    return {
        str(member): [str(zoo_dir / p) for p in fakes.loc[fakes["member_id"] == member, "path"].head(REFERENCES_PER_MEMBER)]
        for member in members
    }
