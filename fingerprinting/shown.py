"""Which parsing heads a checkpoint shows, and with what calibrated confidence: its parsing policy.

A checkpoint's heads are trained on a zoo; on generators they never saw some do no better than
always naming the commonest value. The policy, decided on a zoo the checkpoint never trained on
(``bench.parsing_part``), says per head:
- ``shown``: whether it beat the majority class on those held-out members (else its columns are
  null: "not estimable from images");
- ``temperatures``: a temperature per discrete head, dividing its logits before the softmax, and
  ``loss_family_platt``, (scale, bias) per loss family on the logit of its probability: fitted so
  that an image's confidence matches how often it is right;
- ``pooled_platt``: (scale, bias) per head on the logit of a group's pooled confidence (a
  cluster's vote share, or its mean loss-family probability), applied once after pooling
  (``calibrate_pooled``): a cluster's vote is right more or less often than its images' share says;
- ``type_threshold``: the calibrated probability an upsampling type needs to be reported beside its
  family, for an image and for a cluster.

It lives beside the weights as ``NAME.parsing.json`` (plain json, read without running code),
pinned to the checkpoint version it was decided for. Without one every head is shown uncalibrated.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fingerprinting.parsing import (
    FAMILY_COLUMN,
    LOSS_FAMILIES,
    LOSS_TYPES_COLUMN,
    UPSAMPLING,
    UPSAMPLING_FAMILIES,
    conform_parsed,
    decode_loss_types,
    loss_family_probabilities,
    upsampling_family,
)

log = logging.getLogger(__name__)

FORMAT = "genprint-parsing-policy"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".parsing.json"
FAMILY_HEAD = "upsampling_family"


@dataclass
class ParsingPolicy:
    """What a checkpoint's parsing heads may show (see the module docstring). Head names:
    the discrete and continuous hyperparameters, ``upsampling_family`` and ``loss_family_<f>``."""

    model_version: str = ""
    shown: dict[str, bool] = field(default_factory=dict)  # a head left out is shown
    temperatures: dict[str, float] = field(default_factory=dict)
    loss_family_platt: dict[str, tuple[float, float]] = field(default_factory=dict)
    pooled_platt: dict[str, tuple[float, float]] = field(default_factory=dict)
    type_threshold: float = 0.0
    evaluation: dict[str, Any] = field(default_factory=dict)  # the leave-out figures it was decided from

    def is_shown(self, head: str) -> bool:
        return bool(self.shown.get(head, True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_version": self.model_version,
            "shown": dict(sorted(self.shown.items())),
            "temperatures": dict(sorted(self.temperatures.items())),
            "loss_family_platt": {k: [float(a), float(b)] for k, (a, b) in sorted(self.loss_family_platt.items())},
            "pooled_platt": {k: [float(a), float(b)] for k, (a, b) in sorted(self.pooled_platt.items())},
            "type_threshold": float(self.type_threshold),
            "evaluation": self.evaluation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParsingPolicy:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} version {FORMAT_VERSION} file")
        return cls(
            model_version=str(data["model_version"]),
            shown={str(k): bool(v) for k, v in data["shown"].items()},
            temperatures={str(k): float(v) for k, v in data["temperatures"].items()},
            loss_family_platt={str(k): (float(a), float(b)) for k, (a, b) in data["loss_family_platt"].items()},
            pooled_platt={str(k): (float(a), float(b)) for k, (a, b) in data["pooled_platt"].items()},
            type_threshold=float(data["type_threshold"]),
            evaluation=dict(data.get("evaluation", {})),
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParsingPolicy:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a usable parsing policy ({exc})") from None


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    """``NAME.parsing.json`` beside ``NAME.safetensors``."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.name.removesuffix(".safetensors").removesuffix(".json") + SIDECAR_SUFFIX)


def load_policy(weights_path: str | os.PathLike, version: str) -> ParsingPolicy | None:
    """The checkpoint's policy if there is one decided for this version; one for other weights is left out with a warning."""
    path = sidecar_path(weights_path)
    if not path.is_file():
        return None
    policy = ParsingPolicy.load(path)
    if policy.model_version != version:
        log.warning("%s was decided for %s, not %s: every parsing head shown uncalibrated", path, policy.model_version, version)
        return None
    return policy


