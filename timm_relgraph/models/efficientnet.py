"""Relational-graph EfficientNet-B0 (16-node graphs) on timm's ``EfficientNet``.

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1,
following the authors' code (facebookresearch/graph2nn, ``pycls/models/efficientnet.py``: EN-B0 configs,
``GROUP_NUM: 16``, ``RESNET.TRANS_FUN: mbtalkconv_transform``).

The network is timm's ``EfficientNet`` built from ``decode_arch_def`` of the B0 architecture (stem Conv3x3
32 + BN + Swish, stages of timm's ``DepthwiseSeparableConv`` / ``InvertedResidual`` with squeeze-excite,
Conv1x1 1280 head, global pool, classifier), so its drop-path, dropout, act/norm layers, grad checkpointing,
``forward_intermediates``, ``prune_intermediate_layers``, ``group_matcher`` and feature extraction are timm's.
Two architectures are built, as in the paper:

* **Complete graph**: EfficientNet-B0 itself (graph2nn's ``mbconv_transform`` baseline): expansion
  ``6 x`` the block input width, squeeze-excite width ``int(block_in * 0.25)``. Nothing is relational, so
  ``relgraph_efficientnet_b0_c1.0_l1.0`` *is* timm's ``efficientnet_b0`` key for key (it loads timm's ImageNet
  weights) and has 385,824,092 MACs at 224x224 with 1000 classes, the paper's baseline.
* **Relational graph**: graph2nn's ``MBTalkConv``. Every block of stage i expands to the *fixed* width
  ``WIDTHS[i] * EXP_RATIOS[i]`` = (-, 144, 240, 480, 672, 1152, 1920) whatever its input width (graph2nn's
  ``expdim_list``, never widened by matching); stage 0 (expansion 1) has no expansion conv and its depthwise
  conv runs on the block input width; squeeze-excite width ``int(block_in * 0.25)``. The 1x1 expansion conv
  (``conv_pw`` of an ``InvertedResidual``) and the 1x1 projection (its ``conv_pwl``; ``conv_pw`` of the stage-0
  ``DepthwiseSeparableConv``) follow the 16-node graph; the stem, depthwise, squeeze-excite and head convs and
  the classifier are dense.

FLOPs matching widens the 7 stage output widths (stem 32 and head 1280 fixed), keeping their ratios, with the
paper's matcher in its setting (3x224x224, 1000 classes) until the relational network's MACs first reach
the baseline's. For the paper's best graph (n=16, k=5.61, p=0.026, seed 2) this gives graph2nn's widths
(30, 42, 74, 145, 203, 348, 580) at 386,319,325 MACs. MACs follow the paper's counter: squeeze-excite convs
count ``in * out + bias`` (their input is 1x1), relational convs only the weights their mask keeps.

timm's builder rounds channels, which the paper does not; the adjustments made here:

* ``round_chs_fn`` is the identity, so matched stage widths (30, 42, ...) are not rounded to multiples of 8
  (for B0's own widths it was a no-op anyway);
* ``InvertedResidual`` derives its expansion as ``make_divisible(in_chs * exp_ratio)`` (a multiple of 8), so a
  relational block gets ``exp_ratio = expansion / in_chs``, which lands exactly on the fixed widths (all
  multiples of 8); on the complete graph the B0 ratio 6 is kept;
* timm sizes squeeze-excite as ``round(mid_chs * se_ratio / exp_ratio)``, graph2nn as ``int(block_in *
  0.25)`` (they differ for e.g. in=30: 8 vs 7), so every block gets an explicit ``SqueezeExcite`` with
  ``rd_channels`` (and ``se_ratio=0`` so the builder leaves it alone). On B0's widths both rules agree.

Every block's widths come from :func:`block_widths`, both for the model and for its analytic complexity
(:func:`ds_block_complexity`, :func:`ir_block_complexity`, composed by :func:`efficientnet_b0_macs`), and the
built model is checked against them.

Initialisation follows the paper's code (graph2nn ``init_weights``) on every graph, the complete one included,
so the baseline and the relational networks of a sweep start alike: relational convs
``N(0, sqrt(2 / (out * density)))`` (in :class:`~timm_relgraph.layers.RelationalConv2d`), dense convs
``N(0, sqrt(2 / (kh * kw * out)))`` ignoring groups (timm's ``_init_weight_goog`` divides a depthwise conv's
fan-out by its groups), squeeze-excite biases at PyTorch's default (timm zeroes them), BN weight 1, bias 0,
classifier ``N(0, 0.01)`` with zero bias (timm: uniform).
"""
import math
from functools import lru_cache, partial
from typing import Optional, Sequence, Tuple, Union

