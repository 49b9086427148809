"""Relational-graph ResNets on timm's ``ResNet``: ResNet-18/34 (basic), ResNet-34-sep (separable), ResNet-50.

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1,
following the authors' code (facebookresearch/graph2nn, pycls/models/resnet.py).

The network is timm's ``ResNet`` (7x7 stem + max-pool, stages ``layer1``-``layer4``, projection shortcuts from
timm's ``make_blocks``, its head, feature and training API) built from the blocks below; the relational
layers are then put in with :func:`~timm_relgraph.layers.relationalize`. On the complete graph nothing is
converted, so ``relgraph_resnet34_c1.0_l1.0`` *is* timm's ``resnet34`` key for key (``resnet18``,
``resnet50`` likewise) and loads timm's ImageNet weights.

* ``resnet18`` / ``resnet34``: timm's ``BasicBlock``; both 3x3 convs and the 1x1 projection shortcut are
  relational.
* ``resnet34sep``: depthwise 3x3 (block stride) -> relational 1x1 -> BN -> ReLU -> depthwise 3x3 ->
  relational 1x1 -> BN, no BN or ReLU between a depthwise conv and its 1x1; relational projection shortcut.
  timm has no such block, so :class:`SepBlock` is ours (in timm's block interface).
* ``resnet50``: bottleneck with stride on the 3x3, inner width ``int(round(out / 4))`` and a dense projection
  shortcut. timm's ``Bottleneck`` derives its output as ``4 x inner``, which FLOPs-matched widths that are not
  multiples of 4 break, so :class:`PaperBottleneck` takes the output width itself (same modules and forward).

Stage widths (64...512; 256...2048 for ResNet-50) are widened, keeping their ratios, until the MACs at
224x224 with 1000 classes first reach the complete graph's (graph2nn's FLOPs matcher). Matching may give the
first stage a width other than 64 and so a projection shortcut the plain network lacks; it is counted. Each
block class computes its own MACs (pycls style), and the matcher reads them.
"""
from functools import lru_cache
from typing import Dict, Optional, Sequence, Tuple, Type

import networkx as nx
import torch
import torch.nn as nn
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from ..flops import GraphCounter, conv_macs, conv_out, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import default_device, is_relational, relationalize
from ..paper import COARSE_ROUNDS, MATCH_SETTING
from ._builder import RelGraphMixin, base_cfg, create_relgraph, family_tags, init_paper_head

__all__ = ['RelGraphResNet', 'RESNET_FAMILIES', 'resnet_macs', 'resnet_widths', 'bottleneck_inner',
           'RelBasicBlock', 'SepBlock', 'PaperBottleneck']

STEM_WIDTH = 64
Size = Tuple[int, int]


def bottleneck_inner(out_chs: int) -> int:
    """Bottleneck inner width of the paper's code: ``int(round(out / 4))`` (Python's banker's rounding)."""
    return int(round(out_chs / 4))


def _shortcut_macs(in_chs: int, out_chs: int, stride: int, size: Size, counter: Optional[GraphCounter]) -> int:
    if in_chs == out_chs and stride == 1:
        return 0
    return conv_macs(in_chs, out_chs, 1, conv_out(size[0], 1, stride, 0), conv_out(size[1], 1, stride, 0),
                     counter=counter)


class RelBasicBlock(BasicBlock):
    """timm's ``BasicBlock`` (unchanged), with its analytic complexity."""

    relational_layers = ('conv1', 'conv2', 'downsample.0')

    @staticmethod
    def complexity(in_chs: int, out_chs: int, stride: int, size: Size, counter: GraphCounter) -> Tuple[int, Size]:
        """MACs of the block (relational convs at the graph's density) and its output size."""
        out = (conv_out(size[0], 3, stride, 1), conv_out(size[1], 3, stride, 1))
        macs = conv_macs(in_chs, out_chs, 3, *out, counter=counter)
        macs += conv_macs(out_chs, out_chs, 3, *out, counter=counter)
        return macs + _shortcut_macs(in_chs, out_chs, stride, size, counter), out