@dataclass(frozen=True)
class HeadOutputs:
    """The parsing heads' raw outputs for n crops, as numpy: what a policy turns into ``parsed_*`` columns."""

    continuous: dict[str, np.ndarray]  # name -> (n,) natural units
    discrete: dict[str, tuple[tuple[str, ...], np.ndarray]]  # name -> (choices, (n, k) logits)
    loss_types: tuple[str, ...]
    loss_logits: np.ndarray  # (n, types)

    def __len__(self) -> int:
        return len(self.loss_logits)

    def take(self, rows: np.ndarray) -> HeadOutputs:
        return HeadOutputs(
            {k: v[rows] for k, v in self.continuous.items()},
            {k: (c, v[rows]) for k, (c, v) in self.discrete.items()},
            self.loss_types,
            self.loss_logits[rows],
        )


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def platt(probabilities: np.ndarray, scale: float, bias: float) -> np.ndarray:
    """sigmoid(scale * logit(p) + bias)."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1 - 1e-7)
    return 1 / (1 + np.exp(-np.clip(scale * np.log(p / (1 - p)) + bias, -50, 50)))


def decode_shown(heads: HeadOutputs, policy: ParsingPolicy | None = None) -> pd.DataFrame:
    """Head outputs -> the ``parsed_*`` columns (``fingerprinting.parsing``) under ``policy`` (None: all shown, uncalibrated)."""
    policy = policy or ParsingPolicy()
    n = len(heads)
    columns: dict[str, object] = {}
    for name, values in heads.continuous.items():
        columns[f"parsed_{name}"] = values.astype(np.float32) if policy.is_shown(name) else np.full(n, np.nan, np.float32)
    for name, (choices, logits) in heads.discrete.items():
        columns.update(discrete_columns(name, choices, logits, policy))
    probabilities = 1 / (1 + np.exp(-np.asarray(heads.loss_logits, np.float64)))
    for loss, column in zip(heads.loss_types, probabilities.T):
        columns[f"parsed_loss_{loss}"] = column.astype(np.float32)
    columns.update(loss_family_columns(probabilities, heads.loss_types, policy))
    columns[LOSS_TYPES_COLUMN] = decode_loss_types(probabilities, heads.loss_types)
    return conform_parsed(pd.DataFrame(columns), n)


def discrete_columns(name: str, choices: Sequence[str], logits: np.ndarray, policy: ParsingPolicy) -> dict[str, np.ndarray]:
    """One discrete head's columns: its value and calibrated confidence; for upsampling, the family first and the type within it."""
    p = softmax(logits, policy.temperatures.get(name, 1.0))
    index = p.argmax(1)
    value, confidence = np.asarray(choices, dtype=object)[index], p.max(1)
    columns: dict[str, np.ndarray] = {}
    if name == UPSAMPLING:
        family, family_p = _family(p, choices)
        columns[FAMILY_COLUMN], columns[f"{FAMILY_COLUMN}_confidence"] = _null_unless(policy.is_shown(FAMILY_HEAD), family, family_p)
        # The type within the chosen family; named only when sure enough of it.
        in_family = np.array([upsampling_family(c) for c in choices], dtype=object)[None, :] == family[:, None]
        index = np.where(in_family, p, -1.0).argmax(1)
        value, confidence = np.asarray(choices, dtype=object)[index], p[np.arange(len(p)), index]
        confident = confidence >= policy.type_threshold
        value, confidence = np.where(confident, value, None), np.where(confident, confidence, np.nan)
    columns[f"parsed_{name}"], columns[f"parsed_{name}_confidence"] = _null_unless(policy.is_shown(name), value, confidence)
    return columns


def loss_family_columns(probabilities: np.ndarray, loss_types: Sequence[str], policy: ParsingPolicy) -> dict[str, np.ndarray]:
    """``parsed_loss_family_*`` from the loss-type probabilities, Platt-calibrated; null for a family not shown."""
    families = loss_family_probabilities(probabilities, list(loss_types))
    columns = {}
    for family, column in zip(LOSS_FAMILIES, families.T):
        scale, bias = policy.loss_family_platt.get(family, (1.0, 0.0))
        shown = policy.is_shown(f"loss_family_{family}")
        columns[f"parsed_loss_family_{family}"] = platt(column, scale, bias).astype(np.float32) if shown else np.full(len(column), np.nan, np.float32)
    return columns


def calibrate_pooled(table: pd.DataFrame, policy: ParsingPolicy | None) -> pd.DataFrame:
    """Pooled ``parsed_*`` rows (``parsing.aggregate_parsed_by`` over clusters) with each head's pooled
    confidence calibrated, and the upsampling type dropped where its calibrated confidence falls
    below the threshold. Apply once, to the final groups; None: unchanged."""
    if policy is None:
        return table
    out = table.copy()
    for head, (scale, bias) in policy.pooled_platt.items():
        if head.startswith("loss_family_"):
            column = f"parsed_{head}"
            p = out[column].to_numpy(np.float64, na_value=np.nan)
            out[column] = np.where(np.isnan(p), np.nan, platt(p, scale, bias)).astype(np.float32)
            continue
        column = f"{FAMILY_COLUMN}_confidence" if head == FAMILY_HEAD else f"parsed_{head}_confidence"
        p = out[column].to_numpy(np.float64, na_value=np.nan)
        out[column] = np.where(np.isnan(p), np.nan, platt(p, scale, bias)).astype(np.float32)
    confidence = out[f"parsed_{UPSAMPLING}_confidence"].to_numpy(np.float64, na_value=np.nan)
    dropped = ~(confidence >= policy.type_threshold)
    out.loc[dropped, f"parsed_{UPSAMPLING}"] = None
    out.loc[dropped, f"parsed_{UPSAMPLING}_confidence"] = np.nan
    return conform_parsed(out, len(out))


def _family(p: np.ndarray, choices: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the family with the largest summed type probability, and that sum."""
    names = list(UPSAMPLING_FAMILIES)
    sums = np.stack([p[:, [i for i, c in enumerate(choices) if upsampling_family(c) == f]].sum(1) for f in names], 1)
    return np.asarray(names, dtype=object)[sums.argmax(1)], sums.max(1)


def _null_unless(shown: bool, values: np.ndarray, confidences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if shown:
        return values, confidences.astype(np.float32)
    return np.full(len(values), None, dtype=object), np.full(len(values), np.nan, np.float32)
