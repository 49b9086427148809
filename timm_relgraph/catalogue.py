"""The C-L catalogue: a reproducible set of WS-flex graphs spread over clustering (C) x path length (L).

The paper (You et al., 2020, Sec. 3.3) sweeps WS-flex over ``k = linspace(2, sqrt(n - 2), 200) ** 2``,
``p = linspace(0, 1, 300) ** 2`` and 30 seeds, keeps ``k / n >= 0.125``, shuffles, and keeps the first graph
in each cell of a 135 x 135 grid over ``C in [0, 1]`` and ``L in [1, 4.5]``. This module rebuilds that set
from a deterministic slice of the same sweep (the first ``SEEDS`` seeds instead of 30) so that the build
takes minutes, and ships the result as ``data/catalogue_n{n}.csv`` (columns ``n, k, p, seed, C, L``).

``resolve(c, l, n)`` maps a requested (C, L) to the nearest catalogue graph; it never rebuilds anything.
"""
from __future__ import annotations

import csv
import math
import os
import random
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .graphs import GraphSpec, _is_connected, _ws_flex_edges, fast_graph_stats, MAX_CONNECT_TRIES
from .paper import C_BINS, CENTRE, COARSE, K_STEPS, L_BINS, MIN_K_OVER_N, P_STEPS, SHUFFLE_SEED

__all__ = [
    'CatalogueEntry', 'load_catalogue', 'resolve', 'nearest', 'build_catalogue', 'write_catalogue',
    'paper_grid', 'C_TOL', 'L_TOL', 'DATA_DIR', 'catalogue_path',
]

DATA_DIR = Path(__file__).resolve().parent / 'data'
C_TOL = 0.02
L_TOL = 0.05
SUPPORTED_N = (64, 16)

SEEDS = 4  # our reduction of the paper's 30 seeds


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
    return np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)


def load_catalogue(n: int = 64) -> List[CatalogueEntry]:
    """All catalogue graphs for ``n`` nodes (64 or 16), in file order."""
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


def _fine_bins(table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    ci = np.clip(np.digitize(table[:, 4], C_BINS) - 1, 0, len(C_BINS) - 2)
    li = np.clip(np.digitize(table[:, 5], L_BINS) - 1, 0, len(L_BINS) - 2)
    return ci, li


def paper_grid(n: int = 64, radius: int = 1) -> List[CatalogueEntry]:
    """The paper's coarse graph set, built from this catalogue: one graph per cell of a 15 x 15 grid over
    C-L, the one in the cell's centre fine bin (fine index mod 9 == 5 on both axes, as in graph2nn).

    Our catalogue samples fewer seeds than the paper's, so some centre bins are empty; such a cell takes the
    graph nearest its centre within ``radius`` fine bins. For n = 64 this gives 54 graphs (the paper: 52).
    The complete graph is not part of the grid.
    """
    table = _table(_check_n(n))[:-1]  # the last row is the complete graph
    ci, li = _fine_bins(table)
    offset = np.maximum(np.abs(ci % COARSE - CENTRE), np.abs(li % COARSE - CENTRE))
    chosen = {}
    for i in np.argsort(offset, kind='stable'):
        if offset[i] <= radius:
            chosen.setdefault((int(ci[i]) // COARSE, int(li[i]) // COARSE), i)
    return [_entry(table[chosen[cell]]) for cell in sorted(chosen)]


# ---------------------------------------------------------------------------------------------------------
# Building the catalogue


def sweep_axes(n: int) -> Tuple[np.ndarray, np.ndarray]:
    """The paper's k and p axes for ``n`` nodes."""
    ks = np.linspace(math.sqrt(4), math.sqrt(n - 2), K_STEPS) ** 2
    ps = np.linspace(0.0, 1.0, P_STEPS) ** 2
    return ks, ps


def _measure(args) -> Optional[Tuple[float, float]]:
    n, k, p, seed = args
    rng = random.Random(seed)
    for _ in range(MAX_CONNECT_TRIES):
        adj = _ws_flex_edges(n, k, p, rng)
        if _is_connected(adj):
            A = np.zeros((n, n))
            for u, nbrs in enumerate(adj):
                A[u, list(nbrs)] = 1.0
            return fast_graph_stats(A)
    return None


def _measure_chunk(chunk):
    return [_measure(args) for args in chunk]


def build_catalogue(n: int = 64, seeds: int = SEEDS, workers: int = 0, progress: bool = True) -> np.ndarray:
    """Sweep WS-flex and keep the first graph of each fine C-L bin; returns rows ``[n, k, p, seed, C, L]``.

    The complete graph (k = n, p = 0, C = L = 1) is appended as the last row.
    """
    from multiprocessing import get_context

    ks, ps = sweep_axes(n)
    ks = ks[ks / n >= MIN_K_OVER_N]
    jobs = [(n, float(k), float(p), s) for k in ks for p in ps for s in range(seeds)]
    order = np.random.RandomState(SHUFFLE_SEED).permutation(len(jobs))
    jobs = [jobs[i] for i in order]
    workers = workers or os.cpu_count() or 1
    chunks = [jobs[i:i + 2000] for i in range(0, len(jobs), 2000)]
    start = time.time()
    results = []
    if workers > 1:
        with get_context('spawn').Pool(workers) as pool:
            for i, part in enumerate(pool.imap(_measure_chunk, chunks)):
                results.extend(part)
                if progress:
                    print(f'\r  n={n}: {len(results)}/{len(jobs)} graphs, {time.time() - start:.0f}s', end='', flush=True)
    else:
        for chunk in chunks:
            results.extend(_measure_chunk(chunk))
            if progress:
                print(f'\r  n={n}: {len(results)}/{len(jobs)} graphs, {time.time() - start:.0f}s', end='', flush=True)
    if progress:
        print()
    kept = {}
    for (nn, k, p, s), stats in zip(jobs, results):
        if stats is None:
            continue
        row = (nn, k, p, s, *stats)
        ci, li = _fine_bins(np.array([row]))
        kept.setdefault((int(ci[0]), int(li[0])), row)
    rows = [kept[cell] for cell in sorted(kept)]
    rows.append((n, float(n), 0.0, 0, 1.0, 1.0))
    return np.array(rows, dtype=np.float64)


def write_catalogue(rows: np.ndarray, path: Path) -> None:
    """Write rows atomically as CSV with full float precision (``repr``), so graphs rebuild exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix='.tmp')
    try:
        with os.fdopen(fd, 'w', newline='') as f:
            w = csv.writer(f, lineterminator='\n')
            w.writerow(['n', 'k', 'p', 'seed', 'C', 'L'])
            for n, k, p, s, C, L in rows:
                w.writerow([int(n), repr(float(k)), repr(float(p)), int(s), repr(float(C)), repr(float(L))])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _table.cache_clear()
