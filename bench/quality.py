"""Quality of each method on one zoo, per split, clean and degraded: clustering, attribution, detection, parsing.

Every method is a ``Fingerprinter`` and sees the same images. Registered references (the attribution
gallery) are the clean training images of the train members; queries are held-out images of train
members, every image of unseen-seed and unseen-architecture members, and held-out real photographs,
clean or after one degradation (the gallery stays clean, as in practice).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from clustering import metrics
from clustering.attribution import OpenSetAttributor
from clustering.origin import OriginClusterer
from fingerprinting.augment import each_image, jpeg, jpeg_copy
from fingerprinting.evaluation import detection_figures, nearest_neighbour_same_label_rate, parsing_figures
from fingerprinting.models import Fingerprinter, attributor_params
from fingerprinting.network import HeadSpec
from fingerprinting.training_data import LabelledImages

FAKE_SPLITS = ("train", "unseen_seed", "unseen_arch")
HELD_OUT = "held_out"  # unseen_seed and unseen_arch together: the headline "never seen" group
JPEG_QUALITIES = (95, 75, 50)
RESCALES = (0.75, 0.5)


@dataclass
class Partition:
    """Which images train the learned methods, which are the attribution gallery, which are queries."""

    data: LabelledImages
    train_rows: np.ndarray  # train-member fakes used for training, and the training reals
    reference_rows: np.ndarray  # train-member fakes used for training: the attribution gallery
    query_fakes: dict[str, np.ndarray]  # split -> query fakes (train: the held-out images of train members)
    query_reals: np.ndarray

    @property
    def query_rows(self) -> np.ndarray:
        return np.concatenate([self.reference_rows, *self.query_fakes.values(), self.query_reals])


def subset(data: LabelledImages, rows: np.ndarray) -> LabelledImages:
    """The images at ``rows`` with their labels; a per-image row reference (``source``, where the data
    has it) renumbered to the new rows, -1 where the row it points to is left out."""
    per_image: dict[str, np.ndarray] = {name: getattr(data, name)[rows] for name in ("pixels", "member", "kind", "split")}
    if hasattr(data, "source"):
        position = np.full(len(data.member), -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))
        source = data.source[rows]
        per_image["source"] = np.where(source >= 0, position[np.maximum(source, 0)], -1)
    return dataclasses.replace(data, **per_image)


def partition(data: LabelledImages, held_out_share: float = 0.3, seed: int = 0) -> Partition:
    """Hold out a share of each train member's images; reals of the zoo's train split train, the others are queries."""
    rng = np.random.default_rng(seed)
    member_split = np.where(data.member >= 0, data.member_split[np.maximum(data.member, 0)], "real")
    references, held = [], []
    for member in np.flatnonzero(data.member_split == "train"):
        rows = rng.permutation(np.flatnonzero(data.member == member))
        cut = max(1, round(held_out_share * len(rows)))
        held.append(rows[:cut])
        references.append(rows[cut:])
    references_rows, held_rows = np.sort(np.concatenate(references)), np.sort(np.concatenate(held))
    real = ~data.is_fake
    training_reals = np.flatnonzero(real & (data.split == "train"))
    query_reals = np.flatnonzero(real & (data.split != "train"))
    if not len(query_reals):  # a zoo without held-out reals: keep a share back
        shuffled = rng.permutation(training_reals)
        cut = max(1, round(held_out_share * len(shuffled)))
        query_reals, training_reals = np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
    query_fakes = {"train": held_rows} | {s: np.flatnonzero(member_split == s) for s in FAKE_SPLITS[1:]}
    return Partition(data, np.sort(np.concatenate([references_rows, training_reals])), references_rows, query_fakes, query_reals)


def degradations() -> dict[str, Callable[[Image.Image], Image.Image] | None]:
    """View name -> what happens to each image after it is made (None: untouched)."""
    views: dict[str, Callable[[Image.Image], Image.Image] | None] = {"clean": None}
    for quality in JPEG_QUALITIES:
        views[f"jpeg{quality}"] = lambda image, q=quality: jpeg(image, q)
    for factor in RESCALES:
        views[f"rescale{factor:g}"] = lambda image, f=factor: image.resize((round(image.width * f), round(image.height * f)), Image.Resampling.BICUBIC)
    return views


def apply(pixels: np.ndarray, change: Callable[[Image.Image], Image.Image] | None) -> np.ndarray:
    if change is None:
        return pixels
    return each_image(pixels, change)


def min_cluster_size(group_members: np.ndarray) -> int:
    """A third of a member's images in the group (at least 5): an origin worth reporting."""
    counts = np.bincount(group_members[group_members >= 0])
    return max(5, int(counts[counts > 0].min()) // 3) if counts.any() else 5


def reals_placed(labels: np.ndarray, fakes: int) -> dict[str, float]:
    """Where the reals (the labels after the first ``fakes``) went: into any cluster, into mostly generated ones."""
    return {"real_in_clusters": float((labels[fakes:] >= 0).mean()),
            "real_in_generated_clusters": metrics.real_in_generated_clusters(labels, np.arange(len(labels)) < fakes)}


def cluster(vectors: np.ndarray, min_size: int) -> np.ndarray:
    return OriginClusterer(min_cluster_size=min_size, n_components=min(64, vectors.shape[1], len(vectors) - 1)).fit(vectors).labels_


def evaluate_view(part: Partition, fingerprinter: Fingerprinter, attributor: OpenSetAttributor, view: str,
                  change: Callable[[Image.Image], Image.Image] | None, clean_only_splits: bool) -> list[dict]:
    """Rows of figures (one per split group) for one method on one view of the query images; ``attributor``
    is fitted on the clean gallery (``gallery_attributor``)."""
    data = part.data
    groups = {s: part.query_fakes[s] for s in FAKE_SPLITS} | {HELD_OUT: np.concatenate([part.query_fakes[s] for s in FAKE_SPLITS[1:]])}
    if clean_only_splits:  # degraded views: the headline group only, to keep the run short
        groups = {HELD_OUT: groups[HELD_OUT]}
    rows_all = np.concatenate([part.query_fakes[s] for s in FAKE_SPLITS] + [part.query_reals])
    sub = subset(data, rows_all)
    output = fingerprinter.fingerprint(apply(sub.pixels, change))
    position = {row: i for i, row in enumerate(rows_all)}
    reals_at = np.array([position[r] for r in part.query_reals])
    best_name, best = attributor.name(output.vectors)  # without the unknown option
    names = attributor.accept(best_name, best)
    truth = np.array([data.member_ids[m] if m >= 0 else "" for m in sub.member], dtype=object)
    known_at = np.array([position[r] for r in part.query_fakes["train"]])
    figures_rows = []
    for group, rows in list(groups.items()) + ([("real", part.query_reals)] if not clean_only_splits else []):
        at = np.array([position[r] for r in rows])
        row: dict[str, object] = {"method": fingerprinter.name, "view": view, "split": group, "images": len(at)}
        if group != "real":
            members = sub.member[at]
            row["nn_same_member"] = nearest_neighbour_same_label_rate(output.vectors[at], members)
            both = np.concatenate([at, reals_at])
            labels = cluster(output.vectors[both], min_cluster_size(members))
            report = metrics.clustering_report(members, labels[: len(at)])
            row |= {k: report[k] for k in ("ari", "nmi", "purity", "bcubed_f1", "noise_fraction", "clusters_found", "clusters_true")}
            row |= reals_placed(labels, len(at))
        if group == "train":
            # Closed set proper: the best registered name, no unknown option; then the same at the calibrated threshold.
            row["closed_set_accuracy"] = metrics.closed_set_accuracy(truth[at], best_name[at])
            row["accuracy_at_threshold"] = metrics.closed_set_accuracy(truth[at], names[at])
        else:
            # Known = held-out images of registered (train) members; unknown = this group's images.
            row["open_set_auroc"] = metrics.open_set_auroc(best[known_at], best[at])
            row["oscr"] = metrics.oscr(best[known_at], best_name[known_at] == truth[known_at], best[at])
        if group != "real":
            fakes = np.zeros(len(rows_all), bool)
            fakes[at] = True
            if output.fake_scores is not None:
                row |= detection_figures(output.fake_scores, fakes, sub)
            if output.parsed is not None and view == "clean":
                row |= parsing_figures(output.parsed, fakes, sub, HeadSpec.from_space())
        figures_rows.append(row)
    return figures_rows


def format_test(part: Partition, fingerprinter: Fingerprinter) -> dict:
    """Unseen members with every other image re-saved as JPEG 95: are the two formats of a member one cluster?

    Reports, over pairs of images of one member, the share in one cluster for cross-format pairs
    beside same-format pairs; a method that clusters by format has the first far below the second.
    """
    data = part.data
    rows = np.concatenate([part.query_fakes[s] for s in FAKE_SPLITS[1:]])
    pixels = data.pixels[rows].copy()
    is_jpeg = np.zeros(len(rows), bool)
    for member in np.unique(data.member[rows]):
        mine = np.flatnonzero(data.member[rows] == member)
        is_jpeg[mine[1::2]] = True
    pixels[is_jpeg] = jpeg_copy(pixels[is_jpeg], 95)
    reals = data.pixels[part.query_reals]
    vectors = fingerprinter.fingerprint(np.concatenate([pixels, reals])).vectors
    labels = cluster(vectors, min_cluster_size(data.member[rows]))[: len(rows)]
    members = data.member[rows]
    return {"method": fingerprinter.name, **pairs_together(members, labels, is_jpeg), "ari": metrics.adjusted_rand(members, labels)}


def pairs_together(members: np.ndarray, labels: np.ndarray, is_jpeg: np.ndarray) -> dict[str, float]:
    """Share of same-member image pairs in one cluster (noise never together), across formats and within one.

    Counted from (member, cluster, format) counts, so memory stays linear in the number of images.
    """
    counts = pd.DataFrame({"member": members, "cluster": labels, "jpeg": is_jpeg}).value_counts().unstack("jpeg", fill_value=0)
    counts = counts.reindex(columns=[False, True], fill_value=0)
    png, jpg = counts[False], counts[True]
    clustered = counts.index.get_level_values("cluster") >= 0
    totals = counts.groupby(level="member").sum()

    def pairs(n: pd.Series) -> pd.Series:
        return n * (n - 1) / 2

    cross_total = float((totals[False] * totals[True]).sum())
    same_total = float((pairs(totals[False]) + pairs(totals[True])).sum())
    return {
        "cross_format_pairs_together": float((png * jpg)[clustered].sum()) / cross_total if cross_total else float("nan"),
        "same_format_pairs_together": float((pairs(png) + pairs(jpg))[clustered].sum()) / same_total if same_total else float("nan"),
    }


def gallery_attributor(part: Partition, fingerprinter: Fingerprinter) -> OpenSetAttributor:
    """The attribution gallery (clean training images of the train members) fitted with the rule the
    method states, as the product does (Marra et al.: their averaged-residual correlation)."""
    references = fingerprinter.fingerprint(part.data.pixels[part.reference_rows]).vectors
    names = [part.data.member_ids[m] for m in part.data.member[part.reference_rows]]
    return OpenSetAttributor(**attributor_params(fingerprinter)).fit(references, names)


def evaluate_method(part: Partition, fingerprinter: Fingerprinter, views: dict | None = None) -> tuple[pd.DataFrame, dict, np.ndarray]:
    """(figures per view and split, the format test, clean held-out vectors for the 2-D map)."""
    attributor = gallery_attributor(part, fingerprinter)  # once: the gallery stays clean in every view
    rows = []
    for view, change in (views or degradations()).items():
        rows += evaluate_view(part, fingerprinter, attributor, view, change, clean_only_splits=view != "clean")
    held = np.concatenate([part.query_fakes[s] for s in FAKE_SPLITS[1:]])
    map_vectors = fingerprinter.fingerprint(part.data.pixels[held]).vectors
    return pd.DataFrame(rows), format_test(part, fingerprinter), map_vectors
