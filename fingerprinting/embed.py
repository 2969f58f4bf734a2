"""Streaming batch embedding: paths in, chunks of (records, vectors, errors) out, memory bounded.

Each chunk of ``chunk_size`` input paths is decoded (optionally on a small thread pool: Pillow
releases the GIL while decoding), cut into native-resolution crops right away so full-size pixels
never pile up, fingerprinted, and combined per image:
- vector: the mean of the image's crop vectors, re-normalised;
- fake score: the mean of its crop scores;
- parsed design: the crops' outputs aggregated as a cluster's are (``parsing.aggregate_parsed_by``:
  confidence-weighted vote, median, mean probabilities), so one rule serves images and clusters.
Unusable inputs become rows of ``errors`` (path, reason) and the run goes on.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from fingerprinting.crops import crop_grid
from fingerprinting.fingerprinter import Fingerprinter, is_size_agnostic
from fingerprinting.images import ImageLoadError, LoadedImage, load_image
from fingerprinting.parsing import aggregate_parsed_by, conform_parsed

RECORD_COLUMNS = ["image_id", "path", "width", "height", "format", "fake_score"]
ERROR_COLUMNS = ["path", "error"]
_NO_PIXELS = np.empty((0, 0, 3), dtype=np.uint8)


@dataclass(frozen=True)
class EmbeddedChunk:
    """One chunk of results: ``records`` row i has fingerprint ``vectors[i]``; ``errors`` the rest."""

    records: pd.DataFrame
    vectors: np.ndarray
    errors: pd.DataFrame


@dataclass(frozen=True)
class _Cropped:
    """An image reduced to what embedding needs: its metadata and its crops."""

    image: LoadedImage
    crops: np.ndarray


def embed_paths(
    paths: Iterable[str | os.PathLike],
    fingerprinter: Fingerprinter,
    chunk_size: int = 256,
    max_crops: int = 4,
    on_progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Iterator[EmbeddedChunk]:
    """Fingerprint images from ``paths`` lazily, ``chunk_size`` inputs per yielded chunk.

    ``on_progress(n)`` is called as each chunk is done with the number of inputs it consumed.
    ``workers`` > 1 decodes on that many threads, one chunk ahead: the next chunk decodes while
    this one is fingerprinted and handed over (at most two chunks of crops in memory).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    return embed_chunks(_chunks(paths, chunk_size), fingerprinter, max_crops, on_progress, workers)


def embed_chunks(
    chunks: Iterable[Sequence[str | os.PathLike]],
    fingerprinter: Fingerprinter,
    max_crops: int = 4,
    on_progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Iterator[EmbeddedChunk]:
    """``embed_paths`` over chunks the caller cut (a run's shards): one ``EmbeddedChunk`` per chunk, in order."""
    chunks = iter(chunks)
    load_and_crop = partial(_load_and_crop, crop=partial(_crop, fingerprinter=fingerprinter, max_crops=max_crops))
    if workers <= 1:
        for chunk in chunks:
            yield _finish_chunk(chunk, [load_and_crop(path) for path in chunk], fingerprinter, on_progress)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="genprint-decode")
    try:

        def submit(chunk: Sequence[str | os.PathLike]) -> tuple[Sequence[str | os.PathLike], list[Future]]:
            return chunk, [pool.submit(load_and_crop, path) for path in chunk]

        pending = submit(chunk) if (chunk := next(chunks, None)) is not None else None
        while pending is not None:
            chunk, futures = pending
            pending = submit(following) if (following := next(chunks, None)) is not None else None
            yield _finish_chunk(chunk, [future.result() for future in futures], fingerprinter, on_progress)
    finally:
        pool.shutdown(cancel_futures=True)


def _chunks(paths: Iterable[str | os.PathLike], chunk_size: int) -> Iterator[list[str | os.PathLike]]:
    iterator = iter(paths)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        yield chunk


