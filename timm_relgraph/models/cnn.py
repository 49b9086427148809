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

import contextlib
import math
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import create_classifier
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from ..flops import GraphCounter, conv_macs, conv_out, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import RelationalConv2d
from ._relgraph import base_cfg, create_relgraph, family_tags, RelGraphModel

__all__ = ['RelGraphCNN', 'cnn8_macs', 'cnn8_widths']

STEM_WIDTH = 64
BASE_WIDTHS = (64, 128, 256)
BLOCKS_PER_STAGE = 2
MATCH_SIZE = 224
COARSE_ROUNDS = 9  # the paper's matcher uses 9 coarse rounds on ImageNet


def cnn8_macs(widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000, in_chans: int = 3,
              img_size: Union[int, Tuple[int, int]] = MATCH_SIZE) -> int:
    """MACs of the 8-layer CNN with relational stage ``widths`` (analytic, no model built)."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
    macs = conv_macs(in_chans, STEM_WIDTH, 3, h, w)
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)  # max pool
    dim_in = STEM_WIDTH
    for width in widths:
        for b in range(BLOCKS_PER_STAGE):
            stride = 2 if b == 0 else 1
            h, w = conv_out(h, 3, stride, 1), conv_out(w, 3, stride, 1)
            macs += conv_macs(dim_in, width, 3, h, w, counter=counter)
            dim_in = width
    return macs + linear_macs(dim_in, max(num_classes, 0))


@lru_cache(maxsize=256)
def cnn8_widths(spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the smallest (ratio-keeping) widths whose MACs reach the complete-graph CNN's.

    Matched on the paper's ImageNet setting (3x224x224 input, 1000 classes) whatever the runtime input size,
    channels and classes, so that weights stay loadable under a new head or input.
    """
    if not match_flops or spec.is_complete:
        return BASE_WIDTHS
    baseline = cnn8_macs(BASE_WIDTHS, GraphCounter(None))
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: cnn8_macs(ws, counter), list(BASE_WIDTHS), baseline,
                             coarse_rounds=COARSE_ROUNDS)
    return tuple(widths)


class ConvBnAct(nn.Sequential):
    """Relational Conv3x3 + BN + ReLU (one CNN block; no residual)."""

    def __init__(self, dim_in: int, dim_out: int, stride: int, graph, execution: str = 'dense'):
        super().__init__()
        self.conv = RelationalConv2d(dim_in, dim_out, 3, graph, stride=stride, padding=1, bias=False,
                                     execution=execution)
        self.bn = nn.BatchNorm2d(dim_out)
        self.act = nn.ReLU(inplace=True)


class RelGraphCNN(RelGraphModel):
    """8-layer CNN whose six stage convs follow a relational graph."""

    def __init__(
            self,
            graph: GraphSpec,
            num_classes: int = 1000,
            in_chans: int = 3,
            match_flops: bool = True,
            widths: Optional[Sequence[int]] = None,
            drop_rate: float = 0.0,
            global_pool: str = 'avg',
            execution: str = 'dense',
            img_size: Optional[Union[int, Tuple[int, int]]] = None,
            device=None,
            dtype=None,
            **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise TypeError(f'RelGraphCNN got unexpected arguments {sorted(kwargs)}')
        del img_size  # any input size works; widths are always matched at 224x224
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        G = self._init_graph(graph)
        if widths is None:
            widths = cnn8_widths(graph, match_flops)
        widths = tuple(int(w) for w in widths)
        if len(widths) != len(BASE_WIDTHS) or min(widths) < 1:
            raise ValueError(f'widths must be {len(BASE_WIDTHS)} positive stage widths, got {widths}')
        # MACs at 224x224 with this model's channels and classes, and of its complete-graph counterpart
        macs = cnn8_macs(widths, GraphCounter(G), num_classes, in_chans)
        baseline = cnn8_macs(BASE_WIDTHS, GraphCounter(None), num_classes, in_chans)
        self.widths = list(widths)
        self.macs, self.baseline_macs = macs, baseline
        self.num_features = widths[-1]

        place = torch.device(device) if device is not None else contextlib.nullcontext()
        with place:
            self.conv_stem = nn.Conv2d(in_chans, STEM_WIDTH, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
            self.act1 = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            stages = []
            dim_in = STEM_WIDTH
            self.feature_info = [dict(num_chs=STEM_WIDTH, reduction=2, module='act1')]
            reduction = 4
            for i, width in enumerate(widths):
                blocks = []
                for b in range(BLOCKS_PER_STAGE):
                    blocks.append(ConvBnAct(dim_in, width, 2 if b == 0 else 1, G, execution))
                    dim_in = width
                stages.append(nn.Sequential(*blocks))
                reduction *= 2
                self.feature_info.append(dict(num_chs=width, reduction=reduction, module=f'stages.{i}'))
            self.stages = nn.Sequential(*stages)
            self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool)
            self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
            self._init_weights()
        if dtype is not None:
            self.to(dtype)

    def _init_weights(self) -> None:
        # graph2nn init_weights: dense conv N(0, sqrt(2 / (kh * kw * out))); relational convs initialise
        # themselves with the density correction; Linear N(0, 0.01), zero bias; BN gamma 1, beta 0.
        for m in self.modules():
            if isinstance(m, RelationalConv2d):
                continue
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

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(
            stem=r'^conv_stem|bn1',
            blocks=r'^stages\.(\d+)' if coarse else r'^stages\.(\d+)\.(\d+)',
        )

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Features of the stem (after ReLU) and of every stage; ``indices`` as in timm (0 is the stem)."""
        assert output_fmt in ('NCHW',), 'Output shape must be NCHW.'
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        x = self.act1(self.bn1(self.conv_stem(x)))
        if 0 in take_indices:
            intermediates.append(x)
        x = self.maxpool(x)
        if torch.jit.is_scripting() or not stop_early:
            stages = self.stages
        else:
            stages = self.stages[:max_index]
        for feat_idx, stage in enumerate(stages, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages (and the head) that the requested intermediates do not need."""
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        self.stages = self.stages[:max_index]
        self.num_features = self.feature_info[max_index]['num_chs']
        if prune_head or max_index < len(self.feature_info) - 1:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_stem(x)
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
        if self.drop_rate > 0.:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


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
