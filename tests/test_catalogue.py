import time

import numpy as np
import pytest

from timm_relgraph import catalogue as cat
from timm_relgraph.graphs import graph_stats, ws_flex
from timm_relgraph.paper import PAPER_BEST


@pytest.mark.parametrize('n', [64, 16])
def test_catalogue_rows_rebuild_exactly(n):
    entries = cat.load_catalogue(n)
    ks, ps = cat.sweep_axes(n)
    rng = np.random.RandomState(0)
    for i in rng.choice(len(entries) - 1, 25, replace=False):
        e = entries[i]
        assert e.n == n and 0 <= e.seed < cat.SEEDS
        assert e.k in ks and e.p in ps and e.k / n >= 0.125  # exact axis values, as written with repr()
        C, L = graph_stats(ws_flex(e.n, e.k, e.p, e.seed))
        assert (C, L) == (e.C, e.L)  # bit for bit: the catalogue's fast statistics are networkx's
    last = entries[-1]
    assert (last.k, last.p, last.C, last.L) == (float(n), 0.0, 1.0, 1.0)


def test_catalogue_is_the_papers_3942_graph_set():
    entries = cat.load_catalogue(64)[:-1]  # the last entry is the complete graph, added on load
    assert len(entries) == 3942
    Cs, Ls = [e.C for e in entries], [e.L for e in entries]
    assert (round(min(Cs), 3), round(max(Cs), 3)) == (0.075, 0.980)
    assert (round(min(Ls), 3), round(max(Ls), 3)) == (1.020, 4.444)


def test_catalogue_is_one_graph_per_fine_bin():
    table = np.array([[e.C, e.L] for e in cat.load_catalogue(64)[:-1]])
    ci, li = cat.fine_bins(table[:, 0], table[:, 1])
    assert len(set(zip(ci, li))) == len(table)


def test_first_per_bin_follows_the_shuffle():
    # 6 rows, two per bin; the survivor of each bin is whichever comes first after numpy-seed-1 shuffling
    rows = np.array([[64, 8.0, 0.1, s, C, 2.0] for s, C in enumerate([0.101, 0.102, 0.501, 0.502, 0.901, 0.902])])
    order = np.random.RandomState(1).permutation(len(rows))
    kept = cat.first_per_bin(rows)
    expected = []
    for i in order:
        if not any(cat.fine_bins(rows[j, 4], 2.0)[0] == cat.fine_bins(rows[i, 4], 2.0)[0] for j in expected):
            expected.append(i)
    assert kept[:, 3].tolist() == [float(i) for i in expected]


def test_paper_grid_is_graph2nns_52_graphs(graph2nn_dir):
    """The grid selected from the catalogue equals graph2nn's graphs_n64_52.npy row for row:
    n, k / n, p, seed, C and L, in the same order (the authors' file stores k / n)."""
    theirs = np.load(graph2nn_dir / 'graphs_n64_52.npy')
    ours = np.array([[e.n, e.k / e.n, e.p, e.seed, e.C, e.L] for e in cat.paper_grid(64)])
    assert ours.shape == theirs.shape == (52, 6)
    assert np.array_equal(ours, theirs)


def test_resolve_target():
    e = cat.resolve(0.4, 2.0)
    assert e.n == 64
    assert abs(e.C - 0.4) <= cat.C_TOL and abs(e.L - 2.0) <= cat.L_TOL
    C, L = graph_stats(e.spec.build())
    assert abs(C - e.C) < 1e-9 and abs(L - e.L) < 1e-9
    e16 = cat.resolve(0.5, 1.6, n=16)
    assert e16.n == 16 and abs(e16.C - 0.5) <= cat.C_TOL


def test_resolve_complete_graph():
    e = cat.resolve(1.0, 1.0)
    assert (e.k, e.p, e.C, e.L) == (64.0, 0.0, 1.0, 1.0)
    assert e.spec.is_complete


def test_resolve_is_fast_from_cold():
    cat._table.cache_clear()
    start = time.perf_counter()
    cat.resolve(0.3, 2.2)
    assert time.perf_counter() - start < 0.05
    start = time.perf_counter()
    for _ in range(20):
        cat.resolve(0.3, 2.2)
    assert (time.perf_counter() - start) / 20 < 0.005


@pytest.mark.parametrize('c, l, message', [
    (0.2, 1.5, 'nearest reachable: (C='),
    (float('nan'), 2.0, 'C must be a finite number'),
    (0.4, float('nan'), 'L must be a finite number'),
    (-0.1, 2.0, 'C (clustering) must lie in [0, 1]'),
    (0.4, 0.5, 'L (average path length) must be >= 1'),
    ('abc', 2.0, 'C must be a number'),
    (1.0, 2.0, 'nearest reachable'),
])
def test_resolve_errors(c, l, message):
    with pytest.raises(ValueError) as err:
        cat.resolve(c, l)
    assert message in str(err.value)


def test_resolve_rejects_unknown_n():
    with pytest.raises(ValueError, match='covers n in'):
        cat.resolve(0.4, 2.0, n=32)


def test_paper_grid_rule():
    grid = cat.paper_grid(64)
    cells = {(int(c) - 1) // 9 for c in cat.fine_bins([e.C for e in grid], [e.L for e in grid])[0]}
    assert len(grid) == 52 and len(cells) > 5
    ci, li = cat.fine_bins([e.C for e in grid], [e.L for e in grid])
    centred = [(c % 9, l % 9) == (5, 5) for c, l in zip(ci, li)]
    # graphs off their cell's centre bin are fills, and the rule fills only above C = 0.75
    assert all(e.C > 0.74 for e, ok in zip(grid, centred) if not ok)
    assert sum(centred) >= 45


def test_paper_best_graphs_reproduce_stated_stats():
    stated = {'mlp5': (0.449, 2.479), 'cnn8': (0.501, 2.279), 'resnet34': (0.367, 2.287),
              'resnet34sep': (0.303, 2.048), 'resnet50': (0.636, 1.814), 'efficientnet_b0': (0.613, 1.892)}
    for family, (C, L) in stated.items():
        c, l = graph_stats(PAPER_BEST[family].build())
        assert abs(c - C) <= 0.0011 and abs(l - L) <= 0.0011, (family, c, l)
