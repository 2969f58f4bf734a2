"""The suite's part of BENCHMARKS.md: its head (command, date, machine, commit) and every table, in words."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bench.provenance import code_revision, machine
from bench.sections import SUITE, write_section
from flows.markdown import markdown_table

if TYPE_CHECKING:
    from bench.suite import BenchResult


CLUSTER_COLUMNS = ["ari", "nmi", "purity", "bcubed_f1", "noise_fraction", "real_in_clusters", "real_in_generated_clusters", "clusters_found", "clusters_true", "nn_same_member"]
SPLIT_NAMES = {"train": "train members, held-out images", "unseen_seed": "unseen seed", "unseen_arch": "unseen architecture",
               "held_out": "unseen seed + architecture", "real": "real photographs"}


def _pick(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.reindex(columns=columns)


def _by_split(frame: pd.DataFrame, columns: list[str]) -> str:
    """A table of ``columns`` with each split named in words."""
    return markdown_table(_pick(frame.assign(split=lambda f: f["split"].map(SPLIT_NAMES)), columns))


def _paragraphs(*parts: str) -> list[str]:
    """Markdown lines: each part (heading, text, table, figure) followed by a blank line."""
    return [line for part in parts for line in (part, "")]


def parsing_summary(quality: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy of the discrete hyperparameters against the majority class, continuous L1 against the mean, loss-type F1."""
    clean = quality[(quality["view"] == "clean") & (quality["split"] != "real")]
    rows = []
    for _, row in clean.iterrows():
        out = {"method": row["method"], "split": SPLIT_NAMES[row["split"]]}
        for view in ("image", "member"):
            accuracy = [c for c in row.index if c.startswith(f"{view}_") and c.endswith("_accuracy")]
            values = row[accuracy].astype(float)
            if values.notna().any():
                out[f"{view}: discrete accuracy"] = float(values.mean())
                out[f"{view}: majority"] = float(row[[c.replace("_accuracy", "_majority") for c in accuracy]].astype(float).mean())
                out[f"{view}: macro-F1"] = float(row[[c.replace("_accuracy", "_macro_f1") for c in accuracy]].astype(float).mean())
                out[f"{view}: majority macro-F1"] = float(row[[c.replace("_accuracy", "_majority_macro_f1") for c in accuracy]].astype(float).mean())
                out[f"{view}: L1"] = row.get(f"{view}_continuous_l1")
                out[f"{view}: L1 of mean"] = row.get(f"{view}_continuous_l1_mean_baseline")
                out[f"{view}: loss F1"] = row.get(f"{view}_loss_f1")
            else:
                out[f"{view}: discrete accuracy"] = np.nan
        rows.append(out)
    return pd.DataFrame(rows)


def parsing_detail(quality: pd.DataFrame, split: str = "held_out", unit: str = "image") -> pd.DataFrame:
    """Per discrete hyperparameter, on one group of clean images, per ``unit`` ("image", or "member": each
    member's images pooled): accuracy and macro-F1 of each method with heads, and the majority class's."""
    rows = quality[(quality["view"] == "clean") & (quality["split"] == split)].set_index("method")
    prefix = f"{unit}_"
    names = sorted({c[len(prefix):-len("_macro_f1")] for c in rows.columns if c.startswith(prefix) and c.endswith("_macro_f1") and "majority" not in c})
    table = []
    for name in names:
        out: dict[str, object] = {"hyperparameter": name}
        for method, row in rows.iterrows():
            if pd.notna(row.get(f"{prefix}{name}_accuracy")):
                out[f"{method} accuracy"] = row[f"{prefix}{name}_accuracy"]
                out[f"{method} macro-F1"] = row[f"{prefix}{name}_macro_f1"]
                out["majority accuracy"] = row[f"{prefix}{name}_majority"]
                out["majority macro-F1"] = row[f"{prefix}{name}_majority_macro_f1"]
        table.append(out)
    return pd.DataFrame(table)


def headline(quality: pd.DataFrame) -> str:
    """Plain words: is each of genprint's learned fingerprints ahead on grouping never-seen generators?"""
    clean = quality[(quality["view"] == "clean") & (quality["split"] == "held_out")].set_index("method")
    others = clean.drop(index=[m for m in clean.index if m.startswith("genprint")])
    lines = []
    for method in [m for m in clean.index if m.startswith("genprint")]:
        for metric, name in (("bcubed_f1", "B-cubed F1"), ("ari", "ARI"), ("nn_same_member", "nearest-neighbour same-member rate")):
            best = others[metric].idxmax()
            verdict = "ahead of" if clean.loc[method, metric] > others[metric].max() else "NOT ahead of"
            lines.append(f"- {name}: {method} {clean.loc[method, metric]:.3f}; best baseline {best} {others.loc[best, metric]:.3f}: "
                         f"**{verdict}** the baselines.")
    return "\n".join(lines)


