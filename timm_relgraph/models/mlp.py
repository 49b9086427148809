"""Relational-graph 5-layer MLP.

Paper: "Graph Structure of Neural Networks", You, Leskovec, He, Xie, ICML 2020 (arXiv:2007.06559), Sec. 4.1.

The network of the paper's CIFAR-10 experiments: flatten -> Linear(in, 512) + BN + ReLU (dense) -> three
Linear + BN + ReLU layers whose weights follow the relational graph (64 nodes) -> Linear classifier. The
hidden width (512 for the complete graph) is widened until the MACs first reach those of the complete-graph
MLP with the same input and classes (e.g. 1522 for the paper's best graph, 2,365,124 vs 2,364,416 MACs).
Input size and channels are configurable (``in_chans=1, img_size=28`` for Fashion-MNIST).
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.models import generate_default_cfgs, register_model

from ..flops import GraphCounter, linear_macs, match_widths
from ..graphs import GraphSpec, complete_graph
from ..layers import RelationalLinear
from ._relgraph import FAMILIES, base_cfg, create_relgraph, family_tags

__all__ = ['RelGraphMLP', 'mlp5_macs', 'mlp5_widths']

FIRST_WIDTH = 512
BASE_WIDTH = 512
NUM_RELATIONAL = 3
COARSE_ROUNDS = 15  # the paper's matcher uses 15 coarse rounds on CIFAR


def mlp5_macs(width: int, counter: GraphCounter, in_features: int, num_classes: int,
              first_width: int = FIRST_WIDTH) -> int:
    """MACs of the 5-layer MLP with relational hidden ``width`` (analytic, no model built)."""
    macs = linear_macs(in_features, first_width)
    macs += linear_macs(first_width, width, counter)
    macs += (NUM_RELATIONAL - 1) * linear_macs(width, width, counter)
    return macs + linear_macs(width, max(num_classes, 0))


@lru_cache(maxsize=256)
def mlp5_widths(spec: GraphSpec, in_features: int, num_classes: int, match_flops: bool = True) -> Tuple[int, int, int]:
    """``(hidden width, MACs, baseline MACs)`` for a graph; the baseline is the complete-graph MLP."""
    baseline = mlp5_macs(BASE_WIDTH, GraphCounter(None), in_features, num_classes)
    counter = GraphCounter(spec.build())
    if not match_flops or spec.is_complete:
        return BASE_WIDTH, mlp5_macs(BASE_WIDTH, counter, in_features, num_classes), baseline
    widths, macs = match_widths(lambda w: mlp5_macs(w[0], counter, in_features, num_classes), [BASE_WIDTH], baseline,
                                coarse_rounds=COARSE_ROUNDS)
    return widths[0], macs, baseline


class RelGraphMLP(nn.Module):
    """5-layer MLP whose three middle layers follow a relational graph."""

    def __init__(
            self,
            graph: GraphSpec,
            num_classes: int = 10,
            in_chans: int = 3,
            img_size: Union[int, Tuple[int, int]] = 32,
            match_flops: bool = True,
            width: Optional[int] = None,
            drop_rate: float = 0.0,
            global_pool: str = '',
            execution: str = 'dense',
            **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise TypeError(f'RelGraphMLP got unexpected arguments {sorted(kwargs)}')
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.graph_spec = graph
        G = graph.build()
        self.graph_info = graph.describe(G)
        in_features = in_chans * img_size[0] * img_size[1]
        if width is None:
            width, macs, baseline = mlp5_widths(graph, in_features, num_classes, match_flops)
        else:
            macs = mlp5_macs(width, GraphCounter(G), in_features, num_classes)
            baseline = mlp5_macs(BASE_WIDTH, GraphCounter(None), in_features, num_classes)
        self.width = width
        self.macs, self.baseline_macs = macs, baseline
        self.num_features = self.head_hidden_size = width

        self.stem = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(in_features, FIRST_WIDTH, bias=False),
            nn.BatchNorm1d(FIRST_WIDTH),
            nn.ReLU(inplace=True),
        )
        blocks = []
        dim_in = FIRST_WIDTH
        for _ in range(NUM_RELATIONAL):
            blocks.append(nn.Sequential(
                RelationalLinear(dim_in, width, G, bias=False, execution=execution),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ))
            dim_in = width
        self.blocks = nn.Sequential(*blocks)
        self.global_pool = global_pool
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()
        self.feature_info = [dict(num_chs=width, reduction=1, module='blocks')]
        self._init_weights()

    def _init_weights(self) -> None:
        # The paper's init: every Linear (relational ones included) N(0, 0.01), zero bias; BN gamma 1, beta 0.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(stem=r'^stem', blocks=r'^blocks\.(\d+)')

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.fc = nn.Linear(self.width, num_classes) if num_classes > 0 else nn.Identity()

    @torch.jit.ignore
    def no_weight_decay(self):
        return set()  # the paper decays every parameter

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            from timm.models import checkpoint_seq
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs):
    return base_cfg(
        num_classes=10, input_size=(3, 32, 32), pool_size=None, fixed_input_size=True, crop_pct=1.0,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), first_conv='stem.1', classifier='fc',
        **kwargs)


default_cfgs = generate_default_cfgs({
    'relgraph_mlp5': _cfg(),
    **{f'{arch}.{tag}': _cfg() for arch, tag in family_tags('mlp5')},
})


def _create(variant: str, pretrained: bool = False, **kwargs) -> RelGraphMLP:
    return create_relgraph(RelGraphMLP, 'mlp5', variant, pretrained, default_cfg=_cfg(), **kwargs)


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
