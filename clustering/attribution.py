"""OpenSetAttributor: name the registered generator an image comes from, or call it unknown."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.covariance import ledoit_wolf
from sklearn.utils.validation import check_is_fitted, validate_data

from clustering.params import Flag, Number, check_params
from clustering.vectors import normalise

from clustering.votes import cluster_votes

# Without held-out references to calibrate on, accept at this cosine similarity to a name.
UNCALIBRATED_THRESHOLD = 0.5
# Similarities are computed in blocks of at most this many (query, reference) pairs: bounded memory.
_BLOCK_PAIRS = 1 << 24


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

    `fit(X, y)` keeps each name's reference fingerprints (rows of `X` named by `y`). The score of
    an image for a name is its mean cosine similarity to that name's `n_neighbors` most similar
    references. An image is named by the best name over its `naming_neighbors` most similar
    references of each name, and attributed to it when its score for that name reaches the
    threshold; else it is unknown (None).

    Nearest references rather than one mean per name: a generator's images often fall in several
    modes, and a mean sits between them. Naming and acceptance ask different questions: which
    registered name is closest is best answered by a few references (one stray reference of
    another name near an image is outvoted), whether the image is new at all by the single nearest
    one. With `whiten`, naming measures similarities after whitening the references' scatter
    around their own name's mean (within-class covariance normalisation, Ledoit-Wolf shrinkage):
    directions in which every generator's images vary a lot (content, say) weigh less than those
    in which one generator hardly varies. Acceptance stays unwhitened: a whitening learned from the
    registered generators shrinks directions in which a new generator may differ from them.
    Whether whitening helps depends on the fingerprint's space, so each fingerprinter states it
    (`fingerprinting.models` `attributor_params`). The measurements behind these choices are in
    `data/MODEL_CARD.md` ("Clustering and attribution: the measurements behind the defaults").

    Not a scikit-learn classifier: `predict` may answer None (unknown), and names are strings.

    Parameters
    ----------
    threshold : float or None, default=None
        Acceptance score at or above which the best name is kept; None calibrates it leave-one-out
        on the references: each reference is scored against its own name's other references, and
        the threshold is the `target_false_reject` quantile of those genuine scores. With no name
        of two or more references to hold out, UNCALIBRATED_THRESHOLD is used.
    target_false_reject : float, default=0.05
        Share of a registered generator's images that the calibrated threshold calls unknown.
    n_neighbors : int or None, default=1
        References of a name an acceptance score averages over; None: the cosine to the name's
        prototype (the normalised mean of its references).
    naming_neighbors : int or None, default=3
        The same for naming; None: nearest prototype.
    whiten : bool, default=False
        Name in the space whitened against each name's own scatter.

    Attributes
    ----------
    names_ : ndarray of shape (n_names,), str
        The registered names, sorted.
    references_ : ndarray of shape (n_references, n_features_in_), float32
        Normalised references, grouped by name (name j's rows: `slices_[j]:slices_[j + 1]`).
    reference_counts_ : ndarray of shape (n_names,), int
        References per name.
    slices_ : ndarray of shape (n_names + 1,), int
        Where each name's references start and end in `references_`.
    prototypes_ : ndarray of shape (n_names, n_features_in_), float32
        Normalised mean of each name's references.
    whitening_ : ndarray of shape (n_features_in_, n_features_in_), float32, or None
        Naming's whitening matrix (None without `whiten`, or with no scatter to estimate).
    naming_references_, naming_prototypes_ : ndarray, float32
        References and prototypes in naming's (whitened) space.
    threshold_ : float
        The acceptance threshold in use.
    genuine_scores_ : ndarray of shape (n_held_out,), float32
        The leave-one-out scores the threshold was calibrated on (empty when it was not).
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> import numpy as np
    >>> from clustering.attribution import OpenSetAttributor
    >>> references = np.array([[1, 0.1, 0], [1, -0.1, 0], [0, 1, 0.1], [0, 1, -0.1]], np.float32)
    >>> attributor = OpenSetAttributor(threshold=0.9).fit(references, ["a", "a", "b", "b"])
    >>> attributor.predict(np.array([[1, 0, 0], [0, 0, 1]], np.float32)).tolist()
    ['a', None]
    >>> names, scores = attributor.predict_with_scores(np.array([[0, 1, 0]], np.float32))
    >>> names.tolist(), [round(float(score), 3) for score in scores]
    (['b'], [0.995])
    """

    _rules = {
        "threshold": Number(optional=True),
        "target_false_reject": Number(low=0, high=1),
        "n_neighbors": Number(integer=True, low=1, optional=True),
        "naming_neighbors": Number(integer=True, low=1, optional=True),
        "whiten": Flag(),
    }

    def __init__(self, *, threshold: float | None = None, target_false_reject: float = 0.05, n_neighbors: int | None = 1,
                 naming_neighbors: int | None = 3, whiten: bool = False) -> None:
        self.threshold = threshold
        self.target_false_reject = target_false_reject
        self.n_neighbors = n_neighbors
        self.naming_neighbors = naming_neighbors
        self.whiten = whiten

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def fit(self, X: np.ndarray, y: Sequence[str]) -> OpenSetAttributor:
        """Register the references `X` (n_references, n_features) under their names `y`.

        Returns
        -------
        self : OpenSetAttributor
            The fitted attributor.
        """
        check_params(self, self._rules)
        X, y = validate_data(self, X, y, dtype=np.float32)
        vectors = normalise(X)
        self.names_, which = np.unique(np.asarray(y, dtype=object).astype(str), return_inverse=True)
        order = np.argsort(which, kind="stable")  # references grouped by name: one slice each
        self.references_ = vectors[order]
        self.reference_counts_ = np.bincount(which, minlength=len(self.names_))
        self.slices_ = np.r_[0, np.cumsum(self.reference_counts_)]
        sums = np.zeros((len(self.names_), vectors.shape[1]), np.float64)
        np.add.at(sums, which, vectors)
        self.prototypes_ = normalise(sums)
        means = sums / self.reference_counts_[:, None]
        self.whitening_ = whitening = _within_name_whitening(vectors, which, means) if self.whiten else None
        # Naming's references and prototypes: in the whitened space when there is one.
        self.naming_references_ = self.references_ if whitening is None else normalise(self.references_ @ whitening)
        self.naming_prototypes_ = self.prototypes_ if whitening is None else normalise(np.add.reduceat(self.naming_references_, self.slices_[:-1]))
        self.genuine_scores_ = np.empty(0, np.float32)
        if self.threshold is not None:
            self.threshold_ = float(self.threshold)
        else:
            genuine = [self._leave_one_out(j) for j in range(len(self.names_)) if self.reference_counts_[j] > 1]
            if genuine:
                self.genuine_scores_ = np.concatenate(genuine)
            self.threshold_ = float(np.quantile(self.genuine_scores_, self.target_false_reject)) if genuine else UNCALIBRATED_THRESHOLD
        return self

    def _leave_one_out(self, name: int) -> np.ndarray:
        """Each of the name's references scored against the name without itself."""
        own = self.references_[self.slices_[name] : self.slices_[name + 1]]
        if self.n_neighbors is None:
            rest = normalise(own.sum(0, dtype=np.float64) - own)
            return np.einsum("ij,ij->i", own, rest)
        scores, rows = [], max(1, _BLOCK_PAIRS // len(own))
        for start in range(0, len(own), rows):
            block = own[start : start + rows] @ own.T
            block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not itself
            scores.append(_top_k_mean(block, self.n_neighbors))
        return np.concatenate(scores)

    def _queries(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        return normalise(validate_data(self, X, dtype=np.float32, reset=False, ensure_min_samples=0))

    def name_scores(self, X: np.ndarray) -> np.ndarray:
        """Acceptance score of each image for each name.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_names), float32
            Columns in the order of `names_`.
        """
        return self._scores(self._queries(X), self.references_, self.prototypes_, (self.n_neighbors,))[0]

    def name(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closed-set naming: the best name of each image, with no unknown option, and its acceptance score.

        Returns
        -------
        names : ndarray of shape (n_samples,), object
            An entry of `names_` for every image.
        scores : ndarray of shape (n_samples,), float32
            The image's acceptance score for that name.
        """
        X = self._queries(X)
        if self.whitening_ is None:
            naming, acceptance = self._scores(X, self.references_, self.prototypes_, (self.naming_neighbors, self.n_neighbors))
        else:
            acceptance = self._scores(X, self.references_, self.prototypes_, (self.n_neighbors,))[0]
            naming = self._scores(normalise(X @ self.whitening_), self.naming_references_, self.naming_prototypes_, (self.naming_neighbors,))[0]
        best = naming.argmax(axis=1)
        return self.names_[best].astype(object), acceptance[np.arange(len(best)), best].astype(np.float32)

    def accept(self, names: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """`name`'s output made final: each name kept where its score reaches `threshold_`, else None."""
        return np.where(scores >= self.threshold_, names, None).astype(object)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The registered name each image comes from, or None (unknown).

        Returns
        -------
        names : ndarray of shape (n_samples,), object
            An entry of `names_`, or None.
        """
        return self.accept(*self.name(X))

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Acceptance score of each image for its best name (what `predict` compares with `threshold_`).

        Returns
        -------
        scores : ndarray of shape (n_samples,), float32
        """
        return self.name(X)[1]

    def predict_with_scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`predict(X)` and `score_samples(X)` from one pass over the references."""
        names, scores = self.name(X)
        return self.accept(names, scores), scores

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
