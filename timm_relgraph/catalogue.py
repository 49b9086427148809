"""The C-L catalogue: the paper's set of WS-flex graphs spread over clustering (C) x path length (L).

The paper (You et al., 2020, Sec. 3.3; graph2nn's ``analysis/generate_graphs.ipynb``) sweeps WS-flex over
``k = linspace(sqrt(k_min), sqrt(k_max), steps) ** 2`` (n = 64: 8 to 62 in 300 steps; n = 16: 4 to 14 in 200,
see ``paper.K_AXES``), ``p = linspace(0, 1, 300) ** 2`` and seeds 0-29, drops graphs with ``k / n < 0.125``, shuffles the rest with ``numpy.random.seed(1)``, and keeps the first graph
of each fine bin of a 135 x 135 grid over ``C in [0, 1]`` and ``L in [1, 4.5]`` (``np.digitize``, 1-based).
:func:`build_catalogue` repeats that procedure exactly (2,700,000 graphs for n = 64, about 20 minutes on
2 cores; n = 16: 1,800,000 graphs, about 6 minutes) and :func:`write_catalogue` ships the result as ``data/catalogue_n{n}.csv``
(columns ``n, k, p, seed, C, L``, in the authors' shuffled order): 3942 graphs for n = 64, the set behind
graph2nn's ``graphs_n64_3942.npy``. :func:`paper_grid` selects the paper's coarse grid from it with
graph2nn's rule (52 graphs for n = 64).

``resolve(c, l, n)`` maps a requested (C, L) to the nearest catalogue graph (or the complete graph, which
the in-memory table adds after the file's rows); it never rebuilds anything.
"""
from __future__ import annotations

import csv
import math
import os
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Tuple

import numpy as np

from ._io import atomic_open
from .graphs import GraphSpec, _is_connected, _ws_flex_edges, fast_graph_stats, MAX_CONNECT_TRIES
from .paper import C_BINS, CENTRE, COARSE, K_AXES, L_BINS, MIN_K_OVER_N, P_STEPS, SHUFFLE_SEED

__all__ = [
    'CatalogueEntry', 'load_catalogue', 'resolve', 'nearest', 'build_catalogue', 'write_catalogue',
    'paper_grid', 'C_TOL', 'L_TOL', 'DATA_DIR', 'catalogue_path',
]

DATA_DIR = Path(__file__).resolve().parent / 'data'
C_TOL = 0.02
L_TOL = 0.05
SUPPORTED_N = (64, 16)

SEEDS = 30  # the paper's seeds 0-29
FILL_ABOVE_C = 0.75  # graph2nn fills empty centre bins only above this clustering


@dataclass(frozen=True)
class CatalogueEntry:
    n: int
    k: float
    p: float
    seed: int
    C: float
    L: float

    @property
    def spec(self) -> GraphSpec:
        return GraphSpec('ws_flex', self.n, self.k, self.p, self.seed)


def catalogue_path(n: int) -> Path:
    return DATA_DIR / f'catalogue_n{n}.csv'


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n not in SUPPORTED_N:
        raise ValueError(f'the catalogue covers n in {SUPPORTED_N}, got n={n!r}')
    return n


@lru_cache(maxsize=None)
def _table(n: int) -> np.ndarray:
    path = catalogue_path(n)
    if not path.is_file():
        raise FileNotFoundError(f'catalogue file {path} is missing; rebuild it with `relgraph catalogue --build`')
    rows = np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)
    return np.vstack([rows, [[n, float(n), 0.0, 0, 1.0, 1.0]]])  # the complete graph, for resolve(1, 1)


def load_catalogue(n: int = 64) -> List[CatalogueEntry]:
    """All catalogue graphs for ``n`` nodes (64 or 16), in file order, then the complete graph."""
    rows = _table(_check_n(n))
    return [CatalogueEntry(int(r[0]), float(r[1]), float(r[2]), int(r[3]), float(r[4]), float(r[5])) for r in rows]


def _entry(row) -> CatalogueEntry:
    return CatalogueEntry(int(row[0]), float(row[1]), float(row[2]), int(row[3]), float(row[4]), float(row[5]))


