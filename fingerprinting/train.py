"""Training of the fingerprint network on a zoo: metric learning over members plus detection and parsing heads.

Validation each epoch on members the network never trains on (held-out train members and the zoo's
unseen_seed / unseen_arch splits), clean and after JPEG 75, with early stopping on their
nearest-neighbour same-member rate and detection AUC; the detector is then Platt-calibrated on the
same held-out images.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fingerprinting.augment import Augmenter, jpeg_copy
from fingerprinting.checkpoint import Calibration, Checkpoint, save_checkpoint
from fingerprinting.evaluation import nearest_neighbour_same_label_rate
from fingerprinting.learned import combine_vectors
from fingerprinting.losses import parsing_losses, residual_constraints, supervised_contrastive, uniformity
from fingerprinting.network import FingerprintNet, NetworkConfig, NetworkOutput, to_network_input
from fingerprinting.optimiser import OneCycleAdamW
from fingerprinting.spectral import SpectralFingerprinter
from fingerprinting.training_data import LabelledImages, load_labelled_images

ProgressCallback = Callable[[int, int, str], None]
VALIDATION_JPEG_QUALITY = 75
SPECTRAL_WEIGHTS = (0.0, 0.25, 0.5, 0.75)  # candidate shares of the spectral fingerprint in the vector


@dataclass(frozen=True)
class LossWeights:
    contrastive: float = 1.0
    real_uniformity: float = 0.1
    detection: float = 3.0  # a balanced BCE is small beside the contrastive term; weighed up to keep pace
    parsing: float = 1.0
    # The FEN constraints regularise the residual; kept small so they shape it without dominating.
    magnitude: float = 1.0
    spectrum: float = 1.0
    repetition: float = 0.01
    symmetry: float = 0.01


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    seed: int = 0
    members_per_batch: int = 12
    images_per_member: int = 4
    reals_per_batch: int = 24
    steps_per_epoch: int | None = None  # None: one pass over the training fakes
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.1
    # Members of these zoo splits are learnt from (unseen_seed ones teach seed-level differences); the
    # others (unseen_arch, with its held-out family) only validate, so that family stays never seen.
    training_splits: tuple[str, ...] = ("train", "unseen_seed")
    validation_members: float = 0.15  # share of the learnable members held out for validation
    validation_reals: float = 0.2  # share of the reals held out, only where the zoo has no held-out reals
    patience: int = 5  # epochs without a better validation score before stopping
    crop_sides: tuple[int, ...] = (64, 64, 56, 48, 40, 32)  # one per batch, capped at the image side
    # Where the network trains ("cpu", "cuda", ...); the checkpoint always comes back on the CPU.
    device: str = "cpu"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augmenter: Augmenter = field(default_factory=Augmenter)
    weights: LossWeights = field(default_factory=LossWeights)


@dataclass
class TrainResult:
    checkpoint: Checkpoint
    path: Path | None
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float


@dataclass
class _Split:
    train_rows: np.ndarray
    validation_rows: np.ndarray
    validation_members: list[str]


def split_for_validation(data: LabelledImages, config: TrainConfig, rng: np.random.Generator) -> _Split:
    """Learn from most members of ``config.training_splits`` and their reals; validate on every other member and real.

    A share of those members is held out too, so validation always has members of the learnt
    families that the network never saw; the other splits (the zoo's unseen_arch, with its whole
    held-out family) are validation only. Reals of the other splits validate (or, where there are
    none, a share of all reals).
    """
    learnable = np.flatnonzero(np.isin(data.member_split, config.training_splits))
    held_count = round(config.validation_members * len(learnable)) if len(learnable) > 3 else 0
    upsampling = [name for name, _ in config.network.heads.discrete].index("upsampling")
    learn_members = np.setdiff1d(learnable, _held_out_members(data, learnable, held_count, upsampling, rng))
    real = ~data.is_fake
    validation_real = real & ~np.isin(data.split, config.training_splits)
    if not validation_real.any():
        reals = np.flatnonzero(real)
        validation_real[rng.choice(reals, round(config.validation_reals * len(reals)), replace=False)] = True
    validation_members = np.setdiff1d(np.arange(len(data.member_ids)), learn_members)
    learn = np.isin(data.member, learn_members) | (real & ~validation_real)
    validate = np.isin(data.member, validation_members) | validation_real
    return _Split(np.flatnonzero(learn), np.flatnonzero(validate), [data.member_ids[i] for i in validation_members])


def _held_out_members(data: LabelledImages, learnable: np.ndarray, count: int, upsampling: int, rng: np.random.Generator) -> list[int]:
    """Up to ``count`` random members whose family and upsampling type other learnt members still show.

    Breadth matters more than anything for unseen generators: the only member of a design stays in training.
    """
    design = {int(m): (data.member_family[m], int(data.discrete[m, upsampling])) for m in learnable}
    remaining = {d: sum(1 for other in design.values() if other == d) for d in set(design.values())}
    held: list[int] = []
    for member in rng.permutation(learnable):
        if len(held) < count and remaining[design[int(member)]] >= 2:
            held.append(int(member))
            remaining[design[int(member)]] -= 1
    return held


class _BatchSampler:
    """P members x K images each, plus R reals, each image augmented and cropped to one side per batch.

    The reals are first the very crops that the batch's reconstructions show (content-matched
    pairs: only the generator's trace tells them apart), then random ones.
    """

    def __init__(self, data: LabelledImages, rows: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> None:
        self.data, self.config, self.rng = data, config, rng
        fakes = rows[data.member[rows] >= 0]
        self.by_member = {int(m): fakes[data.member[fakes] == m] for m in np.unique(data.member[fakes])}
        self.reals = rows[data.member[rows] < 0]
        self.training_real = np.zeros(len(data.member), dtype=bool)
        self.training_real[self.reals] = True
        self.max_side = min(data.pixels.shape[1:3])

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        config, rng = self.config, self.rng
        members = list(self.by_member)
        weight = None if self.data.member_weight is None else self.data.member_weight[members]
        chosen = rng.choice(members, min(config.members_per_batch, len(members)), replace=False, p=None if weight is None else weight / weight.sum())
        fakes = np.concatenate([rng.choice(self.by_member[m], config.images_per_member, replace=len(self.by_member[m]) < config.images_per_member) for m in chosen])
        rows = [fakes]
        if len(self.reals):
            sources = self.data.source[fakes]
            paired = np.unique(sources[(sources >= 0) & self.training_real[np.maximum(sources, 0)]])
            paired = paired[: config.reals_per_batch]
            rows += [paired, rng.choice(self.reals, config.reals_per_batch - len(paired), replace=len(self.reals) < config.reals_per_batch)]
        rows = np.concatenate(rows)
        side = min(int(rng.choice(config.crop_sides)), self.max_side)
        crops = np.stack([config.augmenter(self.data.pixels[row], side, rng) for row in rows])
        return to_network_input(torch.from_numpy(crops)), torch.from_numpy(rows)


def training_loss(net_out: NetworkOutput, rows: torch.Tensor, data: LabelledImages, config: TrainConfig) -> dict[str, torch.Tensor]:
    """Every term of the objective for one batch (unweighted), plus their weighted ``total``."""
    device = net_out.embedding.device
    member = torch.from_numpy(data.member)[rows].to(device)
    fake = member >= 0
    terms = {
        "contrastive": supervised_contrastive(net_out.embedding, member, config.temperature),
        "real_uniformity": uniformity(net_out.embedding[~fake]),
        # Balanced classes: each side weighs the same whatever the batch mix.
        "detection": F.binary_cross_entropy_with_logits(net_out.fake_logit, fake.float(), pos_weight=(~fake).sum().clamp(min=1) / fake.sum().clamp(min=1)),
    }
    fake_members = member[fake].cpu().numpy()
    targets = (torch.from_numpy(t[fake_members]).to(device) for t in (data.continuous, data.discrete, data.losses))
    parsing = parsing_losses(net_out.continuous[fake], tuple(d[fake] for d in net_out.discrete), net_out.loss_logits[fake], *targets)
    terms["parsing"] = parsing["continuous"] + parsing["discrete"] + parsing["loss_types"]
    terms.update(residual_constraints(net_out.residual[fake]))
    weights = asdict(config.weights)
    terms["total"] = sum(weights[name] * value for name, value in terms.items())
    return terms


def predict(net: FingerprintNet, pixels: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, detector logits) of uint8 images, in eval mode, on the network's device."""
    net.eval()
    device = next(net.parameters()).device
    embeddings, logits = [], []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            out = net(to_network_input(torch.from_numpy(pixels[start : start + batch_size])).to(device))
            embeddings.append(out.embedding.cpu().numpy())
            logits.append(out.fake_logit.cpu().numpy())
    return np.concatenate(embeddings), np.concatenate(logits)


