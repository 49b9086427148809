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
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import create_classifier
from timm.models import checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from ..flops import GraphCounter, linear_macs, match_widths
from ..graphs import GraphSpec
from ..layers import RelationalLinear
from ._relgraph import base_cfg, create_relgraph, family_tags, RelGraphModel

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
def mlp5_widths(spec: GraphSpec, match_flops: bool = True, base_width: int = BASE_WIDTH) -> int:
    """Hidden width for a graph: the smallest width whose MACs reach the complete-graph MLP's.

    Matched on the paper's CIFAR-10 setting (3x32x32 input, 10 classes) whatever the runtime input size and
    classes, so that weights stay loadable under a new head or input (the dense stem cancels out anyway).
    """
    if not match_flops or spec.is_complete:
        return base_width
    in_features, num_classes = 3 * 32 * 32, 10
    baseline = mlp5_macs(base_width, GraphCounter(None), in_features, num_classes, base_width)
    counter = GraphCounter(spec.build())
    widths, _ = match_widths(lambda w: mlp5_macs(w[0], counter, in_features, num_classes, base_width),
                             [base_width], baseline, coarse_rounds=COARSE_ROUNDS)
    return widths[0]


class RelGraphMLP(RelGraphModel):
    """5-layer MLP whose three middle layers follow a relational graph."""

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
            global_pool: str = 'avg',
            execution: str = 'dense',
            device=None,
            dtype=None,
    ):
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.drop_rate = drop_rate
        G = self._init_graph(graph)
        in_features = in_chans * img_size[0] * img_size[1]
        if width is None:
            width = mlp5_widths(graph, match_flops, base_width)
        self.width = width
        first = base_width  # the dense first layer keeps the complete graph's width
        # MACs at this model's own input size and classes, and of its complete-graph counterpart
        self.macs = mlp5_macs(width, GraphCounter(G), in_features, num_classes, first)
        self.baseline_macs = mlp5_macs(base_width, GraphCounter(None), in_features, num_classes, first)
        self.num_features = self.head_hidden_size = width

        self.stem = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(in_features, first, bias=False, **dd),
            nn.BatchNorm1d(first, **dd),
            nn.ReLU(inplace=True),
        )
        blocks = []
        dim_in = first
        for _ in range(NUM_RELATIONAL):
            blocks.append(nn.Sequential(
                RelationalLinear(dim_in, width, G, bias=False, execution=execution, **dd),
                nn.BatchNorm1d(width, **dd),
                nn.ReLU(inplace=True),
            ))
            dim_in = width
        self.blocks = nn.Sequential(*blocks)
        # An MLP has no spatial maps: its features are hidden vectors, served as [B, C, 1, 1] maps that cover
        # the whole image (reduction = image size), so timm's pooling, heads and feature API apply unchanged.
        self.global_pool, self.fc = create_classifier(width, num_classes, pool_type=global_pool, **dd)
        self.head_drop = nn.Dropout(drop_rate)
        reduction = max(img_size)
        self.feature_info = [dict(num_chs=first, reduction=reduction, module='stem')] + [
            dict(num_chs=width, reduction=reduction, module=f'blocks.{i}') for i in range(NUM_RELATIONAL)]
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

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Hidden vectors of the stem (index 0) and the relational layers (1..3), as ``[B, C, 1, 1]``."""
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, max_index = feature_take_indices(len(self.blocks) + 1, indices)
        intermediates = []
        x = self.stem(x)
        if 0 in take_indices:
            intermediates.append(x[:, :, None, None])
        last = max_index if stop_early else len(self.blocks)
        for i, block in enumerate(self.blocks):
            if i >= last:
                break
            x = block(x)
            if i + 1 in take_indices:
                intermediates.append(x[:, :, None, None])
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.blocks) + 1, indices)
        self.blocks = self.blocks[:max_index]
        if prune_head:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.blocks, x)
        else:
            x = self.blocks(x)
        return x[:, :, None, None]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs):
    return base_cfg(
        num_classes=10, input_size=(3, 32, 32), pool_size=(1, 1), fixed_input_size=True, crop_pct=1.0,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), first_conv='stem.1', classifier='fc',
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
