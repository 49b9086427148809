"""Relational layers: Linear and Conv2d whose weight blocks follow a relational graph.

Each layer keeps the node graph it was built on as a persistent ``graph`` buffer (``[n, n]`` 0/1, self-loops
on), so a state_dict always carries its graph, and a state_dict from another graph is refused on load. The
channel mask derived from it is a non-persistent ``mask`` buffer, broadcastable to ``weight``.

How a masked layer is executed is a property of the layer (``execution``), not of the model code. Today
there is one strategy, ``'dense'``: multiply the weight by the mask and call the dense kernel (which saves no
compute, as in the paper). A faster block-sparse kernel can be added as another strategy.
"""

import fnmatch
import math
from typing import Callable, Iterable, Union

import networkx as nx
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .masks import fit_graph, node_adjacency, node_channel_sizes, node_of_channel

__all__ = ['RelationalLinear', 'RelationalConv2d', 'is_relational', 'relationalize', 'fold_masks',
           'EXECUTION_STRATEGIES', 'GraphMismatchError']

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
        return self.kept_connections() / (self.in_channels_ * self.out_channels_)

    def kept_connections(self) -> int:
        """Number of (out, in) channel pairs that the mask keeps (from the CPU graph: works on any device)."""
        n = self._adjacency.shape[0]
        A = self._adjacency.numpy().astype(np.int64)
        return int(node_channel_sizes(self.out_channels_, n) @ A @ node_channel_sizes(self.in_channels_, n))

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
                 padding_mode: str = 'zeros', device=None, dtype=None):
        self.in_channels_, self.out_channels_ = in_channels, out_channels
        self._graph_ready = False
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=1, bias=bias, padding_mode=padding_mode, device=device,
                         dtype=dtype)
        self._init_graph(graph, execution, device)
        self._graph_ready = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if not getattr(self, '_graph_ready', False):
            return  # nn.Conv2d calls this before the graph exists; initialised once the mask is known
        kh, kw = self.kernel_size
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


LayerSelector = Union[str, Iterable[str], Callable[[str, nn.Module], bool]]


def _selector(layers: LayerSelector) -> Callable[[str, nn.Module], bool]:
    if callable(layers):
        return layers
    patterns = [layers] if isinstance(layers, str) else list(layers)
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise ValueError(f'layers must be module names / fnmatch patterns or a predicate, got {layers!r}')
    return lambda name, module: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _is_complete(graph: Union[nx.Graph, torch.Tensor]) -> bool:
    if isinstance(graph, torch.Tensor):
        return bool(graph.bool().all())
    n = graph.number_of_nodes()
    return graph.number_of_edges() - nx.number_of_selfloops(graph) == n * (n - 1) // 2


@torch.no_grad()
def relationalize(model: nn.Module, graph: Union[nx.Graph, torch.Tensor], layers: LayerSelector,
                  init: str = 'keep', execution: str = 'dense') -> nn.Module:
    """Turn chosen ``nn.Linear`` / ``nn.Conv2d`` layers of any model into relational layers on ``graph``.

    The inverse of :func:`fold_masks`. ``layers`` selects modules by qualified name: a name, an fnmatch
    pattern (``'layer*.*.conv?'``), a list of them, or a predicate ``(name, module) -> bool``. Only plain
    ``nn.Linear`` and ``nn.Conv2d`` with ``groups=1`` can be converted (subclasses with their own forward, such
    as timm's ``Conv2dSame``, are refused). ``init='keep'`` keeps each layer's weights on the kept blocks (a
    pretrained model masked by the graph); ``init='paper'`` draws the paper's initialisation instead.
    The complete graph keeps every weight, so on it the layers stay the plain modules. Works in place and
    returns ``model``; a selector that matches no layer is an error.
    """
    if init not in ('keep', 'paper'):
        raise ValueError(f"init must be 'keep' or 'paper', got {init!r}")
    selected = _selector(layers)
    chosen = [(name, m) for name, m in model.named_modules() if name and selected(name, m)]
    if not chosen:
        raise ValueError(f'no module of {type(model).__name__} matches layers={layers!r}')
    for name, m in chosen:
        if type(m) not in (nn.Linear, nn.Conv2d) or getattr(m, 'groups', 1) != 1:
            kind = type(m).__name__ + (f' with groups={m.groups}' if isinstance(m, nn.Conv2d) else '')
            raise ValueError(f"'{name}' is a {kind}; only nn.Linear and nn.Conv2d with groups=1 can be relational")
    if _is_complete(graph):
        return model
    for name, old in chosen:
        parent_name, _, attr = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        dd = dict(device=old.weight.device, dtype=old.weight.dtype)
        if isinstance(old, nn.Linear):
            new = RelationalLinear(old.in_features, old.out_features, graph, bias=old.bias is not None,
                                   execution=execution, **dd)
        else:
            new = RelationalConv2d(old.in_channels, old.out_channels, old.kernel_size, graph, stride=old.stride,
                                   padding=old.padding, dilation=old.dilation, bias=old.bias is not None,
                                   execution=execution, padding_mode=old.padding_mode, **dd)
        if init == 'keep' and not old.weight.is_meta:
            new.weight.copy_(old.weight * new.mask)
            if old.bias is not None:
                new.bias.copy_(old.bias)
        new.train(old.training)
        setattr(parent, attr, new)
    return model
