"""Build the external corpus on disk: camera-photo crops, then each external generator's upscaled patches, then the two tables.

Fakes: a patch of a camera photograph is reduced by the network's scale (one of four common filters,
drawn per patch), upscaled by the network, and the centre `size` x `size` of the output kept, so the
network's own borders (padding) stay out. Reals: crops of the photographs at their shipped resolution
and of copies downscaled 2x and 4x, as uploads are. Each photo is a checkerboard of cells (photos.py):
fakes take their patches from one colour, reals from the other, so no pixel is in both classes. Every
image is written clean (PNG) and in the platform views (views.py).

Resumable like the zoo: each (generator, size) and each size's reals is written into a `.partial` folder
renamed into place when complete; a finished build with the same options is reused.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES
from fingerprinting.zoo.build import ZooOptionsMismatch, staging
from fingerprinting.zoo.external.catalogue import FAMILY_SKIP, GENERATORS, ExternalGenerator
from fingerprinting.zoo.external.packages import PINNED
from fingerprinting.zoo.external.param_file import design_facts
from fingerprinting.zoo.external.photographs import CorpusPhoto, camera_photos, load_camera_photo
from fingerprinting.zoo.external.runner import Upscaler
from fingerprinting.zoo.external.tables import EXTERNAL_GENERATORS_SCHEMA, EXTERNAL_IMAGES_SCHEMA, EXTERNAL_SPLIT
from fingerprinting.zoo.external.views import VIEW_SUFFIX, VIEWS, save_views, view_side
from fingerprinting.zoo.photos import MIN_CROP_STD, Region, checkerboard
from fingerprinting.zoo.tables import GENERATORS_FILE, IMAGES_FILE, write_table

FORMAT_VERSION = 1  # raised whenever the same options would give other images
OPTIONS_FILE = "external.json"
MARKER = "done.json"
REAL_SCALES = (1.0, 0.5, 0.25)
LR_MARGIN = 4  # low-resolution pixels of context beyond the kept crop on each side
DOWNSCALE_FILTERS = (Image.Resampling.BICUBIC, Image.Resampling.LANCZOS, Image.Resampling.BILINEAR, Image.Resampling.BOX)

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ExternalSummary:
    """What a build produced (or found already built); `problems` are to be shown loudly (missing photographs)."""

    out: Path
    generators_by_family: dict[str, int]
    fake_images: int
    real_images: int
    files: int
    disk_bytes: int
    seconds: float
    reused: bool
    problems: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def describe(self) -> str:
        verb = "reused (already complete)" if self.reused else f"built in {self.seconds:.0f} s"
        families = ", ".join(f"{k} {v}" for k, v in self.generators_by_family.items())
        return (
            f"external corpus {self.out}: {verb}\n"
            f"  generators: {sum(self.generators_by_family.values())} ({families})\n"
            f"  camera photographs: {len(self.options['photos'])}\n"
            f"  images: {self.fake_images} generated + {self.real_images} real, {'/'.join(map(str, self.options['sizes']))} px PNG, "
            f"each also as {' and '.join(VIEWS[1:])}: {self.files} files, {self.disk_bytes / 1e6:.1f} MB\n"
            f"  tables: {self.out / GENERATORS_FILE}, {self.out / IMAGES_FILE}"
        )


def low_res_side(size: int, scale: int) -> int:
    """Side of the network's input for a `size` crop at `scale`: the crop plus margins, a multiple of 4 (no extra padding)."""
    return 4 * math.ceil((math.ceil(size / scale) + 2 * LR_MARGIN) / 4)


