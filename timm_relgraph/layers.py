"""Relational layers: Linear and Conv2d that hold, train and ship only the weights their graph keeps.

A layer's channels are split over the graph's nodes (see ``masks``); output channel o reads input channel i
only where their nodes are equal or adjacent. The layer's ``weight`` parameter holds exactly those kept
weights, packed in row-major (out, in) order: ``[kept pairs]`` for Linear, ``[kept pairs, kh * kw]`` for
Conv2d. So ``sum(p.numel())``, checkpoints and optimizer state are the paper's parameter count. The graph
itself is a persistent ``graph`` buffer (``[n, n]`` uint8, self-loops on): a state dict always carries its
graph, one from another graph is refused on load, and one in the earlier dense-masked format (a full
``weight`` plus ``graph``) is packed on load.

How a layer runs is its ``execution`` strategy:

* ``'dense'``: scatter the kept weights into the layer's dense buffer and call the dense kernel. Gradients
  reach only the kept weights, so training equals masking a dense weight (same outputs, same gradients,
  same optimizer steps), without the per-step mask multiply. The buffer is rewritten only when the packed
  weight changed (in place or replaced) and dropped when the module moves, so inference in eval mode
  without autograd does not rebuild it on every call.
* ``'sparse'``: as ``'dense'`` in training; at inference, Linear and 1x1 convs multiply by a cached CSR
  copy of the weight (torch.sparse; float32/float64, outside autocast).
* ``'auto'`` (default): what ``benchmarks/benchmark.py`` measured faster on CPU: CSR for Linear inference
  on the CPU (mlp5: about 0.6x the dense kernel's time at the paper's densities), dense everywhere else
  (CSR 1x1 convs took 1.5-2.3x the dense kernel's time).
"""

import fnmatch
import math
import warnings
from typing import Callable, Iterable, Optional, Tuple, Union

import networkx as nx
import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from .masks import fit_graph, node_adjacency, node_channel_sizes, node_of_channel

__all__ = ['RelationalLinear', 'RelationalConv2d', 'is_relational', 'relationalize', 'fold_masks',
           'EXECUTION_STRATEGIES', 'GraphMismatchError']

EXECUTION_STRATEGIES = ('auto', 'dense', 'sparse')


class GraphMismatchError(RuntimeError):
    """A state_dict's relational graph differs from the graph of the model it is loaded into."""


def _graph_tensor(G: nx.Graph, max_nodes: int) -> torch.Tensor:
    return torch.tensor(node_adjacency(fit_graph(G, max_nodes)).astype(np.uint8), device='cpu')


def _kept_pairs(adjacency: torch.Tensor, out_channels: int, in_channels: int) -> torch.Tensor:
    """Row-major flat indices ``o * in + i`` of the kept (out, in) channel pairs, on the CPU."""
    n = adjacency.shape[0]
    rows = torch.from_numpy(node_of_channel(out_channels, n))
    cols = torch.from_numpy(node_of_channel(in_channels, n))
    keep = adjacency.to('cpu').bool()[rows][:, cols]
    return keep.flatten().nonzero().squeeze(1)


def default_device() -> torch.device:
    """The device tensors are made on when none is given, honouring a ``with torch.device(...)`` block."""
    return torch.empty(0).device


@torch.jit.unused
def _is_graph_capture() -> bool:
    """Whether a graph is being captured (jit.trace, fx, dynamo / torch.export): expand, do not cache."""
    if torch.jit.is_tracing():
        return True
    trace = torch.fx._symbolic_trace
    fx_tracing = getattr(trace, 'is_fx_symbolic_tracing', None) or getattr(trace, 'is_fx_tracing', None)
    if fx_tracing is not None and fx_tracing():
        return True
    compiler = getattr(torch, 'compiler', None)
    return bool(compiler is not None and hasattr(compiler, 'is_compiling') and compiler.is_compiling())


