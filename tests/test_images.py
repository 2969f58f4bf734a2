"""load_image: every mode made RGB as documented, and every broken input refused with its reason."""
from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import pickle
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from fingerprinting.images import MAX_FILE_BYTES, ImageLoadError, LoadedImage, load_image, sha256_file

RNG = np.random.default_rng(7)


def random_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def reason(path: Path | bytes) -> str:
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert str(caught.value) == caught.value.reason
    assert caught.value.path == os.fsdecode(path)
    return caught.value.reason


# --- inputs that must load -------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", "png"), ("BMP", "bmp"), ("TIFF", "tif"), ("WEBP", "webp")])
def test_lossless_formats_load_exact_pixels(tmp_path: Path, fmt: str, suffix: str) -> None:
    pixels = random_rgb()
    options = {"lossless": True} if fmt == "WEBP" else {}
    path = save(Image.fromarray(pixels), tmp_path / f"image.{suffix}", **options)
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.format == fmt
    assert (loaded.width, loaded.height) == (64, 48)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(loaded.pixels, pixels)


def test_image_id_is_sha256_of_the_bytes_and_same_bytes_share_it(tmp_path: Path) -> None:
    first = save(Image.fromarray(random_rgb()), tmp_path / "a.png")
    second = tmp_path / "copy-under-another-name.png"
    shutil.copyfile(first, second)
    expected = hashlib.sha256(first.read_bytes()).hexdigest()
    assert load_image(first).image_id == expected == load_image(second).image_id == sha256_file(second)
    assert load_image(second).path == str(second)


def test_greyscale_is_replicated(tmp_path: Path) -> None:
    grey = random_rgb()[..., 0]
    loaded = load_image(save(Image.fromarray(grey, "L"), tmp_path / "grey.png"))
    np.testing.assert_array_equal(loaded.pixels, np.repeat(grey[..., None], 3, axis=2))


def test_grey_with_alpha_drops_alpha(tmp_path: Path) -> None:
    grey = random_rgb()[..., 0]
    alpha = np.zeros_like(grey)  # fully transparent: compositing would have made it all background
    image = Image.merge("LA", [Image.fromarray(grey, "L"), Image.fromarray(alpha, "L")])
    loaded = load_image(save(image, tmp_path / "la.png"))
    np.testing.assert_array_equal(loaded.pixels, np.repeat(grey[..., None], 3, axis=2))


def test_rgba_keeps_stored_colours_whatever_the_alpha(tmp_path: Path) -> None:
    rgb = random_rgb()
    alpha = RNG.integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    loaded = load_image(save(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), tmp_path / "rgba.png"))
    np.testing.assert_array_equal(loaded.pixels, rgb)


def test_palette_png_with_transparency_uses_palette_colours(tmp_path: Path) -> None:
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = RNG.integers(0, 256, (40, 50), dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.flatten().tolist())
    path = save(image, tmp_path / "palette.png", transparency=3)
    assert Image.open(path).info.get("transparency") == 3
    np.testing.assert_array_equal(load_image(path).pixels, palette[indices])


def test_sixteen_bit_png_keeps_the_high_byte(tmp_path: Path) -> None:
    values = RNG.integers(0, 65536, (40, 36), dtype=np.uint16)
    path = save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded.pixels, np.repeat((values >> 8).astype(np.uint8)[..., None], 3, axis=2))


