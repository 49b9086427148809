import time

import numpy as np
import pytest

from timm_relgraph import catalogue as cat
from timm_relgraph.graphs import graph_stats, ws_flex
from timm_relgraph.paper import PAPER_BEST


@pytest.mark.parametrize('n', [64, 16])
def test_catalogue_rows_rebuild_exactly(n):
    entries = cat.load_catalogue(n)
    assert len(entries) > (2000 if n == 64 else 500)
    ks, ps = cat.sweep_axes(n)
    rng = np.random.RandomState(0)
    for i in rng.choice(len(entries) - 1, 25, replace=False):
        e = entries[i]
        assert e.n == n and e.seed < cat.SEEDS
        assert np.isclose(ks, e.k, rtol=0, atol=1e-12).any() and np.isclose(ps, e.p, rtol=0, atol=1e-12).any()
        C, L = graph_stats(ws_flex(e.n, e.k, e.p, e.seed))
        assert abs(C - e.C) <= 1e-9 and abs(L - e.L) <= 1e-9
    last = entries[-1]
    assert (last.k, last.p, last.C, last.L) == (float(n), 0.0, 1.0, 1.0)


def test_catalogue_is_one_graph_per_fine_bin():
    table = np.array([[e.C, e.L] for e in cat.load_catalogue(64)[:-1]])
    ci = np.digitize(table[:, 0], cat.C_BINS)
    li = np.digitize(table[:, 1], cat.L_BINS)
    assert len(set(zip(ci, li))) == len(table)


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


def test_paper_grid():
    grid = cat.paper_grid(64)
    assert 45 <= len(grid) <= 60
    cells = {((int(np.digitize(e.C, cat.C_BINS)) - 1) // 9, (int(np.digitize(e.L, cat.L_BINS)) - 1) // 9) for e in grid}
    assert len(cells) == len(grid)
    assert min(e.C for e in grid) < 0.15 and max(e.C for e in grid) > 0.85


def test_paper_best_graphs_reproduce_stated_stats():
    stated = {'mlp5': (0.449, 2.479), 'cnn8': (0.501, 2.279), 'resnet34': (0.367, 2.287),
              'resnet34sep': (0.303, 2.048), 'resnet50': (0.636, 1.814), 'efficientnet_b0': (0.613, 1.892)}
    for family, (C, L) in stated.items():
        c, l = graph_stats(PAPER_BEST[family].build())
        assert abs(c - C) <= 0.0011 and abs(l - L) <= 0.0011, (family, c, l)
