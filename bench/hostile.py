"""The hostile corpus: every bad and every awkward-but-valid input of issue 7, made in a folder by code.

`make_hostile_corpus(folder)` writes the files and returns what a run must do with each:
`bad` maps a file name to the reason `errors.parquet` must give it, `good` maps a file name to what
it is (each must become a row of `images.parquet`), `duplicates` names two paths of the same bytes.
Nothing is downloaded; every file is a few kilobytes.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 48  # above the loader's 32 px minimum
NON_UTF8_NAME = b"caf\xe9.png"  # Latin-1 "café": not valid UTF-8


@dataclass
class HostileCorpus:
    root: Path
    bad: dict[str, str] = field(default_factory=dict)  # name -> expected reason in errors.parquet
    good: dict[str, str] = field(default_factory=dict)  # name -> what it is
    duplicates: tuple[str, str] = ("", "")  # two names of one image
    unreadable: str = ""  # mode 000: refused for a normal user, readable by root

    def path(self, name: str) -> str:
        return os.path.abspath(self.root / name)

    @property
    def non_utf8_path(self) -> str:
        """The non-UTF-8 file's path as the store records it (undecodable bytes as backslash escapes)."""
        return (os.fsencode(self.root.absolute()) + b"/" + NON_UTF8_NAME).decode("utf-8", errors="backslashreplace")


def _noise(rng: np.random.Generator, height: int = SIDE, width: int = SIDE, channels: int = 3) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG a few dozen bytes long whose header declares `width` x `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _good_files(rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    rgb = Image.fromarray(_noise(rng))
    palette = Image.fromarray(_noise(rng)).quantize(64)
    palette.info["transparency"] = 0
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    frames = [Image.fromarray(_noise(rng)) for _ in range(3)]
    return {
        "cmyk.jpg": ("CMYK JPEG", _encoded(Image.fromarray(_noise(rng, channels=4), "CMYK"), "JPEG", quality=95)),
        "deep16.png": ("16-bit greyscale PNG", _encoded(Image.fromarray(rng.integers(0, 65536, (SIDE, SIDE), dtype=np.uint16)), "PNG")),
        "palette-alpha.png": ("palette PNG with a transparent entry", _encoded(palette, "PNG", transparency=0)),
        "grey.png": ("greyscale PNG", _encoded(Image.fromarray(_noise(rng, channels=1), "L"), "PNG")),
        "animated.gif": ("animated GIF (first frame)", _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)),
        "animated.webp": ("animated WebP (first frame)", _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True)),
        "rotated.jpg": ("EXIF-rotated JPEG", _encoded(Image.fromarray(_noise(rng, 40, 72)), "JPEG", exif=exif.tobytes(), quality=90)),
        "panorama.png": ("very wide panorama (3000 x 40)", _encoded(Image.fromarray(_noise(rng, 40, 3000)), "PNG")),
        "still.webp": ("lossless WebP", _encoded(rgb, "WEBP", lossless=True)),
        "scan.tif": ("TIFF", _encoded(Image.fromarray(_noise(rng)), "TIFF")),
        "bitmap.bmp": ("BMP", _encoded(Image.fromarray(_noise(rng)), "BMP")),
        "same-a.png": ("the same bytes as same-b.png", _encoded(rgb, "PNG")),
        "same-b.png": ("the same bytes as same-a.png", _encoded(rgb, "PNG")),
    }


def make_hostile_corpus(folder: str | os.PathLike, seed: int = 0) -> HostileCorpus:
    """Write the hostile corpus into `folder` (created) and say what a run must make of each file."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corpus = HostileCorpus(root=root.absolute(), duplicates=("same-a.png", "same-b.png"), unreadable="locked.png")
    for name, (what, data) in _good_files(rng).items():
        (root / name).write_bytes(data)
        corpus.good[name] = what

    png = _encoded(Image.fromarray(_noise(rng, 64, 64)), "PNG")
    jpeg = _encoded(Image.fromarray(_noise(rng, 64, 64)), "JPEG")
    bad_bytes = {
        "empty.png": (b"", "empty file"),
        "half.png": (png[: len(png) // 2], "truncated image data"),
        "half.jpg": (jpeg[: len(jpeg) // 2], "truncated image data"),
        "notes.png": (b"just some notes, not a picture\n", "not an image (text)"),
        "random.png": (bytes(range(256)) * 4, "not an image (unknown format)"),
        "page.jpg": (b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n", "not an image (HTML)"),
        "bomb.png": (_png_declaring(40_000, 40_000), "decompression bomb: declares 1600000000 pixels"),
        "tiny.png": (_encoded(Image.fromarray(_noise(rng, 20, 20)), "PNG"), "image too small: 20x20 < 32 px"),
    }
    for name, (data, reason) in bad_bytes.items():
        (root / name).write_bytes(data)
        corpus.bad[name] = reason

    (root / "nowhere-link.png").symlink_to(root.absolute() / "does-not-exist.png")
    corpus.bad["nowhere-link.png"] = "broken symlink"
    (root / "loop-a.png").symlink_to(root.absolute() / "loop-b.png")
    (root / "loop-b.png").symlink_to(root.absolute() / "loop-a.png")
    corpus.bad["loop-a.png"] = corpus.bad["loop-b.png"] = "symlink loop"
    (root / "folder.png").mkdir(exist_ok=True)
    corpus.bad["folder.png"] = "is a directory"
    with open(os.fsencode(root) + b"/" + NON_UTF8_NAME, "wb") as handle:
        handle.write(_encoded(Image.fromarray(_noise(rng)), "PNG"))
    locked = root / corpus.unreadable
    locked.write_bytes(_encoded(Image.fromarray(_noise(rng)), "PNG"))
    locked.chmod(0o000)
    return corpus