class _ScatterKept(torch.autograd.Function):
    """Kept weights -> the layer's dense buffer; backward gathers the kept entries of the dense gradient.

    The packed weight is saved for backward, so changing it in place between a forward and its backward is
    reported by autograd exactly as for an ordinary weight; the buffer is only rewritten when the packed
    weight changed, so several forwards on the same weights may share it.
    """

    @staticmethod
    def forward(ctx, weight, layer):
        ctx.save_for_backward(weight, layer.kept)
        ctx.rows_shape, ctx.flat = layer.rows_shape_, layer._window() == 1
        return layer._cached_dense().view(layer.dense_shape_)  # a view: the buffer itself never joins a graph

    @staticmethod
    def backward(ctx, grad):
        weight, kept = ctx.saved_tensors
        if ctx.flat:  # as in _cached_dense: one weight per pair goes through flat views
            return grad.reshape(-1).index_select(0, kept).view(weight.shape), None
        return grad.reshape(ctx.rows_shape).index_select(0, kept), None


class _RelationalMixin:
    """Graph bookkeeping, packing and execution shared by the relational layers."""

    graph: torch.Tensor
    kept: torch.Tensor
    __jit_unused_properties__ = ['num_nodes', 'density', 'mask']
    __jit_ignored_attributes__ = ['_adjacency', '_kept_cpu', '_dense_cache', '_csr_cache']

    def _init_graph(self, graph: Union[nx.Graph, torch.Tensor], execution: str, device, dtype) -> None:
        if execution not in EXECUTION_STRATEGIES:
            raise ValueError(f'unknown execution strategy {execution!r}; choose one of {EXECUTION_STRATEGIES}')
        self.execution = execution
        max_nodes = min(self.in_channels_, self.out_channels_)
        if isinstance(graph, torch.Tensor):
            adjacency = graph.detach().to('cpu', torch.uint8).clone()  # the CPU copy, whatever the device
            if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1] or adjacency.shape[0] > max_nodes:
                raise ValueError(f'graph tensor must be [n, n] with n <= {max_nodes}, got {tuple(adjacency.shape)}')
        else:
            adjacency = _graph_tensor(graph, max_nodes)
        # The truth about the graph, kept on the CPU: buffers can lose their data (``to_empty``), this cannot.
        self._adjacency = adjacency
        self.dense_shape_ = list(self._dense_shape())
        self.rows_shape_ = [self.out_channels_ * self.in_channels_] + list(self._packed_shape_for(1)[1:])
        self._kept_cpu = _kept_pairs(adjacency, self.out_channels_, self.in_channels_)
        self._dense_cache: Optional[Tuple[tuple, torch.Tensor]] = None
        self._csr_cache: Optional[Tuple[tuple, torch.Tensor]] = None
        if device is None:
            device = default_device()
        self.register_buffer('graph', adjacency.to(device), persistent=True)
        self.register_buffer('kept', self._kept_cpu.to(device), persistent=False)
        # Replace the dense weight nn.Linear / nn.Conv2d made by the packed one.
        self.weight = nn.Parameter(torch.empty(self._packed_shape(), device=device, dtype=dtype))

    def _packed_shape(self) -> Tuple[int, ...]:
        return self._packed_shape_for(self._kept_cpu.numel())

    def _packed_shape_for(self, pairs: int) -> Tuple[int, ...]:
        return (pairs, self._window()) if self._is_conv else (pairs,)

    _is_conv = False

    def _window(self) -> int:
        return 1

    def _dense_shape(self) -> Tuple[int, ...]:
        return (self.out_channels_, self.in_channels_)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._dense_cache = self._csr_cache = None
        # buffers re-allocated without their data (``to_empty`` after a meta-device build) get it back
        for name, truth in (('graph', self._adjacency), ('kept', self._kept_cpu)):
            buf = self._buffers.get(name)
            if buf is not None and not buf.is_meta and not torch.equal(buf.to('cpu'), truth):
                self._buffers[name] = truth.to(buf.device)
        return self

    @property
    def num_nodes(self) -> int:
        return int(self._adjacency.shape[0])

    def kept_connections(self) -> int:
        """Number of (out, in) channel pairs the graph keeps."""
        return int(self._kept_cpu.numel())

    @property
    def density(self) -> float:
        """Fraction of (out, in) pairs the graph keeps (the paper's flops_scale)."""
        return self.kept_connections() / (self.in_channels_ * self.out_channels_)

    @property
    def mask(self) -> torch.Tensor:
        """The 0/1 float mask of the kept pairs, shaped to broadcast against :meth:`dense_weight`."""
        flat = torch.zeros(self.out_channels_ * self.in_channels_, device=self.kept.device)
        flat[self.kept] = 1.0
        return flat.view(self._dense_shape()[:2] + (1,) * (len(self._dense_shape()) - 2))

    def dense_weight(self) -> torch.Tensor:
        """The full ``[out, in, ...]`` weight, zero where the graph has no edge (differentiable)."""
        w = self.weight
        rows = w.new_zeros(self.rows_shape_)
        return rows.index_copy_(0, self.kept, w).view(self.dense_shape_)  # in place: no copy of the zeros

    def _cache_key(self) -> tuple:
        w = self.weight
        return (w._version, w.data_ptr(), w.dtype, w.device)

    @torch.jit.unused
    def _cached_dense(self) -> torch.Tensor:
        """The dense weight in a buffer this layer keeps, rewritten only when the packed weight changed (in
        place, replaced, moved). Not differentiable: :meth:`_workspace_weight` wraps it for training."""
        key = self._cache_key()
        cached = self._dense_cache
        if cached is not None and cached[1].is_inference() and not torch.is_inference_mode_enabled():
            cached = None  # built under torch.inference_mode: autograd may not save it, so rebuild
        if cached is None or cached[0] != key:
            with torch.no_grad():
                if cached is None or cached[1].dtype != self.weight.dtype or cached[1].device != self.weight.device:
                    rows = self.weight.new_zeros(self.rows_shape_)
                else:
                    rows = cached[1]
                if self._window() == 1:  # one weight per pair: the flat scatter is far faster than index_copy_
                    rows.view(-1).scatter_(0, self.kept, self.weight.detach().view(-1))
                else:
                    rows.index_copy_(0, self.kept, self.weight.detach())
            self._dense_cache = cached = (key, rows)
        return cached[1]

    @torch.jit.unused
    def _workspace_weight(self) -> torch.Tensor:
        """The dense weight for a training step, scattered into the kept buffer (no fresh allocation and
        fill per step, which dominated the cost) with gradients flowing back to the kept weights."""
        return _ScatterKept.apply(self.weight, self)

    @torch.jit.unused
    def _cached_csr(self) -> torch.Tensor:
        key = self._cache_key()
        if self._csr_cache is None or self._csr_cache[0] != key:
            with torch.no_grad():
                dense = self._cached_dense().reshape(self.out_channels_, self.in_channels_)
                with warnings.catch_warnings():  # torch calls its sparse CSR support 'beta'
                    warnings.simplefilter('ignore', UserWarning)
                    self._csr_cache = (key, dense.to_sparse_csr())
        return self._csr_cache[1]

    @torch.jit.unused
    def _inference(self) -> bool:
        """Whether this call may use a cached weight: eval mode, no autograd through the weight, eager."""
        return not self.training and not (torch.is_grad_enabled() and self.weight.requires_grad)

    @torch.jit.unused
    def _sparse_supported(self, x: torch.Tensor) -> bool:
        """torch's CSR matmul: float32/float64 inputs of the weight's dtype, outside autocast."""
        return (x.dtype == self.weight.dtype and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled(x.device.type))

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
        weight = state_dict.get(prefix + 'weight')
        if weight is not None and tuple(weight.shape) == self._dense_shape() and self._dense_shape() != \
                self._packed_shape():
            # the earlier dense-masked format: keep the entries the graph keeps
            rows = weight.reshape((self.out_channels_ * self.in_channels_, -1))
            packed = rows[self._kept_cpu.to(weight.device)] if not weight.is_meta else rows[:self._kept_cpu.numel()]
            state_dict[prefix + 'weight'] = packed.reshape(self._packed_shape())
        self._dense_cache = self._csr_cache = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if self.kept.is_meta and not self.graph.is_meta:  # a meta-device build loaded with assign=True
            self.kept = self._kept_cpu.to(self.graph.device)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, nodes={self.num_nodes}, kept={self.kept_connections()}, ' \
               f'execution={self.execution}'


