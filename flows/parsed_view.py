"""A row's ``parsed_*`` columns as the report and ``investigate`` word them: shown values, "not reported", "not estimable".

A null where the row has a parse means the checkpoint's leave-out evaluation found that head no
better than the commonest value (``fingerprinting.shown``): "not estimable from images". The
upsampling type is null beside a family when its calibrated confidence was too low: "not reported".
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from fingerprinting.parsing import FAMILY_COLUMN, LOSS_FAMILIES, UPSAMPLING, continuous_names, discrete_names, parsed_columns

NOT_ESTIMABLE = "not estimable from images"
NOT_REPORTED = "not reported"


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float):
        return not math.isnan(value)
    return True


def _percent(confidence: object) -> str:
    return f" ({100 * float(confidence):.0f} %)" if _present(confidence) else ""


def described_design(values: Mapping[str, object]) -> list[tuple[str, str]]:
    """(name, text) per parsed hyperparameter of one row; empty where the row has no parse at all (no parsing heads)."""
    if not any(_present(values.get(column)) for column in parsed_columns()):
        return []
    lines: list[tuple[str, str]] = []
    for name in discrete_names():
        value, confidence = values.get(f"parsed_{name}"), values.get(f"parsed_{name}_confidence")
        if name == UPSAMPLING:
            family = values.get(FAMILY_COLUMN)
            lines.append(("upsampling family", f"{family}{_percent(values.get(f'{FAMILY_COLUMN}_confidence'))}" if _present(family) else NOT_ESTIMABLE))
            if not _present(value):
                lines.append(("upsampling type", f"{NOT_REPORTED} (family alone)" if _present(family) else NOT_ESTIMABLE))
                continue
            lines.append(("upsampling type", f"{value}{_percent(confidence)}"))
            continue
        lines.append((name.replace("_", " "), f"{value}{_percent(confidence)}" if _present(value) else NOT_ESTIMABLE))
    for name in continuous_names():
        value = values.get(f"parsed_{name}")
        lines.append((name.replace("_", " "), f"{float(value):.1f}" if _present(value) else NOT_ESTIMABLE))
    for family in LOSS_FAMILIES:
        p = values.get(f"parsed_loss_family_{family}")
        text = (f"{'yes' if float(p) >= 0.5 else 'no'} (P {float(p):.2f})") if _present(p) else NOT_ESTIMABLE
        lines.append((f"{family} loss", text))
    return lines
