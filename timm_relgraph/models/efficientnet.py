"""Relational-graph EfficientNet-B0 (16-node graphs).

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1;
the authors' ``pycls/models/efficientnet.py`` (EN-B0 configs, ``GROUP_NUM: 16``).

Layout (EfficientNet-B0 without width/depth multipliers):

* stem: Conv3x3(in_chans -> 32, stride 2) + BN + Swish, dense and never widened;
* 7 stages, (repeats, out width, expansion, stride, kernel) = (1,16,1,1,3) (2,24,6,2,3) (2,40,6,2,5) (3,80,6,2,3)
  (3,112,6,1,5) (4,192,6,2,5) (1,320,6,1,3); stride on the first block of a stage;
* MBConv block: [1x1 expansion conv + BN + Swish] (only when the expansion ratio is not 1) -> dense depthwise
  kxk conv (stride, padding k // 2) + BN + Swish -> squeeze-excite (dense; width ``int(block_in * 0.25)``, Swish,
  sigmoid, conv biases) -> 1x1 projection conv + BN; ``x + f(x)`` when stride is 1 and in == out. No drop-connect.
  **The expansion and projection 1x1 convs follow the relational graph (16 nodes)**; the rest is dense;
* head: dense Conv1x1(-> 1280, fixed) + BN + Swish -> global average pool -> (dropout, off by default) -> Linear.

FLOPs matching widens the 7 stage output widths (stem 32 and head 1280 stay fixed) with the paper's matcher, at
224x224, until the MACs first reach the complete-graph network's (385,824,092 MACs at 224x224, 1000 classes;
squeeze-excite convs count ``in * out + bias`` with no spatial factor, as the paper's counter does).

Deviation from the authors' code (deliberate): here the expansion width is ``6 x`` the block's *input* width,
exactly as in the plain MBConv, so the relational network on the complete graph *is* the baseline EfficientNet-B0
and widening a stage widens its expansion too. The authors' ``mbtalkconv_transform`` instead fixes the relational
expansion width of every block of stage i at ``baseline_out_i * 6`` ([16, 144, 240, 480, 672, 1152, 1920],
never widened by matching), so their complete-graph relational net has 467,785,436 MACs (not the baseline), and
their matched widths for the best graph are [30, 42, 74, 145, 203, 348, 580]; ours differ accordingly.

Initialisation follows the paper's code: relational convs ``N(0, sqrt(2 / (out * density)))`` (in
:class:`~timm_relgraph.layers.RelationalConv2d`), dense convs ``N(0, sqrt(2 / (kh * kw * out)))`` ignoring
groups, squeeze-excite biases left at PyTorch's default, Linear ``N(0, 0.01)`` with zero bias, BN gamma 1, beta 0.
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

__all__ = ['RelGraphEfficientNet', 'efficientnet_b0_macs', 'efficientnet_b0_widths', 'MBConv']

STEM_WIDTH = 32
HEAD_WIDTH = 1280
SE_RATIO = 0.25
# (repeats, out width, expansion ratio, stride, kernel) per stage
STAGES = ((1, 16, 1, 1, 3), (2, 24, 6, 2, 3), (2, 40, 6, 2, 5), (3, 80, 6, 2, 3), (3, 112, 6, 1, 5),
          (4, 192, 6, 2, 5), (1, 320, 6, 1, 3))
BASE_WIDTHS = tuple(s[1] for s in STAGES)
# timm's EfficientNet feature taps: the last block of stages 1, 2, 3, 5, 7 (strides 2, 4, 8, 16, 32)
FEATURE_STAGES = (0, 1, 2, 4, 6)
MATCH_SIZE = 224
COARSE_ROUNDS = 9  # the paper's matcher uses 9 coarse rounds on ImageNet


def _se_width(block_in: int) -> int:
    return int(block_in * SE_RATIO)


def efficientnet_b0_macs(widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000, in_chans: int = 3,
                         img_size: Union[int, Tuple[int, int]] = MATCH_SIZE) -> int:
    """MACs of EfficientNet-B0 with relational stage output ``widths`` (analytic, no model built)."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
    macs = conv_macs(in_chans, STEM_WIDTH, 3, h, w)
    dim_in = STEM_WIDTH
    for (repeats, _, expand, stride, kernel), dim_out in zip(STAGES, widths):
        for b in range(repeats):
            s = stride if b == 0 else 1
            exp = dim_in * expand
            if expand != 1:
                macs += conv_macs(dim_in, exp, 1, h, w, counter=counter)
            h, w = conv_out(h, kernel, s, kernel // 2), conv_out(w, kernel, s, kernel // 2)
            macs += conv_macs(exp, exp, kernel, h, w, groups=exp)
            se = _se_width(dim_in)
            macs += conv_macs(exp, se, 1, 1, 1, bias=True) + conv_macs(se, exp, 1, 1, 1, bias=True)
            macs += conv_macs(exp, dim_out, 1, h, w, counter=counter)
            dim_in = dim_out
    macs += conv_macs(dim_in, HEAD_WIDTH, 1, h, w)
    return macs + linear_macs(HEAD_WIDTH, max(num_classes, 0))


@lru_cache(maxsize=256)
def efficientnet_b0_widths(spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the smallest (ratio-keeping) widths whose MACs reach the complete-graph B0's.

    Matched on the paper's ImageNet setting (3x224x224 input, 1000 classes) whatever the runtime input size,
    channels and classes, so that weights stay loadable under a new head or input.
    """
    if not match_flops or spec.is_complete:
        return BASE_WIDTHS
    baseline = efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None))
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: efficientnet_b0_macs(ws, counter), list(BASE_WIDTHS), baseline,
                             coarse_rounds=COARSE_ROUNDS)
    return tuple(widths)


class SqueezeExcite(nn.Module):
    """Dense squeeze-excite: avg pool -> Conv1x1(+bias) -> Swish -> Conv1x1(+bias) -> sigmoid -> scale."""

    def __init__(self, channels: int, se_channels: int):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, se_channels, 1, bias=True)
        self.act = nn.SiLU(inplace=True)
        self.conv_expand = nn.Conv2d(se_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.conv_expand(self.act(self.conv_reduce(s)))
        return x * self.gate(s)


class MBConv(nn.Module):
    """Inverted-residual block whose 1x1 expansion and projection convs follow the relational graph."""

    def __init__(self, dim_in: int, dim_out: int, expand: int, stride: int, kernel: int, graph,
                 execution: str = 'dense'):
        super().__init__()
        exp = dim_in * expand
        self.has_skip = stride == 1 and dim_in == dim_out
        if expand != 1:
            self.conv_pw = RelationalConv2d(dim_in, exp, 1, graph, bias=False, execution=execution)
            self.bn1 = nn.BatchNorm2d(exp)
            self.act1 = nn.SiLU(inplace=True)
        else:
            self.conv_pw = nn.Identity()
            self.bn1 = nn.Identity()
            self.act1 = nn.Identity()
        self.conv_dw = nn.Conv2d(exp, exp, kernel, stride=stride, padding=kernel // 2, groups=exp, bias=False)
        self.bn2 = nn.BatchNorm2d(exp)
        self.act2 = nn.SiLU(inplace=True)
        self.se = SqueezeExcite(exp, _se_width(dim_in))
        self.conv_pwl = RelationalConv2d(exp, dim_out, 1, graph, bias=False, execution=execution)
        self.bn3 = nn.BatchNorm2d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.bn1(self.conv_pw(x)))
        x = self.act2(self.bn2(self.conv_dw(x)))
        x = self.se(x)
        x = self.bn3(self.conv_pwl(x))
        if self.has_skip:
            x = x + shortcut
        return x


class RelGraphEfficientNet(RelGraphModel):
    """EfficientNet-B0 whose MBConv 1x1 expansion/projection convs follow a 16-node relational graph."""

    classifier_name = 'classifier'

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
            raise TypeError(f'RelGraphEfficientNet got unexpected arguments {sorted(kwargs)}')
        del img_size  # any input size works; widths are always matched at 224x224
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        G = self._init_graph(graph)
        if widths is None:
            widths = efficientnet_b0_widths(graph, match_flops)
        widths = tuple(int(w) for w in widths)
        if len(widths) != len(BASE_WIDTHS) or min(widths) < 1:
            raise ValueError(f'widths must be {len(BASE_WIDTHS)} positive stage widths, got {widths}')
        # MACs at 224x224 with this model's channels and classes, and of its complete-graph counterpart
        macs = efficientnet_b0_macs(widths, GraphCounter(G), num_classes, in_chans)
        baseline = efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None), num_classes, in_chans)
        self.widths = list(widths)
        self.macs, self.baseline_macs = macs, baseline
        self.num_features = HEAD_WIDTH

        place = torch.device(device) if device is not None else contextlib.nullcontext()
        with place:
            self.conv_stem = nn.Conv2d(in_chans, STEM_WIDTH, 3, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
            self.act1 = nn.SiLU(inplace=True)
            stages = []
            dim_in = STEM_WIDTH
            reduction = 2
            self.feature_info = []
            for i, ((repeats, _, expand, stride, kernel), dim_out) in enumerate(zip(STAGES, widths)):
                blocks = []
                for b in range(repeats):
                    blocks.append(MBConv(dim_in, dim_out, expand, stride if b == 0 else 1, kernel, G, execution))
                    dim_in = dim_out
                stages.append(nn.Sequential(*blocks))
                reduction *= stride
                if i in FEATURE_STAGES:
                    self.feature_info.append(dict(num_chs=dim_out, reduction=reduction, module=f'blocks.{i}',
                                                  stage=i + 1))
            self.blocks = nn.Sequential(*stages)
            self.stage_ends: List[int] = [int(f['stage']) for f in self.feature_info]
            self.conv_head = nn.Conv2d(dim_in, HEAD_WIDTH, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(HEAD_WIDTH)
            self.act2 = nn.SiLU(inplace=True)
            self.global_pool, self.classifier = create_classifier(self.num_features, num_classes,
                                                                  pool_type=global_pool)
            self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
            self._init_weights()
        if dtype is not None:
            self.to(dtype)

    def _init_weights(self) -> None:
        # graph2nn init_weights: dense conv N(0, sqrt(2 / (kh * kw * out))) ignoring groups (biases untouched);
        # relational convs initialise themselves; Linear N(0, 0.01), zero bias; BN gamma 1, beta 0.
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
            blocks=[
                (r'^blocks\.(\d+)' if coarse else r'^blocks\.(\d+)\.(\d+)', None),
                (r'conv_head|bn2', (99999,)),
            ],
        )

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
            extra_blocks: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward features that returns intermediates (timm's EfficientNet semantics).

        Args:
            x: Input image tensor.
            indices: Take last n feature taps if int, all if None, select matching indices if sequence.
            norm: Unused (no norm layer applies to intermediates).
            stop_early: Stop iterating over stages when the last desired intermediate is hit.
            output_fmt: Shape of intermediate feature outputs ('NCHW').
            intermediates_only: Only return intermediate features.
            extra_blocks: Index every stage (0 is the stem) instead of the ``feature_info`` taps.
        """
        assert output_fmt in ('NCHW',), 'Output shape must be NCHW.'
        intermediates = []
        if extra_blocks:
            take_indices, max_index = feature_take_indices(len(self.blocks) + 1, indices)
        else:
            take_indices, max_index = feature_take_indices(len(self.stage_ends), indices)
            take_indices = [self.stage_ends[i] for i in take_indices]
            max_index = self.stage_ends[max_index]
        feat_idx = 0  # stem is index 0
        x = self.act1(self.bn1(self.conv_stem(x)))
        if feat_idx in take_indices:
            intermediates.append(x)
        if torch.jit.is_scripting() or not stop_early:  # can't slice blocks in torchscript
            blocks = self.blocks
        else:
            blocks = self.blocks[:max_index]
        for feat_idx, blk in enumerate(blocks, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(blk, x)
            else:
                x = blk(x)
            if feat_idx in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        if feat_idx == self.stage_ends[-1]:
            x = self.act2(self.bn2(self.conv_head(x)))
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
            extra_blocks: bool = False,
    ) -> List[int]:
        """Prune the stages (and head) not required for the given intermediates; returns the kept indices."""
        if extra_blocks:
            take_indices, max_index = feature_take_indices(len(self.blocks) + 1, indices)
            num_chs = self.widths[max_index - 1] if max_index else STEM_WIDTH
        else:
            take_indices, max_index = feature_take_indices(len(self.stage_ends), indices)
            num_chs = self.feature_info[max_index]['num_chs']
            max_index = self.stage_ends[max_index]
        prune_end = prune_norm or prune_head or max_index < len(self.blocks)
        self.blocks = self.blocks[:max_index]
        if prune_end:
            self.conv_head = nn.Identity()
            self.bn2 = nn.Identity()
            self.act2 = nn.Identity()
            self.num_features = self.head_hidden_size = num_chs
        if prune_head or prune_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_stem(x)
        x = self.bn1(x)
        x = self.act1(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x, flatten=True)
        else:
            x = self.blocks(x)
        x = self.conv_head(x)
        x = self.bn2(x)
        x = self.act2(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs):
    return base_cfg(first_conv='conv_stem', classifier='classifier', **kwargs)


default_cfgs = generate_default_cfgs({
    'relgraph_efficientnet_b0': _cfg(),
    **{f'{arch}.{tag}': _cfg() for arch, tag in family_tags('efficientnet_b0')},
})


def _create(variant: str, pretrained: bool = False, **kwargs) -> RelGraphEfficientNet:
    return create_relgraph(RelGraphEfficientNet, 'efficientnet_b0', variant, pretrained, default_cfg=_cfg(),
                           feature_cfg=dict(flatten_sequential=True), **kwargs)


@register_model
def relgraph_efficientnet_b0(pretrained=False, **kwargs) -> RelGraphEfficientNet:
    """EfficientNet-B0 on the paper's best EfficientNet graph (n=16, C=0.613, L=1.892)."""
    return _create('relgraph_efficientnet_b0', pretrained, **kwargs)


@register_model
def relgraph_efficientnet_b0_c0(pretrained=False, **kwargs) -> RelGraphEfficientNet:
    """EfficientNet-B0 on a 16-node graph with 0 <= C < 1: ``relgraph_efficientnet_b0_c0.6_l1.9``."""
    return _create('relgraph_efficientnet_b0_c0', pretrained, **kwargs)


@register_model
def relgraph_efficientnet_b0_c1(pretrained=False, **kwargs) -> RelGraphEfficientNet:
    """EfficientNet-B0 on the complete graph: ``relgraph_efficientnet_b0_c1.0_l1.0`` (the plain B0)."""
    return _create('relgraph_efficientnet_b0_c1', pretrained, **kwargs)
