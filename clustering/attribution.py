"""OpenSetAttributor: name the registered generator an image comes from, or call it unknown."""
from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf

from clustering.votes import cluster_votes

# Without held-out references to calibrate on, accept at this cosine similarity to a name.
UNCALIBRATED_THRESHOLD = 0.5
# Similarities are computed in blocks of at most this many (query, reference) pairs: bounded memory.
_BLOCK_PAIRS = 1 << 24


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    return x


def _within_name_whitening(vectors: np.ndarray, which: np.ndarray, means: np.ndarray) -> np.ndarray | None:
    """Matrix that whitens the scatter of references around their own name's mean (within-class
    covariance normalisation), or None when the references show no such scatter to estimate."""
    if len(vectors) - len(means) < 2:
        return None
    # Ledoit-Wolf shrinkage: a few references per name in hundreds of dimensions give a singular sample covariance.
    covariance, _ = ledoit_wolf(vectors - means[which])
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    if eigenvalues[-1] <= 0:
        return None
    return (eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-6 * eigenvalues[-1]))).astype(np.float32)


def _top_k_mean(similarities: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row's ``k`` largest values (all of them when the row is shorter)."""
    k = min(k, similarities.shape[1])
    return np.partition(similarities, -k, axis=1)[:, -k:].mean(1)


class OpenSetAttributor(BaseEstimator):
    """Nearest-reference attribution with a calibrated acceptance threshold.

    `fit(vectors, names)` keeps each name's reference fingerprints. The score of an image for a
    name is its mean cosine similarity to that name's `n_neighbors` most similar references. An
    image is named by the best name over `naming_neighbors` references and attributed to it when
    its score for that name reaches the threshold, else it is unknown (None).

    Nearest references rather than one mean per name: a generator's images often fall in several
    modes (a few hundred training steps leave it a handful of typical outputs, each with its own
    fingerprint neighbourhood), and a mean sits between them. Measured on two tuning zoos with the
    shipped model (never the benchmark's zoo): 12 registered members x 70 references, 30 queries
    each, 12 unregistered ones: closed-set accuracy 0.981 -> 0.989 and open-set AUROC 0.888 ->
    0.953 (24-member seed-0 zoo); 0.954 -> 1.000 and 0.962 -> 0.995 (unseen-architecture members of
    the seed-7 zoo), for one mean per name -> `n_neighbors=1`. Naming and acceptance ask different
    questions: which registered name is closest is best answered by a few references (one stray
    reference of another name near an image is outvoted), whether the image is new at all by the
    single nearest one. Seed-0 zoo, 16 registered members, 480 known and 800 unregistered queries:
    naming over 1 / 3 / 5 references, closed-set accuracy 0.981 / 0.988 / 0.983; acceptance over
    1 / 3 / 5, open-set AUROC 0.931 / 0.921 / 0.916. `None` for either count uses one prototype per
    name (the normalised mean of its references), which is Marra et al.'s averaged-residual
    correlation for their vectors.

    With `whiten`, naming measures similarities after whitening the references' scatter around their
    own name's mean (within-class covariance normalisation, Ledoit-Wolf shrinkage): directions in
    which every generator's images vary a lot (content, say) weigh less than those in which one
    generator hardly varies. Acceptance stays unwhitened: a whitening learned from the registered
    generators shrinks directions in which a new generator may differ from them. Whether whitening
    helps depends on the fingerprint's space, so each fingerprinter states it (see
    `fingerprinting.models.attributor_params`). Three tuning zoos (never the benchmark's), five splits
    of references each, shipped model, naming errors plain -> whitened: 73 -> 28 of 3300 (30-member
    seed-5 zoo), 36 -> 17 of 2400 (seed-0), 6 -> 2 of 720 (128 px seed-3), open-set AUROC unchanged;
    whitening acceptance too cost AUROC (0.940 -> 0.933 on the first). The spectral fingerprint
    names worse whitened (241 -> 279 errors on the first, 181 -> 247 on the second).

    Threshold: given, or calibrated leave-one-out on the references: each reference is scored
    against its own name's references without it, and the threshold is the
    `target_false_reject` quantile of those genuine scores (so about that share of a registered
    generator's images would be called unknown). Names with a single reference cannot be held
    out; with none calibratable, UNCALIBRATED_THRESHOLD is used.
    """

    def __init__(self, threshold: float | None = None, target_false_reject: float = 0.05, n_neighbors: int | None = 1,
                 naming_neighbors: int | None = 3, whiten: bool = False) -> None:
        self.threshold = threshold
        self.target_false_reject = target_false_reject
        self.n_neighbors = n_neighbors
        self.naming_neighbors = naming_neighbors
        self.whiten = whiten

    def fit(self, vectors: np.ndarray, names: Sequence[str]) -> OpenSetAttributor:
        vectors = _normalised(vectors)
        names = np.asarray(names, dtype=object)
        if len(vectors) != len(names) or not len(names):
            raise ValueError(f"need one name per reference vector, got {len(vectors)} and {len(names)}")
        for parameter in ("n_neighbors", "naming_neighbors"):
            if (value := getattr(self, parameter)) is not None and value < 1:
                raise ValueError(f"{parameter} must be at least 1 or None, got {value}")
        self.names_, which = np.unique(names.astype(str), return_inverse=True)
        order = np.argsort(which, kind="stable")  # references grouped by name: one slice each
        self.references_ = vectors[order]
        self.reference_counts_ = np.bincount(which, minlength=len(self.names_))
        self.slices_ = np.r_[0, np.cumsum(self.reference_counts_)]
        sums = np.zeros((len(self.names_), vectors.shape[1]), np.float64)
        np.add.at(sums, which, vectors)
        self.prototypes_ = _normalised(sums)
        means = sums / self.reference_counts_[:, None]
        self.whitening_ = whitening = _within_name_whitening(vectors, which, means) if self.whiten else None
        # Naming's references and prototypes: in the whitened space when there is one.
        self.naming_references_ = self.references_ if whitening is None else _normalised(self.references_ @ whitening)
        self.naming_prototypes_ = self.prototypes_ if whitening is None else _normalised(np.add.reduceat(self.naming_references_, self.slices_[:-1]))
        self.threshold_ = float(self.threshold) if self.threshold is not None else self._calibrate()
        return self

    def _calibrate(self) -> float:
        genuine = [self._leave_one_out(j) for j in range(len(self.names_)) if self.reference_counts_[j] > 1]
        if not genuine:
            return UNCALIBRATED_THRESHOLD
        self.genuine_scores_ = np.concatenate(genuine)
        return float(np.quantile(self.genuine_scores_, self.target_false_reject))

    def _leave_one_out(self, name: int) -> np.ndarray:
        """Each of the name's references scored against the name without itself."""
        own = self.references_[self.slices_[name] : self.slices_[name + 1]]
        if self.n_neighbors is None:
            rest = _normalised(own.sum(0, dtype=np.float64) - own)
            return np.einsum("ij,ij->i", own, rest)
        scores, rows = [], max(1, _BLOCK_PAIRS // len(own))
        for start in range(0, len(own), rows):
            block = own[start : start + rows] @ own.T
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not itself
            scores.append(_top_k_mean(block, self.n_neighbors))
        return np.concatenate(scores)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, n_names) acceptance score of each image for each name (see the class docstring)."""
        return self._scores(_normalised(X), self.references_, self.prototypes_, (self.n_neighbors,))[0]

    def name(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(best name of each image, with no unknown option; its acceptance score for that name, float32)."""
        X = _normalised(X)
        if self.whitening_ is None:
            naming, acceptance = self._scores(X, self.references_, self.prototypes_, (self.naming_neighbors, self.n_neighbors))
        else:
            acceptance = self._scores(X, self.references_, self.prototypes_, (self.n_neighbors,))[0]
            naming = self._scores(_normalised(X @ self.whitening_), self.naming_references_, self.naming_prototypes_, (self.naming_neighbors,))[0]
        best = naming.argmax(axis=1)
        return self.names_[best].astype(object), acceptance[np.arange(len(best)), best].astype(np.float32)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(names: object array with None for unknown, scores: float32 acceptance score for the best name)."""
        best, score = self.name(X)
        return self.accept(best, score), score

    def accept(self, best: np.ndarray, score: np.ndarray) -> np.ndarray:
        """``name``'s output made final: each best name kept where its score reaches the threshold, else None."""
        return np.where(score >= self.threshold_, best, None).astype(object)

    def _scores(self, X: np.ndarray, references: np.ndarray, prototypes: np.ndarray, counts: tuple[int | None, ...]) -> list[np.ndarray]:
        """One (n, n_names) matrix per neighbour count: the mean similarity of unit vectors ``X`` to each
        name's that many nearest ``references`` (None: to its prototype), from one pass over them."""
        out = [X @ prototypes.T if k is None else np.empty((len(X), len(self.names_)), np.float32) for k in counts]
        counted = [(matrix, k) for matrix, k in zip(out, counts) if k is not None]
        if not counted:
            return out
        rows = max(1, _BLOCK_PAIRS // len(references))
        for start in range(0, len(X), rows):
            similarities = X[start : start + rows] @ references.T
            for j in range(len(self.names_)):
                block = similarities[:, self.slices_[j] : self.slices_[j + 1]]
                for matrix, k in counted:
                    matrix[start : start + rows, j] = _top_k_mean(block, k)
        return out

    # Per cluster id: (winning name or None, vote share) from its members' predicted names.
    attribute_clusters = staticmethod(cluster_votes)