import networkx as nx
import torch
import torch.nn as nn
from timm.layers import get_act_layer, make_divisible
from timm.models import generate_default_cfgs, register_model
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual, SqueezeExcite
from timm.models._efficientnet_builder import decode_arch_def
from timm.models.efficientnet import EfficientNet

from ..flops import GraphCounter, conv_macs, conv_out, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import is_relational, relationalize
from ..paper import COARSE_ROUNDS, MATCH_SETTING
from ._builder import RelGraphMixin, base_cfg, create_relgraph, family_tags, init_paper_head

__all__ = ['RelGraphEfficientNet', 'efficientnet_b0_macs', 'efficientnet_b0_widths', 'efficientnet_b0_block_args',
           'block_widths', 'ds_block_complexity', 'ir_block_complexity', 'BASE_WIDTHS', 'EXP_RATIOS',
           'EXPANSION_WIDTHS', 'RELATIONAL_LAYERS']

FAMILY = 'efficientnet_b0'
STEM_WIDTH = 32
HEAD_WIDTH = 1280
SE_RATIO = 0.25
# timm's EfficientNet-B0 (and graph2nn's EN-B0 config): per stage, block kind, repeats, kernel, stride,
# expansion ratio, output width; squeeze-excite 0.25 everywhere.
ARCH_DEF = (
    ('ds_r1_k3_s1_e1_c16_se0.25',),
    ('ir_r2_k3_s2_e6_c24_se0.25',),
    ('ir_r2_k5_s2_e6_c40_se0.25',),
    ('ir_r3_k3_s2_e6_c80_se0.25',),
    ('ir_r3_k5_s1_e6_c112_se0.25',),
    ('ir_r4_k5_s2_e6_c192_se0.25',),
    ('ir_r1_k3_s1_e6_c320_se0.25',),
)
DEPTHS = (1, 2, 2, 3, 3, 4, 1)
KERNELS = (3, 3, 5, 3, 5, 5, 3)
STRIDES = (1, 2, 2, 2, 1, 2, 1)
EXP_RATIOS = (1, 6, 6, 6, 6, 6, 6)
BASE_WIDTHS = (16, 24, 40, 80, 112, 192, 320)
# graph2nn's expdim_list: the fixed expansion width of every relational block of a stage (stage 0: unused).
EXPANSION_WIDTHS = tuple(w * e for w, e in zip(BASE_WIDTHS, EXP_RATIOS))
# The convs of each timm block kind that follow the graph.
RELATIONAL_LAYERS = {DepthwiseSeparableConv: ('conv_pw',), InvertedResidual: ('conv_pw', 'conv_pwl')}

Size = Tuple[int, int]


def _is_complete(G: Optional[nx.Graph]) -> bool:
    if G is None:
        return True
    n = G.number_of_nodes()
    return G.number_of_edges() - nx.number_of_selfloops(G) == n * (n - 1) // 2


def block_widths(stage: int, in_chs: int, relational: bool) -> Tuple[int, int]:
    """``(expansion width, squeeze-excite width)`` of a block of ``stage`` with ``in_chs`` inputs.

    Stage 0 has no expansion (its depthwise conv runs on ``in_chs``). Otherwise the relational (graph2nn
    ``MBTalkConv``) width is the stage's fixed :data:`EXPANSION_WIDTHS` entry and the complete-graph (B0) width
    is timm's ``make_divisible(6 * in_chs)`` (``6 * in_chs`` for widths that are multiples of 4, as B0's are).
    The squeeze-excite width is ``int(in_chs * 0.25)`` in both.
    """
    se_chs = int(in_chs * SE_RATIO)
    if EXP_RATIOS[stage] == 1:
        return in_chs, se_chs
    if relational:
        return EXPANSION_WIDTHS[stage], se_chs
    return make_divisible(in_chs * EXP_RATIOS[stage]), se_chs


