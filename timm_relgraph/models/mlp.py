"""Relational-graph 5-layer MLP.

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1.

The network of the paper's CIFAR-10 experiments: flatten -> Linear(in, 512) + BN + ReLU (dense) -> three
Linear + BN + ReLU layers whose weights follow the relational graph (64 nodes) -> Linear classifier. The
relational width (512 for the complete graph) is widened until the MACs first reach those of the complete-graph
MLP (e.g. 1522 for the paper's best graph, 2,365,124 vs 2,364,416 MACs). Widths are matched on the paper's
setting (3x32x32 input, 10 classes), so they do not change with the input size or the head.
Input size and channels are configurable (``in_chans=1, img_size=28`` for Fashion-MNIST); ``base_width``
(default 512, the paper's) narrows the whole MLP for cheap experiments.
"""
from functools import lru_cache
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.models import generate_default_cfgs, register_model

from ..flops import GraphCounter, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import relationalize
from ..paper import COARSE_ROUNDS, MATCH_SETTING
from ._base import RelGraphNet, check_no_drop_path
from ._builder import base_cfg, create_relgraph, family_tags

__all__ = ['RelGraphMLP', 'LinearBlock', 'mlp5_macs', 'mlp5_widths']

BASE_WIDTH = 512
NUM_RELATIONAL = 3


class LinearBlock(nn.Sequential):
    """Linear + BN + ReLU; in the MLP's three middle layers the Linear is relational."""

    def __init__(self, dim_in: int, dim_out: int, device=None, dtype=None):
        super().__init__()
        self.fc = nn.Linear(dim_in, dim_out, bias=False, device=device, dtype=dtype)
        self.bn = nn.BatchNorm1d(dim_out, device=device, dtype=dtype)
        self.act = nn.ReLU(inplace=True)

    @staticmethod
    def complexity(dim_in: int, dim_out: int, counter: Optional[GraphCounter] = None) -> int:
        return linear_macs(dim_in, dim_out, counter)


def mlp5_macs(width: int, counter: GraphCounter, in_features: int, num_classes: int,
              first_width: int = BASE_WIDTH) -> int:
    """MACs of the 5-layer MLP with relational hidden ``width``: its blocks' own complexity + the classifier."""
    macs = LinearBlock.complexity(in_features, first_width)
    dim_in = first_width
    for _ in range(NUM_RELATIONAL):
        macs += LinearBlock.complexity(dim_in, width, counter)
        dim_in = width
    return macs + linear_macs(width, max(num_classes, 0))


@lru_cache(maxsize=256)
def mlp5_widths(spec: GraphSpec, match_flops: bool = True, base_width: int = BASE_WIDTH) -> int:
    """Hidden width for a graph: the smallest width whose MACs reach the complete-graph MLP's, in the paper's
    CIFAR-10 setting (3x32x32, 10 classes) whatever the runtime input and head."""
    if not match_flops or spec.is_complete:
        return base_width
    in_chans, size, classes = MATCH_SETTING['mlp5']
    in_features = in_chans * size * size
    baseline = mlp5_macs(base_width, GraphCounter(None), in_features, classes, base_width)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda w: mlp5_macs(w[0], counter, in_features, classes, base_width),
                             [base_width], baseline, coarse_rounds=COARSE_ROUNDS['mlp5'])
    return widths[0]


class RelGraphMLP(RelGraphNet):
    """5-layer MLP whose three middle layers follow a relational graph.

    Its features are hidden vectors, served as ``[B, C, 1, 1]`` maps that cover the whole image (reduction =
    image size), so timm's pooling, heads and feature API apply unchanged.
    """

    def __init__(
            self,
            graph: GraphSpec,
            num_classes: int = 10,
            in_chans: int = 3,
            img_size: Union[int, Tuple[int, int]] = 32,
            match_flops: bool = True,
            width: Optional[int] = None,
            base_width: int = BASE_WIDTH,
            drop_rate: float = 0.0,
            drop_path_rate: Optional[float] = None,
            global_pool: str = 'avg',
            execution: str = 'auto',
            device=None,
            dtype=None,
    ):
        super().__init__()
        check_no_drop_path('mlp5', drop_path_rate)
        dd = dict(device=device, dtype=dtype)
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.in_chans, self.img_size = in_chans, img_size
        G = self._setup_graph(graph)
        in_features = in_chans * img_size[0] * img_size[1]
        self.width = width = int(width if width is not None else mlp5_widths(graph, match_flops, base_width))
        first = base_width  # the dense first layer keeps the complete graph's width
        self.macs = mlp5_macs(width, GraphCounter(G), in_features, num_classes, first)
        self.baseline_macs = mlp5_macs(base_width, GraphCounter(None), in_features, num_classes, first)

        self.stem = nn.Sequential(nn.Flatten(1), LinearBlock(in_features, first, **dd))
        self.stages = nn.Sequential(*[LinearBlock(first if i == 0 else width, width, **dd)
                                      for i in range(NUM_RELATIONAL)])
        reduction = max(img_size)
        self.feature_info = [dict(num_chs=first, reduction=reduction, module='stem')] + [
            dict(num_chs=width, reduction=reduction, module=f'stages.{i}') for i in range(NUM_RELATIONAL)]
        self.num_features = width
        # The paper's init: every Linear N(0, 0.01), zero bias (BN stays 1 / 0).
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
        self._init_head(num_classes, global_pool, drop_rate, **dd)
        relationalize(self, G, 'stages.*.fc', init='paper', execution=execution)

    def forward_stem(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        return x, x

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, None, None]


def _cfg(**kwargs):
    return base_cfg(
        num_classes=10, input_size=(3, 32, 32), pool_size=(1, 1), fixed_input_size=True, crop_pct=1.0,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), first_conv='stem.1.fc', classifier='fc',
        **kwargs)


default_cfgs = generate_default_cfgs({
    'relgraph_mlp5': _cfg(),
    **{f'{arch}.{tag}': _cfg() for arch, tag in family_tags('mlp5')},
})


def _create(variant: str, pretrained: bool = False, **kwargs) -> RelGraphMLP:
    return create_relgraph(RelGraphMLP, 'mlp5', variant, pretrained, default_cfg=_cfg(),
                           feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)), **kwargs)


@register_model
def relgraph_mlp5(pretrained=False, **kwargs) -> RelGraphMLP:
    """5-layer MLP on the paper's best MLP graph (C=0.449, L=2.479)."""
    return _create('relgraph_mlp5', pretrained, **kwargs)


@register_model
def relgraph_mlp5_c0(pretrained=False, **kwargs) -> RelGraphMLP:
    """5-layer MLP on a graph with 0 <= C < 1; the tag gives C and L: ``relgraph_mlp5_c0.4_l2.0``."""
    return _create('relgraph_mlp5_c0', pretrained, **kwargs)


@register_model
def relgraph_mlp5_c1(pretrained=False, **kwargs) -> RelGraphMLP:
    """5-layer MLP on the complete graph: ``relgraph_mlp5_c1.0_l1.0`` (the plain MLP)."""
    return _create('relgraph_mlp5_c1', pretrained, **kwargs)
