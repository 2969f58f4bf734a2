"""Decide a checkpoint's parsing policy on a zoo it never trained on, and measure it: calibration, the null rule, families.

``python -m bench.parsing_part ZOO_DIR [--external EXT_DIR] [--model default] [--write] [--figure PNG]`` fingerprints
every generated image of the zoo clean and after JPEG 75, pools each member's rows as the product
pools a cluster's (``fingerprinting.parsing.aggregate_parsed_by``), and:
- fits the calibration (a temperature per discrete head, Platt scaling per loss family) and the
  upsampling type threshold on some members and measures them on the others, over ``FOLDS``
  folds of members, so every figure is out-of-fold;
- shows a head only where, out of fold, it beats the majority class of those members both clean
  and after JPEG 75 (a continuous head: the mean of those members, in mean absolute error);
- with ``--external EXT_DIR`` (`genprint zoo external`), also only where it holds on generators
  trained by others (``outside_figures``): a discrete value right for at least half of each external
  family's generators, a continuous one nearer the truth than the middle of the head's range;
- prints the markdown table, draws the reliability diagram and, with ``--write``, stores the
  policy fitted on all the members beside the checkpoint (``fingerprinting.shown.sidecar_path``).
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bench.identifiability import LOOK_ALIKES, loss_f1_ceiling
from fingerprinting.parsing import (
    FAMILY_COLUMN,
    LOSS_FAMILIES,
    LOSS_TYPES_COLUMN,
    UPSAMPLING,
    aggregate_parsed_by,
    empty_parsed,
    loss_family_probabilities,
    upsampling_family,
)
from fingerprinting.shown import (
    FAMILY_HEAD,
    HeadOutputs,
    ParsingPolicy,
    calibrate_pooled,
    decode_shown,
    discrete_columns,
    loss_family_columns,
    platt,
    softmax,
)

FOLDS = 4
TYPE_TARGET = 0.85  # issue 26: upsampling type right on at least this share of the members where it is reported
TEMPERATURES = np.geomspace(0.25, 8.0, 41)
THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.05), 2)
ECE_BINS = 10
PLATT_BOUNDS = ((0.0, 5.0), (-5.0, 5.0))  # (scale, bias)
# A shown value must be right for at least this share of each external family's generators: below
# it, the product would be wrong about most generators of a real design.
OUTSIDE_SHARE = 0.5


@dataclass(frozen=True)
class Truth:
    """Per member: discrete choice names (None unknown), continuous values (natural units) and loss sets."""

    discrete: dict[str, np.ndarray]
    continuous: dict[str, np.ndarray]
    losses: list[list[str]]

    def take(self, rows: np.ndarray) -> Truth:
        return Truth({k: v[rows] for k, v in self.discrete.items()}, {k: v[rows] for k, v in self.continuous.items()},
                     [self.losses[i] for i in rows])

    def family(self) -> np.ndarray:
        return np.array([upsampling_family(t) if t is not None else None for t in self.discrete[UPSAMPLING]], dtype=object)

    def loss_family(self, family: str) -> np.ndarray:
        return np.array([bool(set(losses) & set(LOSS_FAMILIES[family])) for losses in self.losses])


@dataclass(frozen=True)
class Crops:
    """Head outputs of every generated image and the member (0..members-1) each belongs to."""

    heads: HeadOutputs
    member: np.ndarray

    def of_members(self, members: np.ndarray) -> tuple[Crops, np.ndarray]:
        """The crops of ``members`` (indices), renumbered 0..len-1 in that order."""
        rows = np.flatnonzero(np.isin(self.member, members))
        renumber = {m: i for i, m in enumerate(members)}
        return Crops(self.heads.take(rows), np.array([renumber[m] for m in self.member[rows]])), members


def pooled(crops: Crops, members: int, policy: ParsingPolicy) -> pd.DataFrame:
    """One ``parsed_*`` row per member, pooled and calibrated as a cluster's rows are."""
    return calibrate_pooled(aggregate_parsed_by(decode_shown(crops.heads, policy), crops.member, list(range(members))), policy)