def _check_target(name: str, value) -> float:
    if isinstance(value, bool):
        raise ValueError(f'{name} must be a number, got {value!r}')
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f'{name} must be a finite number, got one too large for a float') from None
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a number, got {repr(value)[:40]}') from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f'{name} must be a finite number, got {value}')
    return value


def nearest(c: float, l: float, n: int = 64, count: int = 3) -> List[CatalogueEntry]:
    """The ``count`` catalogue graphs closest to (c, l), distance measured in units of the tolerances."""
    c, l = _check_target('C', c), _check_target('L', l)
    table = _table(_check_n(n))
    dist = ((table[:, 4] - c) / C_TOL) ** 2 + ((table[:, 5] - l) / L_TOL) ** 2
    order = np.argsort(dist, kind='stable')[:count]
    return [_entry(table[i]) for i in order]


def resolve(c: float, l: float, n: int = 64) -> CatalogueEntry:
    """The catalogue graph nearest to clustering ``c`` and path length ``l``.

    Raises ``ValueError`` naming the nearest reachable (C, L) pairs when none lies within
    ``|dC| <= 0.02`` and ``|dL| <= 0.05``. ``resolve(1.0, 1.0)`` is the complete graph.
    """
    c, l = _check_target('C', c), _check_target('L', l)
    if not 0.0 <= c <= 1.0:
        raise ValueError(f'C (clustering) must lie in [0, 1], got {c:g}')
    if l < 1.0:
        raise ValueError(f'L (average path length) must be >= 1, got {l:g}')
    best = nearest(c, l, n, count=1)[0]
    if abs(best.C - c) <= C_TOL + 1e-12 and abs(best.L - l) <= L_TOL + 1e-12:
        return best
    options = ', '.join(f'(C={e.C:.2f}, L={e.L:.2f})' for e in nearest(c, l, n, count=3))
    raise ValueError(f'no {n}-node graph has C={c:g} +- {C_TOL} and L={l:g} +- {L_TOL}; nearest reachable: {options}')


def fine_bins(C, L) -> Tuple[np.ndarray, np.ndarray]:
    """graph2nn's fine-bin indices: ``np.digitize`` on the 136 edges, so bins are 1-based (1..135) and
    values on or past the last edge (C = 1) fall in bin 136."""
    return np.digitize(np.asarray(C, dtype=np.float64), C_BINS), np.digitize(np.asarray(L, dtype=np.float64), L_BINS)


def paper_grid(n: int = 64) -> List[CatalogueEntry]:
    """The paper's coarse graph set, selected from the catalogue with graph2nn's rule.

    One graph per coarse cell of 9 x 9 fine bins: the catalogue graph in the cell's centre fine bin (1-based
    fine index mod 9 == 5 on both axes), in catalogue order. An empty centre bin with clustering above 0.75
    (``C_BINS[i] > 0.75``) is filled with the first occupied bin among C-bins ``i-1..i+1`` x L-bins
    ``j-3..j+3``, searched in that order; empty centres below are left empty. For n = 64 this gives the 52
    graphs of graph2nn's ``graphs_n64_52.npy``, row for row. The complete graph is not part of the grid.
    """
    table = _table(_check_n(n))[:-1]  # the last row is the complete graph
    ci, li = fine_bins(table[:, 4], table[:, 5])
    occupant = {(int(c), int(l)): row for row, (c, l) in enumerate(zip(ci, li))}
    chosen = [row for row, (c, l) in enumerate(zip(ci, li)) if c % COARSE == CENTRE and l % COARSE == CENTRE]
    for i in range(len(C_BINS) + 1):
        for j in range(len(L_BINS) + 1):
            if i % COARSE != CENTRE or j % COARSE != CENTRE or (i, j) in occupant or not C_BINS[i] > FILL_ABOVE_C:
                continue
            nearby = (occupant.get((m, q)) for m in range(i - 1, i + 2) for q in range(j - 3, j + 4))
            fill = next((row for row in nearby if row is not None), None)
            if fill is not None:
                chosen.append(fill)
    return [_entry(table[row]) for row in chosen]


# ---------------------------------------------------------------------------------------------------------
# Building the catalogue