def _finish_chunk(
    chunk: Sequence[str | os.PathLike],
    results: list[_Cropped | ImageLoadError],
    fingerprinter: Fingerprinter,
    on_progress: Callable[[int], None] | None,
) -> EmbeddedChunk:
    cropped = [result for result in results if not isinstance(result, ImageLoadError)]
    errors = [
        (os.fsdecode(path), result.reason)
        for path, result in zip(chunk, results)
        if isinstance(result, ImageLoadError)
    ]
    embedded = _embed_cropped(cropped, fingerprinter, pd.DataFrame(errors, columns=ERROR_COLUMNS))
    if on_progress is not None:
        on_progress(len(chunk))
    return embedded


def embed_images(images: list[LoadedImage], fingerprinter: Fingerprinter, max_crops: int = 4) -> EmbeddedChunk:
    """Fingerprint images already in memory (ad-hoc queries); one chunk, no errors."""
    cropped = [_Cropped(image, _crop(image, fingerprinter, max_crops)) for image in images]
    return _embed_cropped(cropped, fingerprinter, pd.DataFrame(columns=ERROR_COLUMNS))


def _crop(image: LoadedImage, fingerprinter: Fingerprinter, max_crops: int) -> np.ndarray:
    return crop_grid(image.pixels, fingerprinter.crop_size, max_crops, size_agnostic=is_size_agnostic(fingerprinter))


def _load_and_crop(path: str | os.PathLike, crop: Callable[[LoadedImage], np.ndarray]) -> _Cropped | ImageLoadError:
    """Decode and crop one input; its error is returned, not raised, so the chunk goes on."""
    try:
        image = load_image(path)
    except ImageLoadError as error:
        return error
    # Keep the metadata, drop the full-size pixels: memory stays at a few crops per image.
    return _Cropped(replace(image, pixels=_NO_PIXELS), crop(image))


def _embed_cropped(cropped: list[_Cropped], fingerprinter: Fingerprinter, errors: pd.DataFrame) -> EmbeddedChunk:
    count = len(cropped)
    owners = np.repeat(np.arange(count), [len(item.crops) for item in cropped])
    vectors = np.zeros((count, fingerprinter.dim), dtype=np.float32)
    fake_scores = np.full(count, np.nan, dtype=np.float32)
    parsed_parts: list[tuple[np.ndarray, pd.DataFrame]] = []
    # Crops of different sizes (small images at their own size) go through the model separately;
    # all crops of one image have one size.
    sizes = np.array([item.crops.shape[1] for item in cropped for _ in range(len(item.crops))], dtype=np.int64)
    for size in np.unique(sizes):
        crops = np.concatenate([item.crops for item in cropped if item.crops.shape[1] == size])
        group_owners = owners[sizes == size]
        output = fingerprinter.fingerprint(crops)
        np.add.at(vectors, group_owners, output.vectors)
        if output.fake_scores is not None:
            _mean_into(fake_scores, group_owners, output.fake_scores)
        if output.parsed is not None:
            parsed_parts.append((group_owners, output.parsed))
    if parsed_parts:
        parsed = aggregate_parsed_by(
            pd.concat([part for _, part in parsed_parts], ignore_index=True),
            np.concatenate([group for group, _ in parsed_parts]),
            range(count),
        )
    else:
        parsed = conform_parsed(None, count)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors /= np.maximum(norms, np.finfo(np.float32).tiny)
    records = pd.DataFrame(
        {
            "image_id": pd.Series([item.image.image_id for item in cropped], dtype="str"),
            "path": pd.Series([item.image.path for item in cropped], dtype="str"),
            "width": np.array([item.image.width for item in cropped], dtype=np.int32),
            "height": np.array([item.image.height for item in cropped], dtype=np.int32),
            "format": pd.Series([item.image.format for item in cropped], dtype="str"),
            "fake_score": fake_scores,
        }
    )
    return EmbeddedChunk(records=pd.concat([records, parsed], axis=1), vectors=vectors, errors=errors)


def _mean_into(target: np.ndarray, owners: np.ndarray, values: np.ndarray) -> None:
    sums = np.bincount(owners, weights=values, minlength=len(target))
    counts = np.bincount(owners, minlength=len(target))
    has = counts > 0
    target[has] = (sums[has] / counts[has]).astype(np.float32)
