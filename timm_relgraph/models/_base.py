"""The timm model API for the paper's own networks (MLP-5, CNN-8), which timm has no architecture for.

A subclass builds a stem, ``stages`` (an ``nn.Sequential``), ``feature_info`` (the stem's entry, then one per
stage), ``num_features`` and the head through :meth:`RelGraphNet._init_head`, and says how its stem runs in
:meth:`forward_stem`. Everything else timm expects (head and pooling, features, pruning, grad checkpointing)
is here, once. Neither network has a residual branch, so stochastic depth (``drop_path_rate``) has nothing to
drop and is refused; ``drop_rate`` (dropout before the classifier) works.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from timm.layers import create_classifier
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices

from ._builder import RelGraphMixin, init_paper_head

__all__ = ['RelGraphNet', 'check_no_drop_path']


def check_no_drop_path(family: str, drop_path_rate: Optional[float]) -> None:
    if drop_path_rate:
        raise ValueError(f'relgraph_{family} has no residual branches, so drop_path_rate={drop_path_rate} has '
                         f'nothing to drop; use drop_rate (dropout before the classifier) instead')


class RelGraphNet(RelGraphMixin, nn.Module):
    """Shared head, feature and training API of the relational networks that are not timm architectures."""

    def __init__(self):
        super().__init__()
        self.grad_checkpointing = False

    def _init_head(self, num_classes: int, global_pool: str, drop_rate: float, device=None, dtype=None) -> None:
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool,
                                                      device=device, dtype=dtype)
        self.head_drop = nn.Dropout(drop_rate)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
        init_paper_head(self.fc)

    def forward_stem(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns (the stem's feature map, the stages' input)."""
        raise NotImplementedError

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """A stage output as timm's ``[B, C, H, W]`` feature map (an MLP serves vectors as 1x1 maps)."""
        return x

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(stem=r'^(?:stem|conv_stem|bn1)', blocks=r'^stages\.(\d+)')

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        like = next(self.parameters())
        self.num_classes = num_classes
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=pool_type,
                                                      device=like.device, dtype=like.dtype)
        self.global_pool.train(self.training)
        self.fc.train(self.training)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()
        init_paper_head(self.fc)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Features of the stem (index 0) and of every stage (1...), timm's semantics.

        Args:
            x: Input image tensor.
            indices: Take last n features if int, all if None, select matching indices if sequence.
            norm: Unused (no norm layer applies to intermediates).
            stop_early: Stop iterating over stages when the last desired intermediate is hit.
            output_fmt: Shape of intermediate feature outputs ('NCHW' only).
            intermediates_only: Only return intermediate features.
        """
        assert output_fmt == 'NCHW', 'Output shape must be NCHW.'
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        intermediates = []
        feat, x = self.forward_stem(x)
        if 0 in take_indices:
            intermediates.append(self.feature_map(feat))
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[:max_index]
        for feat_idx, stage in enumerate(stages, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(self.feature_map(x))
        if intermediates_only:
            return intermediates
        return self.feature_map(x), intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """Drop the stages (and the head) that the requested intermediates do not need."""
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        pruned_end = max_index < len(self.stages)
        self.stages = self.stages[:max_index]
        self.num_features = self.feature_info[max_index]['num_chs']
        if prune_head or pruned_end:
            self.reset_classifier(0, '')
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        _, x = self.forward_stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)
        else:
            x = self.stages(x)
        return self.feature_map(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
