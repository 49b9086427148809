"""Analytic multiply-add (MAC) counting and the paper's FLOPs matching.

Counting follows the paper's convention (pycls): conv and linear multiply-adds only; a relational layer
counts only the weights its mask keeps; BN, activations, pooling and linear biases count nothing; a conv
bias counts one add per output element (only EfficientNet's squeeze-excite convs have one).

Each block class computes its own complexity (pycls style) and each family composes its blocks', with no
model built, so widths can be searched quickly; :func:`count_macs` measures a built model with forward hooks
and must agree with the analytic count (tested for every family).
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import networkx as nx
import numpy as np
import torch
import torch.nn as nn

from .masks import fit_graph, node_adjacency, node_channel_sizes

__all__ = ['kept_pairs', 'conv_macs', 'linear_macs', 'conv_out', 'count_macs', 'count_params', 'match_widths',
           'GraphCounter']


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class GraphCounter:
    """Counts kept (out, in) channel pairs of relational layers on one graph, with caching."""

    def __init__(self, graph: Optional[nx.Graph]):
        self.graph = graph
        self._adjacency = {}
        self._cache = {}

    def pairs(self, cin: int, cout: int) -> int:
        if self.graph is None:
            return cin * cout
        key = (cin, cout)
        if key not in self._cache:
            n_fit = min(self.graph.number_of_nodes(), cin, cout)
            if n_fit not in self._adjacency:
                self._adjacency[n_fit] = node_adjacency(fit_graph(self.graph, n_fit)).astype(np.int64)
            A = self._adjacency[n_fit]
            self._cache[key] = int(node_channel_sizes(cout, n_fit) @ A @ node_channel_sizes(cin, n_fit))
        return self._cache[key]


def kept_pairs(graph: Optional[nx.Graph], cin: int, cout: int) -> int:
    """Number of (out, in) channel pairs a relational layer keeps (``cin * cout`` for a dense layer)."""
    return GraphCounter(graph).pairs(cin, cout)


def conv_macs(cin: int, cout: int, kernel: int, h_out: int, w_out: int, groups: int = 1,
              counter: Optional[GraphCounter] = None, bias: bool = False) -> int:
    """MACs of a conv; with ``counter``, a relational conv (groups must be 1)."""
    if counter is not None and counter.graph is not None:
        pairs = counter.pairs(cin, cout)
    else:
        pairs = cin * cout // groups
    return pairs * kernel * kernel * h_out * w_out + (cout * h_out * w_out if bias else 0)


def linear_macs(cin: int, cout: int, counter: Optional[GraphCounter] = None) -> int:
    if counter is not None and counter.graph is not None:
        return counter.pairs(cin, cout)
    return cin * cout


def count_macs(model: nn.Module, input_size: Sequence[int]) -> int:
    """Measured MACs of one forward pass on a ``(C, H, W)`` input, by hooks on every conv and linear."""
    from .layers import is_relational

    total = [0]

    def conv_hook(m: nn.Conv2d, inputs, output):
        kh, kw = m.kernel_size
        h, w = output.shape[-2:]
        pairs = m.kept_connections() if is_relational(m) else m.in_channels * m.out_channels // m.groups
        total[0] += pairs * kh * kw * h * w
        if m.bias is not None:
            total[0] += m.out_channels * h * w

    def linear_hook(m: nn.Linear, inputs, output):
        pairs = m.kept_connections() if is_relational(m) else m.in_features * m.out_features
        total[0] += pairs * (output.numel() // output.shape[-1] // output.shape[0])

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0]


def count_params(model: nn.Module) -> int:
    """Parameter count. Relational layers hold only the weights their graph keeps, so this is the paper's count."""
    return sum(p.numel() for p in model.parameters())


def _rescale(widths: Sequence[int], first: int) -> List[int]:
    ratios = [w / widths[0] for w in widths]
    return [int(round(first * r)) for r in ratios]


def match_widths(macs_of: Callable[[List[int]], int], base_widths: Sequence[int], target: int,
                 coarse_rounds: int = 9) -> Tuple[List[int], int]:
    """Widen stage widths until the MACs first reach ``target``, keeping the stage width ratios.

    The paper's procedure (graph2nn, FLOPs auto-match): (1) ``coarse_rounds`` times, rescale every stage by
    ``sqrt(target / macs)`` rounded to 0.01; (2) step the first stage width by one (the others follow its
    ratio) until the MACs cross the target, ending on the smallest widths at or above it; (3) for each later
    stage, take away up to ``round(width / first width)`` channels while the MACs stay at or above the
    target. Returns ``(widths, macs)``.
    """
    widths = [int(w) for w in base_widths]
    macs = macs_of(widths)
    if macs == target:
        return widths, macs
    for _ in range(coarse_rounds):
        widths = _rescale(widths, int(round(widths[0] * round(math.sqrt(target / macs), 2))))
        macs = macs_of(widths)
    growing = macs < target
    while True:
        candidate = _rescale(widths, widths[0] + (1 if growing else -1))
        candidate_macs = macs_of(candidate)
        if candidate_macs == target:
            widths, macs = candidate, candidate_macs
            break
        if growing and candidate_macs > target:
            widths, macs = candidate, candidate_macs
            break
        if not growing and candidate_macs < target:
            # One step too far down: the previous step's widths (recomputed from the new ratios).
            widths = _rescale(candidate, candidate[0] + 1)
            macs = macs_of(widths)
            break
        widths, macs = candidate, candidate_macs
    budgets = [int(round(w / widths[0])) for w in widths]
    direction = 1 if macs < target else -1
    for i in range(1, len(widths)):
        for _ in range(budgets[i]):
            widths[i] += direction
            macs = macs_of(widths)
            if (macs < target) != (direction > 0):
                widths[i] -= direction
                break
    return widths, macs_of(widths)
