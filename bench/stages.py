"""Finished stages of a benchmark run kept on disk, so an interrupted run resumes where it stopped.

A paper-scale `python -m bench` takes hours on 2 cores: the zoo build resumes by itself, and this
keeps the rest that costs most (the two trainings, each method's quality tables) under one folder
per run configuration and version of the code that computes them. A stage made by other code is
never mixed in, though edits to docstrings, comments and layout alone keep it; the trainings'
version leaves out clustering/, which they do not use. A stage is written atomically when it
finishes and read back instead of redone.
Only results that do not depend on timing are kept: throughput, pipeline runs and the
scale figures are always measured afresh, so their ratios still come from one run on one machine.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.checkout import ROOT
from clustering.atomic_file import write_atomic

# The code that decides what a kept stage holds: models, training, clustering, metrics, the compared methods.
STAGE_CODE = ("fingerprinting", "clustering", "bench/quality.py", "bench/methods.py", "bench/baselines")
# The trainings do not call into clustering/: a clustering change redoes the quality tables, not the trainings (22 min at paper scale).
TRAINING_CODE = tuple(entry for entry in STAGE_CODE if entry != "clustering")


def stage_code_digest(entries: tuple[str, ...] = STAGE_CODE) -> str:
    """sha256 over the code under ``entries`` that decides the stages' results: any edit to what runs starts them afresh."""
    digest = hashlib.sha256()
    for entry in entries:
        path = ROOT / entry
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.relative_to(ROOT).as_posix().encode() + b"\0" + _syntax_without_docstrings(source.read_bytes()))
    return digest.hexdigest()[:16]


def _syntax_without_docstrings(source: bytes) -> bytes:
    """The module's syntax tree, docstrings dropped, line numbers left out: what runs, not how it reads.

    Comments, docstrings and layout then cost no rerun (a paper-scale suite redoes hours of
    tables for any change it sees). The dump's format can change between Python versions: that
    costs a rerun, never a wrong reuse.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


class StageStore:
    """``folder/<key digest>/``: one json (plus arrays) per finished stage of runs with this ``key``."""

    def __init__(self, folder: Path, key: dict[str, Any], log: Callable[[str], None] = print) -> None:
        text = json.dumps(key, sort_keys=True, default=str)
        self.root = folder / hashlib.sha256(text.encode()).hexdigest()[:16]
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "key.json").write_text(text + "\n")
        self.log = log
        self.reused: list[str] = []  # "stage (finished <when>)" for each stage read back in this run

    def path(self, name: str) -> Path:
        """Where a stage keeps a file of its own (weights); it is only trusted once the stage is saved."""
        return self.root / name

    def load(self, stage: str) -> dict[str, Any] | None:
        """The stage's saved record, or None when it has not finished in an earlier run."""
        record = self._file(stage, ".json")
        if not record.is_file():
            return None
        saved = json.loads(record.read_text())
        self.reused.append(f"{stage} (finished {saved['finished_utc']})")
        self.log(f"bench: {stage} reused from an earlier run ({record.parent})")
        return saved["result"]

    def save(self, stage: str, result: dict[str, Any]) -> None:
        saved = {"finished_utc": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "result": result}
        write_atomic(self._file(stage, ".json"), lambda tmp: tmp.write_text(json.dumps(saved, default=str), encoding="utf-8"))

    def save_table(self, stage: str, table: pd.DataFrame, vectors: np.ndarray, extra: dict[str, Any]) -> None:
        """A quality stage: its table, an array and a small record, the record last (it marks the stage done)."""
        write_atomic(self._file(stage, ".parquet"), lambda tmp: table.to_parquet(tmp, index=False))
        write_atomic(self._file(stage, ".npy"), lambda tmp: _save_array(tmp, vectors))
        self.save(stage, extra)

    def load_table(self, stage: str) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]] | None:
        extra = self.load(stage)
        if extra is None:
            return None
        return pd.read_parquet(self._file(stage, ".parquet")), np.load(self._file(stage, ".npy"), allow_pickle=False), extra

    def _file(self, stage: str, suffix: str) -> Path:
        """A stage's file: its name made safe for any file system (method versions hold slashes)."""
        return self.root / (re.sub(r"[^A-Za-z0-9._+-]+", "_", stage) + suffix)


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # through a handle: given a path, np.save would add ".npy" to the name
        np.save(handle, array, allow_pickle=False)