def build_external(
    out: Path | str,
    images_per_generator: int = 200,
    sizes: Sequence[int] = (64, 128),
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    *,
    real_images: int | None = None,
    generators: Sequence[ExternalGenerator] = GENERATORS,
    threads: int = 1,
) -> ExternalSummary:
    """Build (or resume, or reuse) the external corpus under `out`; deterministic in all arguments but `on_progress` and `threads`.

    `real_images` is the number of photograph crops per size (default 5 x `images_per_generator`). The
    photographs are those available here (`photographs.camera_photos`); the summary's `problems` say
    which are missing, and the options recorded in OUT name the ones used.
    """
    started = time.monotonic()
    out = Path(out)
    photos, problems = camera_photos()
    sizes = sorted(set(sizes))
    if any(s < 16 for s in sizes):
        raise ValueError(f"sizes must be at least 16 px, got {sizes}")
    options = {
        "format_version": FORMAT_VERSION, "images_per_generator": images_per_generator, "sizes": sizes, "seed": seed,
        "real_images": 5 * images_per_generator if real_images is None else real_images,
        "generators": [g.member_id for g in generators], "photos": [p.name for p in photos], "packages": PINNED,
    }
    _claim(out, options)
    progress = on_progress or (lambda done, total, what: None)
    units = [("real", size) for size in sizes] + [(g.member_id, size) for g in generators for size in sizes]
    total, done = len(units), 0
    reused = (out / GENERATORS_FILE).exists() and (out / IMAGES_FILE).exists() and all(_finished(out, *unit) for unit in units)
    if not reused:
        for size in sizes:
            if not _finished(out, "real", size):
                progress(done, total, f"photograph crops, {size} px")
                _build_reals(out, photos, size, options)
            done += 1
        for g in generators:
            pending = [size for size in sizes if not _finished(out, g.member_id, size)]
            upscaler = g.load(threads) if pending else None
            for size in sizes:
                if size in pending:
                    progress(done, total, f"{g.member_id}, {size} px")
                    build_fakes(out, g, upscaler, photos, size, options)
                done += 1
        _write_tables(out, generators, sizes, options)
    progress(total, total, "complete")
    files = [p for p in out.rglob("*") if p.is_file()]
    return ExternalSummary(
        out=out, generators_by_family={f: sum(g.family == f for g in generators) for f in dict.fromkeys(g.family for g in generators)},
        fake_images=len(generators) * len(sizes) * images_per_generator, real_images=len(sizes) * options["real_images"],
        files=len(files), disk_bytes=sum(p.stat().st_size for p in files), seconds=time.monotonic() - started,
        reused=reused, problems=problems, options=options,
    )


def _claim(out: Path, options: dict) -> None:
    """Record the options in OUT, or check that a corpus there was built with the same ones (photographs included)."""
    path = out / OPTIONS_FILE
    if path.exists():
        existing = json.loads(path.read_text())
        if existing != options:
            changed = [k for k in options if existing.get(k) != options[k]]
            raise ZooOptionsMismatch(
                f"{out} holds an external corpus built with other options ({', '.join(changed)} differ"
                f"{'; the photographs available here are not those it used' if 'photos' in changed else ''}); choose another folder or delete this one"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(options, indent=1, sort_keys=True))


def _unit_folder(out: Path, unit: str, size: int) -> Path:
    return out / "real" / str(size) if unit == "real" else out / "members" / unit / str(size)


def _finished(out: Path, unit: str, size: int) -> bool:
    return (_unit_folder(out, unit, size) / MARKER).exists()


def _cells(photo: CorpusPhoto, cell: int) -> tuple[list[Region], list[Region]]:
    """(cells for fakes, cells for reals) of a photo, on its shipped resolution."""
    height, width = load_camera_photo(photo.name).shape[:2]
    return checkerboard(photo.name, height, width, cell)


def _cell_side(size: int) -> int:
    """The checkerboard's `size` (cells are at least twice it): room for the largest patch a fake uses and for a real crop at every scale."""
    return max(max(scale * low_res_side(size, scale) for scale in {g.scale for g in GENERATORS}), math.ceil(size / min(REAL_SCALES)))


def _scaled(cell: Region, scale: float) -> Region:
    return Region(cell.photo, math.ceil(cell.top * scale), math.ceil(cell.left * scale), math.floor(cell.bottom * scale), math.floor(cell.right * scale))


def _fits(cell: Region, side: int) -> bool:
    return cell.bottom - cell.top >= side and cell.right - cell.left >= side


def _draw(rng: np.random.Generator, choices: dict[str, list[Region]], side: int, scale: float) -> tuple[np.ndarray, str]:
    """A side x side patch, not flat where the photos allow: a photo uniformly, a cell by area, a position uniformly."""
    names = sorted(choices)
    for _attempt in range(10):
        cells = choices[names[rng.integers(len(names))]]
        areas = np.array([c.area for c in cells], float)
        cell = cells[rng.choice(len(cells), p=areas / areas.sum())]
        top, left = rng.integers(cell.top, cell.bottom - side + 1), rng.integers(cell.left, cell.right - side + 1)
        patch = load_camera_photo(cell.photo, scale)[top : top + side, left : left + side]
        if patch.std() >= MIN_CROP_STD:
            break
    return patch, cell.photo