class RelationalLinear(_RelationalMixin, nn.Linear):
    """``nn.Linear`` keeping block (i, j) of its weight only where nodes i and j are equal or adjacent.

    Initialised as the paper's MLP: ``N(0, 0.01)`` weights and a zero bias.
    """

    def __init__(self, in_features: int, out_features: int, graph: Union[nx.Graph, torch.Tensor],
                 bias: bool = False, execution: str = 'auto', device=None, dtype=None):
        self.in_channels_, self.out_channels_ = in_features, out_features
        super().__init__(in_features, out_features, bias=bias, device='meta', dtype=dtype)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype))
        self._init_graph(graph, execution, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if '_kept_cpu' not in self.__dict__:
            return  # nn.Linear calls this before the graph exists
        nn.init.normal_(self.weight, std=0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or _is_graph_capture():
            return F.linear(x, self.dense_weight(), self.bias)
        if not self._inference():
            return F.linear(x, self._workspace_weight(), self.bias)
        if self.execution != 'dense' and x.dim() == 2 and self._sparse_supported(x) and (
                self.execution == 'sparse' or x.device.type == 'cpu'):
            y = torch.sparse.mm(self._cached_csr(), x.t()).t()
            return y + self.bias if self.bias is not None else y
        return F.linear(x, self._cached_dense().view(self.dense_shape_), self.bias)


class RelationalConv2d(_RelationalMixin, nn.Conv2d):
    """``nn.Conv2d`` (groups=1) whose ``[out, in]`` channel blocks follow a relational graph, broadcast over
    the kernel window. Initialised as the paper: ``N(0, sqrt(2 / (kh * kw * out * density)))``.
    """

    _is_conv = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, graph: Union[nx.Graph, torch.Tensor],
                 stride=1, padding=0, dilation=1, bias: bool = False, execution: str = 'auto',
                 padding_mode: str = 'zeros', device=None, dtype=None):
        self.in_channels_, self.out_channels_ = in_channels, out_channels
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=1, bias=bias, padding_mode=padding_mode, device='meta',
                         dtype=dtype)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, device=device, dtype=dtype))
        self._init_graph(graph, execution, device, dtype)
        self.reset_parameters()

    def _window(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def _dense_shape(self) -> Tuple[int, ...]:
        return (self.out_channels_, self.in_channels_) + tuple(self.kernel_size)

    def reset_parameters(self) -> None:
        if '_kept_cpu' not in self.__dict__:
            return  # nn.Conv2d calls this before the graph exists
        kh, kw = self.kernel_size
        density = max(self.density, 1e-12)
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / (kh * kw * self.out_channels * density)))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _pointwise_sparse(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride[0], ::self.stride[1]] if self.stride != (1, 1) else x
        b, c, h, w = x.shape
        y = torch.sparse.mm(self._cached_csr(), x.transpose(0, 1).reshape(c, b * h * w))
        y = y.reshape(self.out_channels, b, h, w).transpose(0, 1)
        return y + self.bias.view(1, -1, 1, 1) if self.bias is not None else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting() or _is_graph_capture():
            return self._conv_forward(x, self.dense_weight(), self.bias)
        if not self._inference():
            return self._conv_forward(x, self._workspace_weight(), self.bias)
        if (self.execution == 'sparse' and self.kernel_size == (1, 1) and self.padding == (0, 0)
                and self.padding_mode == 'zeros' and x.dim() == 4 and self._sparse_supported(x)):
            return self._pointwise_sparse(x)
        return self._conv_forward(x, self._cached_dense().view(self.dense_shape_), self.bias)


