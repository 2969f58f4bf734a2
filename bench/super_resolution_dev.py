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
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from torch import nn

from bench.detection_dev import corpus_parser, head_logit, noise_statistics, per_image, read_by_size, view_aucs
from bench.outside_part import PHOTO_FOLDS, fingerprint_corpus, load_images, photo_fold
from fingerprinting.models import load_fingerprinter
from fingerprinting.zoo.external.build import DOWNSCALE_FILTERS, MARKER, build_fakes
from fingerprinting.zoo.external.photographs import camera_photos
from fingerprinting.zoo.external.views import VIEW_SUFFIX, view_side
from fingerprinting.zoo.layers import act_layer, conv3x3, upsample_layer
from fingerprinting.zoo.photos import sample_crops, training_regions, usable_photos
from flows.markdown import markdown_table

FAMILY = "zoo-sr"
HR_SIDE = 64


@dataclass(frozen=True)
class Design:
    upsampling: str
    scale: int
    width: int
    body_convs: int
    activation: str
    bicubic_shortcut: bool
    loss: str


def sample_designs(count: int, seed: int) -> list[Design]:
    """`count` designs drawn uniformly from the space the docstring names; the four upsampling types in turn."""
    rng = np.random.default_rng(seed)
    types = ("pixel_shuffle", "transposed", "nearest", "bilinear")
    return [Design(types[i % 4], int(rng.choice([2, 4])), int(rng.choice([16, 24, 32, 48])), int(rng.integers(2, 7)),
                   str(rng.choice(["relu", "leaky_relu", "silu", "elu"])), bool(rng.random() < 0.5), str(rng.choice(["l1", "l2"])))
            for i in range(count)]


class Upscaler(nn.Module):
    """Head conv, `body_convs` convs, one upsampling layer per factor of two, to_rgb; output in [0, 1]."""

    def __init__(self, design: Design):
        super().__init__()
        w = design.width
        layers: list[nn.Module] = [conv3x3(3, w), act_layer(design.activation)]
        for _ in range(design.body_convs):
            layers += [conv3x3(w, w), act_layer(design.activation)]
        for _ in range(design.scale.bit_length() - 1):
            layers += [upsample_layer(design.upsampling, w, w), act_layer(design.activation)]
        layers.append(conv3x3(w, 3))
        self.net = nn.Sequential(*layers)
        self.design = design

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        out = self.net(low)
        if self.design.bicubic_shortcut:
            out = out + nn.functional.interpolate(low, scale_factor=self.design.scale, mode="bicubic", align_corners=False)
        return out

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> uint8 (scale H)x(scale W)x3, as the external corpus's runner returns."""
        with torch.inference_mode():
            x = torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].float().div(255)
            y = self(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        return y


def _low(rng: np.random.Generator, crop: np.ndarray, scale: int) -> np.ndarray:
    side = crop.shape[0] // scale
    return np.asarray(Image.fromarray(crop).resize((side, side), DOWNSCALE_FILTERS[rng.integers(len(DOWNSCALE_FILTERS))]))


def train_upscaler(design: Design, crops: np.ndarray, steps: int, seed: int) -> Upscaler:
    """Adam on batches of 16 random HR crops (flipped at random), each downscaled by a random filter of the corpus's."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Upscaler(design)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    loss = nn.functional.l1_loss if design.loss == "l1" else nn.functional.mse_loss
    for _ in range(steps):
        batch = crops[rng.integers(len(crops), size=16)]
        batch = np.stack([b[:, ::-1] if rng.random() < 0.5 else b for b in batch])
        low = torch.from_numpy(np.stack([_low(rng, b, design.scale) for b in batch])).permute(0, 3, 1, 2).float().div(255)
        high = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255)
        value = loss(model(low), high)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def build_family(work: Path, networks: int, steps: int, images: int, sizes: tuple[int, ...], seed: int) -> pd.DataFrame:
    """Train the networks (or reuse them) and write their images beside the corpus's layout; their rows as images.parquet's."""
    work = work / f"seed{seed}-steps{steps}-images{images}"  # a network's images are reused only under the options that made them
    crops, _ = sample_crops(training_regions(usable_photos(HR_SIDE), HR_SIDE), 4000, HR_SIDE, np.random.default_rng(seed))
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
