"""Relational layers: Linear and Conv2d whose weight blocks follow a relational graph.

Each layer keeps the node graph it was built on as a persistent ``graph`` buffer (``[n, n]`` 0/1, self-loops
on), so a state_dict always carries its graph, and a state_dict from another graph is refused on load. The
channel mask derived from it is a non-persistent ``mask`` buffer, broadcastable to ``weight``.

How a masked layer is executed is a property of the layer (``execution``), not of the model code. Today
there is one strategy, ``'dense'``: multiply the weight by the mask and call the dense kernel (which saves no
compute, as in the paper). A faster block-sparse kernel can be added as another strategy.
"""

import math
from typing import Union

import networkx as nx
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .masks import fit_graph, node_adjacency, node_of_channel

__all__ = ['RelationalLinear', 'RelationalConv2d', 'is_relational', 'fold_masks', 'EXECUTION_STRATEGIES',
           'GraphMismatchError']

EXECUTION_STRATEGIES = ('dense',)


class GraphMismatchError(RuntimeError):
    """A state_dict's relational graph differs from the graph of the model it is loaded into."""


def _graph_tensor(G: nx.Graph, max_nodes: int, device='cpu') -> torch.Tensor:
    A = node_adjacency(fit_graph(G, max_nodes))
    return torch.tensor(A.astype(np.uint8), device=device)


def _expand_mask(graph: torch.Tensor, out_channels: int, in_channels: int) -> torch.Tensor:
    n = graph.shape[0]
    rows = torch.tensor(node_of_channel(out_channels, n), device=graph.device)
    cols = torch.tensor(node_of_channel(in_channels, n), device=graph.device)
    return graph.to(torch.float32)[rows][:, cols]


class _RelationalMixin:
    """Shared graph bookkeeping of the relational layers (the ``graph`` buffer and its checks on load)."""

    graph: torch.Tensor
    mask: torch.Tensor
    __jit_unused_properties__ = ['num_nodes', 'density']

    def _init_graph(self, graph: Union[nx.Graph, torch.Tensor], execution: str, device=None) -> None:
        if execution not in EXECUTION_STRATEGIES:
            raise ValueError(f'unknown execution strategy {execution!r}; choose one of {EXECUTION_STRATEGIES}')
        self.execution = execution
        max_nodes = min(self.in_channels_, self.out_channels_)
        if isinstance(graph, torch.Tensor):
            adjacency = graph.detach().to('cpu', torch.uint8).clone()
            if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or adjacency.shape[0] > max_nodes:
                raise ValueError(f'graph tensor must be [n, n] with n <= {max_nodes}, got {tuple(adjacency.shape)}')
        else:
            adjacency = _graph_tensor(graph, max_nodes)
        # The truth about the graph, kept on the CPU: buffers can lose their data (``to_empty``), this cannot.
        self._adjacency = adjacency
        if device is None:
            device = torch.empty(0).device  # the default device, honouring a ``with torch.device(...)`` block
        self.register_buffer('graph', adjacency.to(device), persistent=True)
        self.register_buffer('mask', self._build_mask(), persistent=False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        graph = self._buffers.get('graph')
        if graph is not None and not graph.is_meta and not torch.equal(graph.to('cpu'), self._adjacency):
            # the buffers were re-allocated without their data (e.g. ``to_empty`` after a meta-device build)
            mask_dtype = self.mask.dtype if not self.mask.is_meta else torch.float32
            self._buffers['graph'] = self._adjacency.to(graph.device)
            self._buffers['mask'] = self._build_mask().to(mask_dtype)
        return self

    def _build_mask(self) -> torch.Tensor:
        mask = _expand_mask(self.graph, self.out_channels_, self.in_channels_)
        return mask.reshape(mask.shape + (1,) * (self.weight.ndim - 2))

    @property
    def num_nodes(self) -> int:
        return int(self.graph.shape[0])

    @property
    def density(self) -> float:
        """Fraction of weights the graph keeps (the paper's flops_scale)."""
        return float(self.mask.sum()) / (self.in_channels_ * self.out_channels_)

    def kept_connections(self) -> int:
        """Number of (out, in) channel pairs that the mask keeps."""
        return int(self.mask.sum())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + 'graph'
        incoming = state_dict.get(key)
        if incoming is not None and not incoming.is_meta:
            mine = self._adjacency
            theirs = incoming.detach().to('cpu')
            if mine.shape != theirs.shape or not torch.equal(mine.to(torch.uint8), theirs.to(torch.uint8)):
                raise GraphMismatchError(
                    f"relational graph mismatch at '{key}': the weights were trained on a different graph "
                    f'({theirs.shape[0]} nodes, {int(theirs.sum())} adjacency entries) than this model '
                    f'({mine.shape[0]} nodes, {int(mine.sum())}); build the model with the graph the weights '
                    f'were trained on')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if self.mask.is_meta and not self.graph.is_meta:
            self.mask = self._build_mask()


class RelationalLinear(_RelationalMixin, nn.Linear):
    """``nn.Linear`` whose weight keeps block (i, j) only where nodes i and j are equal or adjacent.

    Initialised as the paper's MLP: ``N(0, 0.01)`` weights and a zero bias.
    """

    def __init__(self, in_features: int, out_features: int, graph: Union[nx.Graph, torch.Tensor],
                 bias: bool = False, execution: str = 'dense', device=None, dtype=None):
        self.in_channels_, self.out_channels_ = in_features, out_features
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_graph(graph, execution, device)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, nodes={self.graph.shape[0]}'


class RelationalConv2d(_RelationalMixin, nn.Conv2d):
    """``nn.Conv2d`` (groups=1) whose ``[out, in]`` channel blocks follow a relational graph, broadcast over
    the kernel window. Initialised as the paper: ``N(0, sqrt(2 / (kh * kw * out * density)))``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, graph: Union[nx.Graph, torch.Tensor],
                 stride=1, padding=0, dilation=1, bias: bool = False, execution: str = 'dense',
                 device=None, dtype=None):
        self.in_channels_, self.out_channels_ = in_channels, out_channels
        self._graph_ready = False
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=1, bias=bias, device=device, dtype=dtype)
        self._init_graph(graph, execution, device)
        self._graph_ready = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not getattr(self, '_graph_ready', False):
            return  # nn.Conv2d calls this before the graph exists; initialised once the mask is known
        kh, kw = self.kernel_size
        if self.mask.is_meta:
            density = 1.0
        else:
            density = max(self.density, 1e-12)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / (kh * kw * self.out_channels * density)))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, nodes={self.graph.shape[0]}'


def is_relational(module: nn.Module) -> bool:
    return isinstance(module, (RelationalLinear, RelationalConv2d))


@torch.no_grad()
def fold_masks(model: nn.Module) -> nn.Module:
    """Replace every relational layer by a plain ``nn.Linear`` / ``nn.Conv2d`` holding ``weight * mask``.

    The outputs stay the same, the graph buffers go away: a deployment form without the per-step masking
    (and the 'same-width unmasked' reference of the benchmarks). Works in place and returns ``model``.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, RelationalLinear):
            plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None,
                              device=child.weight.device, dtype=child.weight.dtype)
        elif isinstance(child, RelationalConv2d):
            plain = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                              padding=child.padding, dilation=child.dilation, bias=child.bias is not None,
                              device=child.weight.device, dtype=child.weight.dtype)
        else:
            fold_masks(child)
            continue
        plain.weight.copy_(child.weight * child.mask)
        if child.bias is not None:
            plain.bias.copy_(child.bias)
        plain.train(child.training)
        setattr(model, name, plain)
    return model
