"""Relational graphs: the WS-flex generator, graph statistics, graph specs and connectomes.

Reference:
    You, Leskovec, He, Xie. "Graph Structure of Neural Networks". ICML 2020.
    https://arxiv.org/abs/2007.06559

A relational graph over ``n`` nodes says which groups of channels exchange messages in a layer.
The paper samples graphs with WS-flex, a Watts-Strogatz variant whose average degree ``k`` may be any
real number in ``[2, n]``, and describes each graph by its clustering coefficient ``C`` and its
average shortest path length ``L``.

Everything here is a pure function of its arguments: every random draw comes from a
``random.Random(seed)`` made for the call, never from a global generator.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import networkx as nx
import numpy as np

__all__ = [
    'ws_flex', 'graph_stats', 'fast_graph_stats', 'complete_graph', 'GraphSpec',
    'graph_from_adjacency', 'load_adjacency_file', 'connectome', 'CONNECTOMES',
    'edge_list', 'edge_hash', 'ring_counts', 'MAX_NODES',
]

MAX_CONNECT_TRIES = 100
# Largest graph built: far above the paper's (16, 64 and the 71-node connectome), small enough that building,
# measuring and masking stay fast. A spec over it is refused before any work is done.
MAX_NODES = 256

# The biological networks the paper compares against (adjacency files published with graph2nn).
CONNECTOMES = {
    'mcwhole': 'mcwhole.txt',    # macaque whole cortex, 71 nodes
    'mcvisual': 'mcvisual.txt',  # macaque visual cortex, 30 nodes
    'cat': 'cat.txt',            # cat cortex, 52 nodes
}
CONNECTOME_NODES = {'mcwhole': 71, 'mcvisual': 30, 'cat': 52}
CONNECTOME_DIR_ENV = 'RELGRAPH_CONNECTOME_DIR'


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + '...'


def _check_int(name: str, value, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            hint = f' (did you mean {int(value)}?)'
        else:
            hint = ''
        raise ValueError(f'{name} must be an integer, got {_shown(value)}{hint}')
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {_shown(value)}')
    if maximum is not None and value > maximum:
        raise ValueError(f'{name} must be <= {maximum}, got {_shown(value)} (nearest valid: {maximum})')
    return value


def _check_real(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{name} must be a real number, got {_shown(value)}')
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f'{name} must lie in [{low:g}, {high:g}], got {_shown(value)} (too large)') from None
    if math.isnan(value):
        raise ValueError(f'{name} must be a number, got NaN')
    if not low <= value <= high:
        nearest = min(max(value, low), high)
        raise ValueError(f'{name} must lie in [{low:g}, {high:g}], got {value:g} (nearest valid: {nearest:g})')
    return value


def ring_counts(num_edges: int, n: int) -> np.ndarray:
    """Forward-neighbour count of each node: ``num_edges // n`` each, the first ``num_edges % n`` one more."""
    counts = np.full(n, num_edges // n, dtype=np.int64)
    counts[:num_edges % n] += 1
    return counts


def _ws_flex_edges(n: int, k: float, p: float, rng: random.Random) -> list:
    """One WS-flex draw as adjacency sets (node ids 0..n-1), consuming ``rng`` as the paper's code does."""
    counts = ring_counts(int(round(k * n / 2)), n)
    forward = [[(i + d) % n for d in range(1, int(counts[i]) + 1)] for i in range(n)]
    adj = [set() for _ in range(n)]
    for i in range(n):
        for v in forward[i]:
            if v != i:
                adj[i].add(v)
                adj[v].add(i)
    nodes = list(range(n))
    for u in range(n):
        for v in forward[u]:
            if rng.random() < p:
                w = rng.choice(nodes)
                rewire = True
                # A fresh endpoint: no self-loop, no duplicate edge. The degree test runs only after a
                # rejected draw, exactly as in the reference generator, so that the random stream matches.
                while w == u or w in adj[u]:
                    w = rng.choice(nodes)
                    if len(adj[u]) >= n - 1:
                        rewire = False
                        break
                if rewire:
                    if v not in adj[u]:
                        raise ValueError(
                            f'WS-flex cannot rewire this graph (n={n}, k={k:g}, p={p:g}): edge ({u}, {v}) was '
                            f'already rewired; use k <= n - 2 when p > 0')
                    adj[u].discard(v)
                    adj[v].discard(u)
                    adj[u].add(w)
                    adj[w].add(u)
    return adj


def _adjacency_to_graph(adj: Sequence[set], **attrs) -> nx.Graph:
    G = nx.Graph(**attrs)
    G.add_nodes_from(range(len(adj)))
    G.add_edges_from((u, v) for u, nbrs in enumerate(adj) for v in sorted(nbrs) if u < v)
    return G


def _is_connected(adj: Sequence[set]) -> bool:
    seen = {0}
    frontier = [0]
    while frontier:
        nxt = []
        for u in frontier:
            for v in adj[u]:
                if v not in seen:
                    seen.add(v)
                    nxt.append(v)
        frontier = nxt
    return len(seen) == len(adj)


def ws_flex(n: int, k: float, p: float, seed: int) -> nx.Graph:
    """Connected WS-flex graph with ``n`` nodes, average degree about ``k`` and rewiring probability ``p``.

    The generator of You et al. (2020), Sec. 3.2, a Watts-Strogatz variant with real-valued ``k``:

    1. ``e = round(k * n / 2)`` edges; every node gets ``e // n`` forward neighbours on a ring, the
       first ``e % n`` nodes (ids 0, 1, ...) one more.
    2. Rewire node by node: for each original forward edge ``(i, v)``, with probability ``p`` move its
       far end to a uniformly drawn node that is neither ``i`` nor already a neighbour of ``i``.
    3. Repeat the draw with the same random stream until the graph is connected (at most 100 tries).

    The random stream is ``random.Random(seed)``; the same arguments give the same graph in every process,
    and reproduce the graphs (and their C and L) published with the paper.

    Args:
        n: number of nodes, at least 2.
        k: average degree, a real number in ``[2, n]``.
        p: rewiring probability in ``[0, 1]``.
        seed: integer seed of the random stream.

    Returns:
        An undirected simple ``networkx.Graph`` on nodes ``0..n-1``. ``G.graph`` records the arguments.

    Raises:
        ValueError: on an invalid argument, or when no connected graph is drawn in 100 tries.
    """
    n = _check_int('n', n, minimum=2, maximum=MAX_NODES)
    k = _check_real('k', k, 2.0, float(n))
    p = _check_real('p', p, 0.0, 1.0)
    seed = _check_int('seed', seed)
    rng = random.Random(seed)
    for _ in range(MAX_CONNECT_TRIES):
        adj = _ws_flex_edges(n, k, p, rng)
        if _is_connected(adj):
            return _adjacency_to_graph(adj, generator='ws_flex', n=n, k=k, p=p, seed=seed)
    raise ValueError(f'WS-flex drew no connected graph in {MAX_CONNECT_TRIES} tries for n={n}, k={k:g}, p={p:g}, '
                     f'seed={seed}; raise k or lower p')


def complete_graph(n: int) -> nx.Graph:
    """The complete graph on ``n`` nodes: WS-flex with ``k = n, p = 0`` (the plain, dense network)."""
    return ws_flex(n, n, 0.0, 0)


def graph_stats(G: nx.Graph) -> Tuple[float, float]:
    """Clustering coefficient ``C`` and average path length ``L`` as the paper defines them.

    ``C`` is the mean of the local clustering coefficients, ``L`` the mean shortest-path length over
    all ordered node pairs, both on the undirected simple graph without self-loops.
    """
    if not isinstance(G, nx.Graph):
        raise ValueError(f'graph_stats needs a networkx graph, got {type(G).__name__}')
    if G.number_of_nodes() < 2:
        raise ValueError(f'graph_stats needs at least 2 nodes, got {G.number_of_nodes()}')
    H = nx.Graph(G)
    H.remove_edges_from(nx.selfloop_edges(H))
    if not nx.is_connected(H):
        raise ValueError('graph_stats needs a connected graph: L is undefined otherwise')
    clustering = sorted(nx.clustering(H).values())
    return sum(clustering) / len(clustering), nx.average_shortest_path_length(H)


def fast_graph_stats(adjacency: np.ndarray) -> Tuple[float, float]:
    """``graph_stats`` on a 0/1 symmetric adjacency matrix without self-loops, vectorised with numpy.

    Used to build the catalogue quickly. It returns the same floats as :func:`graph_stats` bit for bit (the
    authors' networkx computation): local coefficients ``2 t / (d (d - 1))`` from exact integer counts, summed
    left to right in sorted order, and an integer total of path lengths divided once.
    """
    A = np.asarray(adjacency, dtype=np.float64)
    n = A.shape[0]
    deg = A.sum(1)
    twice_triangles = ((A @ A) * A).sum(1)
    pairs = deg * (deg - 1)
    local = np.divide(twice_triangles, pairs, out=np.zeros(n), where=twice_triangles > 0)
    reached = np.eye(n, dtype=bool) | (A > 0)
    total = int(reached.sum()) - n  # pairs at distance 1
    frontier = reached
    dist = 1
    step = (A > 0).astype(np.float32)
    while not reached.all():
        dist += 1
        nxt = (frontier.astype(np.float32) @ step) > 0
        new = nxt & ~reached
        count = int(new.sum())
        if count == 0:
            raise ValueError('fast_graph_stats needs a connected graph')
        total += dist * count
        reached |= new
        frontier = reached
    return float(np.cumsum(np.sort(local))[-1] / n), int(total) / (n * (n - 1))


def graph_from_adjacency(matrix, name: str = 'custom') -> nx.Graph:
    """Undirected simple graph from a square 0/1 adjacency matrix (directed edges are symmetrised)."""
    A = np.asarray(matrix)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f'an adjacency matrix must be square, got shape {A.shape}')
    if A.shape[0] < 2:
        raise ValueError(f'a relational graph needs at least 2 nodes, got {A.shape[0]}')
    if not np.isin(A, (0, 1)).all():
        raise ValueError('an adjacency matrix must hold only 0 and 1')
    n = A.shape[0]
    G = nx.Graph(generator='adjacency', name=name, n=n)
    G.add_nodes_from(range(n))
    rows, cols = np.nonzero(A)
    G.add_edges_from((int(u), int(v)) for u, v in zip(rows, cols) if u != v)
    return G