def write_markdown(result: BenchResult, out: Path, command: str, figures: Path, started: datetime, wall_seconds: float) -> None:
    """The suite's part of BENCHMARKS.md (its head and every table) from one ``BenchResult``."""
    q = result.quality
    config = result.config
    clean = q[q["view"] == "clean"]
    fakes = clean[clean["split"] != "real"]
    figures_rel = figures.resolve().relative_to(out.resolve().parent) if figures.resolve().is_relative_to(out.resolve().parent) else figures
    sections = [
        "# genprint benchmarks",
        "",
        "Generated by `python -m bench`; do not edit by hand (rerun the command). Every number below was measured in this one run, "
        "on this one machine: compare methods and sizes within the page (ratios), not against numbers from another machine.",
        "",
        f"- command: `{command}`",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; wall time of the whole suite {wall_seconds / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in result.seconds.items())})",
        f"- machine: {machine()}",
        f"- code: {code_revision()}",
        *([f"- resumed: an earlier run of the same configuration and code finished {', '.join(result.reused_stages)}; those "
           "figures (and training times) come from it, everything else from this run"] if result.reused_stages else []),
        f"- zoo: {config.members} members x {config.images_per_member} images, {config.size} px PNG, zoo seed {result.zoo_seed} "
        f"(never used to train a shipped checkpoint); threads {config.threads}",
        "",
        *_paragraphs(
            "## Headline: grouping generators never seen in training",
            *([f"Quick mode: {config.members} members (a few per split), {config.epochs} epochs of training. The figures are noisy "
               "(one clustering of a few hundred images decides a row) and say that every code path works, not which method is ahead; "
               "`python -m bench` (paper scale) is the comparison."] if config.members < 50 else []),
            headline(q),
            explain(q),
            "## Methods",
            shipped_note(q),
            markdown_table(result.methods),
            "All methods see the same images. Learned methods train on the zoo's train members (70 % of each member's images) "
            "and the train reals, with the same augmentation and number of epochs. The attribution gallery is those same training "
            "images; queries are the other 30 % of train members' images, every image of unseen-seed and unseen-architecture "
            "members, and held-out real photographs. Clustering runs on each group's fakes mixed with the held-out reals "
            "(OriginClusterer, minimum cluster size a third of a member's images, at least 5); metrics are over the fakes, "
            "`real_in_clusters` is the share of reals put in any cluster, `real_in_generated_clusters` the share put in a cluster of mostly generated images.",
            "## Clustering (clean images)",
            _by_split(fakes, ["method", "split", *CLUSTER_COLUMNS]),
            "## Attribution (clean images)",
            "Closed set: held-out images of registered (train) members, each named by its best-scoring registered name (no unknown "
            "option, as closed-set accuracy is defined in open-set recognition); at threshold: the same with the calibrated acceptance "
            "threshold, an image called unknown counting as wrong. Open set: the best name's score (cosine "
            "similarity to its nearest reference; Marra 2019: to its averaged residual, the paper's rule) telling "
            "registered members' held-out images (known) from the group's images (unknown); OSCR also needs the name right.",
            _by_split(clean, ["method", "split", "closed_set_accuracy", "accuracy_at_threshold", "open_set_auroc", "oscr"]),
            "## Detection (clean images, each group's fakes against the held-out reals)",
            _by_split(fakes, ["method", "split", "auc", "average_precision", "brier", "auc_content_matched"]),
            "N/A: the method has no detection head (spectral, Marra 2019).",
            "## Parsing (clean images)",
            "Mean over the discrete hyperparameters of accuracy and macro-F1 against always answering the majority class; continuous "
            "hyperparameters as L1 on the min-max scale against predicting the mean; loss types as multi-label F1. `member` pools "
            "each true member's images (the product pools a cluster's).",
            markdown_table(parsing_summary(q)),
            "Per discrete hyperparameter, per image, unseen seed + architecture:",
            markdown_table(parsing_detail(q)),
            "The same per member (each never-seen member's images pooled, as the product pools a cluster's; "
            "issue 3 asks for upsampling >= 0.9 and every discrete hyperparameter ahead of the majority class):",
            markdown_table(parsing_detail(q, unit="member")),
            "## Robustness: unseen members after re-encoding and rescaling",
            "Queries degraded, gallery clean. Rescaling is only a benchmark condition here (genprint never resamples).",
            markdown_table(_pick(q[q["split"] == "held_out"], ["method", "view", "bcubed_f1", "ari", "noise_fraction", "nn_same_member", "open_set_auroc", "oscr", "auc"])),
            f"![quality against JPEG quality]({figures_rel}/quality_vs_jpeg.png)",
            "### Format test: one member saved as PNG and as JPEG 95",
            "Every other image of each unseen member re-saved as JPEG 95, clustered with the reals; share of same-member image "
            "pairs that land in one cluster, across formats and within one format. Across far below within = clustering by format.",
            markdown_table(_pick(result.formats, ["method", "cross_format_pairs_together", "same_format_pairs_together", "ari"])),
            format_verdict(result.formats),
            f"![fingerprint map]({figures_rel}/fingerprint_map.png)",
            "## Speed",
            f"Decode + fingerprint against decode alone (the floor), {config.threads} decode threads, medians of {config.throughput_repeats} interleaved repeats; "
            "images larger than the crop are fingerprinted from up to 4 native-resolution crops.",
            markdown_table(result.throughput, digits=2),
            "### Peak memory of a pipeline run against the number of images",
            "`Store.run` in a fresh process over a fresh store (model: the shipped checkpoint, or where none ships the one trained in this run); peak resident memory of each "
            "stage, the process's high-water mark reset as the stage starts (`flows.stage_memory`). Fingerprinting (discovery, decoding, "
            "the network, shard files) streams bounded shards; the update step holds the store's fingerprints for the index, the "
            "re-clustering and the tables.",
            markdown_table(result.memory, digits=1),
            memory_verdict(result.memory),
            "### Incremental runs",
            "One process: the first run, the same sources again, then 1 % new images; a run's peak counts what the process kept from the runs before it.",
            markdown_table(result.incremental, digits=2),
            "### Index (FAISS) at scale, synthetic 64-d fingerprints (`bench.clustering_scale`)",
            markdown_table(result.index, digits=3),
            "### Clustering at scale (`bench.clustering_scale`, subprocess peak memory)",
            markdown_table(result.clustering, digits=3),
        ),
    ]
    write_section(out, SUITE, "\n".join(sections))


