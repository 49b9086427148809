"""Batches straight from an in-memory image array, for small datasets whose augmentation is a flip.

timm's loader decodes, transforms and collates every sample in Python (PIL image, ``ToTensor``, ``Normalize``);
for 28 x 28 Fashion-MNIST images that costs more than the 5-layer MLP's training step. ``MemoryLoader`` does the
same arithmetic on whole batches: ``uint8 -> float / 255``, optional horizontal flip per sample, normalisation.
With the transforms it accepts (identity crop and resize, flips only) each sample equals one of timm's two
outputs for it (flipped or not) to float rounding; the flips and the order come from a different random
stream (``torch``'s global generator, which the trainer reseeds every epoch).
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Subset

__all__ = ['MemoryLoader', 'memory_arrays', 'memory_loader_problems']


def memory_arrays(dataset) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(uint8 images [N, C, H, W], int64 labels [N])`` of an in-memory dataset (``ArrayImageDataset``, or
    Subsets of one), or None when the dataset is not held as an array."""
    indices = None
    while isinstance(dataset, Subset):
        step = np.asarray(dataset.indices, dtype=np.int64)
        indices = step if indices is None else step[indices]
        dataset = dataset.dataset
    images = getattr(dataset, 'images', None)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        return None
    if getattr(dataset, 'target_transform', None) is not None:
        return None
    targets = np.asarray(dataset.targets, dtype=np.int64)
    if indices is not None:
        images, targets = images[indices], targets[indices]
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(images), targets


def memory_loader_problems(args, data_config, dataset) -> list:
    """Why the trainer's options cannot be served by ``MemoryLoader`` (empty list: they can)."""
    problems = []
    if memory_arrays(dataset) is None:
        problems.append('the dataset is not an in-memory array (fashion_mnist, cifar10 and digits are)')
        return problems
    c, h, w = memory_arrays(dataset)[0].shape[1:]
    if tuple(data_config['input_size']) != (c, h, w):
        problems.append(f'input_size {tuple(data_config["input_size"])} differs from the images ({c}, {h}, {w})')
    if float(data_config.get('crop_pct') or 1.0) != 1.0:
        problems.append(f'crop_pct {data_config["crop_pct"]} (only 1.0, no eval crop)')
    if not args.no_aug:
        if list(args.scale) != [1.0, 1.0] or list(args.ratio) != [1.0, 1.0]:
            problems.append(f'scale {args.scale} / ratio {args.ratio} (only [1, 1]: no random crop)')
        for key in ('color_jitter', 'vflip', 'reprob', 'gaussian_blur_prob', 'grayscale_prob'):
            if getattr(args, key, None):
                problems.append(f'{key} {getattr(args, key)} (only flips)')
        if args.aa:
            problems.append(f'aa {args.aa!r} (no auto-augment)')
        if args.train_crop_mode not in (None, 'rrc'):
            problems.append(f'train_crop_mode {args.train_crop_mode!r}')
    return problems


class MemoryLoader:
    """Iterable of ``(float images [B, C, H, W], int64 labels [B])`` batches from an in-memory dataset.

    Args:
        dataset: an in-memory dataset (see :func:`memory_arrays`).
        batch_size: samples per batch.
        mean, std: per-channel normalisation, on the 0-1 scale.
        training: shuffle, drop the last partial batch and flip with probability ``hflip``.
        hflip: horizontal flip probability (training only).
        device: where batches are built.
    """

    def __init__(self, dataset, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 training: bool = False, hflip: float = 0.0, device: Optional[torch.device] = None):
        arrays = memory_arrays(dataset)
        if arrays is None:
            raise ValueError('MemoryLoader needs an in-memory image array dataset')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.device = torch.device(device or 'cpu')
        self.images = torch.from_numpy(arrays[0].copy()).to(self.device)
        self.targets = torch.from_numpy(arrays[1]).to(self.device)
        self.dataset, self.batch_size, self.training, self.hflip = dataset, int(batch_size), training, float(hflip)
        channels = self.images.shape[1]
        self.mean = torch.tensor(list(mean), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        if self.mean.numel() not in (1, channels) or self.std.numel() not in (1, channels):
            raise ValueError(f'mean/std have {self.mean.numel()}/{self.std.numel()} values for {channels} channels')

    def __len__(self) -> int:
        n = len(self.targets)
        return n // self.batch_size if self.training else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.targets)
        order = torch.randperm(n).to(self.device) if self.training else torch.arange(n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[idx].float().div_(255.0)
            if self.training and self.hflip > 0:
                flip = (torch.rand(len(idx)) < self.hflip).to(self.device)
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            yield x.sub_(self.mean).div_(self.std), self.targets[idx]
