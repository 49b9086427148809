"""Relational-graph ResNets: ResNet-18/34 (basic block), ResNet-34-sep (separable) and ResNet-50 (bottleneck).

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1,
following the authors' reference code (facebookresearch/graph2nn, pycls/models/resnet.py).

Common to every family: a dense 7x7 stride-2 stem of 64 channels (never widened) + BN + ReLU + 3x3 max-pool;
four stages of depths (3, 4, 6, 3) ((2, 2, 2, 2) for ResNet-18), stride 2 on the first block of stages 2-4;
global average pool + Linear. A block has a projection shortcut (1x1 conv with the block stride + BN) when its
input and output widths differ or its stride is not 1. The last BN of each residual branch starts at gamma 0.

* ``resnet18`` / ``resnet34`` (basic): relational 3x3 -> BN -> ReLU -> relational 3x3 -> BN; the projection
  shortcut is relational too.
* ``resnet34sep``: depthwise 3x3 (block stride) -> relational 1x1 -> BN -> ReLU -> depthwise 3x3 -> relational
  1x1 -> BN, with no BN or ReLU between a depthwise conv and its 1x1; relational projection shortcut.
* ``resnet50`` (bottleneck, stride on the 3x3): relational 1x1 -> BN -> ReLU -> relational 3x3 -> BN -> ReLU ->
  relational 1x1 -> BN with inner width ``int(round(out / 4))``; the projection shortcut stays dense.

Stage widths (64, 128, 256, 512; 256...2048 for ResNet-50) are widened, keeping their ratios, until the MACs at
224x224 with 1000 classes first reach those of the complete-graph network (the paper's FLOPs matcher; always
in that setting, so the widths depend on the graph only). Matching may give the
first stage of ResNet-18/34/34-sep a width other than 64 and so a projection shortcut the plain network lacks;
it is counted. Complete-graph MACs: ResNet-34 3,663,761,408, ResNet-34-sep 553,614,592, ResNet-50
4,089,184,256 (1000 classes).
"""
import contextlib
import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_classifier
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from ..flops import GraphCounter, conv_macs, conv_out, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import RelationalConv2d, is_relational
from ._relgraph import base_cfg, create_relgraph, family_tags, RelGraphModel

__all__ = ['RelGraphResNet', 'RESNET_FAMILIES', 'resnet_macs', 'resnet_widths', 'bottleneck_inner',
           'BasicBlock', 'SepBlock', 'Bottleneck']

STEM_WIDTH = 64
STRIDES = (1, 2, 2, 2)
MATCH_IMG_SIZE = 224
MATCH_NUM_CLASSES = 1000
COARSE_ROUNDS = 9  # the paper's matcher uses 9 coarse rounds on ImageNet

# family -> (block type, stage depths, complete-graph stage widths)
RESNET_FAMILIES: Dict[str, Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = {
    'resnet18': ('basic', (2, 2, 2, 2), (64, 128, 256, 512)),
    'resnet34': ('basic', (3, 4, 6, 3), (64, 128, 256, 512)),
    'resnet34sep': ('sep', (3, 4, 6, 3), (64, 128, 256, 512)),
    'resnet50': ('bottleneck', (3, 4, 6, 3), (256, 512, 1024, 2048)),
}


def bottleneck_inner(out_chs: int) -> int:
    """Bottleneck inner width of the paper's code: ``int(round(out / 4))`` (Python's banker's rounding)."""
    return int(round(out_chs / 4))


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resnet_macs(family: str, widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000,
                in_chans: int = 3, img_size: Union[int, Sequence[int]] = MATCH_IMG_SIZE) -> int:
    """MACs of a relational ResNet with stage ``widths`` on graph ``counter`` (analytic, no model built)."""
    block, depths, _ = RESNET_FAMILIES[family]
    h, w = _pair(img_size)
    h, w = conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3)
    macs = conv_macs(in_chans, STEM_WIDTH, 7, h, w)
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)  # max-pool
    cin = STEM_WIDTH
    for depth, stride, width in zip(depths, STRIDES, widths):
        for b in range(depth):
            s = stride if b == 0 else 1
            ho, wo = conv_out(h, 3, s, 1), conv_out(w, 3, s, 1)
            if block == 'basic':
                macs += conv_macs(cin, width, 3, ho, wo, counter=counter)
                macs += conv_macs(width, width, 3, ho, wo, counter=counter)
            elif block == 'sep':
                macs += conv_macs(cin, cin, 3, ho, wo, groups=cin)
                macs += conv_macs(cin, width, 1, ho, wo, counter=counter)
                macs += conv_macs(width, width, 3, ho, wo, groups=width)
                macs += conv_macs(width, width, 1, ho, wo, counter=counter)
            else:
                inner = bottleneck_inner(width)
                macs += conv_macs(cin, inner, 1, h, w, counter=counter)
                macs += conv_macs(inner, inner, 3, ho, wo, counter=counter)
                macs += conv_macs(inner, width, 1, ho, wo, counter=counter)
            if cin != width or s != 1:
                proj_counter = None if block == 'bottleneck' else counter
                macs += conv_macs(cin, width, 1, conv_out(h, 1, s, 0), conv_out(w, 1, s, 0), counter=proj_counter)
            cin, h, w = width, ho, wo
    return macs + linear_macs(cin, max(num_classes, 0))