class SepBlock(nn.Module):
    """ResNet-34-sep block: dw 3x3 -> relational 1x1 -> BN -> act -> dw 3x3 -> relational 1x1 -> BN
    (+ shortcut) -> act. Takes timm's block arguments, so timm's ``ResNet`` builds stages of it."""

    expansion = 1
    relational_layers = ('conv_pw1', 'conv_pw2', 'downsample.0')

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 cardinality: int = 1, base_width: int = 64, reduce_first: int = 1, dilation: int = 1,
                 first_dilation: Optional[int] = None, act_layer: Type[nn.Module] = nn.ReLU,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, attn_layer=None, aa_layer=None, drop_block=None,
                 drop_path: Optional[nn.Module] = None, device=None, dtype=None):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        first_dilation = first_dilation or dilation
        self.conv_dw1 = nn.Conv2d(inplanes, inplanes, 3, stride=stride, padding=first_dilation,
                                  dilation=first_dilation, groups=inplanes, bias=False, **dd)
        self.conv_pw1 = nn.Conv2d(inplanes, planes, 1, bias=False, **dd)
        self.bn1 = norm_layer(planes, **dd)
        self.act1 = act_layer(inplace=True)
        self.conv_dw2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, groups=planes, bias=False,
                                  **dd)
        self.conv_pw2 = nn.Conv2d(planes, planes, 1, bias=False, **dd)
        self.bn2 = norm_layer(planes, **dd)
        self.act2 = act_layer(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.drop_path = drop_path

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    @staticmethod
    def complexity(in_chs: int, out_chs: int, stride: int, size: Size, counter: GraphCounter) -> Tuple[int, Size]:
        out = (conv_out(size[0], 3, stride, 1), conv_out(size[1], 3, stride, 1))
        macs = conv_macs(in_chs, in_chs, 3, *out, groups=in_chs)
        macs += conv_macs(in_chs, out_chs, 1, *out, counter=counter)
        macs += conv_macs(out_chs, out_chs, 3, *out, groups=out_chs)
        macs += conv_macs(out_chs, out_chs, 1, *out, counter=counter)
        return macs + _shortcut_macs(in_chs, out_chs, stride, size, counter), out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv_pw1(self.conv_dw1(x))))
        x = self.bn2(self.conv_pw2(self.conv_dw2(x)))
        if self.drop_path is not None:
            x = self.drop_path(x)
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(x + shortcut)


class PaperBottleneck(Bottleneck):
    """timm's ``Bottleneck`` whose ``planes`` is the *output* width and whose inner width is
    ``int(round(out / 4))`` (graph2nn's), so any output width works. Modules, names and forward are timm's."""

    expansion = 1
    relational_layers = ('conv1', 'conv2', 'conv3')

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 cardinality: int = 1, base_width: int = 64, reduce_first: int = 1, dilation: int = 1,
                 first_dilation: Optional[int] = None, act_layer: Type[nn.Module] = nn.ReLU,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, attn_layer=None, aa_layer=None, drop_block=None,
                 drop_path: Optional[nn.Module] = None, device=None, dtype=None):
        nn.Module.__init__(self)
        dd = dict(device=device, dtype=dtype)
        inner = bottleneck_inner(planes)
        first_dilation = first_dilation or dilation
        self.conv1 = nn.Conv2d(inplanes, inner, 1, bias=False, **dd)
        self.bn1 = norm_layer(inner, **dd)
        self.act1 = act_layer(inplace=True)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=first_dilation, dilation=first_dilation,
                               bias=False, **dd)
        self.bn2 = norm_layer(inner, **dd)
        self.drop_block = drop_block() if drop_block is not None else nn.Identity()
        self.act2 = act_layer(inplace=True)
        self.aa = nn.Identity()
        self.conv3 = nn.Conv2d(inner, planes, 1, bias=False, **dd)
        self.bn3 = norm_layer(planes, **dd)
        self.se = None
        self.act3 = act_layer(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.dilation = dilation
        self.drop_path = drop_path

    @staticmethod
    def complexity(in_chs: int, out_chs: int, stride: int, size: Size, counter: GraphCounter) -> Tuple[int, Size]:
        inner = bottleneck_inner(out_chs)
        out = (conv_out(size[0], 3, stride, 1), conv_out(size[1], 3, stride, 1))
        macs = conv_macs(in_chs, inner, 1, *size, counter=counter)
        macs += conv_macs(inner, inner, 3, *out, counter=counter)
        macs += conv_macs(inner, out_chs, 1, *out, counter=counter)
        return macs + _shortcut_macs(in_chs, out_chs, stride, size, None), out  # dense projection shortcut


# family -> (block, stage depths, complete-graph stage output widths)
RESNET_FAMILIES: Dict[str, Tuple[type, Tuple[int, ...], Tuple[int, ...]]] = {
    'resnet18': (RelBasicBlock, (2, 2, 2, 2), (64, 128, 256, 512)),
    'resnet34': (RelBasicBlock, (3, 4, 6, 3), (64, 128, 256, 512)),
    'resnet34sep': (SepBlock, (3, 4, 6, 3), (64, 128, 256, 512)),
    'resnet50': (PaperBottleneck, (3, 4, 6, 3), (256, 512, 1024, 2048)),
}


def resnet_macs(family: str, widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000,
                in_chans: int = 3, img_size=224) -> int:
    """MACs of the family with stage output ``widths`` on graph ``counter``: timm's stem, then each block's
    own :meth:`complexity`, then the classifier."""
    block, depths, _ = RESNET_FAMILIES[family]
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    size = (conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3))
    macs = conv_macs(in_chans, STEM_WIDTH, 7, *size)
    size = (conv_out(size[0], 3, 2, 1), conv_out(size[1], 3, 2, 1))
    in_chs = STEM_WIDTH
    for stage, (depth, width) in enumerate(zip(depths, widths)):
        for b in range(depth):
            block_macs, size = block.complexity(in_chs, width, 2 if stage and not b else 1, size, counter)
            macs += block_macs
            in_chs = width
    return macs + linear_macs(in_chs, max(num_classes, 0))


