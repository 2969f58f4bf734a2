"""Stable cluster ids: continuation, new origins, merges, splits, endings; ids never reused."""
from __future__ import annotations

import numpy as np

from clustering.origin import OriginClusterer
from clustering.stable_ids import carry_over_ids


def ids(n: int, prefix: str = "img") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def event(result, kind):
    return result.events[result.events["kind"] == kind]


def test_first_run_issues_fresh_ids_from_next_id():
    result = carry_over_ids({}, ids(5), np.array([0, 0, 1, -1, 1]), next_id=10)
    np.testing.assert_array_equal(result.labels, [10, 10, 11, -1, 11])
    assert result.next_id == 12
    assert sorted(event(result, "new")["cluster_id"]) == [10, 11]


def test_relabelled_clusters_keep_their_ids_and_new_data_gets_new_ids():
    previous = {f"img{i}": (7 if i < 4 else 3) for i in range(8)}
    # The fresh clustering numbers them the other way round and finds a new group among new images.
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 1])
    result = carry_over_ids(previous, ids(12), labels, next_id=8)
    np.testing.assert_array_equal(result.labels, [7, 7, 7, 7, 3, 3, 3, 3, 8, 8, 8, 7])
    assert sorted(event(result, "continued")["cluster_id"]) == [3, 7]
    assert list(event(result, "new")["cluster_id"]) == [8]
    assert result.next_id == 9


def test_merge_keeps_the_larger_parent_and_retires_the_other():
    previous = {f"img{i}": (4 if i < 6 else 9) for i in range(10)}
    result = carry_over_ids(previous, ids(10), np.zeros(10, int), next_id=10)
    assert (result.labels == 4).all()
    merged = event(result, "merged")
    assert len(merged) == 1 and merged["cluster_id"].iloc[0] == 4
    assert merged["from_ids"].iloc[0] == [4, 9]
    assert "ended" not in set(result.events["kind"])


def test_split_keeps_the_id_for_the_larger_part():
    previous = {f"img{i}": 5 for i in range(10)}
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    result = carry_over_ids(previous, ids(10), labels, next_id=6)
    np.testing.assert_array_equal(result.labels, [6, 6, 6] + [5] * 7)
    split = event(result, "split")
    assert len(split) == 1 and split["to_ids"].iloc[0] == [5, 6]
    assert split["overlap"].iloc[0] == 0.7


def test_dissolved_cluster_ends_and_its_id_is_never_reissued():
    previous = {"a": 0, "b": 0, "c": 1, "d": 1}
    result = carry_over_ids(previous, ["a", "b", "c", "d"], np.array([-1, -1, 0, 0]), next_id=0)
    np.testing.assert_array_equal(result.labels, [-1, -1, 1, 1])
    assert list(event(result, "ended")["cluster_id"]) == [0]
    # A later run where the old members regroup: 0 is gone for good, they get a new id.
    later = carry_over_ids(
        dict(zip(["a", "b", "c", "d"], result.labels.tolist())),
        ["a", "b", "c", "d"], np.array([1, 1, 0, 0]), next_id=result.next_id,
    )
    np.testing.assert_array_equal(later.labels, [2, 2, 1, 1])


def test_minority_overlap_does_not_carry_an_id():
    # The fresh cluster has 2 members from cluster 3 (out of its 10 previously labelled ones, the
    # rest from 3's neighbours) and 3 kept most of its members elsewhere: no continuation.
    previous = {**{f"x{i}": 3 for i in range(8)}, **{f"y{i}": -1 for i in range(8)}}
    image_ids = [f"x{i}" for i in range(8)] + [f"y{i}" for i in range(8)]
    labels = np.array([0] * 6 + [1] * 2 + [1] * 8)
    result = carry_over_ids(previous, image_ids, labels, next_id=4)
    assert (result.labels[:6] == 3).all() and (result.labels[6:] == 4).all()


def test_ids_survive_a_recluster_with_added_data():
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 16)) * 3

    def sample(n_per: int) -> tuple[np.ndarray, np.ndarray]:
        truth = np.repeat(np.arange(4), n_per)
        return centres[truth] + rng.standard_normal((len(truth), 16)) * 0.3, truth

    x1, t1 = sample(40)
    first = OriginClusterer(min_cluster_size=10, n_components=8).fit(x1)
    run1 = carry_over_ids({}, ids(len(x1)), first.labels_, next_id=0)
    x2, t2 = sample(20)
    x_all, t_all = np.vstack([x1, x2]), np.r_[t1, t2]
    second = OriginClusterer(min_cluster_size=10, n_components=8).fit(x_all[::-1])
    previous = dict(zip(ids(len(x1)), run1.labels.tolist()))
    run2 = carry_over_ids(previous, ids(len(x_all))[::-1], second.labels_, next_id=run1.next_id)
    stable = run2.labels[::-1]
    for origin in range(4):
        old = run1.labels[t1 == origin]
        old_id = np.bincount(old[old >= 0]).argmax()
        assert set(old) - {-1} == {old_id} and (old >= 0).mean() > 0.9
        new = stable[t_all == origin]
        assert set(new) - {-1} == {old_id} and (new >= 0).mean() > 0.9
    assert set(run2.events["kind"]) == {"continued"}