def pooled_head(crops: Crops, members: int, policy: ParsingPolicy, head: str) -> pd.DataFrame:
    """``pooled`` before the pooled calibration, with only one discrete head's or loss family's columns filled (quicker)."""
    rows = empty_parsed(len(crops.member))
    if head.startswith("loss_family_"):
        probabilities = 1 / (1 + np.exp(-np.asarray(crops.heads.loss_logits, np.float64)))
        filled = loss_family_columns(probabilities, crops.heads.loss_types, policy)
    else:
        name = UPSAMPLING if head == FAMILY_HEAD else head
        choices, logits = crops.heads.discrete[name]
        filled = discrete_columns(name, choices, logits, policy)
    for column, values in filled.items():
        rows[column] = pd.Series(values, dtype=rows[column].dtype)
    return aggregate_parsed_by(rows, crops.member, list(range(members)))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: equal-width confidence bins, each bin's |accuracy - mean confidence| weighted by its share."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    known = ~np.isnan(confidence)
    confidence, correct = confidence[known], correct[known]
    if not len(confidence):
        return float("nan")
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        chosen = which == b
        total += chosen.sum() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total / len(confidence))


def head_confidence(table: pd.DataFrame, truth: Truth, head: str) -> tuple[np.ndarray, np.ndarray]:
    """Per member: the head's shown confidence and whether its shown value is right (NaN confidence where nothing is shown)."""
    if head.startswith("loss_family_"):
        p = table[f"parsed_{head}"].to_numpy(np.float64, na_value=np.nan)
        said = p >= 0.5
        return np.where(said, p, 1 - p), said == truth.loss_family(head.removeprefix("loss_family_"))
    value, expected = (FAMILY_COLUMN, truth.family()) if head == FAMILY_HEAD else (f"parsed_{head}", truth.discrete[head])
    confidence = table[f"{value}_confidence"].to_numpy(np.float64, na_value=np.nan)
    return confidence, np.array([v is not None and v == t for v, t in zip(table[value], expected)])


