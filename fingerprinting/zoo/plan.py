"""Which members a zoo has: their families, hyperparameters, losses, seeds, photographs and splits."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fingerprinting.design import LOSS_TYPES, hyperparameter
from fingerprinting.zoo.losses import GAN_LOSSES, RECONSTRUCTION_LOSSES
from fingerprinting.zoo.photos import usable_photos

SPLITS = ("train", "unseen_seed", "unseen_arch")
TRAIN_FAMILIES = ("dcgan", "autoencoder", "vae", "unet")
HELD_OUT_FAMILY = "style"  # no train member: the honest test of a generator never seen
FAMILIES = TRAIN_FAMILIES + (HELD_OUT_FAMILY,)
WIDTHS = (8, 12, 16, 24)
# Full-resolution convolutions dominate the cost: wide members get fewer convolutions per block.
MAX_WIDTH_FOR_CONVS = {1: 24, 2: 16, 3: 12}
ARCH_KEYS = ("up_blocks", "convs_per_block", "base_width", "upsampling", "norm", "activation", "last_activation", "skip")
# A "combination" for the unseen_arch rule: the family and every discrete hyperparameter.
COMBINATION_KEYS = ("family", "upsampling", "norm", "activation", "last_activation", "skip")
PHOTOS_PER_MEMBER = (3, 6)  # inclusive range of how many photographs one member trains on
STEP_SPREAD = (0.6, 1.4)  # training length varies around the base number of steps


@dataclass(frozen=True)
class MemberSpec:
    """Everything that determines one zoo member (its outputs follow from this and the zoo options)."""

    member_id: str
    family: str
    split: str
    seed: int
    up_blocks: int
    convs_per_block: int
    base_width: int
    upsampling: str
    norm: str
    activation: str
    last_activation: str
    skip: str
    losses: tuple[str, ...]
    train_steps: int
    photos: tuple[str, ...]
    parent_id: str | None = None  # the train member an unseen_seed member copies

    def architecture(self) -> dict:
        return {key: getattr(self, key) for key in ARCH_KEYS}

    def combination(self) -> tuple:
        return tuple(getattr(self, key) for key in COMBINATION_KEYS)


def split_sizes(members: int, unseen_seed_fraction: float, unseen_arch_fraction: float) -> dict[str, int]:
    if members < 3:
        raise ValueError(f"a zoo needs at least 3 members (one per split), got {members}")
    seed = max(1, round(members * unseen_seed_fraction))
    arch = max(1, round(members * unseen_arch_fraction))
    train = members - seed - arch
    if train < 1:
        raise ValueError(f"split fractions leave no train member ({members} members, {seed} unseen_seed, {arch} unseen_arch)")
    return {"train": train, "unseen_seed": seed, "unseen_arch": arch}


class _Deck:
    """Draws values in shuffled rounds, so that every value appears once the draws outnumber the values."""

    def __init__(self, values: Sequence, rng: np.random.Generator, first=None):
        self.values, self.rng, self.pending = list(values), rng, []
        if first is not None:
            rest = [v for v in self.values if v != first]
            self.pending = [first] + [rest[i] for i in rng.permutation(len(rest))]

    def draw(self):
        if not self.pending:
            self.pending = [self.values[i] for i in self.rng.permutation(len(self.values))]
        return self.pending.pop(0)


def _losses(family: str, rng: np.random.Generator, allowed: set[str]) -> tuple[str, ...]:
    """A loss set consistent with the family, using only `allowed` loss types."""
    def pick(options: Sequence[str]) -> str:
        options = [o for o in options if o in allowed]
        return options[rng.integers(len(options))]

    if family in ("dcgan", "style"):  # IMLE with a reconstruction loss, then adversarial (see training.py)
        chosen = {pick(GAN_LOSSES), pick(RECONSTRUCTION_LOSSES)}
    else:
        chosen = {pick(RECONSTRUCTION_LOSSES)}
        if family == "vae":
            chosen.add("kl")
        if "perceptual" in allowed and rng.random() < 0.4:
            chosen.add("perceptual")
        if family in ("autoencoder", "unet") and rng.random() < 0.35:
            chosen.add(pick(GAN_LOSSES))
    return tuple(t for t in LOSS_TYPES if t in chosen)


def _width(convs_per_block: int, options: Sequence[int], rng: np.random.Generator) -> int:
    fitting = [w for w in options if w <= MAX_WIDTH_FOR_CONVS[convs_per_block]] or list(options)
    return int(fitting[rng.integers(len(fitting))])


def _common(rng: np.random.Generator, base_steps: int, photos: tuple[str, ...]) -> dict:
    k = min(len(photos), int(rng.integers(PHOTOS_PER_MEMBER[0], PHOTOS_PER_MEMBER[1] + 1)))
    return {
        "seed": int(rng.integers(2**31 - 1)),
        "train_steps": max(1, round(base_steps * rng.uniform(*STEP_SPREAD))),
        "photos": tuple(sorted(photos[i] for i in rng.choice(len(photos), k, replace=False))),
    }


def plan_members(members: int, seed: int, size: int, base_steps: int,
                 unseen_seed_fraction: float = 0.15, unseen_arch_fraction: float = 0.15) -> list[MemberSpec]:
    """The zoo's members, deterministic in the arguments: train first, then unseen_seed, then unseen_arch."""
    rng = np.random.default_rng([seed, 0x200])
    sizes = split_sizes(members, unseen_seed_fraction, unseen_arch_fraction)
    photos = usable_photos(size)
    max_blocks = min(4, int(np.log2(size)) - 1)
    decks = {
        "family": _Deck(TRAIN_FAMILIES, rng, first="dcgan"),  # a GAN in train whatever its size, for the held-out family
        "up_blocks": _Deck(range(2, max_blocks + 1), rng),
        "convs_per_block": _Deck((1, 2, 3), rng),
        **{name: _Deck(hyperparameter(name).choices, rng) for name in ("upsampling", "norm", "activation", "last_activation")},
        "skip": _Deck(("none", "residual"), rng),
    }
    specs: list[MemberSpec] = []
    for _ in range(sizes["train"]):
        family = decks["family"].draw()
        cpb = int(decks["convs_per_block"].draw())
        specs.append(MemberSpec(
            member_id=f"m{len(specs):03d}", family=family, split="train",
            up_blocks=int(decks["up_blocks"].draw()), convs_per_block=cpb, base_width=_width(cpb, WIDTHS, rng),
            upsampling=decks["upsampling"].draw(), norm=decks["norm"].draw(), activation=decks["activation"].draw(),
            last_activation=decks["last_activation"].draw(),
            skip="unet" if family == "unet" else decks["skip"].draw(),
            losses=_losses(family, rng, set(LOSS_TYPES)), **_common(rng, base_steps, photos),
        ))
    train = list(specs)
    for i in range(sizes["unseen_seed"]):
        # The first train members in turn: their families follow the family deck, so parents span families.
        parent = train[i % len(train)]
        specs.append(dataclasses.replace(parent, member_id=f"m{len(specs):03d}", split="unseen_seed",
                                         seed=int(rng.integers(2**31 - 1)), parent_id=parent.member_id))
    specs += _unseen_arch(train, sizes["unseen_arch"], len(specs), rng, base_steps, photos)
    return specs


