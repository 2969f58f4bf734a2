"""How much of a zoo's design labels its images can reveal: loss-type F1 ceilings and grouped cross-validated parsing.

Issue 3 asks for loss-type F1 >= 0.85 per cluster. Whether any parser can reach that depends on
which labels leave a trace. ``loss_f1_ceiling`` answers it from the labels alone. Suppose a parser
knows every loss type of a generator except, within each group of look-alikes, which one it was
(L1 or L2, say). Then the best it can do is the set with the highest F1 averaged over the truths it
cannot tell apart.

``pooled_identifiability`` measures how far the labels show in the images. It takes each member's
mean fingerprint and fits a linear classifier on the other members' means, five times over. Folds
are grouped by design, so an unseen-seed member never tests on its own parent's design. Compare the
results with the majority class.

``confusion_table`` shows which values of one label those classifiers mistake for each other.

Run ``python -m bench.identifiability ZOO_DIR [MODEL]`` for the three tables of one zoo. MODEL is
``default`` (the shipped checkpoint), ``spectral`` or a checkpoint path.
"""
from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fingerprinting.parsing import discrete_names
from fingerprinting.zoo.losses import GAN_LOSSES, RECONSTRUCTION_LOSSES
from fingerprinting.zoo.space import LOSS_TYPES, hyperparameter

# The look-alike groups whose members a parser may be unable to tell apart, from the mildest assumption on.
LOOK_ALIKES: dict[str, tuple[tuple[str, ...], ...]] = {
    "L1 vs L2 unknown": (RECONSTRUCTION_LOSSES,),
    "L1 vs L2 and which GAN loss unknown": (RECONSTRUCTION_LOSSES, GAN_LOSSES),
}


def loss_f1_ceiling(loss_sets: Sequence[Sequence[str]], look_alikes: Sequence[Sequence[str]]) -> np.ndarray:
    """Per generator, the best expected F1 of a parser that knows its loss set up to swaps within ``look_alikes``.

    Each type of the true set that belongs to a look-alike group may be any type of that group,
    all equally likely; the parser names the one set with the highest mean F1 over those truths.
    """
    candidates = [frozenset(c) for size in range(1, len(LOSS_TYPES) + 1) for c in itertools.combinations(LOSS_TYPES, size)]
    ceilings = []
    for losses in loss_sets:
        choices = [next((group for group in look_alikes if loss in group), (loss,)) for loss in losses]
        truths = [frozenset(t) for t in itertools.product(*choices)]
        ceilings.append(max(np.mean([_f1(candidate, truth) for truth in truths]) for candidate in candidates))
    return np.array(ceilings)


def _f1(named: frozenset[str], truth: frozenset[str]) -> float:
    return 2 * len(named & truth) / (len(named) + len(truth))