def is_relational(module: nn.Module) -> bool:
    return isinstance(module, (RelationalLinear, RelationalConv2d))


@torch.no_grad()
def fold_masks(model: nn.Module) -> nn.Module:
    """Replace every relational layer by a plain ``nn.Linear`` / ``nn.Conv2d`` holding its dense weight.

    The outputs stay the same, the graph buffers go away: a deployment form for tools that need plain
    layers (and the 'same-width dense' reference of the benchmarks). Works in place and returns ``model``.
    """
    for name, child in list(model.named_children()):
        dd = dict(device=child.weight.device, dtype=child.weight.dtype) if is_relational(child) else {}
        if isinstance(child, RelationalLinear):
            plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None, **dd)
        elif isinstance(child, RelationalConv2d):
            plain = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, stride=child.stride,
                              padding=child.padding, dilation=child.dilation, bias=child.bias is not None,
                              padding_mode=child.padding_mode, **dd)
        else:
            fold_masks(child)
            continue
        plain.weight.copy_(child.dense_weight())
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
                  init: str = 'keep', execution: str = 'auto') -> nn.Module:
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
            new.weight.copy_(old.weight.reshape(old.weight.shape[0] * old.weight.shape[1], -1)[new._kept_cpu.to(
                old.weight.device)].reshape(new.weight.shape))
            if old.bias is not None:
                new.bias.copy_(old.bias)
        new.train(old.training)
        setattr(parent, attr, new)
    return model
