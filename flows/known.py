"""Registered generators: named reference images whose fingerprints open-set attribution compares against."""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fingerprinting.embed import embed_paths
from flows import schemas
from flows.atomic import Transaction
from flows.designs import design_row
from flows.errors import UserError
from flows.model import open_model
from flows.runs import new_meta
from flows.schemas import vectors_from_table, vectors_table
from flows.sources import discover
from flows.store import StoreFolder

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class KnownGenerators:
    """The store's registry of named generators (`known/references.parquet`, `known/vectors.parquet`)."""

    def __init__(self, store: StoreFolder) -> None:
        self.store = store

    def references(self) -> pd.DataFrame:
        """One row per (name, reference image)."""
        return self.store._read(self.store.KNOWN_REFERENCES, schemas.known_schema())

    def designs(self) -> pd.DataFrame:
        """One row per registered generator with a known design: name and its ``parsed_*`` values."""
        return self.store._read(self.store.KNOWN_DESIGNS, schemas.known_designs_schema())

    def list(self) -> pd.DataFrame:
        """One row per registered generator: name, images, added_at (latest), design (whether one is known)."""
        refs = self.references()
        summary = refs.groupby("name", sort=True).agg(images=("image_id", "nunique"), added_at=("added_at", "max")).reset_index()
        return summary.assign(design=summary["name"].isin(self.designs()["name"]))

    def training_set(self) -> tuple[np.ndarray, list[str]]:
        """(vectors, names): one row per registered reference, what the attributor is fitted on."""
        refs = self.references()
        path = self.store / self.store.KNOWN_VECTORS
        if refs.empty or not path.is_file():
            return np.zeros((0, int(self.store.meta().get("dim", 0))), np.float32), []
        ids, vectors = vectors_from_table(pq.read_table(path))
        row = {image_id: i for i, image_id in enumerate(ids)}
        return vectors[[row[i] for i in refs["image_id"]]], refs["name"].tolist()

    def attribute(self, vectors: np.ndarray, rule: Mapping[str, object]) -> tuple[list[str | None], np.ndarray]:
        """(names, scores) of open-set attribution against the registered generators; None and NaN when none is.

        `rule`: the fingerprinter's `attributor_params` (fingerprinting.fingerprinter), the attributor's parameters for its space.
        """
        references, names = self.training_set()
        if not names or not len(vectors):
            return [None] * len(vectors), np.full(len(vectors), np.nan, np.float32)
        from clustering.attribution import OpenSetAttributor

        predicted, scores = OpenSetAttributor(**rule).fit(references, names).predict_with_scores(vectors)
        return list(predicted), np.asarray(scores, np.float32)

    def digest(self) -> str:
        """Changes whenever the registry does: runs re-attribute every image (and re-lend designs) when it differs from the last run's."""
        refs = self.references().sort_values(["name", "image_id"])
        text = "\n".join(refs["name"] + ":" + refs["image_id"])
        designs = self.designs()
        if len(designs):  # a registry without designs keeps the digest it had before designs existed
            text += "\n" + designs.sort_values("name").to_json(orient="records")
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def add(
        self, name: str, sources: Sequence[str | os.PathLike], model: str | None = None, wait: float = 0.0,
        design: Mapping[str, object] | None = None,
    ) -> pd.DataFrame:
        """Fingerprint `sources` and register them under `name` (added to its existing references).

        Returns the errors (path, error) of inputs that could not be used. `model` left out: the
        store's own ("default" for a new store); another model than the store's is refused.
        `design`: the generator's known design (flows.designs.design_row), replacing any it had;
        clusters close to this generator then carry it as their parsed design.
        """
        if not _NAME.match(name):
            raise UserError(f"invalid generator name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
        known_design = design_row(design).assign(name=name) if design is not None else None
        with self.store.lock(f"known add {name}", timeout=wait):
            paths, input_errors = discover(sources, exclude=[self.store.root])
            meta = self.store.meta()
            model, fingerprinter = open_model(self.store, model)
            records, vectors, errors = [], [], [input_errors]
            for chunk in embed_paths(paths, fingerprinter):
                records.append(chunk.records[["image_id", "path"]])
                vectors.append(chunk.vectors)
                errors.append(chunk.errors)
            errors_frame = pd.concat(errors, ignore_index=True)
            if not records or sum(len(r) for r in records) == 0:
                raise UserError(f"no usable reference image in {', '.join(map(str, sources))}: nothing registered")
            new = pd.concat(records, ignore_index=True).assign(name=name, added_at=datetime.now(timezone.utc))
            new_vectors = np.concatenate(vectors)
            old_refs = self.references()
            refs = pd.concat([old_refs, new], ignore_index=True).drop_duplicates(["name", "image_id"], keep="first")
            stored_ids, stored_vectors = self._vectors()
            ids = stored_ids + new["image_id"].tolist()
            all_vectors = np.concatenate([stored_vectors.reshape(-1, fingerprinter.dim), new_vectors])
            first = ~pd.Index(ids).duplicated(keep="first")  # one vector per image, whatever its names
            transaction = Transaction(self.store.root)
            transaction.write_parquet(self.store.KNOWN_REFERENCES, schemas.to_table(refs, schemas.known_schema()))
            transaction.write_parquet(self.store.KNOWN_VECTORS, vectors_table(list(np.asarray(ids)[first]), all_vectors[first]))
            if known_design is not None:
                designs = self.designs()
                designs = pd.concat([designs[designs["name"] != name], known_design], ignore_index=True)
                transaction.write_parquet(self.store.KNOWN_DESIGNS, schemas.to_table(designs, schemas.known_designs_schema()))
            if not meta:
                transaction.write_json(self.store.META, new_meta(fingerprinter, model))
            transaction.commit()
        return errors_frame

    def remove(self, name: str, wait: float = 0.0) -> int:
        """Unregister `name`; returns how many references it had (0: it was not registered)."""
        with self.store.lock(f"known remove {name}", timeout=wait):
            refs = self.references()
            removed = int((refs["name"] == name).sum())
            if removed == 0:
                return 0
            kept = refs[refs["name"] != name]
            stored_ids, stored_vectors = self._vectors()
            used = set(kept["image_id"])
            rows = [i for i, image_id in enumerate(stored_ids) if image_id in used]
            transaction = Transaction(self.store.root)
            transaction.write_parquet(self.store.KNOWN_REFERENCES, schemas.to_table(kept, schemas.known_schema()))
            transaction.write_parquet(
                self.store.KNOWN_VECTORS, vectors_table([stored_ids[i] for i in rows], stored_vectors[rows])
            )
            designs = self.designs()
            if (designs["name"] == name).any():
                kept_designs = designs[designs["name"] != name]
                transaction.write_parquet(self.store.KNOWN_DESIGNS, schemas.to_table(kept_designs, schemas.known_designs_schema()))
            transaction.commit()
        return removed

    def _vectors(self) -> tuple[list[str], np.ndarray]:
        path = self.store / self.store.KNOWN_VECTORS
        if not path.is_file():
            return [], np.zeros((0, 0), np.float32)
        return vectors_from_table(pq.read_table(path))
