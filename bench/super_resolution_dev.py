"""Development check (issue 24): does a family of small super-resolution networks trained here teach a detector external families it never saw?

    python -m bench.super_resolution_dev --corpus EXT_DIR --shipped SHIPPED.npz --work DIR [--networks 12]

The external generators are super-resolution networks trained to convergence on photographs; the zoo's
members are not. This trains `--networks` small upscalers of varied design (upsampling type, factor,
width, depth, activation, bicubic shortcut or not, L1 or L2) on crops of the zoo's photographs, runs them
on the external corpus's photographs exactly as `genprint zoo external` runs Real-CUGAN and SPAN (same
patches, filters, margins and views), and fits the detection development check's best recipe (gradient
boosting on the shipped vector, its head's logit and the noise statistics) three ways per held-out family
and photograph fold: the other external family (the outside section's leave-one-family-out rule), these
networks alone (no external generator in training), and both. Prints one markdown table of ROC AUC per view.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from bench.detection_dev import corpus_parser, head_logit, per_image, read_by_size, view_aucs
from bench.outside_part import PHOTO_FOLDS, fingerprint_corpus, load_images, photo_fold
from fingerprinting.models import load_fingerprinter
from fingerprinting.noise_statistics import noise_statistics
from fingerprinting.zoo.external.build import MARKER, build_fakes
from fingerprinting.zoo.external.photographs import camera_photos
from fingerprinting.zoo.external.views import VIEW_SUFFIX, view_side
from fingerprinting.zoo.upscalers import sample_designs, train_upscaler, training_crops
from flows.markdown import markdown_table

FAMILY = "zoo-sr"


def build_family(work: Path, networks: int, steps: int, images: int, sizes: tuple[int, ...], seed: int) -> pd.DataFrame:
    """Train the networks (or reuse them) and write their images beside the corpus's layout; their rows as images.parquet's."""
    work = work / f"seed{seed}-steps{steps}-images{images}"  # a network's images are reused only under the options that made them
    crops = training_crops(4000, seed)
    photos, _ = camera_photos()
    options = {"images_per_generator": images, "seed": seed}
    rows = []
    for index, design in enumerate(sample_designs(networks, seed)):
        member = f"{FAMILY}-{index:02d}"
        folders = {size: work / "members" / member / str(size) for size in sizes}
        pending = [size for size, folder in folders.items() if not (folder / MARKER).exists()]
        started = time.monotonic()
        if pending:
            model = train_upscaler(design, crops, steps, seed + index)
            for size in pending:
                build_fakes(work, SimpleNamespace(member_id=member, scale=design.scale), model, photos, size, options)
        for size, folder in folders.items():
            records = json.loads((folder / MARKER).read_text())["images"]
            for record in records:
                for view, suffix in VIEW_SUFFIX.items():
                    rows.append({"path": str(folder / f"{record['index']:06d}{suffix}"), "view": view, "member_id": member, "family": FAMILY,
                                 "is_fake": True, "photo": record["photo"], "size": size, "width": view_side(size, view)})
        print(f"{member}: {asdict(design)} {'built' if pending else 'reused'} in {time.monotonic() - started:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    table["fold"] = [photo_fold(p) for p in table["photo"]]
    return table


def auc_table(images: pd.DataFrame, features: np.ndarray, boosting_rounds: int = 200) -> pd.DataFrame:
    """Per held-out external family and training recipe: ROC AUC per view, both photograph folds pooled."""
    fake, family, fold, view = (images[c].to_numpy() for c in ("is_fake", "family", "fold", "view"))
    family = np.where(fake, family, "")
    rows = []
    for held in ("realcugan", "span"):
        other = ({"realcugan", "span"} - {held}).pop()
        for recipe, fakes in {"other external family (leave-one-family-out)": {other}, "zoo super-resolution family only": {FAMILY},
                              "both": {other, FAMILY}}.items():
            scores = np.full(len(images), np.nan)
            for p in range(PHOTO_FOLDS):
                train = np.flatnonzero((fold != p) & (~fake | np.isin(family, list(fakes))))
                test = np.flatnonzero((fold == p) & (~fake | (family == held)))
                model = HistGradientBoostingClassifier(max_iter=boosting_rounds, random_state=0).fit(features[train], fake[train])
                scores[test] = model.predict_proba(features[test])[:, 1]
            rows.append({"held-out family": held, "trained on": recipe, **view_aucs(fake, view, scores)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = corpus_parser("bench.super_resolution_dev", __doc__)
    parser.add_argument("--work", type=Path, required=True, help="Where the networks' images go (reused when complete).")
    parser.add_argument("--networks", type=int, default=12)
    parser.add_argument("--steps", type=int, default=400, help="Training steps per network.")
    parser.add_argument("--images", type=int, default=200, help="Images per network and size.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    corpus = load_images(args.corpus)
    family = build_family(args.work, args.networks, args.steps, args.images, (64, 128), args.seed)
    shipped_cache = np.load(args.shipped)
    ours = fingerprint_corpus(family, load_fingerprinter("default"), print)
    vectors = np.concatenate([shipped_cache["vectors"], ours.vectors])
    scores = np.concatenate([shipped_cache["fake_scores"], ours.fake_scores])
    images = pd.concat([corpus, family], ignore_index=True)
    noise = per_image(read_by_size(images), noise_statistics, len(images))
    print(markdown_table(auc_table(images, np.c_[vectors, head_logit(scores), noise])))


if __name__ == "__main__":
    main()
