"""Turn run sources (folders, files, manifests) into a list of input paths, and identify them by sha256.

Discovery rules (also in data/README.md):
- a folder is walked recursively (symlinked folders are not followed); files whose suffix is an
  image suffix are inputs, other files are ignored, hidden entries (dot-names) are skipped;
- a file named on the command line is an input whatever its suffix, except `.csv` / `.parquet`,
  which are manifests: a table with a `path` column, relative paths resolved against the manifest's
  folder. A manifest without that column, or with empty rows, stops the run before any work;
- a source that does not exist stops the run before any work;
- with `allowed_roots` given (`genprint run --allow-root DIR`, repeatable), every source and every
  manifest row must lie under one of them (after resolving symlinks and `..`): anything else stops
  the run before any work, naming the paths; a file found by walking a folder whose real location
  is outside them (a symlink pointing out) is recorded as unusable instead.
Identification hashes every input (sha256 of its bytes = the image id); a path already in the store
with the same size and modification time reuses its stored id instead of being read again.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from fingerprinting.images import ImageLoadError, load_image, sha256_file
from flows.errors import UserError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
MANIFEST_SUFFIXES = frozenset({".csv", ".parquet"})
_SHOWN_BAD_ROWS = 5

ProgressCallback = Callable[[int, int, str], None]


class SourceError(UserError, ValueError):
    """A source the run cannot start with (missing, or a malformed manifest); raised before any work."""


def discover(
    sources: Sequence[str | os.PathLike],
    exclude: Iterable[Path] = (),
    allowed_roots: Sequence[str | os.PathLike] | None = None,
) -> tuple[list[str], pd.DataFrame]:
    """All input paths of `sources` (absolute, unique, sorted) and the inputs unusable by name alone.

    `exclude` folders (the store itself) are never walked. Every source is checked before any is
    walked, so a typo, a bad manifest or a path outside `allowed_roots` fails fast.
    """
    excluded = {Path(p).resolve() for p in exclude}
    manifests = check_sources(sources, allowed_roots)
    found: list[str] = []
    for position, source in enumerate(sources):
        path = Path(source)
        if position in manifests:
            found.extend(manifests[position])
        elif path.is_dir() and not path.is_symlink():
            found.extend(_walk(path, excluded))
        else:
            found.append(os.path.abspath(path))
    roots = _real_roots(allowed_roots)
    paths, errors = [], []
    for path in sorted(set(found)):
        if not _is_utf8(path):
            errors.append({"path": _printable(path), "error": "path is not valid UTF-8"})
        elif roots is not None and not _inside(path, roots):
            errors.append({"path": path, "error": "outside the allowed roots (a symlink pointing out)"})
        else:
            paths.append(path)
    return paths, pd.DataFrame(errors, columns=["path", "error"])


def check_sources(
    sources: Sequence[str | os.PathLike], allowed_roots: Sequence[str | os.PathLike] | None = None
) -> dict[int, list[str]]:
    """Fail fast on a missing source, a malformed manifest or a path outside `allowed_roots`.

    Returns each manifest's paths by position.
    """
    if not sources:
        raise SourceError("no sources given: name at least one folder, image file or manifest")
    roots = _real_roots(allowed_roots)
    manifests: dict[int, list[str]] = {}
    for position, source in enumerate(sources):
        path = Path(source)
        if not (path.exists() or path.is_symlink()):
            raise SourceError(f"source not found: {source}")
        if roots is not None and not _inside(os.fspath(path), roots):
            raise SourceError(f"source {source} is outside the allowed roots ({_listed(roots)})")
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            manifests[position] = read_manifest(path)
            outside = [p for p in manifests[position] if roots is not None and not _inside(p, roots)]
            if outside:
                shown = ", ".join(outside[:_SHOWN_BAD_ROWS])
                more = f" and {len(outside) - _SHOWN_BAD_ROWS} more" if len(outside) > _SHOWN_BAD_ROWS else ""
                raise SourceError(
                    f"manifest {path} lists {len(outside)} paths outside the allowed roots ({_listed(roots)}): {shown}{more}"
                )
    return manifests


def _real_roots(allowed_roots: Sequence[str | os.PathLike] | None) -> list[str] | None:
    return None if allowed_roots is None else [os.path.realpath(r) for r in allowed_roots]


def _inside(path: str, roots: list[str]) -> bool:
    """Is `path`'s real location (symlinks and `..` resolved) one of `roots` or below one?"""
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _listed(roots: list[str]) -> str:
    return ", ".join(roots) or "none"