def load_adjacency_file(path: Union[str, Path], name: Optional[str] = None, directed: bool = False) -> nx.Graph:
    """Graph from a text file of 0/1 rows, one row per node (the graph2nn connectome format).

    ``directed=False`` symmetrises it (an undirected ``nx.Graph``); ``directed=True`` keeps it as written, an
    ``nx.DiGraph`` with an edge ``i -> j`` for every 1 in row ``i``, column ``j`` (self-loops dropped).
    """
    path = Path(path)
    rows = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if any(set(row) - {'0', '1'} for row in rows):
        raise ValueError(f'{path}: every line must be a row of 0/1 characters')
    matrix = np.array([[int(ch) for ch in row] for row in rows])
    if not directed:
        return graph_from_adjacency(matrix, name=name or path.stem)
    if len(set(map(len, rows))) != 1 or len(rows[0]) != len(rows):
        raise ValueError(f'{path}: the adjacency matrix must be square, got {len(rows)} rows of lengths '
                         f'{sorted(set(map(len, rows)))}')
    np.fill_diagonal(matrix, 0)
    G = nx.DiGraph(name=name or path.stem)
    G.add_nodes_from(range(len(rows)))
    G.add_edges_from(zip(*np.nonzero(matrix)))
    return nx.relabel_nodes(G, {i: int(i) for i in G.nodes()})