def _nll(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Mean log loss of binary outcomes under probabilities ``confidence`` (NaN rows left out)."""
    known = ~np.isnan(confidence)
    c = np.clip(confidence[known], 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(correct[known], np.log(c), np.log1p(-c)))) if known.any() else 0.0


def fit_platt(probability: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """(scale, bias) of ``fingerprinting.shown.platt`` minimising the log loss of ``outcome``; (1, 0) without data."""
    known = ~np.isnan(probability)
    if known.sum() < 2:
        return 1.0, 0.0
    p, y = probability[known], np.asarray(outcome, bool)[known]
    # Bounded: on a few dozen members an unbounded fit turns the map around (a higher share, a lower
    # confidence) or makes it a step; scale 0 says the share carries nothing and gives the head's hit rate.
    fit = minimize(lambda x: _nll(platt(p, x[0], x[1]), y), np.array([1.0, 0.0]), method="L-BFGS-B", bounds=PLATT_BOUNDS)
    return float(fit.x[0]), float(fit.x[1])


def _class_index(truth: np.ndarray, choices: Sequence[str]) -> np.ndarray:
    return np.array([list(choices).index(t) if t is not None else -1 for t in truth])


def fit_image_calibration(crops: Crops, truth: Truth) -> ParsingPolicy:
    """Per-image calibration: a temperature per discrete head (cross-entropy of the true choice) and Platt per loss family."""
    policy = ParsingPolicy()
    for name, (choices, logits) in crops.heads.discrete.items():
        if name not in truth.discrete:
            continue
        label = _class_index(truth.discrete[name], choices)[crops.member]
        known = label >= 0
        if not known.any():
            continue
        def cross_entropy(t: float) -> float:
            p = softmax(logits[known], t)
            return float(-np.mean(np.log(np.clip(p[np.arange(known.sum()), label[known]], 1e-12, 1))))
        policy.temperatures[name] = float(TEMPERATURES[np.argmin([cross_entropy(t) for t in TEMPERATURES])])
    probabilities = 1 / (1 + np.exp(-np.asarray(crops.heads.loss_logits, np.float64)))
    families = loss_family_probabilities(probabilities, list(crops.heads.loss_types))
    for family, column in zip(LOSS_FAMILIES, families.T):
        policy.loss_family_platt[family] = fit_platt(column, truth.loss_family(family)[crops.member])
    return policy


def fit_calibration(crops: Crops, truth: Truth, members: int) -> ParsingPolicy:
    """Per-image calibration, then per head a Platt map of the member-pooled confidence (every type reported)."""
    policy = fit_image_calibration(crops, truth)
    for head in [FAMILY_HEAD, *(n for n in crops.heads.discrete if n in truth.discrete), *(f"loss_family_{f}" for f in LOSS_FAMILIES)]:
        table = pooled_head(crops, members, policy, head)
        if head.startswith("loss_family_"):
            p = table[f"parsed_{head}"].to_numpy(np.float64, na_value=np.nan)
            policy.pooled_platt[head] = fit_platt(p, truth.loss_family(head.removeprefix("loss_family_")))
        else:
            policy.pooled_platt[head] = fit_platt(*head_confidence(table, truth, head))
    return policy


def choose_type_threshold(crops: Crops, truth: Truth, members: int, policy: ParsingPolicy, target: float = TYPE_TARGET) -> ParsingPolicy:
    """``policy`` with the lowest type threshold whose reported types are right for at least ``target`` of the members
    reporting one (1.0: never report), and the upsampling type's pooled calibration refitted under it."""
    for threshold in THRESHOLDS:
        candidate = replace(policy, type_threshold=float(threshold))
        confidence, correct = head_confidence(pooled_head(crops, members, candidate, UPSAMPLING), truth, UPSAMPLING)
        scale, bias = fit_platt(confidence, correct)
        calibrated = np.where(np.isnan(confidence), np.nan, platt(confidence, scale, bias))
        reported = calibrated >= threshold
        if reported.any() and correct[reported].mean() >= target:
            return replace(candidate, pooled_platt={**policy.pooled_platt, UPSAMPLING: (scale, bias)})
    return replace(policy, type_threshold=1.0)


def fit_policy(crops: Crops, truth: Truth, members: int) -> ParsingPolicy:
    return choose_type_threshold(crops, truth, members, fit_calibration(crops, truth, members))


def raw_policy() -> ParsingPolicy:
    """The heads as the network gives them: every head shown, uncalibrated, every type reported."""
    return ParsingPolicy()


def out_of_fold(conditions: dict[str, Crops], truth: Truth, members: int, folds: int = FOLDS, seed: int = 0) -> tuple[dict[str, dict[str, pd.DataFrame]], list[ParsingPolicy]]:
    """Member-pooled tables of every member, each from a policy fitted on the clean crops of the other folds.

    Per condition (clean, JPEG 75): "raw" (``raw_policy``), "calibrated" (the fold's policy) and
    "untyped" (the fold's calibration with every type reported, for the heads' accuracy).
    """
    order = np.random.default_rng(seed).permutation(members)
    parts = np.array_split(order, folds)
    tables: dict[str, dict[str, list[pd.DataFrame]]] = {c: {"raw": [], "calibrated": [], "untyped": []} for c in conditions}
    policies = []
    for held in parts:
        fitting = np.setdiff1d(order, held)
        fit_crops, _ = conditions["clean"].of_members(fitting)
        policy = fit_policy(fit_crops, truth.take(fitting), len(fitting))
        policies.append(policy)
        for condition, crops in conditions.items():
            held_crops, _ = crops.of_members(held)
            for kind, chosen in (("raw", raw_policy()), ("calibrated", policy), ("untyped", replace(policy, type_threshold=0.0))):
                tables[condition][kind].append(pooled(held_crops, len(held), chosen).set_axis(held))
    joined = {c: {k: pd.concat(v).sort_index() for k, v in kinds.items()} for c, kinds in tables.items()}
    return joined, policies


def head_names(crops: Crops, truth: Truth) -> list[str]:
    """Every head the null rule decides (those the zoo has labels for), in table order."""
    return [FAMILY_HEAD, *(n for n in crops.heads.discrete if n in truth.discrete), *(f"loss_family_{f}" for f in LOSS_FAMILIES),
            *(n for n in crops.heads.continuous if n in truth.continuous)]


def head_figures(tables: dict[str, pd.DataFrame], truth: Truth, head: str) -> dict[str, float]:
    """One condition's out-of-fold figures of one head: its accuracy and the majority class's (or MAE and the mean's), ECE before and after."""
    if head in truth.continuous:
        value = tables["untyped"][f"parsed_{head}"].to_numpy(np.float64)
        expected = truth.continuous[head]
        return {"error": float(np.mean(np.abs(value - expected))), "baseline": float(np.mean(np.abs(expected.mean() - expected)))}
    if head.startswith("loss_family_"):
        expected = truth.loss_family(head.removeprefix("loss_family_"))
        baseline = max(expected.mean(), 1 - expected.mean())
    else:
        expected = truth.family() if head == FAMILY_HEAD else truth.discrete[head]
        baseline = pd.Series(expected).value_counts(normalize=True).iloc[0]
    accuracy = head_confidence(tables["untyped"], truth, head)[1].mean()
    figures = {"accuracy": float(accuracy), "baseline": float(baseline),
               "ece_raw": expected_calibration_error(*head_confidence(tables["raw"], truth, head)),
               "ece": expected_calibration_error(*head_confidence(tables["calibrated"], truth, head))}
    if head == UPSAMPLING:
        confidence, correct = head_confidence(tables["calibrated"], truth, head)
        reported = ~np.isnan(confidence)
        figures["reported"] = float(reported.mean())
        figures["accuracy_where_reported"] = float(correct[reported].mean()) if reported.any() else float("nan")
    return figures


def passes(figures: dict[str, float]) -> bool:
    """Strictly ahead of the majority class (a continuous head: of the mean), as the issue's null rule asks."""
    return figures["error"] < figures["baseline"] if "error" in figures else figures["accuracy"] > figures["baseline"]


def loss_figures(table: pd.DataFrame, truth: Truth, loss_types: Sequence[str]) -> dict[str, float]:
    """Loss-type F1 of the named sets, the best single set named for everyone (the majority's analogue) and the label ceilings."""
    named = [frozenset(n) if n is not None else frozenset() for n in table[LOSS_TYPES_COLUMN]]
    sets = [frozenset(s) for s in truth.losses]
    figures = {"loss_f1": float(np.mean([_f1(n, t) for n, t in zip(named, sets)]))}
    candidates = {frozenset(s) for s in sets} | {frozenset([t]) for t in loss_types}
    figures["loss_f1_constant"] = float(max(np.mean([_f1(c, t) for t in sets]) for c in candidates))
    for assumption, groups in LOOK_ALIKES.items():
        figures[f"ceiling: {assumption}"] = float(loss_f1_ceiling(truth.losses, groups).mean())
    return figures


def _f1(named: frozenset[str], truth: frozenset[str]) -> float:
    return 2 * len(named & truth) / max(len(named) + len(truth), 1)


@dataclass(frozen=True)
class Outside:
    """Generators trained by others: their clean crops' head outputs, their designs, and each one's family."""

    crops: Crops
    truth: Truth
    family: np.ndarray


def outside_figures(outside: Outside, policy: ParsingPolicy, continuous_ranges: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Per head and external family, under ``policy`` with every head shown: the share of generators whose
    shown value is right (the upsampling type: of those it is reported for), or the mean absolute error
    beside that of the head's range middle; ``passes`` by ``OUTSIDE_SHARE`` or that middle."""
    table = pooled(outside.crops, len(outside.family), replace(policy, shown={}))
    rows = []
    for family in sorted(set(outside.family)):
        mine = outside.family == family
        for head in [FAMILY_HEAD, *outside.truth.discrete]:
            confidence, correct = head_confidence(table, outside.truth, head)
            expected = outside.truth.family() if head == FAMILY_HEAD else outside.truth.discrete[head]
            judged = mine & np.array([e is not None for e in expected]) & (~np.isnan(confidence) if head == UPSAMPLING else True)
            share = float(correct[judged].mean()) if judged.any() else float("nan")
            rows.append({"head": head, "family": family, "generators": int(judged.sum()), "right": share,
                         "passes": bool(np.isnan(share) or share >= OUTSIDE_SHARE)})
        for head, values in outside.truth.continuous.items():
            judged = mine & ~np.isnan(values)
            if not judged.any():
                continue
            low, high = continuous_ranges[head]
            error = float(np.mean(np.abs(table[f"parsed_{head}"].to_numpy(np.float64)[judged] - values[judged])))
            middle = float(np.mean(np.abs((low + high) / 2 - values[judged])))
            rows.append({"head": head, "family": family, "generators": int(judged.sum()), "error": error, "baseline": middle, "passes": error < middle})
    return pd.DataFrame(rows)


def decide(conditions: dict[str, Crops], truth: Truth, members: int, model_version: str, folds: int = FOLDS,
           outside: Outside | None = None, continuous_ranges: dict[str, tuple[float, float]] | None = None) -> tuple[ParsingPolicy, pd.DataFrame, dict]:
    """The policy fitted on every member, with ``shown`` from the out-of-fold figures (and, given ``outside``, from
    generators trained by others); the per-head table and the loss figures."""
    tables, fold_policies = out_of_fold(conditions, truth, members, folds)
    rows = []
    for head in head_names(conditions["clean"], truth):
        figures = {condition: head_figures(tables[condition], truth, head) for condition in conditions}
        row = {"head": head, "shown": all(passes(f) for f in figures.values())}
        for condition, values in figures.items():
            row.update({f"{condition} {k}": v for k, v in values.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    losses = {condition: loss_figures(tables[condition]["calibrated"], truth, conditions["clean"].heads.loss_types) for condition in conditions}
    policy = fit_policy(conditions["clean"], truth, members)
    policy.model_version = model_version
    evaluation = {"members": members, "folds": folds, "fold_type_thresholds": [p.type_threshold for p in fold_policies]}
    if outside is not None:
        figures = outside_figures(outside, policy, continuous_ranges or {})
        held = figures.groupby("head")["passes"].all()
        table["outside"] = [bool(held.get(head, True)) for head in table["head"]]
        table["shown"] = table["shown"] & table["outside"]
        # The type is shown inside its family: without a family there is nothing to report it in.
        table.loc[table["head"] == UPSAMPLING, "shown"] &= bool(table.loc[table["head"] == FAMILY_HEAD, "shown"].all())
        evaluation["outside"] = figures.astype(object).where(figures.notna(), None).to_dict(orient="records")
    policy.shown = dict(zip(table["head"], table["shown"].astype(bool)))
    policy.evaluation = evaluation | {"heads": table.astype(object).where(table.notna(), None).to_dict(orient="records"), "losses": losses}
    return policy, table, tables


def reliability_diagram(tables: dict[str, pd.DataFrame], truth: Truth, heads: Sequence[str], path: Path, bins: int = ECE_BINS) -> Path:
    """Accuracy against confidence per bin, before and after calibration, one panel per head (member-pooled, out of fold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(heads))
    rows = -(-len(heads) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    for axis, head in zip(axes.flat, heads):
        for kind, style in (("raw", "o--"), ("calibrated", "s-")):
            confidence, correct = head_confidence(tables[kind], truth, head)
            known = ~np.isnan(confidence)
            which = np.minimum((confidence[known] * bins).astype(int), bins - 1)
            centres = [confidence[known][which == b].mean() for b in range(bins) if (which == b).any()]
            accuracy = [correct[known][which == b].mean() for b in range(bins) if (which == b).any()]
            axis.plot(centres, accuracy, style, label=f"{kind} (ECE {expected_calibration_error(confidence, correct):.2f})")
        axis.plot(edges, edges, color="grey", linewidth=0.8)
        axis.set(title=head, xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
        axis.legend(fontsize=7, loc="upper left")
    for axis in list(axes.flat)[len(heads):]:
        axis.set_visible(False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def zoo_truth(data: object, spec: object) -> Truth:
    """Per-member truth in names and natural units from ``fingerprinting.training_data.LabelledImages``."""
    discrete = {name: np.array([choices[i] if i >= 0 else None for i in data.discrete[:, j]], dtype=object) for j, (name, choices) in enumerate(spec.discrete)}
    continuous = {name: low + data.continuous[:, j].astype(np.float64) * (high - low) for j, (name, low, high) in enumerate(spec.continuous)}
    losses = [[t for t, on in zip(spec.loss_types, row) if on] for row in data.losses]
    return Truth(discrete, continuous, losses)


def markdown(table: pd.DataFrame, losses: dict, policy: ParsingPolicy) -> str:
    """The per-head table and the loss figures as markdown."""
    def number(value: object) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.3f}"

    outside = _outside_cells(policy.evaluation.get("outside"))
    lines = ["| head | shown | clean: accuracy (majority) or MAE (mean) | JPEG 75 | ECE before -> after calibration, clean |"
             + (" outside the zoo: right (or MAE, range middle's) per family |" if outside else ""),
             "|---|---|---|---|---|" + ("---|" if outside else "")]
    for row in table.to_dict(orient="records"):
        cells = []
        for condition in ("clean", "jpeg75"):
            if not pd.isna(row.get(f"{condition} error", np.nan)):
                cells.append(f"{number(row[f'{condition} error'])} ({number(row[f'{condition} baseline'])})")
            else:
                cells.append(f"{number(row[f'{condition} accuracy'])} ({number(row[f'{condition} baseline'])})")
        ece = f"{number(row.get('clean ece_raw'))} -> {number(row.get('clean ece'))}" if "clean ece" in row and not pd.isna(row.get("clean ece")) else ""
        lines.append(f"| {row['head']} | {'yes' if row['shown'] else 'no: not estimable'} | {cells[0]} | {cells[1]} | {ece} |"
                     + (f" {outside.get(row['head'], '')} |" if outside else ""))
    up = table.set_index("head").loc[UPSAMPLING]
    lines.append("")
    lines.append(f"Upsampling type threshold {policy.type_threshold:.2f}: out of fold, a type is reported for "
                 f"{number(up['clean reported'])} of the members (JPEG 75: {number(up['jpeg75 reported'])}), right for "
                 f"{number(up['clean accuracy_where_reported'])} of them (JPEG 75: {number(up['jpeg75 accuracy_where_reported'])}).")
    for condition, figures in losses.items():
        lines.append(f"Loss-type F1 ({condition}): " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()) + ".")
    return "\n".join(lines) + "\n"


def _outside_cells(records: list[dict] | None) -> dict[str, str]:
    """Per head, its outside figures as one markdown cell ("family share", or "family MAE (middle's)")."""
    cells: dict[str, list[str]] = {}
    for r in records or []:
        figure = f"{r['error']:.2f} ({r['baseline']:.2f})" if r.get("error") is not None else ("n/a" if r["right"] is None else f"{r['right']:.2f}")
        cells.setdefault(r["head"], []).append(f"{r['family']} {figure}{'' if r['passes'] else ' ✗'}")
    return {head: ", ".join(parts) for head, parts in cells.items()}


def external_outside(corpus: Path, fingerprinter: object, spec: object) -> Outside:
    """The clean 64 px images of every generator of an external corpus, with the designs its tables record."""
    from fingerprinting.training_data import read_pixels

    images = pd.read_parquet(corpus / "images.parquet")
    images = images[images["is_fake"] & (images["view"] == "clean") & (images["width"] == 64)]
    generators = pd.read_parquet(corpus / "generators.parquet").set_index("member_id")
    order = sorted(images["member_id"].unique())
    generators = generators.loc[order]
    member = pd.Index(order).get_indexer(images["member_id"])
    discrete = {name: np.array([v if v in choices else None for v in generators[name]], dtype=object)
                for name, choices in spec.discrete if name in generators}
    continuous = {name: generators[name].to_numpy(np.float64) for name, _, _ in spec.continuous if name in generators}
    crops = Crops(fingerprinter.head_outputs(read_pixels([corpus / p for p in images["path"]])), member)
    return Outside(crops, Truth(discrete, continuous, [[] for _ in order]), generators["family"].to_numpy())


def main(argv: Sequence[str] | None = None) -> None:
    from fingerprinting.augment import jpeg_copy
    from fingerprinting.models import DEFAULT_CHECKPOINT, load_fingerprinter
    from fingerprinting.network import HeadSpec
    from fingerprinting.runtime import pin_threads
    from fingerprinting.shown import sidecar_path
    from fingerprinting.training_data import load_labelled_images

    parser = argparse.ArgumentParser(prog="python -m bench.parsing_part", description=__doc__.splitlines()[0])
    parser.add_argument("zoo", type=Path, help="A zoo built with a seed the checkpoint never trained on.")
    parser.add_argument("--model", default="default")
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--external", type=Path, help="An external corpus (genprint zoo external): show only heads that also hold on its generators.")
    parser.add_argument("--figure", type=Path, default=Path("data/bench_figures/parsing_reliability.png"))
    parser.add_argument("--write", action="store_true", help="Store the decided policy beside the checkpoint.")
    args = parser.parse_args(argv)
    pin_threads(int(os.environ.get("GENPRINT_THREADS", "2")))
    fingerprinter = load_fingerprinter(args.model)
    trained_on = fingerprinter.checkpoint.training.get("zoo", {}).get("options", {}).get("seed")
    data = load_labelled_images(args.zoo, HeadSpec.from_space())
    zoo_seed = json.loads((args.zoo / "zoo.json").read_text()).get("seed")
    if trained_on is not None and zoo_seed == trained_on:
        raise SystemExit(f"{args.zoo}: seed {zoo_seed} is the checkpoint's training zoo; decide on a zoo it never saw")
    fakes = data.is_fake
    conditions = {"clean": Crops(fingerprinter.head_outputs(data.pixels[fakes]), data.member[fakes]),
                  "jpeg75": Crops(fingerprinter.head_outputs(jpeg_copy(data.pixels[fakes], 75)), data.member[fakes])}
    truth = zoo_truth(data, HeadSpec.from_space())  # the spec load_labelled_images encoded the labels with
    members = len(data.member_ids)
    spec = HeadSpec.from_space()
    outside = external_outside(args.external, fingerprinter, spec) if args.external else None
    ranges = {name: (low, high) for name, low, high in spec.continuous}
    policy, table, tables = decide(conditions, truth, members, fingerprinter.checkpoint.version, args.folds, outside, ranges)
    if args.external:
        policy.evaluation["external"] = {"path": str(args.external), "generators": len(outside.family)}
    policy.evaluation["zoo"] = {"path": str(args.zoo), "seed": zoo_seed, "members": members, "images": int(fakes.sum())}
    print(markdown(table, policy.evaluation["losses"], policy))
    shown = [h for h in table["head"] if h not in truth.continuous]
    print(f"reliability diagram: {reliability_diagram(tables['clean'], truth, shown, args.figure)}")
    if args.write:
        weights = DEFAULT_CHECKPOINT if args.model == "default" else Path(args.model)
        print(f"policy written to {policy.save(sidecar_path(weights))}")


if __name__ == "__main__":
    main()