@lru_cache(maxsize=256)
def resnet_widths(family: str, spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the paper's FLOPs matcher against the complete-graph network.

    Matched in the paper's ImageNet setting (3x224x224 input, 1000 classes) whatever the runtime input size,
    channels and classes, so that the widths depend on the graph alone and weights stay loadable under a new
    head (the dense stem cancels out anyway; the head moves the match by at most a channel).
    """
    base_widths = list(RESNET_FAMILIES[family][2])
    if not match_flops or spec.is_complete:
        return tuple(base_widths)
    baseline = resnet_macs(family, base_widths, GraphCounter(None), MATCH_NUM_CLASSES)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: resnet_macs(family, ws, counter, MATCH_NUM_CLASSES),
                             base_widths, baseline, coarse_rounds=COARSE_ROUNDS)
    return tuple(widths)


def _projection(in_chs: int, out_chs: int, stride: int, graph, relational: bool, execution: str,
                dtype) -> nn.Sequential:
    if relational:
        conv = RelationalConv2d(in_chs, out_chs, 1, graph, stride=stride, bias=False, execution=execution,
                                dtype=dtype)
    else:
        conv = nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False, dtype=dtype)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chs, dtype=dtype))


class BasicBlock(nn.Module):
    """relational 3x3 -> BN -> ReLU -> relational 3x3 -> BN (+ relational projection) -> add -> ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, graph, execution: str = 'dense', dtype=None):
        super().__init__()
        self.conv1 = RelationalConv2d(in_chs, out_chs, 3, graph, stride=stride, padding=1, execution=execution,
                                      dtype=dtype)
        self.bn1 = nn.BatchNorm2d(out_chs, dtype=dtype)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = RelationalConv2d(out_chs, out_chs, 3, graph, padding=1, execution=execution, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(out_chs, dtype=dtype)
        self.downsample = (_projection(in_chs, out_chs, stride, graph, True, execution, dtype)
                           if in_chs != out_chs or stride != 1 else None)
        self.act2 = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(x + shortcut)


class SepBlock(nn.Module):
    """depthwise 3x3 -> relational 1x1 -> BN -> ReLU -> depthwise 3x3 -> relational 1x1 -> BN
    (+ relational projection) -> add -> ReLU. No BN or ReLU between a depthwise conv and its 1x1."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, graph, execution: str = 'dense', dtype=None):
        super().__init__()
        self.conv_dw1 = nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False,
                                  dtype=dtype)
        self.conv_pw1 = RelationalConv2d(in_chs, out_chs, 1, graph, execution=execution, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(out_chs, dtype=dtype)
        self.act1 = nn.ReLU(inplace=True)
        self.conv_dw2 = nn.Conv2d(out_chs, out_chs, 3, padding=1, groups=out_chs, bias=False, dtype=dtype)
        self.conv_pw2 = RelationalConv2d(out_chs, out_chs, 1, graph, execution=execution, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(out_chs, dtype=dtype)
        self.downsample = (_projection(in_chs, out_chs, stride, graph, True, execution, dtype)
                           if in_chs != out_chs or stride != 1 else None)
        self.act2 = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv_pw1(self.conv_dw1(x))))
        x = self.bn2(self.conv_pw2(self.conv_dw2(x)))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act2(x + shortcut)


class Bottleneck(nn.Module):
    """relational 1x1 -> BN -> ReLU -> relational 3x3 (stride) -> BN -> ReLU -> relational 1x1 -> BN
    (+ dense projection) -> add -> ReLU."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, graph, execution: str = 'dense', dtype=None):
        super().__init__()
        inner = bottleneck_inner(out_chs)
        self.conv1 = RelationalConv2d(in_chs, inner, 1, graph, execution=execution, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(inner, dtype=dtype)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = RelationalConv2d(inner, inner, 3, graph, stride=stride, padding=1, execution=execution,
                                      dtype=dtype)
        self.bn2 = nn.BatchNorm2d(inner, dtype=dtype)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = RelationalConv2d(inner, out_chs, 1, graph, execution=execution, dtype=dtype)
        self.bn3 = nn.BatchNorm2d(out_chs, dtype=dtype)
        self.downsample = (_projection(in_chs, out_chs, stride, graph, False, execution, dtype)
                           if in_chs != out_chs or stride != 1 else None)
        self.act3 = nn.ReLU(inplace=True)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        if self.downsample is not None:
            shortcut = self.downsample(shortcut)
        return self.act3(x + shortcut)


BLOCKS = {'basic': BasicBlock, 'sep': SepBlock, 'bottleneck': Bottleneck}


class RelGraphResNet(RelGraphModel):
    """ResNet whose block convs follow a relational graph (one graph shared by every relational layer).

    Args:
        graph: The relational graph (resolved from the model name by ``create_relgraph``).
        arch: Family: 'resnet18', 'resnet34', 'resnet34sep' or 'resnet50'.
        match_flops: Widen the stages to the complete graph's MACs (False keeps the baseline widths).
        widths: Explicit stage widths (skips matching).
        zero_init_last: Start the last BN of each residual branch at gamma 0 (as the paper's configs).
        execution: How relational convs run (see ``timm_relgraph.layers.EXECUTION_STRATEGIES``).
    """

    def __init__(
            self,
            graph: GraphSpec,
            arch: str = 'resnet34',
            num_classes: int = 1000,
            in_chans: int = 3,
            match_flops: bool = True,
            widths: Optional[Sequence[int]] = None,
            drop_rate: float = 0.0,
            global_pool: str = 'avg',
            zero_init_last: bool = True,
            execution: str = 'dense',
            device=None,
            dtype=None,
            **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise TypeError(f'RelGraphResNet got unexpected arguments {sorted(kwargs)}')
        if arch not in RESNET_FAMILIES:
            raise ValueError(f'unknown ResNet family {arch!r}; choose one of {sorted(RESNET_FAMILIES)}')
        family = self.family = arch
        block_type, depths, _ = RESNET_FAMILIES[family]
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        G = self._init_graph(graph)
        if widths is None:
            widths = resnet_widths(family, graph, match_flops)
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError(f'widths must give 4 positive stage widths, got {widths}')
        self.widths = widths
        # MACs at 224x224 with this model's channels and classes, and those of its complete-graph counterpart
        self.macs = resnet_macs(family, widths, GraphCounter(G), num_classes, in_chans)
        self.baseline_macs = resnet_macs(family, RESNET_FAMILIES[family][2], GraphCounter(None), num_classes,
                                         in_chans)

        device_ctx = torch.device(device) if device is not None else contextlib.nullcontext()
        with device_ctx:
            self.conv1 = nn.Conv2d(in_chans, STEM_WIDTH, 7, stride=2, padding=3, bias=False, dtype=dtype)
            self.bn1 = nn.BatchNorm2d(STEM_WIDTH, dtype=dtype)
            self.act1 = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.feature_info = [dict(num_chs=STEM_WIDTH, reduction=2, module='act1')]

            block_cls = BLOCKS[block_type]
            stages = []
            cin, reduction = STEM_WIDTH, 4
            for i, (depth, stride, width) in enumerate(zip(depths, STRIDES, self.widths)):
                blocks = []
                for b in range(depth):
                    blocks.append(block_cls(cin, width, stride if b == 0 else 1, G, execution, dtype))
                    cin = width
                reduction *= stride
                stages.append(nn.Sequential(*blocks))
                self.feature_info.append(dict(num_chs=width, reduction=reduction, module=f'stages.{i}'))
            self.stages = nn.Sequential(*stages)

            self.num_features = self.head_hidden_size = cin
            self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool,
                                                          dtype=dtype)
        self.init_weights(zero_init_last=zero_init_last)

    @torch.jit.ignore
    def init_weights(self, zero_init_last: bool = True) -> None:
        """The paper's init: dense conv N(0, sqrt(2 / (kh*kw*out))) (groups ignored); relational conv
        N(0, sqrt(2 / (kh*kw*out*density))); Linear N(0, 0.01), bias 0; BN gamma 1 (0 for the last BN of each
        residual branch when ``zero_init_last``), beta 0."""
        for m in self.modules():
            if is_relational(m):
                continue  # RelationalConv2d initialises itself once its mask is known
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / (kh * kw * m.out_channels)))
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_last:
            for m in self.modules():
                if hasattr(m, 'zero_init_last'):
                    m.zero_init_last()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, str]:
        return dict(stem=r'^conv1|bn1|maxpool', blocks=r'^stages\.(\d+)' if coarse else r'^stages\.(\d+)\.(\d+)')

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward features that returns intermediates: index 0 is the stem activation, 1-4 the stages.

        Args:
            x: Input image tensor.
            indices: Take last n features if int, all if None, select matching indices if sequence.
            norm: Apply norm layer to compatible intermediates (there is none).
            stop_early: Stop iterating over stages when the last desired intermediate is hit.
            output_fmt: Shape of intermediate feature outputs ('NCHW' only).
            intermediates_only: Only return intermediate features.
        """
        assert output_fmt in ('NCHW',), 'Output shape must be NCHW.'
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)

        feat_idx = 0
        x = self.act1(self.bn1(self.conv1(x)))
        if feat_idx in take_indices:
            intermediates.append(x)
        x = self.maxpool(x)

        stages = self.stages if not stop_early else self.stages[:max_index]
        for stage in stages:
            feat_idx += 1
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)

        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        """Prune the stages (and head) not needed for the given intermediates; returns the kept indices."""
        num_stages = len(self.stages)
        take_indices, max_index = feature_take_indices(num_stages + 1, indices)
        prune_end = max_index < num_stages
        self.stages = self.stages[:max_index]  # an empty Sequential when only the stem is kept
        if max_index == 0:
            self.maxpool = nn.Identity()
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]['num_chs']
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.act1(x)
        x = self.maxpool(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x, flatten=True)
        else:
            x = self.stages(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)
        return self.forward_head(x)


def _cfg(**kwargs):
    return base_cfg(first_conv='conv1', classifier='fc', **kwargs)


default_cfgs = generate_default_cfgs({
    **{f'relgraph_{family}': _cfg() for family in RESNET_FAMILIES},
    **{f'{arch}.{tag}': _cfg() for family in RESNET_FAMILIES for arch, tag in family_tags(family)},
})


def _create(family: str, variant: str, pretrained: bool = False, **kwargs) -> RelGraphResNet:
    kwargs.setdefault('feature_cfg', dict(flatten_sequential=True))
    return create_relgraph(RelGraphResNet, family, variant, pretrained, default_cfg=_cfg(), arch=family,
                           **kwargs)


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
    """ResNet-18 on the complete graph: ``relgraph_resnet18_c1.0_l1.0`` (the plain ResNet-18)."""
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
    """ResNet-34 on the complete graph: ``relgraph_resnet34_c1.0_l1.0`` (the plain ResNet-34)."""
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
    """ResNet-50 on the complete graph: ``relgraph_resnet50_c1.0_l1.0`` (the plain ResNet-50)."""
    return _create('resnet50', 'relgraph_resnet50_c1', pretrained, **kwargs)