def read_manifest(path: Path) -> list[str]:
    """The absolute input paths a csv/parquet manifest lists; `SourceError` for a malformed one."""
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            table = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure is "this manifest is unreadable"
        raise SourceError(f"manifest {path} cannot be read: {exc}") from exc
    if "path" not in table.columns:
        columns = ", ".join(map(str, table.columns)) or "none"
        raise SourceError(f"manifest {path} has no 'path' column (its columns: {columns})")
    values = table["path"]
    bad = [i for i, value in enumerate(values) if not isinstance(value, str) or not value.strip()]
    if bad:
        rows = ", ".join(str(i + 2 if path.suffix.lower() == ".csv" else i) for i in bad[:_SHOWN_BAD_ROWS])
        where = "lines" if path.suffix.lower() == ".csv" else "rows"
        more = f" and {len(bad) - _SHOWN_BAD_ROWS} more" if len(bad) > _SHOWN_BAD_ROWS else ""
        raise SourceError(f"manifest {path}: empty or non-text 'path' at {where} {rows}{more}")
    base = path.resolve().parent
    return [os.path.abspath(base / value.strip()) for value in values]


def identify(
    paths: Sequence[str],
    known_paths: pd.DataFrame,
    on_progress: ProgressCallback | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Image id (sha256), size and mtime of every readable path, and the reason for every other.

    `known_paths` (the store's paths table) lets unchanged files skip hashing. Returns
    (identified: path, image_id, size_bytes, mtime_ns, cached), (errors: path, error).
    """
    cache = {
        row.path: (row.image_id, row.size_bytes, row.mtime_ns)
        for row in known_paths[["path", "image_id", "size_bytes", "mtime_ns"]].itertuples(index=False)
    }
    rows, errors = [], []
    for done, path in enumerate(paths, 1):
        try:
            stat = os.stat(path)
            if not os.path.isfile(path):
                raise IsADirectoryError(path)
            cached = cache.get(path)
            hit = cached is not None and cached[1] == stat.st_size and cached[2] == stat.st_mtime_ns
            image_id = cached[0] if hit else sha256_file(path)
            rows.append((path, image_id, stat.st_size, stat.st_mtime_ns, hit))
        except OSError:
            errors.append({"path": path, "error": _unreadable_reason(path)})
        if on_progress is not None and (done % 256 == 0 or done == len(paths)):
            on_progress(done, len(paths), "identifying")
    identified = pd.DataFrame(rows, columns=["path", "image_id", "size_bytes", "mtime_ns", "cached"])
    return identified, pd.DataFrame(errors, columns=["path", "error"])


def _unreadable_reason(path: str) -> str:
    """The loader's own reason for a path that cannot even be opened (one wording for every error)."""
    try:
        load_image(path)
    except ImageLoadError as exc:
        return exc.reason
    return "changed while being read"


def _walk(root: Path, excluded: set[Path]) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        if Path(folder).resolve() in excluded:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        # A folder named like an image is an input too: it is reported as unusable, not skipped.
        names = [d for d in dirs if Path(d).suffix.lower() in IMAGE_SUFFIXES]
        names += [f for f in files if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES]
        found.extend(os.path.abspath(os.path.join(folder, name)) for name in names)
    return found


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _printable(path: str) -> str:
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")
