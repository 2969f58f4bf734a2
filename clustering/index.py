"""FingerprintIndex: a FAISS inner-product index over int64 ids whose type follows its size."""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import faiss
import numpy as np
from faiss.contrib.inspect_tools import get_invlist

from clustering.atomic_file import write_bytes_atomic, write_text_atomic
from clustering.params import Number, check_params
from clustering.vectors import normalise

FORMAT_VERSION = 1

# Below this many vectors exact search is fast enough (a few ms a query at 128-d on one core).
EXACT_MAX = 50_000
# From here on full float32 vectors no longer fit comfortably in memory: compress with PQ.
COMPRESSED_MIN = 10_000_000
# IVF training: FAISS's minimum of points per list, and fewer k-means iterations than its
# default 25 (training time grows with nlist squared: at 1e6 vectors this keeps it near a minute).
TRAIN_POINTS_PER_LIST = 39
TRAIN_ITERATIONS = 10
# Rebuild an automatically typed IVF index only after it has grown this much since it was built
# (amortised O(1) cost per vector; no rebuild ping-pong around a threshold).
REBUILD_GROWTH = 4


class IndexCorruptError(RuntimeError):
    """The saved index is missing, truncated, or does not match its checksum sidecar."""


def set_threads(n: int) -> None:
    """Pin FAISS's OpenMP threads (call once at start-up, beside torch's own pinning)."""
    faiss.omp_set_num_threads(max(1, int(n)))


