"""Build a zoo corpus on disk: real crops, then each member (train, generate, save), then the two tables.

Resumable: each member is written into a `.partial` folder renamed into place when complete, so an
interrupted build redoes at most the member it was on; a finished build with the same options is reused.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES
from fingerprinting.zoo.families import count_convs, count_params
from fingerprinting.zoo.generate import generate, sample_count
from fingerprinting.zoo.photos import heldout_regions, sample_crops, usable_photos
from fingerprinting.zoo.plan import SPLITS, MemberSpec, plan_members
from fingerprinting.zoo.tables import GENERATORS_FILE, GENERATORS_SCHEMA, IMAGES_FILE, IMAGES_SCHEMA, write_table
from fingerprinting.zoo.training import reproducible_torch, train_member

FORMAT_VERSION = 4  # raised whenever the same options would give other images
DEFAULT_STEPS = 120
OPTIONS_FILE = "zoo.json"
MEMBER_MARKER = "member.json"
REAL_MARKER = "real.json"

ProgressCallback = Callable[[int, int, str], None]


class ZooOptionsMismatch(ValueError):
    """OUT already holds a zoo built with other options."""


@dataclass
class ZooSummary:
    """What a build produced (or found already built)."""

    out: Path
    members_by_split: dict[str, int]
    members_by_family: dict[str, int]
    fake_images: int
    real_images: int
    disk_bytes: int
    seconds: float
    reused: bool
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        verb = "reused (already complete)" if self.reused else f"built in {self.seconds:.0f} s"
        splits = ", ".join(f"{k} {v}" for k, v in self.members_by_split.items())
        families = ", ".join(f"{k} {v}" for k, v in self.members_by_family.items())
        return (
            f"zoo {self.out}: {verb}\n"
            f"  members: {sum(self.members_by_split.values())} ({splits})\n"
            f"  families: {families}\n"
            f"  images: {self.fake_images} generated + {self.real_images} real, {self.options.get('size')} px PNG, "
            f"{self.disk_bytes / 1e6:.1f} MB\n"
            f"  tables: {self.out / GENERATORS_FILE}, {self.out / IMAGES_FILE}"
        )


def build_zoo(
    out: Path | str,
    members: int = 24,
    images_per_member: int = 100,
    size: int = 64,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    *,
    steps: int | None = None,
    real_images: int | None = None,
    unseen_seed_fraction: float = 0.15,
    unseen_arch_fraction: float = 0.15,
    batch_size: int = 16,
    workers: int = 1,
) -> ZooSummary:
    """Build (or resume, or reuse) a zoo under `out`; deterministic in all arguments but `on_progress`.

    `steps` is the base number of training steps (each member trains 0.6-1.4x that; default 120);
    `real_images` the number of real crops (default: a quarter of the generated images, at least 2 per
    split), divided among the splits in proportion to their generated images. Each member trains on one
    thread with deterministic algorithms (bitwise reproducible whatever the machine's core count);
    `workers` > 1 builds that many members at once in separate (spawned) processes, with the same
    result; a script that asks for workers must call this under `if __name__ == "__main__":`, as
    Python's multiprocessing requires.
    """
    started = time.monotonic()
    out = Path(out)
    options = {
        "format_version": FORMAT_VERSION, "members": members, "images_per_member": images_per_member, "size": size,
        "seed": seed, "steps": DEFAULT_STEPS if steps is None else steps,
        "real_images": max(2 * len(SPLITS), members * images_per_member // 4) if real_images is None else real_images,
        "unseen_seed_fraction": unseen_seed_fraction, "unseen_arch_fraction": unseen_arch_fraction, "batch_size": batch_size,
    }
    if size < 16 or size & (size - 1):
        raise ValueError(f"size must be a power of two of at least 16, got {size}")
    specs = plan_members(members, seed, size, options["steps"], unseen_seed_fraction, unseen_arch_fraction)
    _claim(out, options)
    progress = on_progress or (lambda done, total, what: None)
    total = len(specs) + 1
    if _complete(out, specs):
        progress(total, total, "complete")
        return _summary(out, specs, options, started, reused=True)

    if not (out / "real" / REAL_MARKER).exists():
        progress(0, total, "real crops")
        _build_reals(out, specs, options)
    pending = [s for s in specs if not (out / "members" / s.member_id / MEMBER_MARKER).exists()]
    done = total - len(pending) - 1
    progress(done, total, f"training {len(pending)} members")
    for spec in _run_members(out, pending, options, workers):
        done += 1
        progress(done, total, f"{spec.member_id} {spec.family} ({spec.split})")
    _write_tables(out, specs, _reals(out))
    progress(total, total, "complete")
    return _summary(out, specs, options, started, reused=False)


def _claim(out: Path, options: dict) -> None:
    """Record the options in OUT, or check that an existing zoo there was built with the same ones."""
    path = out / OPTIONS_FILE
    if path.exists():
        existing = json.loads(path.read_text())
        if existing != options:
            changed = {k: (existing.get(k), v) for k, v in options.items() if existing.get(k) != v}
            raise ZooOptionsMismatch(
                f"{out} holds a zoo built with other options ({', '.join(f'{k}: {a} there, {b} asked' for k, (a, b) in changed.items())}); "
                "choose another folder or delete this one"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(options, indent=1, sort_keys=True))


def _complete(out: Path, specs: list[MemberSpec]) -> bool:
    return (
        (out / GENERATORS_FILE).exists() and (out / IMAGES_FILE).exists() and (out / "real" / REAL_MARKER).exists()
        and all((out / "members" / s.member_id / MEMBER_MARKER).exists() for s in specs)
    )


def _run_members(out: Path, pending: list[MemberSpec], options: dict, workers: int) -> Iterator[MemberSpec]:
    """Build the pending members, yielding each as it completes (in order when `workers` is 1)."""
    if workers <= 1 or len(pending) <= 1:
        for spec in pending:
            _build_member(out, spec, options)
            yield spec
        return
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited torch thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_build_member, out, spec, options): spec for spec in pending}
        for future in as_completed(futures):
            future.result()
            yield futures[future]


def _reals(out: Path) -> list[dict]:
    return json.loads((out / "real" / REAL_MARKER).read_text())["images"]


def _save_png(pixels: np.ndarray, path: Path) -> None:
    Image.fromarray(pixels).save(path, format="PNG", optimize=False, compress_level=6)


@contextmanager
def staging(final: Path) -> Iterator[Path]:
    """A fresh `.partial` folder that becomes `final` only when the block completes."""
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    os.replace(partial, final)


def _real_counts(specs: list[MemberSpec], total: int) -> dict[str, int]:
    """Real crops per split, in proportion to the split's members (hence its generated images), at least 2 each."""
    members = {split: sum(s.split == split for s in specs) for split in SPLITS}
    counts = {split: max(2, math.floor(total * members[split] / len(specs))) for split in SPLITS}
    counts["train"] += max(0, total - sum(counts.values()))
    return counts


def _build_reals(out: Path, specs: list[MemberSpec], options: dict) -> None:
    """Crops of the held-out regions of every photograph, split among the splits; lossless PNG like the fakes."""
    size = options["size"]
    rng = np.random.default_rng([options["seed"], 0x5EA1])
    records = []
    with staging(out / "real") as folder:
        for split, count in _real_counts(specs, options["real_images"]).items():
            crops, photos = sample_crops(heldout_regions(usable_photos(size), size), count, size, rng)
            for crop, photo in zip(crops, photos):
                real_id = f"r{len(records):06d}"
                _save_png(crop, folder / f"{real_id}.png")
                records.append({"real_id": real_id, "split": split, "photo": photo})
        (folder / REAL_MARKER).write_text(json.dumps({"images": records}))


def _build_member(out: Path, spec: MemberSpec, options: dict) -> None:
    """Train one member, generate its images and write them with the member's marker (last)."""
    images = options["images_per_member"]
    samples = sample_count(spec.family, images)
    pool = [r for r in _reals(out) if r["split"] == spec.split]
    rng = np.random.default_rng([spec.seed, 0x50C])
    picked = [pool[i] for i in rng.choice(len(pool), images - samples, replace=images - samples > len(pool))]
    sources = np.stack([np.asarray(Image.open(out / "real" / f"{r['real_id']}.png")) for r in picked]) if picked else np.empty((0,))
    records = []
    with staging(out / "members" / spec.member_id) as folder, reproducible_torch():
        model = train_member(spec, options["size"], options["batch_size"])
        for kind, batch in generate(model, spec, samples, sources):
            for pixels in batch:
                index = len(records)
                _save_png(pixels, folder / f"{index:06d}.png")
                source = picked[index - samples] if kind == "reconstruction" else None
                records.append({"index": index, "kind": kind, "content_id": source and source["real_id"],
                                "photo": source and source["photo"]})
        marker = {"spec": asdict(spec), "conv_layers": count_convs(model), "param_count": count_params(model), "images": records}
        (folder / MEMBER_MARKER).write_text(json.dumps(marker))


def _write_tables(out: Path, specs: list[MemberSpec], reals: list[dict]) -> None:
    size = json.loads((out / OPTIONS_FILE).read_text())["size"]
    generators, images = [], []
    for spec in specs:
        marker = json.loads((out / "members" / spec.member_id / MEMBER_MARKER).read_text())
        generators.append(_generator_row(spec, marker))
        for r in marker["images"]:
            images.append({"path": f"members/{spec.member_id}/{r['index']:06d}.png", "member_id": spec.member_id,
                           "is_fake": True, "split": spec.split, "kind": r["kind"], "content_id": r["content_id"],
                           "photo": r["photo"], "width": size, "height": size})
    for r in reals:
        images.append({"path": f"real/{r['real_id']}.png", "member_id": None, "is_fake": False, "split": r["split"],
                       "kind": "real", "content_id": r["real_id"], "photo": r["photo"], "width": size, "height": size})
    write_table(generators, GENERATORS_SCHEMA, out / GENERATORS_FILE)
    write_table(images, IMAGES_SCHEMA, out / IMAGES_FILE)


def _generator_row(spec: MemberSpec, marker: dict) -> dict:
    measured = {"conv_layers": marker["conv_layers"], "log10_params": math.log10(marker["param_count"])}
    row = {"member_id": spec.member_id, "family": spec.family, "split": spec.split, "seed": spec.seed}
    for h in HYPERPARAMETERS:
        value = measured[h.name] if h.name in measured else getattr(spec, h.name)
        row[h.name] = float(value) if h.kind == "continuous" else value
    row.update({f"loss_{t}": t in spec.losses for t in LOSS_TYPES})
    row.update({"losses": list(spec.losses), "param_count": marker["param_count"], "train_steps": spec.train_steps,
                "photos": list(spec.photos), "parent_id": spec.parent_id, "images": len(marker["images"])})
    return row


def _summary(out: Path, specs: list[MemberSpec], options: dict, started: float, reused: bool) -> ZooSummary:
    by_family: dict[str, int] = {}
    for s in specs:
        by_family[s.family] = by_family.get(s.family, 0) + 1
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return ZooSummary(
        out=out, members_by_split={split: sum(s.split == split for s in specs) for split in SPLITS},
        members_by_family=by_family, fake_images=len(specs) * options["images_per_member"],
        real_images=sum(_real_counts(specs, options["real_images"]).values()),
        disk_bytes=disk, seconds=time.monotonic() - started, reused=reused, options=options,
    )