@lru_cache(maxsize=256)
def resnet_widths(family: str, spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the paper's FLOPs matcher against the complete graph, in the paper's
    setting (3x224x224, 1000 classes) whatever the runtime input and head, so widths depend on the graph alone."""
    base_widths = list(RESNET_FAMILIES[family][2])
    if not match_flops or spec.is_complete:
        return tuple(base_widths)
    in_chans, size, classes = MATCH_SETTING[family]
    baseline = resnet_macs(family, base_widths, GraphCounter(None), classes, in_chans, size)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: resnet_macs(family, ws, counter, classes, in_chans, size),
                             base_widths, baseline, coarse_rounds=COARSE_ROUNDS[family])
    return tuple(widths)


# timm ResNet options that change the paper's stem or shortcuts (and so its MAC count) are refused.
_FIXED_BY_PAPER = ('stem_type', 'stem_width', 'replace_stem_pool', 'avg_down', 'down_kernel_size', 'cardinality',
                   'base_width', 'block_reduce_first', 'aa_layer', 'block_args', 'block', 'layers', 'channels')


class RelGraphResNet(RelGraphMixin, ResNet):
    """timm's ``ResNet`` whose block convs follow one relational graph.

    Args:
        graph: The relational graph (resolved from the model name by ``create_relgraph``).
        arch: 'resnet18', 'resnet34', 'resnet34sep' or 'resnet50'.
        match_flops: Widen the stages to the complete graph's MACs (False keeps the baseline widths).
        widths: Explicit stage output widths (skips matching).
        execution: How relational convs run (see ``timm_relgraph.layers.EXECUTION_STRATEGIES``).
        **kwargs: timm ``ResNet`` options: num_classes, in_chans, output_stride, global_pool, act_layer,
            norm_layer, drop_rate, drop_path_rate, drop_block_rate, zero_init_last, device, dtype.
    """

    def __init__(self, graph: GraphSpec, arch: str = 'resnet34', match_flops: bool = True,
                 widths: Optional[Sequence[int]] = None, execution: str = 'auto', **kwargs):
        if arch not in RESNET_FAMILIES:
            raise ValueError(f'unknown ResNet family {arch!r}; choose one of {sorted(RESNET_FAMILIES)}')
        fixed = sorted(set(kwargs) & set(_FIXED_BY_PAPER))
        if fixed:
            raise TypeError(f'relgraph_{arch} has the paper\'s stem and shortcuts; {fixed} cannot be set')
        block, depths, base_widths = RESNET_FAMILIES[arch]
        widths = tuple(int(w) for w in (widths if widths is not None else resnet_widths(arch, graph, match_flops)))
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f'widths must give 4 positive stage widths, got {widths}')
        selected = [f'layer*.*.{name}' for name in block.relational_layers]
        kwargs['device'] = kwargs.get('device') or default_device()
        as_timm = graph.is_complete or torch.device(kwargs['device']).type == 'meta'
        G = None if as_timm else self._build_on_meta(block, depths, widths, graph, selected, execution, kwargs)
        if G is None:  # timm's ResNet as timm builds it (the complete graph's network is timm's, draw for draw)
            super().__init__(block=block, layers=depths, channels=widths, **kwargs)
            G = self._setup_graph(graph)
            relationalize(self, G, selected, init='paper', execution=execution)
        self.family, self.widths = arch, widths
        init_paper_head(self.fc)
        num_classes, in_chans = self.num_classes, self.in_chans
        self.macs = resnet_macs(arch, widths, GraphCounter(G), num_classes, in_chans)
        self.baseline_macs = resnet_macs(arch, base_widths, GraphCounter(None), num_classes, in_chans)

    def _build_on_meta(self, block, depths, widths, graph: GraphSpec, selected, execution: str,
                       kwargs) -> Optional[nx.Graph]:
        """Build timm's ResNet on the meta device, make the selected convs relational, then allocate and
        initialise on the real device: the widened dense convs the graph thins out are never allocated or
        drawn (relgraph_resnet34's are 142M weights; its graph keeps 23M). Initialisation is what timm's
        constructor does (each module's ``reset_parameters``, then ``init_weights``), then the paper's for the
        relational convs. Returns the graph, or None, leaving the rest to the caller, if a module's state could
        not be restored that way (see :func:`_resets_fully`)."""
        super().__init__(block=block, layers=depths, channels=widths, **{**kwargs, 'device': 'meta'})
        G = self._setup_graph(graph)
        relationalize(self, G, selected, init='paper', execution=execution)
        plain = [m for m in self.modules() if not is_relational(m) and (m._parameters or m._buffers)]
        if not all(_resets_fully(m) for m in plain):
            return None
        with torch.no_grad():
            for m in plain:
                m.to_empty(device=kwargs['device'], recurse=False)
                m.reset_parameters()
            # the relational convs are still on meta here, so timm's draw for them is a no-op, not a wasted one
            self.init_weights(zero_init_last=kwargs.get('zero_init_last', True))
            for m in self.modules():
                if is_relational(m):
                    m.to_empty(device=kwargs['device'])
                    m.reset_parameters()
        return G


def _resets_fully(module: nn.Module) -> bool:
    """Whether ``reset_parameters`` restores all of a module's own state: torch's own layers, whose constructors
    do nothing else (a subclass or another library's layer may set state its constructor alone knows)."""
    return type(module).__module__.startswith('torch.nn.modules.') and hasattr(module, 'reset_parameters')


def _cfg(**kwargs):
    return base_cfg(first_conv='conv1', classifier='fc', **kwargs)


default_cfgs = generate_default_cfgs({
    **{f'relgraph_{family}': _cfg() for family in RESNET_FAMILIES},
    **{f'{arch}.{tag}': _cfg() for family in RESNET_FAMILIES for arch, tag in family_tags(family)},
})


def _create(family: str, variant: str, pretrained: bool = False, **kwargs) -> RelGraphResNet:
    return create_relgraph(RelGraphResNet, family, variant, pretrained, default_cfg=_cfg(), arch=family, **kwargs)


@register_model
def relgraph_resnet18(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-18 on ResNet-34's best graph (the paper has no ResNet-18; C=0.367, L=2.287)."""
    return _create('resnet18', 'relgraph_resnet18', pretrained, **kwargs)


@register_model
def relgraph_resnet18_c0(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-18 on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_resnet18_c0.4_l2.0``."""
    return _create('resnet18', 'relgraph_resnet18_c0', pretrained, **kwargs)


@register_model
def relgraph_resnet18_c1(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-18 on the complete graph: ``relgraph_resnet18_c1.0_l1.0`` (timm's resnet18)."""
    return _create('resnet18', 'relgraph_resnet18_c1', pretrained, **kwargs)


@register_model
def relgraph_resnet34(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34 on the paper's best ResNet-34 graph (C=0.367, L=2.287)."""
    return _create('resnet34', 'relgraph_resnet34', pretrained, **kwargs)


@register_model
def relgraph_resnet34_c0(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34 on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_resnet34_c0.4_l2.0``."""
    return _create('resnet34', 'relgraph_resnet34_c0', pretrained, **kwargs)


@register_model
def relgraph_resnet34_c1(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34 on the complete graph: ``relgraph_resnet34_c1.0_l1.0`` (timm's resnet34)."""
    return _create('resnet34', 'relgraph_resnet34_c1', pretrained, **kwargs)


@register_model
def relgraph_resnet34sep(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34-sep on the paper's best ResNet-34-sep graph (C=0.303, L=2.048)."""
    return _create('resnet34sep', 'relgraph_resnet34sep', pretrained, **kwargs)


@register_model
def relgraph_resnet34sep_c0(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34-sep on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_resnet34sep_c0.4_l2.0``."""
    return _create('resnet34sep', 'relgraph_resnet34sep_c0', pretrained, **kwargs)


@register_model
def relgraph_resnet34sep_c1(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-34-sep on the complete graph: ``relgraph_resnet34sep_c1.0_l1.0`` (the plain ResNet-34-sep)."""
    return _create('resnet34sep', 'relgraph_resnet34sep_c1', pretrained, **kwargs)


@register_model
def relgraph_resnet50(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-50 on the paper's best ResNet-50 graph (C=0.636, L=1.814)."""
    return _create('resnet50', 'relgraph_resnet50', pretrained, **kwargs)


@register_model
def relgraph_resnet50_c0(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-50 on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_resnet50_c0.4_l2.0``."""
    return _create('resnet50', 'relgraph_resnet50_c0', pretrained, **kwargs)


@register_model
def relgraph_resnet50_c1(pretrained=False, **kwargs) -> RelGraphResNet:
    """ResNet-50 on the complete graph: ``relgraph_resnet50_c1.0_l1.0`` (timm's resnet50)."""
    return _create('resnet50', 'relgraph_resnet50_c1', pretrained, **kwargs)