def _connectome_dirs(root: Optional[Union[str, Path]]) -> list:
    if root is not None:
        return [Path(root)]
    dirs = []
    if os.environ.get(CONNECTOME_DIR_ENV):
        dirs.append(Path(os.environ[CONNECTOME_DIR_ENV]))
    here = Path(__file__).resolve().parent
    for base in (Path.cwd(), here.parent):
        dirs.append(base.parent / 'shared' / 'reference' / 'graph2nn')
    return dirs


def connectome(name: str, root: Optional[Union[str, Path]] = None, directed: bool = True) -> nx.Graph:
    """One of the paper's biological networks (``'mcwhole'``, ``'mcvisual'``, ``'cat'``).

    Directed by default, as the authors train them (graph2nn's ``mcwholeraw`` etc.): an ``nx.DiGraph`` whose
    edge ``i -> j`` lets node ``i``'s output channels read node ``j``'s inputs (mask block ``(i, j)``).
    ``directed=False`` gives the symmetrised graph. C and L (:func:`graph_stats`) are measured on the
    symmetrised graph either way, as the paper reports them.

    The adjacency files are published with the authors' code (graph2nn); they are looked for in ``root``
    when given, else in ``$RELGRAPH_CONNECTOME_DIR``, then in ``../shared/reference/graph2nn``.
    """
    if name not in CONNECTOMES:
        raise ValueError(f'unknown connectome {name!r}; choose one of {sorted(CONNECTOMES)}')
    tried = []
    for d in _connectome_dirs(root):
        path = d / CONNECTOMES[name]
        tried.append(str(path))
        if path.is_file():
            G = load_adjacency_file(path, name=name, directed=directed)
            G.graph.update(generator='connectome', name=name)
            return G
    raise FileNotFoundError(
        f'connectome {name!r} needs {CONNECTOMES[name]} (published with facebookresearch/graph2nn); '
        f'put it in a folder and pass root= or set ${CONNECTOME_DIR_ENV}. Looked in: {", ".join(tried)}')


