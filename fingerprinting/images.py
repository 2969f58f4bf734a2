"""Safe image loading: one read of the bytes, a content-hash id, RGB uint8 pixels, one typed error.

Safety:
- The file is read once (at most ``MAX_FILE_BYTES``); the sha256 id and the decoded pixels come
  from the same bytes, so the id always names the pixels that were fingerprinted.
- Decompression bombs raise: the declared size is checked against ``MAX_PIXELS`` before any pixel
  is decoded (Pillow's own check stays on behind it and is mapped to the same error).
- Truncated data raises: ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` must stay False (loading refuses
  to run otherwise), and the pixels are fully decoded before they are returned. (A file cut after
  its last pixel data, e.g. a PNG missing only its end chunk, holds the whole image and loads.)
- FIFOs, devices and directories named like images are refused without being read.
- Images with a side below ``MIN_SIDE`` are refused: they hold too little of a fingerprint.

How every mode becomes RGB uint8 (no pixel is ever resampled):
- EXIF orientation is applied first with ``ImageOps.exif_transpose``: a lossless flip/rotation.
  Unreadable EXIF leaves the stored orientation (logged), it does not make the image unusable.
- Animated GIF/WebP/APNG/TIFF: the first frame.
- ``RGB``: as stored. ``L`` (greyscale) and ``1`` (bilevel, as 0/255): replicated to 3 channels.
- Alpha (``RGBA``, ``LA``, ``PA``, palette with a transparency entry): the alpha channel is
  *dropped*, not composited. Compositing on a background would blend every semi-transparent pixel
  with a made-up colour and so rewrite the generator's trace; dropping it keeps every stored colour
  value exactly. Fully transparent areas therefore show their stored colour (often black).
- Palette (``P``): looked up in the palette (Pillow's conversion), transparency dropped as above.
- 16-bit (``I;16*``) and 32-bit integer (``I``): clipped to 0..65535 and scaled to 8 bits by
  ``>> 8`` (the high byte), the way Pillow already reduces 16-bit RGB PNGs on open.
- Float (``F``): taken as 0..255, rounded and clipped.
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and any other mode Pillow can convert: Pillow's
  ``convert("RGB")`` (for CMYK the plain formula, no ICC colour management).
"""
from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_PIXELS = 50_000_000  # about 7000 x 7000; larger declared sizes are treated as bombs
MAX_FILE_BYTES = 256 * 2**20
MIN_SIDE = 32
_HASH_BLOCK = 2**20

PathLike = str | os.PathLike


class ImageLoadError(Exception):
    """An input that cannot be used; ``reason`` says why in a few words, ``str(err)`` is the reason."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(os.fsdecode(path), reason)  # both in args: it pickles across processes
        self.path = os.fsdecode(path)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``pixels`` is (height, width, 3) uint8 RGB after EXIF orientation."""

    image_id: str
    path: str
    pixels: np.ndarray
    width: int
    height: int
    format: str


def sha256_file(path: PathLike) -> str:
    """sha256 hex digest of a file's bytes, read in blocks (the image id, without decoding)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def load_image(path: PathLike, *, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> LoadedImage:
    """Read, hash and decode one image file; raise ``ImageLoadError`` for anything unusable."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: truncated images would "
            "load as partly grey pictures; set it back to False"
        )
    data = _read_bytes(path)
    with _opened(path, data) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageLoadError(path, f"decompression bomb: declares {width}x{height} pixels")
        if min(width, height) < min_side:
            raise ImageLoadError(path, f"image too small: {width}x{height} < {min_side} px")
        image_format = image.format or "UNKNOWN"
        try:
            image.load()  # the whole first frame; raises on truncated or corrupt data
            _orient(path, image)
            pixels = _to_rgb(image)
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError, Image.DecompressionBombError) as exc:
            raise ImageLoadError(path, _decode_reason(exc)) from exc
    return LoadedImage(
        image_id=hashlib.sha256(data).hexdigest(),
        path=os.fsdecode(path),
        pixels=pixels,
        width=pixels.shape[1],
        height=pixels.shape[0],
        format=image_format,
    )