def _se_macs(chs: int, se_chs: int) -> int:
    # squeeze-excite on the pooled 1x1 map: in * out + bias for each of its two convs
    return conv_macs(chs, se_chs, 1, 1, 1, bias=True) + conv_macs(se_chs, chs, 1, 1, 1, bias=True)


def ds_block_complexity(in_chs: int, out_chs: int, kernel: int, stride: int, se_chs: int, size: Size,
                        counter: Optional[GraphCounter]) -> Tuple[int, Size]:
    """MACs and output size of timm's ``DepthwiseSeparableConv``: dw kxk -> SE -> 1x1 projection (relational
    on ``counter``'s graph)."""
    out = (conv_out(size[0], kernel, stride, kernel // 2), conv_out(size[1], kernel, stride, kernel // 2))
    macs = conv_macs(in_chs, in_chs, kernel, *out, groups=in_chs)
    macs += _se_macs(in_chs, se_chs)
    macs += conv_macs(in_chs, out_chs, 1, *out, counter=counter)
    return macs, out


def ir_block_complexity(in_chs: int, mid_chs: int, out_chs: int, kernel: int, stride: int, se_chs: int,
                        size: Size, counter: Optional[GraphCounter]) -> Tuple[int, Size]:
    """MACs and output size of timm's ``InvertedResidual``: 1x1 expansion -> dw kxk -> SE -> 1x1 projection
    (both 1x1s relational on ``counter``'s graph)."""
    macs = conv_macs(in_chs, mid_chs, 1, *size, counter=counter)
    out = (conv_out(size[0], kernel, stride, kernel // 2), conv_out(size[1], kernel, stride, kernel // 2))
    macs += conv_macs(mid_chs, mid_chs, kernel, *out, groups=mid_chs)
    macs += _se_macs(mid_chs, se_chs)
    macs += conv_macs(mid_chs, out_chs, 1, *out, counter=counter)
    return macs, out


def efficientnet_b0_macs(widths: Sequence[int], counter: GraphCounter, num_classes: int = 1000, in_chans: int = 3,
                         img_size: Union[int, Size] = 224, relational: Optional[bool] = None,
                         pool_mult: int = 1) -> int:
    """MACs of EfficientNet-B0 with stage output ``widths`` on ``counter``'s graph (no model is built).

    ``relational`` chooses the architecture (graph2nn's fixed expansion widths, or plain B0); by default it is
    relational unless the counter's graph is complete or absent. ``pool_mult`` is the global pool's feature
    multiplier (2 for ``catavgmax``), which widens the classifier.
    """
    if relational is None:
        relational = not _is_complete(counter.graph)
    if not relational:
        counter = GraphCounter(None)
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    size = (conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1))
    macs = conv_macs(in_chans, STEM_WIDTH, 3, *size)
    in_chs = STEM_WIDTH
    for stage, out_chs in enumerate(widths):
        for b in range(DEPTHS[stage]):
            stride = STRIDES[stage] if b == 0 else 1
            mid_chs, se_chs = block_widths(stage, in_chs, relational)
            if EXP_RATIOS[stage] == 1:
                block_macs, size = ds_block_complexity(in_chs, out_chs, KERNELS[stage], stride, se_chs, size,
                                                       counter)
            else:
                block_macs, size = ir_block_complexity(in_chs, mid_chs, out_chs, KERNELS[stage], stride, se_chs,
                                                       size, counter)
            macs += block_macs
            in_chs = out_chs
    macs += conv_macs(in_chs, HEAD_WIDTH, 1, *size)
    return macs + linear_macs(HEAD_WIDTH * pool_mult, max(num_classes, 0))


@lru_cache(maxsize=256)
def efficientnet_b0_widths(spec: GraphSpec, match_flops: bool = True) -> Tuple[int, ...]:
    """Stage widths for a graph: the paper's FLOPs matcher against the complete graph (B0), in the paper's
    setting (3x224x224, 1000 classes) whatever the runtime input and head, so widths depend on the graph alone."""
    if not match_flops or spec.is_complete:
        return BASE_WIDTHS
    in_chans, size, classes = MATCH_SETTING[FAMILY]
    baseline = efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None), classes, in_chans, size, relational=False)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda ws: efficientnet_b0_macs(ws, counter, classes, in_chans, size, relational=True),
                             list(BASE_WIDTHS), baseline, coarse_rounds=COARSE_ROUNDS[FAMILY])
    return tuple(widths)


