"""The generator zoo: tables, determinism, resume, split rules, and that upsampling types leave different spectra."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES
from fingerprinting.zoo import ZooOptionsMismatch, build_zoo, load_zoo
from fingerprinting.zoo.generate import generate
from fingerprinting.zoo.plan import COMBINATION_KEYS, HELD_OUT_FAMILY, plan_members
from fingerprinting.zoo.tables import GENERATORS_SCHEMA, IMAGES_SCHEMA
from fingerprinting.zoo.training import reproducible_torch, train_member

TINY = dict(members=4, images_per_member=12, size=32, seed=0, steps=4)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo") / "tiny"
    build_zoo(out, **TINY)
    return out


def test_tables_follow_their_schemas(zoo_dir):
    assert pq.read_schema(zoo_dir / "generators.parquet").remove_metadata() == GENERATORS_SCHEMA
    assert pq.read_schema(zoo_dir / "images.parquet").remove_metadata() == IMAGES_SCHEMA
    zoo = load_zoo(zoo_dir)
    assert len(zoo.generators) == TINY["members"]
    for h in HYPERPARAMETERS:
        assert zoo.generators[h.name].notna().all()
        if h.kind == "discrete":
            assert set(zoo.generators[h.name]) <= set(h.choices)
    for t in LOSS_TYPES:
        assert list(zoo.generators[f"loss_{t}"]) == [t in losses for losses in zoo.generators["losses"]]
    assert zoo.generators[[f"loss_{t}" for t in LOSS_TYPES]].any(axis=1).all()

    fakes, reals = zoo.images[zoo.images.is_fake], zoo.images[~zoo.images.is_fake]
    assert len(fakes) == TINY["members"] * TINY["images_per_member"]
    assert reals.member_id.isna().all() and (reals.kind == "real").all()
    assert set(zoo.images.split) == {"train", "unseen_seed", "unseen_arch"}
    # Reconstructions show the content of a real crop of their own split.
    real_split = dict(zip(reals.content_id, reals.split))
    recon = fakes[fakes.kind == "reconstruction"]
    assert all(real_split[c] == s for c, s in zip(recon.content_id, recon.split))
    for path in zoo.images.path.iloc[:: max(1, len(zoo.images) // 10)]:
        image = Image.open(path)
        assert Path(path).is_absolute() and image.format == "PNG" and image.size == (32, 32) and image.mode == "RGB"


def test_same_options_give_byte_identical_corpus_with_any_number_of_workers(zoo_dir, tmp_path):
    again = tmp_path / "again"
    build_zoo(again, **TINY, workers=2)
    assert _files(again) == _files(zoo_dir)


def test_interrupted_build_resumes_only_the_missing_member(zoo_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(zoo_dir, copy)
    shutil.rmtree(copy / "members" / "m001")
    (copy / "images.parquet").unlink()
    (copy / "members" / "m002" / "member.json").unlink()  # a member killed before its marker was written
    seen: list[str] = []
    summary = build_zoo(copy, **TINY, on_progress=lambda done, total, what: seen.append(what))
    assert not summary.reused
    assert [w.split()[0] for w in seen if w.startswith("m")] == ["m001", "m002"] and "training 2 members" in seen
    assert _files(copy) == _files(zoo_dir)


def test_finished_build_is_reused_and_other_options_are_refused(zoo_dir):
    seen: list[str] = []
    summary = build_zoo(zoo_dir, **TINY, on_progress=lambda done, total, what: seen.append(what))
    assert summary.reused and seen == ["complete"]
    assert "reused" in summary.describe()
    with pytest.raises(ZooOptionsMismatch, match="images_per_member"):
        build_zoo(zoo_dir, **{**TINY, "images_per_member": 13})


@pytest.mark.parametrize("members,seed", [(4, 0), (7, 1), (24, 2), (100, 7)])
def test_split_rules(members, seed):
    specs = plan_members(members, seed, size=64, base_steps=150)
    train = [s for s in specs if s.split == "train"]
    arch = [s for s in specs if s.split == "unseen_arch"]
    assert train and arch and any(s.split == "unseen_seed" for s in specs)
    assert len({s.member_id for s in specs}) == members
    assert not any(s.family == HELD_OUT_FAMILY for s in train)
    assert any(s.family == HELD_OUT_FAMILY for s in arch)
    train_combinations = {s.combination() for s in train}
    for s in arch:
        assert s.combination() not in train_combinations
        for name, value in s.architecture().items():
            assert value in {getattr(t, name) for t in train}, (s.member_id, name, value)
        assert set(s.losses) <= {t for m in train for t in m.losses}
    by_id = {s.member_id: s for s in specs}
    for s in specs:
        if s.split == "unseen_seed":
            parent = by_id[s.parent_id]
            assert parent.split == "train" and s.seed != parent.seed
            assert dataclasses.replace(s, member_id=parent.member_id, split="train", seed=parent.seed, parent_id=None) == parent
    assert COMBINATION_KEYS[0] == "family"


def test_tiny_zoo_table_obeys_split_rules(zoo_dir):
    generators = load_zoo(zoo_dir).generators
    train = generators[generators.split == "train"]
    arch = generators[generators.split == "unseen_arch"]
    assert HELD_OUT_FAMILY in set(arch.family) and HELD_OUT_FAMILY not in set(train.family)
    discrete = [h.name for h in HYPERPARAMETERS if h.kind == "discrete"]
    train_rows = {tuple(r) for r in train[["family", *discrete]].itertuples(index=False)}
    assert not any(tuple(r) in train_rows for r in arch[["family", *discrete]].itertuples(index=False))
    for name in discrete + ["up_blocks", "convs_per_block", "base_width"]:
        assert set(arch[name]) <= set(train[name])


def _residual_spectrum(images: np.ndarray) -> np.ndarray:
    """Mean log power spectrum of the high-pass residual (image minus its 3x3 box blur), grey levels."""
    grey = images.astype(np.float64).mean(axis=3)
    padded = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    blur = sum(padded[:, i : i + grey.shape[1], j : j + grey.shape[2]] for i in range(3) for j in range(3)) / 9
    return np.log(np.abs(np.fft.fft2(grey - blur)) ** 2 + 1e-6).mean(axis=0)


def test_upsampling_types_leave_different_spectra():
    base = next(s for s in plan_members(8, 0, size=32, base_steps=20) if s.family == "dcgan")
    spectra = {}
    for upsampling in ("transposed", "bilinear"):
        for seed in (11, 12):
            spec = dataclasses.replace(base, upsampling=upsampling, seed=seed, train_steps=20)
            with reproducible_torch():
                model = train_member(spec, size=32, batch_size=16)
                images = np.concatenate([batch for _, batch in generate(model, spec, 32, np.empty((0,)))])
            spectra[upsampling, seed] = _residual_spectrum(images)
    within = max(np.abs(spectra[u, 11] - spectra[u, 12]).mean() for u in ("transposed", "bilinear"))
    between = min(np.abs(spectra["transposed", a] - spectra["bilinear", b]).mean() for a in (11, 12) for b in (11, 12))
    assert between > 1.5 * within, (between, within)


def test_load_zoo_names_an_unfinished_zoo(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished zoo"):
        load_zoo(tmp_path)
