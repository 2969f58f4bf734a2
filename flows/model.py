"""The store's fingerprint model: which one a write uses, loaded once per process, checked against the store.

Fingerprints of two models (or two versions of one) cannot be compared, so a store keeps the model
it started with; every writer and reader goes through `check_model` (a run's check, from the model's
config alone) or `open_model` (that check, then the network loaded to fingerprint with).
"""
from __future__ import annotations

from functools import lru_cache

from fingerprinting.fingerprinter import Fingerprinter, ModelIdentity
from fingerprinting.models import describe_fingerprinter, load_fingerprinter
from flows.errors import UserError
from flows.store import FORMAT_VERSION, StoreError, StoreFolder


@lru_cache(maxsize=4)
def cached_fingerprinter(model: str) -> Fingerprinter:
    """One fingerprinter per model and process: shard tasks reuse it instead of reloading weights.

    Loaded when a run first fingerprints (after `check_model`, which reads no weights): weights missing,
    damaged or not fitting their config stop the run there, as a user error.
    """
    try:
        return load_fingerprinter(model)
    except ValueError as exc:  # CheckpointError is one
        raise UserError(str(exc)) from exc


@lru_cache(maxsize=4)
def cached_identity(model: str) -> ModelIdentity:
    """The model's name, version, dim, calibration and parsing policy without its network (fingerprinting.models.describe_fingerprinter).

    What a run needs of its model outside fingerprinting: a run with nothing new to fingerprint never loads the network, nor torch.
    """
    return describe_fingerprinter(model)


def check_model(store: StoreFolder, model: str | None) -> tuple[str, ModelIdentity]:
    """The model asked for, else the store's own, else "default" (a new store), described and checked against the store."""
    meta = store.meta()
    model = model or meta.get("model") or "default"
    try:
        identity = cached_identity(model)
    except ValueError as exc:  # an unknown model name, a missing or malformed checkpoint file
        raise UserError(str(exc)) from exc
    _check_model(meta, identity)
    return model, identity


def open_model(store: StoreFolder, model: str | None) -> tuple[str, Fingerprinter]:
    """`check_model`, then the model loaded to fingerprint with."""
    model, _ = check_model(store, model)
    return model, cached_fingerprinter(model)


def _check_model(meta: dict, fingerprinter: ModelIdentity) -> None:
    """Fingerprints of two models cannot be compared: a store keeps the model it started with."""
    if not meta:
        return
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"store format {meta.get('format_version')} is not {FORMAT_VERSION}: use a new store")
    name, version = meta["model_name"], meta["model_version"]
    if name != fingerprinter.name:
        raise StoreError(
            f"this store holds fingerprints of model {name}, not {fingerprinter.name}: "
            f"run with --model {meta['model']}, or use a new --store"
        )
    if version != fingerprinter.version:
        raise StoreError(
            f"this store holds fingerprints of {name} version {version}, but this genprint's {name} is version "
            f"{fingerprinter.version}: fingerprints of two versions cannot be compared; run the sources into a new --store"
        )
