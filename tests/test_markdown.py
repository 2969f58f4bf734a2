"""Markdown tables: rounded with N/A for the benchmark pages, as Python prints them for the investigation artifact."""
from __future__ import annotations

import numpy as np
import pandas as pd

from flows.markdown import markdown_table


def test_floats_are_rounded_and_missing_values_named() -> None:
    frame = pd.DataFrame({"method": ["a", "b"], "x": [0.12345, np.nan]})
    assert markdown_table(frame).splitlines() == ["| method | x |", "|---|---|", "| a | 0.123 |", "| b | N/A |"]
    assert markdown_table(frame, float_format=".2g").splitlines()[2] == "| a | 0.12 |"


def test_unrounded_with_blank_missing_values() -> None:
    frame = pd.DataFrame({"query": ["q.png", "r.png"], "cluster_size": pd.array([3, None], dtype="Int64"),
                          "fake_score": [0.123456789, np.nan], "name": ["gen", None]})
    assert markdown_table(frame, digits=None, missing="").splitlines() == [
        "| query | cluster_size | fake_score | name |", "|---|---|---|---|", "| q.png | 3 | 0.123456789 | gen |", "| r.png |  |  |  |"]
