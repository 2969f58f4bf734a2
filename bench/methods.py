"""The methods compared: genprint's learned fingerprint, the spectral one, and the two baselines, ready on one zoo."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from bench.baselines.fen import FenConfig, FenFingerprinter, FenNet, fit_fen
from bench.baselines.marra import MarraFingerprinter
from bench.quality import Partition, subset
from bench.stages import StageStore
from fingerprinting.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fingerprinting.learned import LearnedFingerprinter
from fingerprinting.models import DEFAULT_CHECKPOINT, Fingerprinter, load_fingerprinter
from fingerprinting.network import HeadSpec, flops_per_crop
from fingerprinting.spectral import SpectralFingerprinter
from fingerprinting.train import TrainConfig, fit
from fingerprinting.training_data import LabelledImages

LEARNED_WEIGHTS = "learned-bench.safetensors"


@dataclass
class Method:
    """One row of the side-by-side tables."""

    label: str
    fingerprinter: Fingerprinter
    note: str
    train_seconds: float | None = None
    checkpoint: Path | None = None  # a learned model's weights, for pipeline runs


def shipped_training_seed() -> int | None:
    """The zoo seed the shipped default checkpoint was trained on (None when none is shipped)."""
    config = DEFAULT_CHECKPOINT.with_suffix(".json")
    if not config.is_file():
        return None
    training = json.loads(config.read_text()).get("training", {})
    return training.get("zoo", {}).get("options", {}).get("seed")


def spectral_flops(side: int, grid_cells: int = 32, radial_bins: int = 16) -> int:
    """Analytic cost per crop: median-of-9 network (19 compare-exchanges = 38 ops), rfft2 (about
    2.5 N log2 N), power and log (~4), pooling (2 per bin), per channel."""
    pixels = side * side
    per_channel = 38 * pixels + 2.5 * pixels * (2 * side).bit_length() + 4 * pixels // 2 + 2 * pixels // 2 + 4 * (grid_cells + radial_bins)
    return int(3 * per_channel)


def prepare(part: Partition, epochs: int, fen: FenConfig, stages: StageStore, steps_per_epoch: int | None = None) -> list[Method]:
    """Train what needs training (same members, reals, augmentation and epochs) and load the rest.

    A training that finished in an earlier run with the same configuration (``stages``) is loaded.
    """
    side = part.data.pixels.shape[1]
    train_data = subset(part.data, part.train_rows)
    methods: list[Method] = []
    if DEFAULT_CHECKPOINT.is_file():
        shipped = load_fingerprinter("default")
        methods.append(Method("genprint learned (shipped)", shipped, f"shipped checkpoint {shipped.version}, trained on another zoo (seed {shipped_training_seed()})",
                              checkpoint=DEFAULT_CHECKPOINT))
    checkpoint, seconds, best_epoch = _learned(train_data, TrainConfig(epochs=epochs, patience=epochs, steps_per_epoch=steps_per_epoch), stages)
    methods.append(Method("genprint learned", LearnedFingerprinter(checkpoint, crop_size=side),
                          f"trained here on the train members, {epochs} epochs{f' of {steps_per_epoch} batches' if steps_per_epoch else ''} (best epoch {best_epoch})",
                          seconds, stages.path(LEARNED_WEIGHTS)))
    methods.append(Method("spectral", SpectralFingerprinter(crop_size=side), "training-free, per-channel pooled log spectrum of the median residual"))
    methods.append(Method("Marra 2019", MarraFingerprinter(side), "mean Wiener-residual per generator, normalised correlation"))
    fen_net, seconds = _fen(train_data, replace(fen, epochs=epochs, steps_per_epoch=steps_per_epoch), stages)
    budget = f"{epochs} epochs" + (f" of {steps_per_epoch} batches" if steps_per_epoch else "")
    fen_note = f"DnCNN {fen.layers} layers x {fen.channels} channels, {budget}, trained on {fen.crop} px crops"
    if (fen.layers, fen.channels) != (17, 64):
        fen_note += " (reduced from the paper's 17 x 64 to fit this budget)"
    methods.append(Method("FEN-style (Asnani)", FenFingerprinter(fen_net, crop_size=side), fen_note, seconds))
    return methods


def _learned(train_data: LabelledImages, config: TrainConfig, stages: StageStore) -> tuple[Checkpoint, float, int]:
    """(checkpoint, training seconds, best epoch): trained now, or loaded from an earlier run's stage."""
    if (record := stages.load("train-learned")) is not None:
        return load_checkpoint(stages.path(LEARNED_WEIGHTS)), record["seconds"], record["best_epoch"]
    started = time.perf_counter()
    result = fit(train_data, config)
    seconds = time.perf_counter() - started
    save_checkpoint(result.checkpoint, stages.path(LEARNED_WEIGHTS))
    stages.save("train-learned", {"seconds": seconds, "best_epoch": result.best_epoch})
    return result.checkpoint, seconds, result.best_epoch


def _fen(train_data: LabelledImages, config: FenConfig, stages: StageStore) -> tuple[FenNet, float]:
    """(trained FEN-style net, training seconds): trained now, or rebuilt from an earlier run's weights."""
    weights = stages.path("fen-bench.safetensors")
    if (record := stages.load("train-fen")) is not None:
        net = FenNet(config, len(train_data.member_ids), HeadSpec.from_space())
        net.load_state_dict(load_file(weights))
        return net.eval(), record["seconds"]
    net, seconds = fit_fen(train_data, np.arange(len(train_data.member)), config)
    save_file({name: tensor.contiguous() for name, tensor in net.state_dict().items()}, weights)
    stages.save("train-fen", {"seconds": seconds})
    return net, seconds


def paper_fen_flops(side: int) -> int:
    """FLOPs per crop of the FEN-style network at the paper's 17 layers x 64 channels (untrained: the count needs no weights)."""
    net = FenNet(FenConfig(), members=1, heads=HeadSpec.from_space()).eval()
    return FenFingerprinter(net, crop_size=side).flops_per_crop(side)


def flops(method: Method, side: int) -> tuple[int, str]:
    """FLOPs per crop of ``side`` px and how they were counted."""
    fingerprinter = method.fingerprinter
    if isinstance(fingerprinter, LearnedFingerprinter):
        return flops_per_crop(fingerprinter.net, side), "torch.utils.flop_counter"
    if isinstance(fingerprinter, FenFingerprinter):
        return fingerprinter.flops_per_crop(side), "torch.utils.flop_counter"
    if isinstance(fingerprinter, MarraFingerprinter):
        return fingerprinter.flops_per_crop(side), "analytic"
    return spectral_flops(side), "analytic"