def _build_reals(out: Path, photos: tuple[CorpusPhoto, ...], size: int, options: dict) -> None:
    rng = np.random.default_rng([options["seed"], size, 0x5EA1])
    by_scale = {scale: {p.name: [_scaled(c, scale) for c in _cells(p, _cell_side(size))[1]] for p in photos} for scale in REAL_SCALES}
    by_scale = {s: {name: [c for c in cells if _fits(c, size)] for name, cells in pool.items()} for s, pool in by_scale.items()}
    scales_of = {p.name: [s for s in REAL_SCALES if by_scale[s][p.name]] for p in photos}
    usable = sorted(name for name, scales in scales_of.items() if scales)
    records = []
    with staging(_unit_folder(out, "real", size)) as folder:
        for index in range(options["real_images"]):
            name = usable[rng.integers(len(usable))]
            scale = scales_of[name][rng.integers(len(scales_of[name]))]
            crop, photo = _draw(rng, {name: by_scale[scale][name]}, size, scale)
            save_views(Image.fromarray(crop), folder / f"{index:06d}")
            records.append({"index": index, "photo": photo, "photo_scale": scale})
        (folder / MARKER).write_text(json.dumps({"images": records}))


def build_fakes(out: Path, generator: ExternalGenerator, upscaler: Upscaler, photos: tuple[CorpusPhoto, ...], size: int, options: dict) -> None:
    """One generator's images at `size` under OUT/members: photograph patches downscaled by a random filter, upscaled, centre-cropped, every view."""
    scale = generator.scale
    side = low_res_side(size, scale)
    pool = {p.name: [c for c in _cells(p, _cell_side(size))[0] if _fits(c, scale * side)] for p in photos}
    pool = {name: cells for name, cells in pool.items() if cells}
    rng = np.random.default_rng([options["seed"], size, zlib.crc32(generator.member_id.encode())])
    offset = (scale * side - size) // 2
    records = []
    with staging(_unit_folder(out, generator.member_id, size)) as folder:
        for index in range(options["images_per_generator"]):
            patch, photo = _draw(rng, pool, scale * side, 1.0)
            low = Image.fromarray(patch).resize((side, side), DOWNSCALE_FILTERS[rng.integers(len(DOWNSCALE_FILTERS))])
            upscaled = upscaler.upscale(np.asarray(low))
            save_views(Image.fromarray(upscaled[offset : offset + size, offset : offset + size]), folder / f"{index:06d}")
            records.append({"index": index, "photo": photo, "photo_scale": 1 / scale})
        (folder / MARKER).write_text(json.dumps({"images": records}))


def _generator_row(generator: ExternalGenerator, images: int) -> dict:
    param, weights = generator.files()
    facts = design_facts(param, generator.layout.output_blob)
    row = {"member_id": generator.member_id, "family": generator.family, "split": EXTERNAL_SPLIT}
    row.update({h.name: facts.get(h.name) for h in HYPERPARAMETERS})
    row["skip"] = FAMILY_SKIP[generator.family]
    row.update({f"loss_{t}": None for t in LOSS_TYPES})
    row.update({
        "upsampling_layers": facts["upsampling_layers"], "layer_types": facts["layer_types"], "param_count": facts["param_count"],
        "scale": generator.scale, "package": f"{generator.distribution}=={PINNED[generator.distribution]}",
        "model_file": f"{generator.folder}/{param.name}", "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "trained_by": generator.trained_by, "images": images,
    })
    return row


def _image_rows(prefix: str, records: list[dict], size: int, generator: ExternalGenerator | None) -> Iterator[dict]:
    for r in records:
        source_id = f"{prefix}/{r['index']:06d}"
        for view in VIEWS:
            side, suffix = view_side(size, view), VIEW_SUFFIX[view]
            yield {
                "path": f"{source_id}{suffix}", "source_id": source_id, "view": view,
                "member_id": generator and generator.member_id, "family": generator and generator.family,
                "is_fake": generator is not None, "split": EXTERNAL_SPLIT, "kind": "super_resolution" if generator else "real",
                "photo": r["photo"], "photo_source": r["photo"].split(":", 1)[0], "photo_scale": r["photo_scale"],
                "size": size, "width": side, "height": side,
            }


def _write_tables(out: Path, generators: Sequence[ExternalGenerator], sizes: list[int], options: dict) -> None:
    images = []
    for size in sizes:
        marker = json.loads((_unit_folder(out, "real", size) / MARKER).read_text())
        images += _image_rows(f"real/{size}", marker["images"], size, None)
    for g in generators:
        for size in sizes:
            marker = json.loads((_unit_folder(out, g.member_id, size) / MARKER).read_text())
            images += _image_rows(f"members/{g.member_id}/{size}", marker["images"], size, g)
    write_table([_generator_row(g, options["images_per_generator"] * len(sizes)) for g in generators], EXTERNAL_GENERATORS_SCHEMA, out / GENERATORS_FILE)
    write_table(images, EXTERNAL_IMAGES_SCHEMA, out / IMAGES_FILE)
