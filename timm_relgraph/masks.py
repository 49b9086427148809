"""From a relational graph to a 0/1 weight mask over a layer's channels.

A layer's channels are split into ``n`` contiguous blocks, one per node (You et al., 2020, Sec. 2.2): every
node gets ``channels // n`` channels, ``channels % n`` nodes one more, and the vector of block sizes is
permuted with ``numpy.random.RandomState(1)``. Output channel ``o`` may read input channel ``i`` only when
their nodes are equal (self-loop) or adjacent.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import torch

from .graphs import _check_int, ws_flex

__all__ = ['node_channel_sizes', 'node_of_channel', 'fit_graph', 'node_adjacency', 'channel_mask', 'mask_density']

PARTITION_SEED = 1


def node_channel_sizes(channels: int, n: int) -> np.ndarray:
    """Channels per node, in node order: ``channels // n`` each, ``channels % n`` of them one more, permuted
    with ``RandomState(1)`` (e.g. 1522 channels over 64 nodes: 50 blocks of 24 and 14 of 23)."""
    channels = _check_int('channels', channels, minimum=1)
    n = _check_int('n', n, minimum=1)
    if n > channels:
        raise ValueError(f'cannot split {channels} channels over {n} nodes; use n <= {channels}')
    sizes = np.full(n, channels // n, dtype=np.int64)
    sizes[:channels % n] += 1
    return np.random.RandomState(PARTITION_SEED).permutation(sizes)


def node_of_channel(channels: int, n: int) -> np.ndarray:
    """Node id of every channel: contiguous blocks in node order."""
    return np.repeat(np.arange(n), node_channel_sizes(channels, n))


def _sorted_nodes(G: nx.Graph) -> list:
    """The graph's nodes in the order the channel blocks follow (sorted labels)."""
    if not isinstance(G, nx.Graph):
        raise ValueError(f'a relational graph must be a networkx graph, got {type(G).__name__}')
    try:
        return sorted(G.nodes())
    except TypeError:
        raise ValueError("the graph's node labels cannot be ordered (mixed types); relabel them, e.g. with "
                         'networkx.convert_node_labels_to_integers') from None


def fit_graph(G: nx.Graph, max_nodes: int) -> nx.Graph:
    """The graph to use on a layer with fewer channels than nodes: ``n`` is clipped to ``max_nodes``.

    A WS-flex graph is redrawn at the clipped size with the same ``k / n``, ``p`` and seed (as the paper's
    code does); any other graph keeps the subgraph on its first ``max_nodes`` nodes.
    """
    n = len(_sorted_nodes(G))
    if max_nodes >= n:
        return G
    if max_nodes < 2:
        H = nx.Graph()
        H.add_nodes_from(range(max_nodes))
        return H
    attrs = G.graph
    if attrs.get('generator') == 'ws_flex':
        k = min(max(attrs['k'] * max_nodes / n, 2.0), float(max_nodes))
        return ws_flex(max_nodes, k, attrs['p'], attrs['seed'])
    return nx.convert_node_labels_to_integers(G.subgraph(_sorted_nodes(G)[:max_nodes]))


def node_adjacency(G: nx.Graph) -> np.ndarray:
    """``[n, n]`` 0/1 matrix of the graph with self-loops on (nodes in sorted order): ``A[i, j] = 1`` when
    node ``i``'s outputs read node ``j``'s inputs. Symmetric for an undirected graph; for a directed one
    (``nx.DiGraph``, e.g. a connectome) ``A[i, j]`` is the edge ``i -> j``, as in graph2nn's masks."""
    nodes = _sorted_nodes(G)
    A = nx.to_numpy_array(G, nodelist=nodes, dtype=np.float32)
    A = ((A if G.is_directed() else A + A.T) > 0).astype(np.float32)
    np.fill_diagonal(A, 1.0)
    return A


def channel_mask(G: nx.Graph, in_channels: int, out_channels: int) -> torch.Tensor:
    """0/1 float mask ``[out_channels, in_channels]`` of a relational layer on graph ``G``.

    ``mask[o, i] = 1`` when the nodes of output channel ``o`` and input channel ``i`` are equal or adjacent.
    With fewer channels than nodes, ``n`` is clipped to the channel count (see :func:`fit_graph`).
    """
    in_channels = _check_int('in_channels', in_channels, minimum=1)
    out_channels = _check_int('out_channels', out_channels, minimum=1)
    G = fit_graph(G, min(in_channels, out_channels))
    n = G.number_of_nodes()
    A = node_adjacency(G)
    rows = node_of_channel(out_channels, n)
    cols = node_of_channel(in_channels, n)
    return torch.from_numpy(np.ascontiguousarray(A[rows][:, cols]))


def mask_density(G: nx.Graph, in_channels: int, out_channels: int) -> float:
    """Fraction of kept weights, computed from block sizes without building the mask."""
    G = fit_graph(G, min(in_channels, out_channels))
    n = G.number_of_nodes()
    A = node_adjacency(G).astype(np.float64)
    s_out = node_channel_sizes(out_channels, n).astype(np.float64)
    s_in = node_channel_sizes(in_channels, n).astype(np.float64)
    return float(s_out @ A @ s_in) / (in_channels * out_channels)