def memory_verdict(memory: pd.DataFrame) -> str:
    """How each stage's peak grows from the smallest to the largest run, as a ratio and per added image."""
    small, large = memory.iloc[0], memory.iloc[-1]
    added = large["images"] - small["images"]

    def growth(column: str) -> str:
        return f"{large[column] / small[column]:.2f}x (+{1024 * (large[column] - small[column]) / added:.1f} KiB per added image)"

    return (f"For {large['images'] / small['images']:.1f}x the images, fingerprinting's peak is {growth('peak MiB while fingerprinting')}: "
            "decoding and the network work on bounded shards, and what grows is the run's list of inputs and its queued shard tasks. "
            f"The update's peak is {growth('peak MiB of the update')}: during the update the store's fingerprints, tables and index "
            "are in memory and every image is re-clustered (clustering alone at scale: the last table).")


def format_verdict(formats: pd.DataFrame, tolerance: float = 0.9) -> str:
    """Name the methods whose clusters split a member by file format (cross-format pairs together well below same-format)."""
    split = formats[formats["cross_format_pairs_together"] < tolerance * formats["same_format_pairs_together"]]["method"].tolist()
    if not split:
        return "No method splits a member by format here (cross-format pairs together at least 90 % as often as same-format pairs)."
    return f"Clusters partly by file format (cross-format pairs together under 90 % as often as same-format pairs): {', '.join(split)}."


def shipped_note(quality: pd.DataFrame) -> str:
    if "genprint learned (shipped)" in set(quality["method"]):
        return "`genprint learned (shipped)` is the checkpoint that ships in `fingerprinting/weights/`; `genprint learned` is the same network trained in this run."
    return ("No checkpoint ships in `fingerprinting/weights/` yet: the shipped learned model could not be measured. "
            "`genprint learned` is genprint's network trained in this run, with the same members, images, augmentation and epochs as the FEN-style baseline.")


def explain(quality: pd.DataFrame) -> str:
    """Why, where the learned fingerprint is behind: the evidence this run has (budget and zoo size)."""
    clean = quality[(quality["view"] == "clean") & (quality["split"] == "held_out")].set_index("method")
    others = clean.drop(index=[m for m in clean.index if m.startswith("genprint")])
    if clean.loc["genprint learned", "bcubed_f1"] > others["bcubed_f1"].max():
        return ""
    return ("Where the learned fingerprint trained in this run is behind, the likely reasons are the training budget and the zoo: "
            "it is trained here on this run's train members only, for the epochs listed under Methods, and a narrow zoo "
            "makes learned embeddings overfit to the train members' families (DESIGN.md section 3), while the "
            "training-free spectral fingerprint needs no training at all.")
