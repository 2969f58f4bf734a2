"""What ships: the wheel holds the product packages and no benchmark code; `genprint bench` only starts the checkout's suite."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parents[1]


def _wheel_packages() -> list[str]:
    """The packages setuptools puts in the wheel, found from pyproject.toml as a build finds them."""
    cwd = Path.cwd()
    os.chdir(ROOT)  # discovery looks under the working folder
    try:
        return sorted(apply_configuration(Distribution(), ROOT / "pyproject.toml").packages)
    finally:
        os.chdir(cwd)


def _imported(source: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source.read_bytes())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_the_wheel_holds_the_product_and_no_benchmark_code() -> None:
    packages = _wheel_packages()
    assert {"flows", "fingerprinting", "clustering"} <= set(packages)
    assert not [p for p in packages if p.split(".")[0] not in ("flows", "fingerprinting", "clustering") or "bench" in p]
    shipped = [source for package in packages for source in (ROOT / package.replace(".", "/")).glob("*.py")]
    assert len(shipped) > 50
    assert not [s for s in shipped if any(word in s.stem for word in ("bench", "soak", "hostile"))]
    importing_bench = [str(s.relative_to(ROOT)) for s in shipped if any(m.split(".")[0] == "bench" for m in _imported(s))]
    assert importing_bench == []


def test_genprint_bench_starts_the_checkouts_suite(tmp_path) -> None:
    # From any folder: the suite's own options come back (python -m bench --help, in the checkout).
    done = subprocess.run([sys.executable, "-m", "flows.cli", "bench", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and "usage: python -m bench" in done.stdout and "--shipped" in done.stdout


def test_genprint_bench_without_a_checkout_says_how_to_run_it(tmp_path) -> None:
    # The product as installed: its packages without the checkout around them.
    for package in ("flows", "fingerprinting", "clustering"):
        shutil.copytree(ROOT / package, tmp_path / "site" / package, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    env = os.environ | {"PYTHONPATH": str(tmp_path / "site")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "bench", "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "genprint bench: the benchmark suite is not installed with genprint; run `python -m bench --help` from the root of a git checkout of genprint"]
