"""Relational-graph 8-layer CNN (ImageNet).

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1;
the authors' ``pycls/models/cnn.py`` ("cnn6" configs, 64d).

Layout (8 weight layers):

* stem: Conv3x3(in_chans -> 64, stride 2) + BN + ReLU + MaxPool(3, s2, p1), dense and never widened;
* 3 stages x 2 blocks of Conv3x3 + BN + ReLU whose weights follow the relational graph (64 nodes); the first
  conv of every stage (the first one too) has stride 2, so 224 -> 112 -> 56 -> 28 -> 14 -> 7; no residuals;
* head: global average pool + Linear (dense).

The complete graph is the plain CNN with stage widths ``[64, 128, 256]`` (166,438,912 MACs at 224x224 and 1000
classes). Any other graph is widened with the paper's FLOPs matcher until its MACs first reach that baseline
(e.g. ``[158, 315, 631]`` for the paper's best CNN graph). Matching is always done at 224x224, whatever the
runtime input size. Initialisation follows the paper's code: relational convs ``N(0, sqrt(2 / (9 * out * density)))``
(in :class:`~timm_relgraph.layers.RelationalConv2d`), the dense stem ``N(0, sqrt(2 / (9 * out)))``, Linear
``N(0, 0.01)`` with zero bias, every BN gamma 1 and beta 0 (the CNN has no zero-initialised BN).
"""

import math
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.models import generate_default_cfgs, register_model

from ..flops import GraphCounter, conv_macs, conv_out, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import relationalize
from ..paper import COARSE_ROUNDS, MATCH_SETTING
from ._base import RelGraphNet, check_no_drop_path
from ._builder import base_cfg, create_relgraph, family_tags

__all__ = ['RelGraphCNN', 'ConvBnAct', 'cnn8_macs', 'cnn8_widths', 'BASE_WIDTHS']

STEM_WIDTH = 64
BASE_WIDTHS = (64, 128, 256)
BLOCKS_PER_STAGE = 2
Size = Tuple[int, int]


class ConvBnAct(nn.Sequential):
    """Conv3x3 + BN + ReLU (one CNN block; no residual); the conv is relational in the stages."""

    def __init__(self, dim_in: int, dim_out: int, stride: int, device=None, dtype=None):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, 3, stride=stride, padding=1, bias=False, device=device, dtype=dtype)
        self.bn = nn.BatchNorm2d(dim_out, device=device, dtype=dtype)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def complexity(dim_in: int, dim_out: int, stride: int, size: Size,
                   counter: Optional[GraphCounter] = None) -> Tuple[int, Size]:
        out = (conv_out(size[0], 3, stride, 1), conv_out(size[1], 3, stride, 1))
        return conv_macs(dim_in, dim_out, 3, *out, counter=counter), out


def cnn8_macs(widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000, in_chans: int = 3,
              img_size: Union[int, Size] = 224) -> int:
    """MACs of the 8-layer CNN with relational stage ``widths``: its blocks' own complexity + the classifier."""
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    macs, size = ConvBnAct.complexity(in_chans, STEM_WIDTH, 2, size)
    size = (conv_out(size[0], 3, 2, 1), conv_out(size[1], 3, 2, 1))  # max pool
    dim_in = STEM_WIDTH
    for width in widths:
        for b in range(BLOCKS_PER_STAGE):
            block_macs, size = ConvBnAct.complexity(dim_in, width, 2 if b == 0 else 1, size, counter)
            macs += block_macs
            dim_in = width
    return macs + linear_macs(dim_in, max(num_classes, 0))


@lru_cache(maxsize=256)
def cnn8_widths(spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the smallest (ratio-keeping) widths whose MACs reach the complete-graph CNN's,
    in the paper's ImageNet setting (3x224x224, 1000 classes) whatever the runtime input and head."""
    if not match_flops or spec.is_complete:
        return BASE_WIDTHS
    in_chans, size, classes = MATCH_SETTING['cnn8']
    baseline = cnn8_macs(BASE_WIDTHS, GraphCounter(None), classes, in_chans, size)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: cnn8_macs(ws, counter, classes, in_chans, size), list(BASE_WIDTHS),
                             baseline, coarse_rounds=COARSE_ROUNDS['cnn8'])
    return tuple(widths)


