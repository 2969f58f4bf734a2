"""OpenSetAttributor: closed-set naming, unknown rejection with a calibrated threshold, cluster votes."""
from __future__ import annotations

import numpy as np
import pytest

from clustering import metrics
from clustering.attribution import OpenSetAttributor
from clustering.synthetic import make_fingerprints


@pytest.fixture(scope="module")
def world():
    # 12 origins: the first 6 are registered under a name, the last 6 are never seen.
    data = make_fingerprints(n_origins=12, images_per_origin=80, n_real=0, dim=32, noise=0.9,
                             origins_per_design=1, seed=4)
    rng = np.random.default_rng(0)
    reference = np.zeros(len(data.origins), bool)
    for origin in range(6):
        members = np.flatnonzero(data.origins == origin)
        reference[rng.choice(members, 30, replace=False)] = True
    names = np.array([f"gen{o}" for o in data.origins], dtype=object)
    attributor = OpenSetAttributor().fit(data.vectors[reference], names[reference])
    return data, names, reference, attributor


def test_known_images_are_named_and_unseen_ones_rejected(world):
    data, names, reference, attributor = world
    known = (data.origins < 6) & ~reference
    unseen = data.origins >= 6
    predicted, scores = attributor.predict_with_scores(data.vectors)
    assert predicted.dtype == object and scores.dtype == np.float32
    assert metrics.closed_set_accuracy(names[known], predicted[known]) > 0.85
    assert np.mean([p is None for p in predicted[unseen]]) > 0.9
    assert metrics.open_set_auroc(scores[known], scores[unseen]) > 0.95
    correct = predicted[known] == names[known]
    assert metrics.oscr(scores[known], correct, scores[unseen]) > 0.85


def test_threshold_meets_the_target_false_reject_rate_on_references(world):
    _, _, _, attributor = world
    rejected = (attributor.genuine_scores_ < attributor.threshold_).mean()
    assert rejected == pytest.approx(attributor.target_false_reject, abs=0.02)
    assert list(attributor.names_) == [f"gen{o}" for o in range(6)]


def test_explicit_threshold_and_uncalibratable_references():
    x = np.eye(3, dtype=np.float32)
    attributor = OpenSetAttributor(threshold=0.9).fit(x[:2], ["a", "b"])
    assert attributor.threshold_ == 0.9
    names, scores = attributor.predict_with_scores(np.array([[1, 0.1, 0], [0, 0, 1]], np.float32))
    assert names[0] == "a" and names[1] is None
    assert scores[1] == pytest.approx(0.0)
    single = OpenSetAttributor().fit(x[:2], ["a", "b"])  # one reference each: nothing to hold out
    assert single.threshold_ == pytest.approx(0.5)


def test_attribute_clusters_by_member_votes():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, -1, 2, 2])
    names = ["a", "a", None, None, None, "b", "b", "a", "c", None]
    result = OpenSetAttributor.attribute_clusters(labels, names)
    assert result[0] == ("a", pytest.approx(2 / 3))
    assert result[1][0] is None and result[1][1] == pytest.approx(0.5)  # tie: unknown wins
    assert result[2] == (None, pytest.approx(0.5))
    assert -1 not in result


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        OpenSetAttributor().fit(np.ones((3, 4)), ["a", "b"])


def test_nearest_references_name_a_generator_with_two_modes_that_its_mean_misses():
    # "a" has two opposite modes: its mean points between them, nearer to "b" than to a's first mode.
    rng = np.random.default_rng(0)
    axes = np.eye(3, dtype=np.float32)

    def around(centre, n):
        return centre + 0.05 * rng.standard_normal((n, 3)).astype(np.float32)

    a_modes = [axes[0] + 0.2 * axes[1], -axes[0] + 0.2 * axes[1]]
    references = np.concatenate([around(a_modes[0], 20), around(a_modes[1], 20), around(np.array([0.5, 0.5, 0.7], np.float32), 20)])
    names = ["a"] * 40 + ["b"] * 20
    queries = np.concatenate([around(a_modes[0], 10), around(a_modes[1], 10)])
    nearest = OpenSetAttributor(n_neighbors=3).fit(references, names)
    prototype = OpenSetAttributor(n_neighbors=None).fit(references, names)
    assert list(nearest.names_[nearest.name_scores(queries).argmax(1)]) == ["a"] * 20
    assert np.mean(nearest.predict(queries) == "a") >= 0.8  # the rest fall under the 5 % reject threshold
    assert list(prototype.name_scores(queries[:10]).argmax(1)) == [1] * 10  # the first mode's images go to b
    # Leave-one-out: a reference is never its own neighbour, so genuine scores stay below 1.
    assert nearest.genuine_scores_.max() < 0.9999 and len(nearest.genuine_scores_) == 60


