"""Flows: the store, Prefect orchestration, parquet tables, the HTML report and the `genprint` command.

`from flows import Store` is the entry point for notebooks (imported lazily: the command line's
--help stays fast, and nothing here imports Prefect until a flow runs).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.api import Store

__all__ = ["Store"]


def __getattr__(name: str):
    if name == "Store":
        from flows.api import Store

        return Store
    raise AttributeError(f"module 'flows' has no attribute {name!r}")