def _keep_channels(channels, *args, **kwargs) -> int:
    """timm's ``round_chs_fn`` replaced by the identity: the paper's widths are used as they are."""
    return int(channels)


def efficientnet_b0_block_args(widths: Sequence[int], relational: bool):
    """timm block args (``decode_arch_def`` of B0) with the stage ``widths`` and each block's expansion and
    squeeze-excite widths set from :func:`block_widths`."""
    stages = decode_arch_def([list(s) for s in ARCH_DEF])
    in_chs = STEM_WIDTH
    for stage, (stage_args, out_chs) in enumerate(zip(stages, widths)):
        for ba in stage_args:
            mid_chs, se_chs = block_widths(stage, in_chs, relational)
            ba['out_chs'] = int(out_chs)
            if ba['block_type'] == 'ir':
                ba['exp_ratio'] = mid_chs / in_chs  # make_divisible(in_chs * exp_ratio) == mid_chs
            ba['se_ratio'] = 0.  # the builder would size SE from the ratio; it is given explicitly instead
            ba['se_layer'] = partial(SqueezeExcite, rd_channels=se_chs)
            in_chs = int(out_chs)
    return stages


# timm EfficientNet options that change the paper's stem, head, channel rounding, blocks or resolution.
_FIXED_BY_PAPER = ('block_args', 'num_features', 'stem_size', 'stem_kernel_size', 'fix_stem', 'output_stride',
                   'pad_type', 'aa_layer', 'se_layer', 'round_chs_fn', 'channel_multiplier', 'depth_multiplier',
                   'channel_divisor', 'group_size', 'arch_def')