def test_prototype_scores_are_cosine_to_the_normalised_mean():
    rng = np.random.default_rng(1)
    references = rng.standard_normal((30, 8)).astype(np.float32)
    names = ["x"] * 10 + ["y"] * 20
    attributor = OpenSetAttributor(n_neighbors=None).fit(references, names)
    unit = references / np.linalg.norm(references, axis=1, keepdims=True)
    query = rng.standard_normal((4, 8)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    mean_y = unit[10:].mean(0)
    np.testing.assert_allclose(attributor.name_scores(query)[:, 1], query @ (mean_y / np.linalg.norm(mean_y)), atol=1e-5)
    with pytest.raises(ValueError):
        OpenSetAttributor(n_neighbors=0).fit(references, names)


def test_naming_outvotes_a_stray_reference_while_acceptance_uses_the_nearest():
    rng = np.random.default_rng(2)
    axes = np.eye(3, dtype=np.float32)
    query = (axes[0] + 0.02 * axes[2])[None]
    a = axes[0] + 0.1 * rng.standard_normal((10, 3)).astype(np.float32)
    b = np.concatenate([axes[1] + 0.1 * rng.standard_normal((10, 3)).astype(np.float32), query])  # one b reference on the query
    references, names = np.concatenate([a, b]), ["a"] * 10 + ["b"] * 11
    one = OpenSetAttributor(naming_neighbors=1, threshold=0.5).fit(references, names)
    three = OpenSetAttributor(naming_neighbors=3, threshold=0.5).fit(references, names)
    assert one.name(query)[0][0] == "b"
    best, score = three.name(query)
    assert best[0] == "a"
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    assert score[0] == pytest.approx((unit @ (query[0] / np.linalg.norm(query[0]))).max(), abs=1e-5)  # nearest a reference
    assert three.predict(query)[0] == "a"
    assert OpenSetAttributor(naming_neighbors=3, threshold=0.9999).fit(references, names).predict(query)[0] is None
    with pytest.raises(ValueError):
        OpenSetAttributor(naming_neighbors=0).fit(references, names)


def _draw(rng: np.random.Generator, centres: list[np.ndarray], n: int, nuisance: slice, spread: float, noise: float) -> np.ndarray:
    """n vectors per centre: `noise` scatter on every axis, `spread` more on the `nuisance` axes."""
    dim = len(centres[0])
    x = np.repeat(np.stack(centres), n, axis=0) + noise * rng.standard_normal((n * len(centres), dim))
    x[:, nuisance] += spread * rng.standard_normal((len(x), nuisance.stop - nuisance.start))
    return x.astype(np.float32)


def test_whitened_naming_discounts_scatter_every_generator_shares():
    # Six generators differ slightly on axes 0-7; all of their images vary a lot on axes 8-15 (content, say).
    rng = np.random.default_rng(0)
    base = np.eye(64)[63]
    centres = [base + 0.15 * rng.standard_normal(64) * (np.arange(64) < 8) for _ in range(6)]
    registered = [f"g{i}" for i in range(4)]

    def draw(which: list[np.ndarray], n: int) -> np.ndarray:
        return _draw(rng, which, n, slice(8, 16), spread=0.6, noise=0.03)

    references, names = draw(centres[:4], 25), np.repeat(registered, 25)
    known, truth, unseen = draw(centres[:4], 150), np.repeat(registered, 150), draw(centres[4:], 150)
    plain = OpenSetAttributor().fit(references, names)
    whitened = OpenSetAttributor(whiten=True).fit(references, names)
    assert plain.whitening_ is None and whitened.whitening_.shape == (64, 64)
    assert np.mean(plain.name(known)[0] == truth) < 0.7
    best, score = whitened.name(known)
    assert np.mean(best == truth) > 0.95
    # Acceptance is not whitened: the same scores and threshold as without whitening.
    np.testing.assert_allclose(whitened.name_scores(unseen), plain.name_scores(unseen), atol=1e-6)
    assert whitened.threshold_ == pytest.approx(plain.threshold_)
    np.testing.assert_allclose(score, plain.name_scores(known)[np.arange(len(best)), np.searchsorted(plain.names_, best.astype(str))], atol=1e-6)


def test_whitening_can_also_name_worse():
    # "a" scatters widely on axis 1, which is the very axis on which the tight "b" and "c" differ:
    # pooled whitening shrinks it and mixes b and c up. Hence whitening is each fingerprinter's choice.
    rng = np.random.default_rng(0)
    axes = np.eye(16)

    def draw(n: int) -> np.ndarray:
        a = _draw(rng, [2 * axes[15] + axes[0]], n, slice(1, 2), spread=1.0, noise=0.03)
        b_and_c = _draw(rng, [2 * axes[15], 2 * axes[15] + 0.3 * axes[1]], n, slice(1, 2), spread=0.0, noise=0.03)
        return np.concatenate([a, b_and_c])

    references, names = draw(30), np.repeat(["a", "b", "c"], 30)
    queries, truth = draw(200), np.repeat(["a", "b", "c"], 200)
    plain = OpenSetAttributor().fit(references, names)
    whitened = OpenSetAttributor(whiten=True).fit(references, names)
    assert np.mean(plain.name(queries)[0] == truth) > 0.99 > 0.9 > np.mean(whitened.name(queries)[0] == truth)


def test_whitening_needs_scatter_within_names():
    x = np.eye(3, dtype=np.float32)
    assert OpenSetAttributor(whiten=True).fit(x[:2], ["a", "b"]).whitening_ is None  # one reference per name
    same = OpenSetAttributor(whiten=True).fit(np.repeat(x[:2], 3, axis=0), ["a"] * 3 + ["b"] * 3)
    assert same.whitening_ is None  # identical references: no scatter to whiten