def edge_list(G: nx.Graph) -> list:
    """Sorted ``[u, v]`` pairs, a canonical, JSON-friendly form of the graph: ``u < v`` for an undirected
    graph, the edge's own direction ``u -> v`` for a directed one."""
    if G.is_directed():
        return sorted([int(u), int(v)] for u, v in G.edges() if u != v)
    return sorted([min(u, v), max(u, v)] for u, v in G.edges() if u != v)


def edge_hash(G: nx.Graph) -> str:
    """sha256 of the canonical edge list (with the node count), to tie weights and configs to one graph."""
    text = f'n={G.number_of_nodes()};' + ('directed;' if G.is_directed() else '') + ';'.join(f'{u}-{v}' for u, v in edge_list(G))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class GraphSpec:
    """Everything needed to rebuild one relational graph, in JSON-friendly form.

    ``generator`` is ``'ws_flex'`` (uses ``n, k, p, seed``) or ``'connectome'`` (uses ``name``).
    """
    generator: str = 'ws_flex'
    n: int = 64
    k: float = 64.0
    p: float = 0.0
    seed: int = 0
    name: str = ''

    def __post_init__(self):
        if self.generator not in ('ws_flex', 'connectome'):
            raise ValueError(f"unknown graph generator {_shown(self.generator)}; choose 'ws_flex' or 'connectome'")
        if self.generator == 'ws_flex':
            n = _check_int('n', self.n, minimum=2, maximum=MAX_NODES)
            object.__setattr__(self, 'n', n)
            object.__setattr__(self, 'k', _check_real('k', self.k, 2.0, float(n)))
            object.__setattr__(self, 'p', _check_real('p', self.p, 0.0, 1.0))
            object.__setattr__(self, 'seed', _check_int('seed', self.seed))
        elif self.name not in CONNECTOMES:
            raise ValueError(f'unknown connectome {_shown(self.name)}; choose one of {sorted(CONNECTOMES)}')
        else:
            object.__setattr__(self, 'n', CONNECTOME_NODES[self.name])

    @classmethod
    def from_dict(cls, d: dict) -> 'GraphSpec':
        known = {'generator', 'n', 'k', 'p', 'seed', 'name'}
        unknown = set(d) - known - {'C', 'L', 'edges_sha256', 'num_edges'}
        if unknown:
            raise ValueError(f'unknown graph keys {sorted(unknown)}; expected some of {sorted(known)}')
        return cls(**{key: d[key] for key in known if key in d})

    @property
    def is_complete(self) -> bool:
        return self.generator == 'ws_flex' and self.k == self.n and self.p == 0.0

    def build(self) -> nx.Graph:
        if self.generator == 'connectome':
            return connectome(self.name)
        return ws_flex(self.n, self.k, self.p, self.seed)

    def to_dict(self) -> dict:
        if self.generator == 'connectome':
            return {'generator': 'connectome', 'name': self.name, 'n': self.n}
        d = asdict(self)
        d.pop('name')
        return d

    def describe(self, G: Optional[nx.Graph] = None) -> dict:
        """``to_dict`` plus the measured C and L, the edge count and the edge-list hash."""
        G = self.build() if G is None else G
        C, L = graph_stats(G)
        return {**self.to_dict(), 'n': G.number_of_nodes(), 'C': round(C, 6), 'L': round(L, 6),
                'num_edges': G.number_of_edges(), 'edges_sha256': edge_hash(G)}