class RelGraphEfficientNet(RelGraphMixin, EfficientNet):
    """timm's ``EfficientNet`` (B0) whose 1x1 expansion / projection convs follow one 16-node relational graph.

    Args:
        graph: The relational graph (resolved from the model name by ``create_relgraph``).
        match_flops: Widen the stages to the complete graph's MACs (False keeps B0's widths).
        widths: Explicit stage output widths (skips matching).
        execution: How relational convs run (see ``timm_relgraph.layers.EXECUTION_STRATEGIES``).
        num_classes, in_chans, drop_rate, drop_path_rate, global_pool, act_layer (default swish), norm_layer
            (default BatchNorm2d), device, dtype: timm ``EfficientNet`` options.
        img_size: Accepted and ignored (any input size works; widths are matched at 224x224).
    """

    def __init__(
            self,
            graph: GraphSpec,
            match_flops: bool = True,
            widths: Optional[Sequence[int]] = None,
            execution: str = 'auto',
            num_classes: int = 1000,
            in_chans: int = 3,
            drop_rate: float = 0.,
            drop_path_rate: float = 0.,
            global_pool: str = 'avg',
            act_layer=None,
            norm_layer=None,
            img_size=None,
            device=None,
            dtype=None,
            **kwargs,
    ):
        fixed = sorted(set(kwargs) & set(_FIXED_BY_PAPER))
        if fixed:
            raise TypeError(f'relgraph_{FAMILY} has the paper\'s EfficientNet-B0 stem, blocks and head; {fixed} '
                            f'cannot be set')
        if kwargs:
            raise TypeError(f'{type(self).__name__} got unexpected arguments {sorted(kwargs)}')
        del img_size
        relational = not graph.is_complete
        widths = tuple(int(w) for w in (widths if widths is not None else efficientnet_b0_widths(graph, match_flops)))
        if len(widths) != len(BASE_WIDTHS) or min(widths) < 1:
            raise ValueError(f'widths must give {len(BASE_WIDTHS)} positive stage widths, got {widths}')
        super().__init__(
            block_args=efficientnet_b0_block_args(widths, relational),
            num_classes=num_classes,
            num_features=HEAD_WIDTH,
            in_chans=in_chans,
            stem_size=STEM_WIDTH,
            fix_stem=True,
            round_chs_fn=_keep_channels,
            act_layer=get_act_layer(act_layer if act_layer is not None else 'swish'),
            norm_layer=norm_layer,
            drop_rate=drop_rate,
            drop_path_rate=drop_path_rate,
            global_pool=global_pool,
            device=device,
            dtype=dtype,
        )
        self._check_widths(widths, relational)
        G = self._setup_graph(graph)
        self.family, self.widths, self.relational = FAMILY, widths, relational
        relationalize(self, G, self._relational_layer_names(), init='paper', execution=execution)
        self._init_paper_weights()
        pool_mult = self.global_pool.feat_mult()
        self.macs = efficientnet_b0_macs(widths, GraphCounter(G if relational else None), self.num_classes,
                                         in_chans, relational=relational, pool_mult=pool_mult)
        self.baseline_macs = efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None), self.num_classes, in_chans,
                                                  relational=False, pool_mult=pool_mult)

    def _check_widths(self, widths: Sequence[int], relational: bool) -> None:
        """The built blocks have the widths the analytic complexity assumes (guards timm's channel rounding)."""
        in_chs = STEM_WIDTH
        for stage, (blocks, out_chs) in enumerate(zip(self.blocks, widths)):
            for blk in blocks:
                mid_chs, se_chs = block_widths(stage, in_chs, relational)
                built = (blk.conv_dw.in_channels, blk.se.conv_reduce.out_channels,
                         (blk.conv_pwl if isinstance(blk, InvertedResidual) else blk.conv_pw).out_channels)
                if built != (mid_chs, se_chs, out_chs):
                    raise RuntimeError(f'timm built blocks.{stage} with (expansion, SE, out) = {built}, expected '
                                       f'{(mid_chs, se_chs, out_chs)}; timm\'s channel rounding changed')
                in_chs = out_chs

    def _relational_layer_names(self):
        return [f'blocks.{i}.{j}.{name}' for i, stage in enumerate(self.blocks) for j, blk in enumerate(stage)
                for name in RELATIONAL_LAYERS[type(blk)]]

    @torch.no_grad()
    def _init_paper_weights(self) -> None:
        """graph2nn ``init_weights`` (relational convs are initialised by ``relationalize(init='paper')``)."""
        for m in self.modules():
            if is_relational(m):
                continue
            if isinstance(m, nn.Conv2d):
                kh, kw = m.kernel_size
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / (kh * kw * m.out_channels)))
                if m.bias is not None:  # left at PyTorch's default by the paper (timm zeroes it)
                    fan_in = m.in_channels // m.groups * kh * kw
                    nn.init.uniform_(m.bias, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        init_paper_head(self.classifier)


def _cfg(**kwargs):
    return base_cfg(first_conv='conv_stem', classifier='classifier', **kwargs)


default_cfgs = generate_default_cfgs({
    'relgraph_efficientnet_b0': _cfg(),
    **{f'{arch}.{tag}': _cfg() for arch, tag in family_tags(FAMILY)},
})


def _create(variant: str, pretrained: bool = False, **kwargs) -> RelGraphEfficientNet:
    # features_only: timm's FeatureListNet on the flattened stages (the taps are whole stages, ``blocks.i``)
    kwargs.setdefault('feature_cfg', dict(flatten_sequential=True))
    return create_relgraph(RelGraphEfficientNet, FAMILY, variant, pretrained, default_cfg=_cfg(), **kwargs)


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
    """EfficientNet-B0 on the complete graph: ``relgraph_efficientnet_b0_c1.0_l1.0`` (timm's efficientnet_b0)."""
    return _create('relgraph_efficientnet_b0_c1', pretrained, **kwargs)
