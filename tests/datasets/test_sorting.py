"""SKR orderings: greedy nearest-neighbour paths, FFT/PCA/Gray-code binning, trivial orders."""

import numpy as np
import pytest

from pdesuite.datasets.sorting import gray_code_rank, path_length, sort_order, timed_sort_order


def _is_permutation(order, n):
    return order.shape == (n,) and np.array_equal(np.sort(order), np.arange(n))


def _clustered(rng, n_clusters=3, per_cluster=30, dim=50, spread=0.05, separation=10.0):
    centres = rng.standard_normal((n_clusters, dim)) * separation
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    points = centres[labels] + spread * rng.standard_normal((labels.size, dim))
    shuffle = rng.permutation(labels.size)
    return points[shuffle], labels[shuffle]


def _reference_greedy(points, start):
    """Plain-loop greedy path with exact distances, independent of the vectorised one."""
    remaining = list(range(len(points)))
    path = [start]
    remaining.remove(start)
    while remaining:
        here = points[path[-1]]
        distances = [np.linalg.norm(points[j] - here) for j in remaining]
        path.append(remaining.pop(int(np.argmin(distances))))
    return np.array(path)


@pytest.mark.parametrize("method", ["greedy", "fft", "none", "given", "random"])
def test_every_method_returns_a_permutation(method):
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((37, 6, 6))
    order = sort_order(keys, method=method, group_size=10)
    assert _is_permutation(order, 37)
    assert order.dtype == np.int64


def test_identity_and_seeded_random():
    keys = np.zeros((9, 3))
    assert np.array_equal(sort_order(keys, "none"), np.arange(9))
    assert np.array_equal(sort_order(keys, "given"), np.arange(9))
    first = sort_order(keys, "random", seed=3)
    assert np.array_equal(first, sort_order(keys, "random", seed=3))
    assert np.array_equal(first, np.random.default_rng(3).permutation(9))
    assert not np.array_equal(first, sort_order(keys, "random", seed=4))


def test_greedy_hand_computed_line():
    # Mean 4.8: the farthest point is 11 (index 3); then nearest unvisited each time.
    keys = np.array([[0.0], [10.0], [1.0], [11.0], [2.0]])
    assert sort_order(keys, "greedy").tolist() == [3, 1, 4, 2, 0]
    assert path_length(keys, [3, 1, 4, 2, 0]) == pytest.approx(1 + 8 + 1 + 1)


def test_greedy_matches_plain_loop_reference():
    rng = np.random.default_rng(1)
    points = rng.standard_normal((25, 8))
    order = sort_order(points, "greedy")
    assert np.array_equal(order, _reference_greedy(points, int(order[0])))
    # It starts at the point farthest from the mean.
    assert order[0] == np.argmax(np.linalg.norm(points - points.mean(axis=0), axis=1))


@pytest.mark.parametrize("group_size", [2000, 25])
def test_greedy_visits_each_cluster_once_and_shortens_the_path(group_size):
    rng = np.random.default_rng(2)
    points, labels = _clustered(rng)
    order = sort_order(points, "greedy", group_size=group_size)
    assert _is_permutation(order, len(points))
    switches = int(np.sum(labels[order][1:] != labels[order][:-1]))
    identity_length = path_length(points)
    sorted_length = path_length(points, order)
    if group_size >= len(points):
        assert switches == 2  # three clusters, each visited in one run
        # Within-cluster steps are ~0.05·√(2·50) = 0.5, jumps ~10·√(2·50) = 100.
        assert sorted_length < 0.05 * identity_length
    else:
        assert sorted_length < 0.5 * identity_length


def test_fft_groups_near_identical_fields_and_walks_in_gray_order():
    s = 16
    x = np.linspace(0, 1, s, endpoint=False)
    phi1 = np.cos(2 * np.pi * x)[:, None] * np.ones(s)[None, :]
    phi2 = np.ones(s)[:, None] * np.sin(2 * np.pi * x)[None, :]
    signs = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    rng = np.random.default_rng(3)
    fields, labels = [], []
    for label, (c1, c2) in enumerate(signs):
        for _ in range(10):
            fields.append(3.0 * c1 * phi1 + 1.0 * c2 * phi2 + 1e-3 * rng.standard_normal((s, s)))
            labels.append(label)
    shuffle = rng.permutation(len(fields))
    keys, labels = np.array(fields)[shuffle], np.array(labels)[shuffle]
    order = sort_order(keys, "fft")
    visited = labels[order]
    runs = [visited[0]] + [b for a, b in zip(visited[:-1], visited[1:]) if a != b]
    assert sorted(runs) == [0, 1, 2, 3]  # every group of copies is contiguous
    # Consecutive groups differ in one sign only (reflected Gray code over the top two bits).
    for a, b in zip(runs[:-1], runs[1:]):
        assert sum(u != v for u, v in zip(signs[a], signs[b])) == 1
    assert path_length(keys, order) < 0.2 * path_length(keys)


def test_gray_code_rank_inverts_the_gray_code():
    codes = np.array([i ^ (i >> 1) for i in range(128)])
    assert np.array_equal(gray_code_rank(codes), np.arange(128))
    assert gray_code_rank(np.array([0, 1, 3, 2, 6, 7, 5, 4])).tolist() == list(range(8))


def test_timed_sort_order_reports_seconds():
    keys = np.random.default_rng(4).standard_normal((50, 10))
    order, seconds = timed_sort_order(keys, "greedy")
    assert _is_permutation(order, 50)
    assert 0.0 <= seconds < 10.0


def test_accepts_a_list_of_fields_and_tiny_inputs():
    rng = np.random.default_rng(5)
    fields = [rng.standard_normal((4, 4)) for _ in range(6)]
    assert _is_permutation(sort_order(fields, "greedy"), 6)
    assert sort_order(np.zeros((1, 3)), "greedy").tolist() == [0]
    assert sort_order(np.zeros((0, 3)), "fft").tolist() == []


def test_bad_arguments_raise():
    keys = np.zeros((4, 3))
    with pytest.raises(ValueError, match="method"):
        sort_order(keys, "bogus")
    with pytest.raises(ValueError, match="group_size"):
        sort_order(keys, "greedy", group_size=1)
    with pytest.raises(ValueError, match="keys"):
        sort_order(np.array([[0.0, np.nan]] * 3), "greedy")
    with pytest.raises(ValueError, match="keys"):
        sort_order(np.zeros(5), "greedy")
    with pytest.raises(ValueError, match="same shape"):
        sort_order([np.zeros(3), np.zeros(4)], "greedy")
    with pytest.raises(ValueError, match="order"):
        path_length(keys, [0, 0, 1, 2])


@pytest.mark.parametrize("method", ["greedy", "fft"])
def test_exact_copies_are_visited_together(method):
    # Three distinct fields, five exact copies of each (rank 2 after centring, fewer than the
    # 7 principal directions the fft sorting bins on).
    base = np.random.default_rng(6).standard_normal((3, 8, 8))
    labels = np.repeat(np.arange(3), 5)[np.random.default_rng(7).permutation(15)]
    keys = base[labels]
    visited = labels[sort_order(keys, method)]
    assert int(np.sum(visited[1:] != visited[:-1])) == 2