def _unseen_arch(train: list[MemberSpec], count: int, first_index: int, rng: np.random.Generator,
                 base_steps: int, photos: tuple[str, ...]) -> list[MemberSpec]:
    """Members whose combination no train member has; about half (at least one) of the held-out family.

    Every hyperparameter value and loss type they use occurs in train, so a parser can still name them.
    """
    seen = {key: sorted({getattr(s, key) for s in train}) for key in ARCH_KEYS}
    train_losses = {t for s in train for t in s.losses}
    train_combinations = {s.combination() for s in train}
    train_families = [f for f in TRAIN_FAMILIES if any(s.family == f for s in train)]
    held_out = max(1, (count + 1) // 2)
    out: list[MemberSpec] = []
    for i in range(count):
        family = HELD_OUT_FAMILY if i < held_out else train_families[rng.integers(len(train_families))]
        for _attempt in range(200):
            candidate = _draw_architecture(family, seen, rng)
            if (family,) + tuple(candidate[k] for k in COMBINATION_KEYS[1:]) not in train_combinations:
                break
        else:  # a tiny train split can leave no unseen combination of a train family: use the held-out family
            family, candidate = HELD_OUT_FAMILY, _draw_architecture(HELD_OUT_FAMILY, seen, rng)
        out.append(MemberSpec(member_id=f"m{first_index + i:03d}", family=family, split="unseen_arch", **candidate,
                              losses=_losses(family, rng, train_losses), **_common(rng, base_steps, photos)))
    return out


def _draw_architecture(family: str, seen: dict[str, list], rng: np.random.Generator) -> dict:
    def pick(key: str, exclude: Sequence = ()):
        options = [v for v in seen[key] if v not in exclude]
        return options[rng.integers(len(options))]

    cpb = int(pick("convs_per_block"))
    skip = "unet" if family == "unet" else pick("skip", exclude=("unet",))
    return {
        "up_blocks": int(pick("up_blocks")), "convs_per_block": cpb, "base_width": _width(cpb, seen["base_width"], rng),
        "upsampling": pick("upsampling"), "norm": pick("norm"), "activation": pick("activation"),
        "last_activation": pick("last_activation"), "skip": skip,
    }