def _nlist(n: int) -> int:
    """IVF list count: a power of two near 4 * sqrt(n), the usual FAISS guideline."""
    return int(min(65_536, max(64, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


def choose_factory(n: int, dim: int) -> str:
    """The index_factory string for `n` vectors of `dim` dimensions (inner product).

    - n < EXACT_MAX: "IDMap2,Flat", exact search;
    - n < COMPRESSED_MIN: "IVF{nlist},Flat", approximate, lossless storage;
    - above: "IVF{nlist},PQ{m}", product-quantised (m bytes per vector).
    """
    if n < EXACT_MAX:
        return "IDMap2,Flat"
    if n < COMPRESSED_MIN:
        return f"IVF{_nlist(n)},Flat"
    m = next(m for m in (dim // 4, dim // 2, dim) if m > 0 and dim % m == 0)
    return f"IVF{_nlist(n)},PQ{m}"


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: a tenth of them, for recall@10 >= 0.95 against exact search
    (the measurements: `data/MODEL_CARD.md`, "Clustering and attribution: the measurements behind the defaults")."""
    return int(min(nlist, max(16, nlist // 10)))


def _normalised(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(-1, dim)
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinity")
    return normalise(x)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class FingerprintIndex:
    """Inner-product search over L2-normalised float32 fingerprints, keyed by unique int64 ids.

    With `factory=None` the index type follows the number of vectors (`choose_factory`): when an
    `add` makes the chosen type differ from the current one, the index is rebuilt from its own
    vectors, which it can only do while storage is lossless (Flat or IVF-Flat) and, for IVF, once
    it has grown REBUILD_GROWTH times since it was built. A compressed (PQ) index never rebuilds
    itself: call `rebuild(vectors, ids)` with the stored vectors. An explicit `factory` is kept.
    Vectors are L2-normalised on the way in. The ids are also kept in a set beside the FAISS
    index, so `id in index` and the duplicate check of `add` cost O(1) per id.

    Not a scikit-learn estimator (a store of vectors, not a model fitted once): its parameters
    are checked when it is made, since the empty FAISS index is made then.

    Parameters
    ----------
    dim : int
        Dimension of the fingerprints (at least 1).
    factory : str or None, default=None
        A FAISS `index_factory` string (inner product) kept whatever the size; None: the type
        follows the number of vectors.

    Attributes
    ----------
    factory_ : str
        The index type in use (`factory`, or the one `choose_factory` chose).
    ntotal : int
        Number of stored vectors (also `len(index)`).

    Examples
    --------
    >>> import numpy as np
    >>> from clustering.index import FingerprintIndex
    >>> vectors = np.eye(4, dtype=np.float32)
    >>> index = FingerprintIndex.from_vectors(vectors, ids=np.array([10, 11, 12, 13]))
    >>> index.factory_, len(index), 12 in index
    ('IDMap2,Flat', 4, True)
    >>> similarities, ids = index.search(vectors[:1], k=2)
    >>> int(ids[0, 0]), float(similarities[0, 0])
    (10, 1.0)
    """

    _rules = {"dim": Number(integer=True, low=1)}

    def __init__(self, *, dim: int, factory: str | None = None) -> None:
        self.dim = dim
        self.factory = factory
        check_params(self, self._rules)
        if factory is not None and not isinstance(factory, str):
            raise TypeError(f"FingerprintIndex: factory must be a FAISS index_factory string or None, got {factory!r}")
        self.factory_ = factory or choose_factory(0, dim)
        self._built_at = 0
        self._index = self._empty(self.factory_)
        self._ids: set[int] = set()

    # ---- construction -------------------------------------------------------------------------

    def _empty(self, factory: str) -> faiss.Index:
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as err:
            raise ValueError(f"FingerprintIndex: FAISS cannot make a {factory!r} index of dimension {self.dim}: {err}") from err
        ivf = self._ivf(index)
        if ivf is not None:
            ivf.nprobe = default_nprobe(ivf.nlist)
            ivf.cp.niter = TRAIN_ITERATIONS
            if isinstance(ivf, faiss.IndexIVFPQ):
                # On by default from index_factory; its annealing takes minutes and only serves
                # Hamming-filtered search, which is not used here.
                ivf.do_polysemous_training = False
            # A hash table from id to list position: reconstruct(id) and remove_ids work.
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index

    @staticmethod
    def _ivf(index: faiss.Index) -> faiss.IndexIVF | None:
        try:
            return faiss.extract_index_ivf(index)
        except RuntimeError:
            return None

    def _build(self, factory: str, vectors: np.ndarray, ids: np.ndarray, seed: int = 0) -> None:
        index = self._empty(factory)
        if not index.is_trained:
            n_train = min(len(vectors), TRAIN_POINTS_PER_LIST * self._ivf(index).nlist)
            sample = np.random.default_rng(seed).choice(len(vectors), n_train, replace=False)
            index.train(vectors[np.sort(sample)])
        if len(vectors):
            index.add_with_ids(vectors, ids)
        self._index, self.factory_, self._built_at = index, factory, len(vectors)
        self._ids = set(ids.tolist())

    @classmethod
    def from_vectors(
        cls, vectors: np.ndarray, ids: np.ndarray, *, factory: str | None = None
    ) -> FingerprintIndex:
        """A new index holding `vectors` under `ids`, its type chosen for their number."""
        vectors = np.asarray(vectors)
        index = cls(dim=vectors.shape[1], factory=factory)
        index.rebuild(vectors, ids)
        return index

    def rebuild(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Replace the contents with `vectors` under `ids`, retraining the index type for them."""
        vectors = _normalised(vectors, self.dim)
        ids = self._checked_ids(ids, len(vectors))
        factory = choose_factory(len(vectors), self.dim) if self.auto else self.factory_
        self._build(factory, vectors, ids)

    # ---- contents -----------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def auto(self) -> bool:
        """Whether the index type follows the number of vectors (no explicit `factory`)."""
        return self.factory is None

    @property
    def lossless(self) -> bool:
        """Whether `vectors_and_ids` returns the exact vectors (not PQ approximations)."""
        return self.factory_.endswith("Flat")

    def __contains__(self, id_: int) -> bool:
        return int(id_) in self._ids

    def ids(self) -> np.ndarray:
        """Every stored id (int64), in storage order."""
        index = self._index
        if isinstance(index, faiss.IndexIDMap2):
            return faiss.vector_to_array(index.id_map).astype(np.int64)
        invlists = self._ivf(index).invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(list_no), invlists.list_size(list_no)).copy()
            for list_no in range(invlists.nlist)
            if invlists.list_size(list_no)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)

    def _checked_ids(self, ids: np.ndarray, n: int) -> np.ndarray:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != n:
            raise ValueError(f"{n} vectors but {len(ids)} ids")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")
        return ids

    def vectors_and_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """All stored (vectors, ids); exact for Flat and IVF-Flat, PQ approximations otherwise."""
        index = self._index
        if isinstance(index, faiss.IndexIDMap2):
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            return index.index.reconstruct_n(0, index.ntotal), ids
        ivf = self._ivf(index)
        if ivf is None or not self.lossless:
            raise NotImplementedError(f"cannot list the exact vectors of a {self.factory_} index")
        vectors, ids = [], []
        for list_no in range(ivf.nlist):
            list_ids, codes = get_invlist(ivf.invlists, list_no)
            if len(list_ids):
                ids.append(list_ids.astype(np.int64))
                vectors.append(codes.view(np.float32).reshape(-1, self.dim))
        if not ids:
            return np.empty((0, self.dim), np.float32), np.empty(0, np.int64)
        return np.concatenate(vectors), np.concatenate(ids)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors under new, unique ids; may rebuild into a bigger type (see class doc)."""
        vectors = _normalised(vectors, self.dim)
        ids = self._checked_ids(ids, len(vectors))
        if not len(ids):
            return
        present = [id_ for id_ in ids.tolist() if id_ in self._ids]
        if present:
            raise ValueError(f"ids already in the index: {present[:10]}")
        total = self.ntotal + len(ids)
        if self._should_rebuild(choose_factory(total, self.dim), total):
            old_vectors, old_ids = self.vectors_and_ids()
            self._build(
                choose_factory(total, self.dim),
                np.concatenate([old_vectors, vectors]),
                np.concatenate([old_ids, ids]),
            )
        else:
            self._index.add_with_ids(vectors, ids)
            self._ids.update(ids.tolist())

    def _should_rebuild(self, target: str, total: int) -> bool:
        if not self.auto or target == self.factory_ or not self.lossless:
            return False
        if self.factory_.startswith("IDMap2"):
            return True
        return total >= REBUILD_GROWTH * max(self._built_at, 1)

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids (unknown ones are ignored); returns how many were removed."""
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        removed = int(self._index.remove_ids(ids))
        self._ids.difference_update(ids.tolist())
        return removed

    # ---- search -------------------------------------------------------------------------------

    @property
    def nlist(self) -> int | None:
        """Number of IVF lists (None for a flat index)."""
        ivf = self._ivf(self._index)
        return None if ivf is None else int(ivf.nlist)

    @property
    def nprobe(self) -> int | None:
        ivf = self._ivf(self._index)
        return None if ivf is None else int(ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        ivf = self._ivf(self._index)
        if ivf is None:
            raise ValueError(f"{self.factory_} has no nprobe")
        ivf.nprobe = int(value)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (similarities (n, k) float32 descending, ids (n, k) int64); -1 / -inf where fewer."""
        queries = _normalised(queries, self.dim)
        if k <= 0 or not len(queries):
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        sims, ids = self._index.search(queries, int(k))
        sims[ids < 0] = -np.inf
        return sims, ids

    def range_search(
        self, queries: np.ndarray, min_similarity: float
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (ids, similarities) of every vector with similarity > min_similarity,
        most similar first (approximate for IVF: only the probed lists are scanned)."""
        queries = _normalised(queries, self.dim)
        if not len(queries):
            return []
        lims, sims, ids = self._index.range_search(queries, float(min_similarity))
        out = []
        for start, stop in zip(lims[:-1], lims[1:]):
            order = np.argsort(-sims[start:stop], kind="stable")
            out.append((ids[start:stop][order].astype(np.int64), sims[start:stop][order]))
        return out

    # ---- persistence --------------------------------------------------------------------------

    @staticmethod
    def sidecar_path(path: str | os.PathLike) -> Path:
        path = Path(path)
        return path.with_name(path.name + ".json")

    def save(self, path: str | os.PathLike) -> None:
        """Write the index atomically beside a JSON sidecar (dim, factory, count, sha256)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self._index)
        meta = {
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "factory": self.factory_,
            "auto": self.auto,
            "count": self.ntotal,
            "built_at": self._built_at,
            "nprobe": self.nprobe,
            "sha256": _sha256(memoryview(data)),
            "faiss_version": faiss.__version__,
        }
        # Index first, then the sidecar: a crash in between leaves a checksum mismatch, which
        # load() reports, never a silently stale index.
        write_bytes_atomic(path, memoryview(data))
        write_text_atomic(self.sidecar_path(path), json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FingerprintIndex:
        """Load and verify a saved index; raises IndexCorruptError saying how to recover."""
        path = Path(path)

        def corrupt(reason: str) -> IndexCorruptError:
            return IndexCorruptError(
                f"fingerprint index {path} is unusable ({reason}). Delete {path} and "
                f"{cls.sidecar_path(path).name} and rebuild it from the stored fingerprint vectors: "
                "FingerprintIndex.from_vectors(vectors, ids).save(path)."
            )

        try:
            meta = json.loads(cls.sidecar_path(path).read_text())
            data = path.read_bytes()
        except (OSError, ValueError) as err:
            raise corrupt(f"cannot read it or its sidecar: {err}") from err
        if meta.get("format_version") != FORMAT_VERSION:
            raise corrupt(f"format version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        if _sha256(data) != meta.get("sha256"):
            raise corrupt("checksum mismatch: truncated or modified file")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as err:
            raise corrupt(f"FAISS cannot read it: {err}") from err
        if index.d != meta["dim"] or index.ntotal != meta["count"]:
            raise corrupt("dimension or count differ from the sidecar")
        loaded = cls(dim=int(meta["dim"]), factory=None if meta["auto"] else meta["factory"])
        loaded.factory_, loaded._built_at, loaded._index = meta["factory"], int(meta["built_at"]), index
        loaded._ids = set(loaded.ids().tolist())
        return loaded

    def __repr__(self) -> str:
        return f"FingerprintIndex(dim={self.dim}, factory={self.factory!r}, factory_={self.factory_!r}, ntotal={self.ntotal})"