class RelGraphCNN(RelGraphNet):
    """8-layer CNN whose six stage convs follow a relational graph."""

    def __init__(
            self,
            graph: GraphSpec,
            num_classes: int = 1000,
            in_chans: int = 3,
            match_flops: bool = True,
            widths: Optional[Sequence[int]] = None,
            drop_rate: float = 0.0,
            drop_path_rate: Optional[float] = None,
            global_pool: str = 'avg',
            execution: str = 'auto',
            device=None,
            dtype=None,
    ):
        super().__init__()
        check_no_drop_path('cnn8', drop_path_rate)
        dd = dict(device=device, dtype=dtype)
        self.in_chans = in_chans
        G = self._setup_graph(graph)
        widths = tuple(int(w) for w in (widths if widths is not None else cnn8_widths(graph, match_flops)))
        if len(widths) != len(BASE_WIDTHS) or min(widths) < 1:
            raise ValueError(f'widths must be {len(BASE_WIDTHS)} positive stage widths, got {widths}')
        self.widths = widths
        self.macs = cnn8_macs(widths, GraphCounter(G), num_classes, in_chans)
        self.baseline_macs = cnn8_macs(BASE_WIDTHS, GraphCounter(None), num_classes, in_chans)

        self.conv_stem = nn.Conv2d(in_chans, STEM_WIDTH, 3, stride=2, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages, dim_in = [], STEM_WIDTH
        self.feature_info = [dict(num_chs=STEM_WIDTH, reduction=2, module='act1')]
        for i, width in enumerate(widths):
            stages.append(nn.Sequential(*[ConvBnAct(dim_in if b == 0 else width, width, 2 if b == 0 else 1, **dd)
                                          for b in range(BLOCKS_PER_STAGE)]))
            dim_in = width
            self.feature_info.append(dict(num_chs=width, reduction=2 ** (i + 3), module=f'stages.{i}'))
        self.stages = nn.Sequential(*stages)
        self.num_features = widths[-1]
        # graph2nn's init: conv N(0, sqrt(2 / (kh * kw * out))) (relational ones corrected for their density by
        # relationalize); BN 1 / 0; the head in _init_head.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
        self._init_head(num_classes, global_pool, drop_rate, **dd)
        relationalize(self, G, 'stages.*.*.conv', init='paper', execution=execution)

    def forward_stem(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.act1(self.bn1(self.conv_stem(x)))
        return x, self.maxpool(x)


def _cfg(**kwargs):
    return base_cfg(first_conv='conv_stem', classifier='fc', **kwargs)


default_cfgs = generate_default_cfgs({
    'relgraph_cnn8': _cfg(),
    **{f'{arch}.{tag}': _cfg() for arch, tag in family_tags('cnn8')},
})


def _create(variant: str, pretrained: bool = False, **kwargs) -> RelGraphCNN:
    return create_relgraph(RelGraphCNN, 'cnn8', variant, pretrained, default_cfg=_cfg(),
                           feature_cfg=dict(flatten_sequential=True, out_indices=(0, 1, 2, 3)), **kwargs)


@register_model
def relgraph_cnn8(pretrained=False, **kwargs) -> RelGraphCNN:
    """8-layer CNN on the paper's best CNN graph (C=0.501, L=2.279)."""
    return _create('relgraph_cnn8', pretrained, **kwargs)


@register_model
def relgraph_cnn8_c0(pretrained=False, **kwargs) -> RelGraphCNN:
    """8-layer CNN on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_cnn8_c0.4_l2.0``."""
    return _create('relgraph_cnn8_c0', pretrained, **kwargs)


@register_model
def relgraph_cnn8_c1(pretrained=False, **kwargs) -> RelGraphCNN:
    """8-layer CNN on the complete graph: ``relgraph_cnn8_c1.0_l1.0`` (the plain CNN)."""
    return _create('relgraph_cnn8_c1', pretrained, **kwargs)