def grouped_predictions(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each member's label as predicted by a logistic regression fitted on the other folds' members, folds grouped by design."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    return cross_val_predict(model, features, labels, groups=groups, cv=GroupKFold(min(folds, len(np.unique(groups)))))


def pooled_identifiability(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: int = 5) -> tuple[float, float]:
    """(accuracy, majority share) of ``grouped_predictions``."""
    predicted = grouped_predictions(features, labels, groups, folds)
    _, counts = np.unique(labels, return_counts=True)
    return float(np.mean(predicted == labels)), float(counts.max() / len(labels))


def confusion_table(member_features: np.ndarray, generators: pd.DataFrame, name: str = "upsampling") -> pd.DataFrame:
    """Members per (true, predicted) value of one discrete hyperparameter under ``grouped_predictions``: which values look alike."""
    labels = generators[name].to_numpy(str)
    predicted = grouped_predictions(member_features, labels, design_groups(generators))
    table = pd.crosstab(pd.Series(labels, name=f"true {name}"), pd.Series(predicted, name="predicted"))
    return table.reset_index().rename_axis(columns=None)


def design_groups(generators: pd.DataFrame) -> np.ndarray:
    """One group per design: an unseen-seed member joins the train member whose design it copies."""
    parents = generators["parent_id"].where(generators["parent_id"].notna(), generators["member_id"])
    return parents.to_numpy(str)


def ceiling_table(generators: pd.DataFrame) -> pd.DataFrame:
    """Mean loss-F1 ceiling per zoo split and look-alike assumption."""
    rows = []
    for assumption, groups in LOOK_ALIKES.items():
        ceilings = loss_f1_ceiling(generators["losses"].tolist(), groups)
        for split, chosen in [("all", np.ones(len(generators), bool))] + [(s, (generators["split"] == s).to_numpy()) for s in generators["split"].unique()]:
            rows.append({"assumption": assumption, "split": split, "members": int(chosen.sum()), "loss_f1_ceiling": float(ceilings[chosen].mean())})
    return pd.DataFrame(rows)


def identifiability_table(member_features: np.ndarray, generators: pd.DataFrame) -> pd.DataFrame:
    """Grouped cross-validated accuracy of each discrete hyperparameter from the members' pooled fingerprints."""
    groups = design_groups(generators)
    rows = []
    for name in discrete_names():
        accuracy, majority = pooled_identifiability(member_features, generators[name].to_numpy(str), groups)
        rows.append({"hyperparameter": name, "choices": len(hyperparameter(name).choices), "accuracy": accuracy, "majority": majority})
    for loss in RECONSTRUCTION_LOSSES[1:] + ("perceptual", "kl"):
        accuracy, majority = pooled_identifiability(member_features, generators[f"loss_{loss}"].to_numpy(bool), groups)
        rows.append({"hyperparameter": f"loss {loss} (vs not)", "choices": 2, "accuracy": accuracy, "majority": majority})
    gan = generators["losses"].map(lambda losses: next((t for t in losses if t in GAN_LOSSES), None))
    with_gan = gan.notna().to_numpy()
    accuracy, majority = pooled_identifiability(member_features[with_gan], gan[with_gan].to_numpy(str), groups[with_gan])
    rows.append({"hyperparameter": "which GAN loss (members with one)", "choices": len(GAN_LOSSES), "accuracy": accuracy, "majority": majority})
    return pd.DataFrame(rows)


def member_means(zoo_dir: str | os.PathLike, model: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Each member's mean fingerprint vector under ``model``, and the zoo's generators table in the same order."""
    from fingerprinting.models import load_fingerprinter
    from fingerprinting.network import HeadSpec
    from fingerprinting.training_data import load_labelled_images
    from fingerprinting.zoo import load_zoo

    data = load_labelled_images(zoo_dir, HeadSpec.from_space())
    fakes = data.member >= 0
    vectors = load_fingerprinter(model).fingerprint(data.pixels[fakes]).vectors
    member = data.member[fakes]
    means = np.stack([vectors[member == m].mean(0) for m in range(len(data.member_ids))])
    generators = load_zoo(zoo_dir).generators.set_index("member_id").loc[data.member_ids].reset_index()
    return means, generators


def main(argv: Sequence[str] | None = None) -> None:
    from fingerprinting.runtime import pin_threads
    from flows.markdown import markdown_table

    args = list(sys.argv[1:] if argv is None else argv)
    if not 1 <= len(args) <= 2:
        raise SystemExit("usage: python -m bench.identifiability ZOO_DIR [MODEL]")
    pin_threads(int(os.environ.get("GENPRINT_THREADS", "2")))
    model = args[1] if len(args) == 2 else "default"
    means, generators = member_means(args[0], model)
    print("### Loss-type F1 ceilings per member (from the labels alone)\n")
    print(markdown_table(ceiling_table(generators)))
    print(f"\n### Labels from pooled fingerprints ({model}; {len(generators)} members, 5 folds grouped by design)\n")
    print(markdown_table(identifiability_table(means, generators)))
    print("\n### Upsampling types the same classifier confuses (members)\n")
    print(markdown_table(confusion_table(means, generators)))


if __name__ == "__main__":
    main()
