"""The shipped network's recipe retrained leave-one-family-out: the training zoo, upscalers trained here, the other external family.

    python -m bench.outside_retrained --corpus EXT_DIR --zoo ZOO_DIR --upscalers DIR --shipped SHIPPED.npz --work DIR

Issue 24 asks for the fingerprint to be trained for what it will meet, with the external generators in
training and one family held out at a time. For each held-out family F and photograph fold P
(``outside_part.folds``) this trains `genprint train`'s network, with the shipped checkpoint's options
(``scripts/train-default.sh``), on the training zoo plus

- the other external family's images whose photographs are in the other fold (clean and both platform
  views, as 64 px centre crops; their training objective is unknown, so no loss-type target),
- the zoo upscalers of ``bench.super_resolution_dev`` on the same photographs (no external weights),
- that fold's photograph crops as reals,

and fingerprints what the fold is judged on through the product's loading (``outside_fen.fingerprint_rows``).
Prints the outside section's detection and grouping tables for the retrained nets beside the shipped model.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.detection_dev import corpus_parser
from bench.outside_fen import FoldFingerprints, fingerprint_rows, judged_rows, labelled_external
from bench.outside_part import SHIPPED, Fingerprints, detection_table, folds, grouping_table, load_images
from bench.super_resolution_dev import FAMILY, build_family, sample_designs
from fingerprinting.checkpoint import save_checkpoint
from fingerprinting.design import LOSS_TYPES
from fingerprinting.models import load_fingerprinter
from fingerprinting.network import HeadSpec
from fingerprinting.train import TrainConfig, fit
from fingerprinting.training_data import LabelledImages, load_labelled_images
from flows.markdown import markdown_table

RETRAINED = "genprint learned, retrained leave-one-family-out"
# scripts/train-default.sh's options: the shipped checkpoint's recipe, with more to learn from.
SHIPPED_RECIPE = TrainConfig(epochs=8, steps_per_epoch=300, patience=4, seed=0)


def concat_labelled(parts: list[LabelledImages]) -> LabelledImages:
    """One training set from several: member indices shifted past the earlier parts' members, content sources past their rows
    (draw weights, ``member_weight``, are the caller's to set on the result)."""
    offsets = np.cumsum([0] + [len(p.member_ids) for p in parts[:-1]])
    row_offsets = np.cumsum([0] + [len(p.member) for p in parts[:-1]])
    return LabelledImages(
        pixels=np.concatenate([p.pixels for p in parts]),
        member=np.concatenate([np.where(p.member >= 0, p.member + o, -1) for p, o in zip(parts, offsets)]),
        kind=np.concatenate([p.kind for p in parts]), split=np.concatenate([p.split for p in parts]),
        source=np.concatenate([np.where(p.source >= 0, p.source + o, -1) for p, o in zip(parts, row_offsets)]),
        member_ids=[m for p in parts for m in p.member_ids], member_split=np.concatenate([p.member_split for p in parts]),
        member_family=np.concatenate([p.member_family for p in parts]), continuous=np.concatenate([p.continuous for p in parts]),
        discrete=np.concatenate([p.discrete for p in parts]), losses=np.concatenate([p.losses for p in parts]),
    )


def learnt_from(table: pd.DataFrame, generators: pd.DataFrame, rows: np.ndarray, spec: HeadSpec, side: int) -> LabelledImages:
    """``rows`` of an image table as ``side`` px training images: their members (and reals) in the split training
    learns from, other members validation-only, and a member whose objective is unknown without loss-type targets."""
    data = labelled_external(table, generators, rows, spec, side)
    data.split[:] = "train"
    data.member_split[:] = np.where(np.isin(np.arange(len(data.member_ids)), data.member[data.member >= 0]), "train", "external")
    loss_columns = [f"loss_{loss}" for loss in LOSS_TYPES]
    unknown = generators.reindex(columns=loss_columns).isna().all(axis=1).to_numpy()
    data.losses[unknown] = np.nan
    return data


def upscaler_generators(table: pd.DataFrame, networks: int, seed: int) -> pd.DataFrame:
    """generators.parquet rows of the zoo upscalers, from the designs that made them (skip and sizes left unknown)."""
    rows = []
    for index, design in enumerate(sample_designs(networks, seed)):
        rows.append({"member_id": f"{FAMILY}-{index:02d}", "family": FAMILY, "split": "train", "upsampling": design.upsampling,
                     "norm": "none", "activation": design.activation, "last_activation": "none",
                     **{f"loss_{loss}": loss == design.loss for loss in LOSS_TYPES}})
    return pd.DataFrame(rows).loc[lambda g: g["member_id"].isin(table["member_id"])].reset_index(drop=True)


def retrained_fold_fingerprints(images: pd.DataFrame, generators: pd.DataFrame, fold_rows: Iterable[tuple[str, int, np.ndarray, np.ndarray]],
                                zoo: LabelledImages, upscalers: pd.DataFrame, upscaler_designs: pd.DataFrame, config: TrainConfig,
                                work: Path, log: Callable[[str], None], photo_trained_share: float | None = None) -> FoldFingerprints:
    """Train (or reuse, from ``work``) one network per fold and fingerprint what that fold is judged on.

    ``photo_trained_share``: the share of batch members drawn from the external family and the upscalers
    (None: every member alike, about a sixth of them)."""
    spec, side = config.network.heads, zoo.pixels.shape[1]
    trainable = ((images["width"] >= side) & (images["height"] >= side)).to_numpy()
    upscaler_trainable = ((upscalers["width"] >= side) & (upscalers["height"] >= side)).to_numpy()
    keys, vectors, scores = [], [], []
    for held, p, train, _ in fold_rows:
        path = work / f"without-{held}-fold{p}.safetensors"
        if not path.is_file():
            external = learnt_from(images, generators, train[trainable[train]], spec, side)
            ours = learnt_from(upscalers, upscaler_designs, np.flatnonzero(upscaler_trainable & (upscalers["fold"].to_numpy() != p)), spec, side)
            data = concat_labelled([zoo, external, ours])
            if photo_trained_share is not None:
                learnt = np.isin(data.member_split, config.training_splits)
                photo_trained = learnt & (np.arange(len(data.member_ids)) >= len(zoo.member_ids))
                data.member_weight = np.where(photo_trained, photo_trained_share / photo_trained.sum(),
                                              (1 - photo_trained_share) / max(1, (learnt & ~photo_trained).sum()))
            report = lambda done, total, what: log(f"without {held}, fold {p}: {what}") if done % 300 == 0 else None  # noqa: E731
            result = fit(data, config, report)
            work.mkdir(parents=True, exist_ok=True)
            save_checkpoint(result.checkpoint, path)
            log(f"without {held}, fold {p}: trained on {len(data.member)} images ({len(external.member)} external, "
                f"{len(ours.member)} from zoo upscalers) in {result.seconds:.0f} s, best epoch {result.best_epoch}")
        fold_vectors, fold_scores = fingerprint_rows(images, judged_rows(images, p, train), load_fingerprinter(path))
        keys.append((held, p))
        vectors.append(fold_vectors)
        scores.append(fold_scores)
    return FoldFingerprints(keys, np.stack(vectors), np.stack(scores))


def main() -> None:
    parser = corpus_parser("bench.outside_retrained", __doc__)
    parser.add_argument("--zoo", type=Path, required=True, help="The training zoo (scripts/train-default.sh's).")
    parser.add_argument("--upscalers", type=Path, required=True, help="bench.super_resolution_dev's --work (reused when complete).")
    parser.add_argument("--networks", type=int, default=24, help="Zoo upscalers (bench.super_resolution_dev --networks).")
    parser.add_argument("--upscaler-steps", type=int, default=600, help="Their training steps (bench.super_resolution_dev --steps).")
    parser.add_argument("--work", type=Path, required=True, help="Where the retrained checkpoints go (reused when present).")
    parser.add_argument("--photo-trained-share", type=float, default=None,
                        help="Share of each batch's members drawn from the external family and the upscalers (default: as many as any).")
    args = parser.parse_args()
    torch.set_num_threads(2)
    images = load_images(args.corpus)
    generators = pd.read_parquet(args.corpus / "generators.parquet")
    upscalers = build_family(args.upscalers, args.networks, args.upscaler_steps, 200, (64, 128), 0)
    upscalers = upscalers.assign(kind="super_resolution", split="train", height=upscalers["width"])
    zoo = load_labelled_images(args.zoo, SHIPPED_RECIPE.network.heads)
    retrained = retrained_fold_fingerprints(images, generators, folds(images), zoo, upscalers, upscaler_generators(upscalers, args.networks, 0),
                                            SHIPPED_RECIPE, args.work, print, args.photo_trained_share)
    with np.load(args.shipped) as cache:
        shipped = Fingerprints(cache["vectors"], cache["fake_scores"])
    prints = {SHIPPED: shipped, RETRAINED: retrained}
    print(markdown_table(detection_table(images, prints)))
    print(markdown_table(grouping_table(images, prints)))


if __name__ == "__main__":
    main()
