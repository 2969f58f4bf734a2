"""GitHub markdown tables of data frames: the investigation's Prefect artifact, and the pages BENCHMARKS.md is made of."""
from __future__ import annotations

import numpy as np
import pandas as pd


def markdown_table(frame: pd.DataFrame, digits: int | None = 3, float_format: str | None = None, missing: str = "N/A") -> str:
    """``frame`` as a GitHub markdown table.

    Floats are written as ``float_format`` says, else rounded to ``digits`` places, else (both None) as
    Python prints them; missing values (None, NaN, NA) as ``missing``.
    """
    if float_format is None:
        float_format = "" if digits is None else f".{digits}f"

    def cell(value: object) -> str:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return missing
        if isinstance(value, (float, np.floating)):
            return f"{value:{float_format}}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