def sweep_axes(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The paper's k and p axes for ``n`` nodes."""
    k_min, k_max, steps = K_AXES[_check_n(n)]
    ks = np.linspace(math.sqrt(k_min), math.sqrt(k_max), steps) ** 2
    ps = np.linspace(0.0, 1.0, P_STEPS) ** 2
    return ks, ps


def sweep_jobs(n: int, seeds: int = SEEDS) -> List[Tuple[int, float, float, int]]:
    """Every ``(n, k, p, seed)`` of the paper's sweep that survives the ``k / n >= 0.125`` filter, in the
    authors' row order (k outer, then p, then seed)."""
    ks, ps = sweep_axes(n)
    return [(n, float(k), float(p), s) for k in ks if k / n >= MIN_K_OVER_N for p in ps for s in range(seeds)]


def _measure(job) -> Tuple[float, float]:
    n, k, p, seed = job
    rng = random.Random(seed)
    for _ in range(MAX_CONNECT_TRIES):
        adj = _ws_flex_edges(n, k, p, rng)
        if _is_connected(adj):
            A = np.zeros((n, n))
            for u, nbrs in enumerate(adj):
                A[u, list(nbrs)] = 1.0
            return fast_graph_stats(A)
    raise ValueError(f'WS-flex drew no connected graph for n={n}, k={k!r}, p={p!r}, seed={seed}')


def _measure_chunk(chunk):
    stats, ring = [], {}
    for n, k, p, seed in chunk:
        if p == 0.0:  # no edge is rewired: the ring lattice, whatever the seed
            if (n, k) not in ring:
                ring[(n, k)] = _measure((n, k, p, seed))
            stats.append(ring[(n, k)])
        else:
            stats.append(_measure((n, k, p, seed)))
    return stats


def first_per_bin(rows: np.ndarray) -> np.ndarray:
    """graph2nn's subsampling of the sweep ``rows`` (``[n, k, p, seed, C, L]`` in sweep order): shuffle with
    numpy seed 1, then keep the first row of each fine C-L bin, in shuffled order."""
    shuffled = rows[np.random.RandomState(SHUFFLE_SEED).permutation(len(rows))]
    ci, li = fine_bins(shuffled[:, 4], shuffled[:, 5])
    _, first = np.unique(ci * (len(L_BINS) + 1) + li, return_index=True)
    return shuffled[np.sort(first)]


def build_catalogue(n: int = 64, seeds: int = SEEDS, workers: int = 0, progress: bool = True) -> np.ndarray:
    """Sweep WS-flex as the paper does and keep the first graph of each fine C-L bin.

    Returns rows ``[n, k, p, seed, C, L]`` in the authors' shuffled order (the complete graph is not among
    them: :func:`load_catalogue` adds it). ``seeds`` below 30 gives a smaller, different set, for tests.
    """
    from multiprocessing import get_context

    jobs = sweep_jobs(n, seeds)
    workers = workers or os.cpu_count() or 1
    chunks = [jobs[i:i + 3000] for i in range(0, len(jobs), 3000)]
    start = time.time()
    stats: list = []

    def report():
        if progress:
            print(f'\r  n={n}: {len(stats)}/{len(jobs)} graphs, {time.time() - start:.0f}s', end='', flush=True)

    if workers > 1:
        with get_context('spawn').Pool(workers) as pool:
            for part in pool.imap(_measure_chunk, chunks):
                stats.extend(part)
                report()
    else:
        for chunk in chunks:
            stats.extend(_measure_chunk(chunk))
            report()
    if progress:
        print()
    rows = np.array([(*job, C, L) for job, (C, L) in zip(jobs, stats)], dtype=np.float64)
    return first_per_bin(rows)


def write_catalogue(rows: np.ndarray, path: Path) -> None:
    """Write rows atomically as CSV with full float precision (``repr``), so graphs rebuild exactly."""
    with atomic_open(path) as f:
        w = csv.writer(f, lineterminator='\n')
        w.writerow(['n', 'k', 'p', 'seed', 'C', 'L'])
        for n, k, p, s, C, L in rows:
            w.writerow([int(n), repr(float(k)), repr(float(p)), int(s), repr(float(C)), repr(float(L))])
    _table.cache_clear()
