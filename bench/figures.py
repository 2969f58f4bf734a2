"""The suite's two figures: grouping against JPEG quality, and a map of each method's fingerprints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def plot_jpeg_curve(quality: pd.DataFrame, path: Path) -> None:
    """Grouping of never-seen members (B-cubed F1 and nearest-neighbour same-member rate) against JPEG quality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    held = quality[(quality["split"] == "held_out") & quality["view"].str.match(r"^(clean|jpeg\d+)$")].copy()
    held["jpeg"] = held["view"].map(lambda v: 100 if v == "clean" else int(v[4:]))
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    for method, rows in held.groupby("method", sort=False):
        rows = rows.sort_values("jpeg")
        for axis, column in zip(axes, ("bcubed_f1", "nn_same_member")):
            axis.plot(rows["jpeg"], rows[column], marker="o", label=method)
    for axis, title in zip(axes, ("B-cubed F1 of clusters", "nearest neighbour same member")):
        axis.set_title(f"unseen members: {title}", fontsize=9)
        axis.set_xlabel("JPEG quality (100 = original PNG)")
        axis.set_xticks([50, 75, 95, 100])
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_maps(vectors: dict[str, np.ndarray], members: np.ndarray, path: Path) -> None:
    """First two principal components of each method's fingerprints of unseen members, coloured by member."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    figure, axes = plt.subplots(1, len(vectors), figsize=(2.8 * len(vectors), 2.9), dpi=90, squeeze=False)
    _, colours = np.unique(members, return_inverse=True)
    for axis, (method, points) in zip(axes[0], vectors.items()):
        xy = PCA(2, random_state=0).fit_transform(points)
        axis.scatter(xy[:, 0], xy[:, 1], c=colours, cmap="tab20", s=5)
        axis.set_title(method, fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("PCA of fingerprints of unseen members (colour = true generator)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