def _read_bytes(path: PathLike) -> bytes:
    try:
        # Non-blocking open, then a type check: a FIFO or device named like an image must not hang
        # or stream forever; for regular files the flag changes nothing.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageLoadError(path, _os_reason(path, exc)) from exc
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise ImageLoadError(path, "is a directory")
        if not stat.S_ISREG(status.st_mode):
            raise ImageLoadError(path, "not a regular file")
        if status.st_size > MAX_FILE_BYTES:
            raise ImageLoadError(path, f"file too large: {status.st_size} bytes > {MAX_FILE_BYTES}")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            # The size fstat gave, and a byte more to see growth: asking for the cap itself allocates
            # the cap (256 MiB) for every file, which costs more than decoding a small image.
            data = handle.read(status.st_size + 1)
            if len(data) > status.st_size:  # grew since fstat (or a size-0 special file): read on, up to the cap
                data += handle.read(MAX_FILE_BYTES + 1 - len(data))
    except OSError as exc:
        raise ImageLoadError(path, _os_reason(path, exc)) from exc
    finally:
        os.close(descriptor)
    if not data:
        raise ImageLoadError(path, "empty file")
    if len(data) > MAX_FILE_BYTES:  # grew while being read
        raise ImageLoadError(path, f"file too large: more than {MAX_FILE_BYTES} bytes")
    return data


def _os_reason(path: PathLike, exc: OSError) -> str:
    """A short reason for an OS error on open/read."""
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink" if os.path.islink(path) else "file not found"
    return f"cannot read file: {exc.strerror or exc}"


@contextmanager
def _opened(path: PathLike, data: bytes) -> Iterator[Image.Image]:
    """``Image.open`` on the bytes (header only, nothing decoded yet), open-time failures mapped."""
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageLoadError(path, _not_an_image_reason(data)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageLoadError(path, _decode_reason(exc)) from exc
    with image:
        yield image


def _not_an_image_reason(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head:
        return "not an image (HTML)"
    if head.startswith(b"<?xml") or head.startswith(b"<svg"):
        return "not an image (XML/SVG)"
    try:
        head.decode("utf-8")
        return "not an image (text)"
    except UnicodeDecodeError:
        return "not an image (unknown format)"


def _decode_reason(exc: BaseException) -> str:
    message = str(exc)
    lowered = message.lower()
    if isinstance(exc, Image.DecompressionBombError):
        declared = re.search(r"\((\d+) pixels\)", message)
        return f"decompression bomb: declares {declared.group(1) if declared else 'too many'} pixels"
    if isinstance(exc, MemoryError):
        return "out of memory while decoding"
    if lowered.startswith("unsupported mode"):
        return message
    if "truncated" in lowered or isinstance(exc, EOFError) or "premature end" in lowered:
        return "truncated image data"
    return f"corrupt image data: {message}" if message else "corrupt image data"


def _orient(path: PathLike, image: Image.Image) -> None:
    """Apply the EXIF orientation in place (a lossless transpose); unreadable EXIF keeps the stored one."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception as exc:  # noqa: BLE001 - any EXIF parser failure means "no usable orientation"
        log.warning("%s: unreadable EXIF orientation ignored (%s)", os.fsdecode(path), exc)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """The documented mode policy (see the module docstring)."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if mode in ("L", "1"):
        return _grey_to_rgb(np.asarray(image.convert("L"), dtype=np.uint8))
    if mode in ("LA", "La"):
        return _grey_to_rgb(np.asarray(image.getchannel("L"), dtype=np.uint8))
    if mode in ("RGBA", "RGBa", "RGBX"):
        return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8)[..., :3])
    if mode in ("P", "PA"):
        palette_mode = image.palette.mode if image.palette else "RGB"
        if palette_mode == "L" or palette_mode == "LA":
            return _grey_to_rgb(np.asarray(image.convert("L"), dtype=np.uint8))
        return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8)[..., :3])
    if mode.startswith("I"):
        values = np.asarray(image).astype(np.int64)
        return _grey_to_rgb((np.clip(values, 0, 65535) >> 8).astype(np.uint8))
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return _grey_to_rgb(np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8))
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise ValueError(f"unsupported mode {mode}") from exc


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