class _Validator:
    """Held-out members and reals, clean and re-encoded; scores a network by unseen-member figures."""

    def __init__(self, data: LabelledImages, rows: np.ndarray) -> None:
        self.member = data.member[rows]
        self.views = {"clean": data.pixels[rows], "jpeg75": jpeg_copy(data.pixels[rows], VALIDATION_JPEG_QUALITY)}

    def __call__(self, net: FingerprintNet) -> tuple[dict[str, float], np.ndarray]:
        metrics: dict[str, float] = {}
        logits = []
        fake = self.member >= 0
        for view, pixels in self.views.items():
            embedding, logit = predict(net, pixels)
            logits.append(logit)
            metrics[f"{view}_nn_same_member"] = nearest_neighbour_same_label_rate(embedding[fake], self.member[fake])
            metrics[f"{view}_auc"] = float(roc_auc_score(fake, logit)) if 0 < fake.sum() < len(fake) else float("nan")
        metrics["score"] = float(np.nanmean(list(metrics.values())))
        return metrics, np.concatenate(logits)

    def choose_spectral_weight(self, net: FingerprintNet, spectral: SpectralFingerprinter) -> tuple[float, dict[str, float]]:
        """The share of the spectral fingerprint in the vector that best groups held-out members (clean and JPEG 75)."""
        fake = self.member >= 0
        learned = {view: predict(net, pixels[fake])[0] for view, pixels in self.views.items()}
        fixed = {view: spectral.fingerprint(pixels[fake]).vectors for view, pixels in self.views.items()}
        scores = {
            weight: float(np.mean([nearest_neighbour_same_label_rate(combine_vectors(learned[v], fixed[v], weight), self.member[fake]) for v in self.views]))
            for weight in SPECTRAL_WEIGHTS
        }
        return max(scores, key=lambda w: (scores[w], -w)), {str(w): s for w, s in scores.items()}

    def calibrate(self, logits: np.ndarray) -> Calibration:
        """Platt scaling of the detector on the held-out images (both views), for a prior of one half."""
        labels = np.tile(self.member >= 0, len(self.views))
        if labels.all() or not labels.any():
            return Calibration()
        # Balanced: scores calibrated for even odds, whatever the mix of the held-out set.
        model = LogisticRegression(C=1e4, class_weight="balanced").fit(logits[:, None], labels)
        return Calibration(scale=float(model.coef_[0, 0]), bias=float(model.intercept_[0]))