def test_cmyk_jpeg_uses_pillow_conversion(tmp_path: Path) -> None:
    cmyk = Image.fromarray(RNG.integers(0, 256, (40, 40, 4), dtype=np.uint8), "CMYK")
    path = save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(path) as stored:
        assert stored.mode == "CMYK"
        expected = np.asarray(stored.convert("RGB"))
    loaded = load_image(path)
    assert loaded.format == "JPEG"
    np.testing.assert_array_equal(loaded.pixels, expected)


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    first, *rest = _frames()
    path = save(first, tmp_path / "anim.gif", save_all=True, append_images=rest, duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    loaded = load_image(path)
    assert loaded.format == "GIF"
    np.testing.assert_array_equal(loaded.pixels, np.broadcast_to([255, 0, 0], (40, 40, 3)))


def test_animated_webp_first_frame(tmp_path: Path) -> None:
    first, *rest = _frames()
    path = save(first, tmp_path / "anim.webp", save_all=True, append_images=rest, duration=50, lossless=True)
    assert Image.open(path).n_frames == 3
    loaded = load_image(path)
    assert loaded.format == "WEBP"
    np.testing.assert_array_equal(loaded.pixels, np.broadcast_to([255, 0, 0], (40, 40, 3)))


def test_exif_orientation_is_applied_as_a_lossless_rotation(tmp_path: Path) -> None:
    pixels = random_rgb(40, 72)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = save(Image.fromarray(pixels), tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=90)
    with Image.open(path) as stored:
        as_stored = np.asarray(stored.convert("RGB"))
    loaded = load_image(path)
    assert (loaded.width, loaded.height) == (40, 72)
    np.testing.assert_array_equal(loaded.pixels, np.rot90(as_stored, k=-1))


def test_very_wide_panorama_loads(tmp_path: Path) -> None:
    loaded = load_image(save(Image.fromarray(random_rgb(40, 3000)), tmp_path / "panorama.png"))
    assert (loaded.width, loaded.height) == (3000, 40)


def test_non_utf8_path_loads_and_reports_a_text_path(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.png"
    with open(raw, "wb") as handle:
        Image.fromarray(random_rgb()).save(handle, "PNG")
    loaded = load_image(raw)
    assert loaded.path == os.fsdecode(raw) and isinstance(loaded.path, str)


# --- inputs that must be refused -------------------------------------------------------------


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(64, 64)).save(buffer, fmt)
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def _small_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("empty.png", lambda: b"", "empty file"),
        ("text.png", lambda: b"just some notes, not a picture\n", "not an image (text)"),
        ("page.jpg", lambda: b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>", "not an image (HTML)"),
        ("binary.png", lambda: bytes(range(256)) * 4, "not an image (unknown format)"),
        ("half.png", lambda: _encoded("PNG")[:6000], "truncated image data"),
        ("half.jpg", lambda: _encoded("JPEG")[:1000], "truncated image data"),
        ("nearly.jpg", lambda: _encoded("JPEG")[:-10], "truncated image data"),
        ("bomb.png", lambda: _png_declaring(40_000, 40_000), "decompression bomb: declares 1600000000 pixels"),
        ("quiet-bomb.png", lambda: _png_declaring(8_000, 8_000), "decompression bomb: declares 8000x8000 pixels"),
        ("tiny.png", _small_png, "image too small: 20x20 < 32 px"),
    ],
)
def test_broken_files_raise_with_reason(tmp_path: Path, name: str, make, expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(make())
    assert reason(path) == expected


def test_error_survives_pickling_across_processes() -> None:
    error = pickle.loads(pickle.dumps(ImageLoadError("/in/x.png", "empty file")))
    assert (error.path, error.reason, str(error)) == ("/in/x.png", "empty file", "empty file")


def test_directory_named_like_an_image(tmp_path: Path) -> None:
    (tmp_path / "x.png").mkdir()
    assert reason(tmp_path / "x.png") == "is a directory"


def test_fifo_named_like_an_image_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    assert reason(tmp_path / "pipe.png") == "not a regular file"


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk space used
    assert reason(path) == f"file too large: {MAX_FILE_BYTES + 1} bytes > {MAX_FILE_BYTES}"


def test_a_file_longer_than_its_stated_size_is_read_whole() -> None:
    # Linux's /proc files state size 0 and hold text: read past the stated size, they are text, not empty.
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    assert reason(status) == "not an image (text)"


def test_missing_file(tmp_path: Path) -> None:
    assert reason(tmp_path / "gone.png") == "file not found"


def test_broken_symlink(tmp_path: Path) -> None:
    (tmp_path / "link.png").symlink_to(tmp_path / "nowhere.png")
    assert reason(tmp_path / "link.png") == "broken symlink"


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert reason(tmp_path / "a.png") == "symlink loop"


def _load_reason_as_nobody(path: str, answer) -> None:
    """In a forked child: give up root (so file permissions apply), then try to load."""
    try:
        os.setgid(65534)
        os.setuid(65534)
    except PermissionError:
        answer.send("cannot drop privileges")
        return
    try:
        load_image(path)
        answer.send("loaded")
    except ImageLoadError as error:
        answer.send(error.reason)


def _reason_for_unprivileged_reader(path: str) -> str:
    if os.geteuid() != 0:
        try:
            load_image(path)
            return "loaded"
        except ImageLoadError as error:
            return error.reason
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_load_reason_as_nobody, args=(path, send))
    child.start()
    child.join(30)
    return receive.recv() if receive.poll() else "no answer"


def test_unreadable_permissions() -> None:
    # Root reads any file, so as root the load runs in a child that drops to an unprivileged user;
    # the same file is first shown readable to that user, so the refusal is the permission bits'.
    folder = Path(tempfile.mkdtemp(prefix="genprint-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "locked.png"
        path.write_bytes(_encoded("PNG"))
        path.chmod(0o644)
        control = _reason_for_unprivileged_reader(str(path))
        if control == "cannot drop privileges":
            pytest.skip("running as root without the right to drop privileges")
        assert control == "loaded"
        path.chmod(0o000)
        assert _reason_for_unprivileged_reader(str(path)) == "permission denied"
    finally:
        shutil.rmtree(folder)


def test_truncated_images_stay_refused_when_someone_enables_loading_them(tmp_path: Path) -> None:
    path = tmp_path / "fine.png"
    path.write_bytes(_encoded("PNG"))
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
            load_image(path)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