def fit(data: LabelledImages, config: TrainConfig = TrainConfig(), on_progress: ProgressCallback | None = None) -> TrainResult:
    """Train a network on labelled zoo images; the best epoch on held-out members is kept and calibrated."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    split = split_for_validation(data, config, rng)
    sample = _BatchSampler(data, split.train_rows, config, rng)
    validator = _Validator(data, split.validation_rows)
    net = FingerprintNet(config.network).to(config.device)
    steps = config.steps_per_epoch or max(1, len(split.train_rows) // (config.members_per_batch * config.images_per_member + config.reals_per_batch))
    optimiser = OneCycleAdamW(net.parameters(), config.learning_rate, config.weight_decay, total_steps=config.epochs * steps)
    progress = on_progress or (lambda done, total, what: None)
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor], np.ndarray] | None = None
    status = "training"
    for epoch in range(1, config.epochs + 1):
        net.train()
        sums: dict[str, float] = {}
        for step in range(steps):
            x, rows = sample()
            terms = training_loss(net(x.to(config.device, non_blocking=True)), rows, data, config)
            optimiser.step(terms["total"])
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            progress((epoch - 1) * steps + step + 1, config.epochs * steps, f"epoch {epoch}/{config.epochs} loss {sums['total'] / (step + 1):.3f} {status}")
        metrics, logits = validator(net)
        history.append({"epoch": epoch, **{f"train_{k}": v / steps for k, v in sums.items()}, **metrics})
        if best is None or metrics["score"] > best[0]:
            best = (metrics["score"], epoch, copy.deepcopy(net.state_dict()), logits)
        status = f"| held-out nn {metrics['clean_nn_same_member']:.3f} auc {metrics['clean_auc']:.3f} (best epoch {best[1]})"
        progress(epoch * steps, config.epochs * steps, f"epoch {epoch}/{config.epochs} {status}")
        if epoch - best[1] >= config.patience:
            break
    assert best is not None
    net.to("cpu").load_state_dict(best[2])
    net.eval()
    training = {
        "seed": config.seed,
        "config": _jsonable(asdict(config) | {"network": None}),
        "validation_members": split.validation_members,
        "epochs_run": len(history),
        "best_epoch": best[1],
        "validation": history[best[1] - 1],
        "history": history,
        "train_seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(config.device) if config.device.startswith("cuda") else config.device,
    }
    spectral = SpectralFingerprinter()
    weight, training["spectral_weight_scores"] = validator.choose_spectral_weight(net, spectral)
    spectral_options = {"grid": list(spectral.grid), "radial_bins": spectral.radial_bins}
    checkpoint = Checkpoint(net, validator.calibrate(best[3]), training, spectral_weight=weight, spectral_options=spectral_options)
    return TrainResult(checkpoint, None, history, best[1], training["train_seconds"])


def train(zoo_dir: str | os.PathLike, out: str | os.PathLike, config: TrainConfig = TrainConfig(), on_progress: ProgressCallback | None = None) -> TrainResult:
    """Train on the zoo at ``zoo_dir`` and save the checkpoint at ``out`` (.safetensors + .json)."""
    data = load_labelled_images(zoo_dir, config.network.heads)
    result = fit(data, config, on_progress)
    result.checkpoint.training["zoo"] = zoo_description(zoo_dir, data)
    result.path = save_checkpoint(result.checkpoint, out)
    return result


def zoo_description(zoo_dir: str | os.PathLike, data: LabelledImages) -> dict[str, Any]:
    """What the checkpoint records of its training zoo: its build options (zoo.json) and its size."""
    options_file = Path(zoo_dir) / "zoo.json"
    splits, counts = np.unique(data.member_split, return_counts=True)
    return {
        "options": json.loads(options_file.read_text()) if options_file.is_file() else {},
        "members_per_split": {str(s): int(c) for s, c in zip(splits, counts)},
        "images": int(len(data.member)),
        "image_side": int(data.pixels.shape[1]),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
