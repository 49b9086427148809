"""Data-parallel training under ``torchrun``: process group, data sharding, BatchNorm synchronisation.

The trainer (``relgraph train``) calls these helpers; on one process they are no-ops. Under
``torchrun --nproc_per_node N`` every process trains a replica wrapped in ``DistributedDataParallel``
(gloo on CPU, NCCL on CUDA) and:

* ``--batch-size`` is the batch of one process, as in timm's ``train.py``: the global batch is
  ``batch_size x world_size``, and the learning-rate rule (``--lr`` unset) scales ``--lr-base`` by the global batch.
* the data order is the one process's order of the global batch: each epoch draws the same permutation as a
  single process would (from the epoch's reseeded RNG), keeps a multiple of the world size, and rank ``r`` takes
  positions ``r, r + N, r + 2N, ...``. Batch ``i`` of the N ranks together is batch ``i`` of one process with
  ``batch_size x N``, so with equal per-rank batches DDP's gradient average is the one-process gradient.
* ``--sync-bn`` normalises with the statistics of the global batch (timm's SyncBatchNorm on CUDA; on CPU, where
  torch's SyncBatchNorm refuses to run, :func:`convert_sync_batchnorm` swaps in the same computation over gloo),
  which makes N processes train the same weights as one process to float rounding. Without it each rank
  normalises with its own shard's statistics (timm's default), and ``--dist-bn reduce`` averages the running
  statistics before each evaluation.
* evaluation is sharded the same way (no padding) and the metrics, which are sample-weighted means, are
  combined exactly across ranks.
"""
from __future__ import annotations

import inspect
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from .memory_loader import MemoryLoader

__all__ = ['DistInfo', 'setup', 'cleanup', 'barrier', 'broadcast_object', 'all_reduce_sums', 'primary_first',
           'ShardSampler', 'shard_loader', 'ShardedMemoryLoader', 'convert_sync_batchnorm', 'reduce_metrics']


@dataclass
class DistInfo:
    """Where this process stands: its global rank, the number of processes, its rank on the node."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # the group was created here (and is destroyed by :func:`cleanup`)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def primary(self) -> bool:
        return self.rank == 0


def env_world() -> Tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    world = int(os.environ.get('WORLD_SIZE', '1') or 1)
    rank = int(os.environ.get('RANK', '0') or 0)
    local = int(os.environ.get('LOCAL_RANK', str(rank)) or 0)
    return rank, world, local


def setup(device: Optional[str] = None) -> Tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (when ``WORLD_SIZE > 1``) and pick this process's device.

    ``device``: ``'cpu'``, ``'cuda'`` (``cuda:<LOCAL_RANK>`` under torchrun) or None (cuda when available).
    The backend is NCCL on CUDA and gloo otherwise. A process group that already exists is used as it is."""
    if dist.is_available() and dist.is_initialized():
        info = DistInfo(dist.get_rank(), dist.get_world_size(), env_world()[2])
    else:
        rank, world, local = env_world()
        info = DistInfo(rank, world, local)
    kind = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if kind.type == 'cuda' and kind.index is None and info.enabled:
        kind = torch.device('cuda', info.local_rank)
    if kind.type == 'cuda' and kind.index is not None:
        torch.cuda.set_device(kind)
    if info.enabled and not dist.is_available():
        raise RuntimeError('WORLD_SIZE > 1 but this torch build has no torch.distributed')
    if info.enabled and not dist.is_initialized():
        backend = 'nccl' if kind.type == 'cuda' else 'gloo'
        kwargs: Dict[str, Any] = dict(backend=backend, init_method='env://', rank=info.rank,
                                      world_size=info.world_size)
        if kind.type == 'cuda' and 'device_id' in inspect.signature(dist.init_process_group).parameters:
            kwargs['device_id'] = kind  # torch >= 2.3: bind the NCCL communicator to this GPU
        dist.init_process_group(**kwargs)
        info.owns_group = True
    return info, kind


def cleanup(info: DistInfo) -> None:
    """Destroy the process group when :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
        info.owns_group = False


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


@contextmanager
def primary_first(info: DistInfo):
    """Rank 0 runs the block first (e.g. downloads a dataset), the other ranks after it."""
    if not info.primary:
        barrier(info)
    yield
    if info.primary:
        barrier(info)


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (pickled)."""
    if not info.enabled:
        return obj
    box = [obj if info.primary else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sums(values: List[float], info: DistInfo, device: Optional[torch.device] = None) -> List[float]:
    """Element-wise sums of ``values`` over the ranks, in float64."""
    if not info.enabled:
        return [float(v) for v in values]
    dev = device if device is not None and dist.get_backend() == 'nccl' else torch.device('cpu')
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return t.tolist()


def reduce_metrics(metrics: Dict[str, float], samples: int, info: DistInfo,
                   device: Optional[torch.device] = None) -> Dict[str, float]:
    """Combine per-rank sample-weighted means (loss, top1, top5) into the means over all ranks' samples."""
    if not info.enabled:
        return dict(metrics)
    keys = sorted(metrics)
    sums = all_reduce_sums([samples] + [samples * float(metrics[k]) for k in keys], info, device)
    total = max(sums[0], 1.0)
    return {k: s / total for k, s in zip(keys, sums[1:])}


class ShardSampler(Sampler):
    """Rank ``rank``'s share of ``base``'s order: positions ``rank, rank + world_size, ...``.

    ``even=True`` (training) first drops the tail of the order that does not fill one index per rank, so every rank
    gets ``len(base) // world_size`` indices and the same number of batches. The base sampler is iterated afresh
    each epoch on every rank; it draws from the (identically reseeded) global RNG, so all ranks agree on the
    order, and it is the order one process would use."""

    def __init__(self, base: Sampler, rank: int, world_size: int, even: bool):
        self.base, self.rank, self.world_size, self.even = base, rank, world_size, even

    def __iter__(self) -> Iterator[int]:
        order = list(iter(self.base))
        if self.even:
            order = order[:len(order) - len(order) % self.world_size]
        return iter(order[self.rank::self.world_size])

    def __len__(self) -> int:
        n = len(self.base)
        return n // self.world_size if self.even else len(range(self.rank, n, self.world_size))


def shard_loader(loader, info: DistInfo, training: bool):
    """This rank's part of a trainer loader (timm's ``DataLoader`` or a ``MemoryLoader``); the loader itself on
    one process. The per-rank batch is the loader's batch size."""
    if not info.enabled:
        return loader
    if isinstance(loader, MemoryLoader):
        return ShardedMemoryLoader.from_loader(loader, info.rank, info.world_size)
    if not isinstance(loader, DataLoader) or loader.batch_sampler is None or loader.batch_size is None:
        raise ValueError(f'cannot shard a {type(loader).__name__} across ranks')
    kwargs: Dict[str, Any] = dict(
        batch_size=loader.batch_size, sampler=ShardSampler(loader.sampler, info.rank, info.world_size, even=training),
        num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        drop_last=loader.drop_last, timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        persistent_workers=loader.persistent_workers)
    if loader.num_workers > 0:
        kwargs['prefetch_factor'] = loader.prefetch_factor
    return DataLoader(loader.dataset, **kwargs)


class ShardedMemoryLoader(MemoryLoader):
    """A ``MemoryLoader`` shard: each training step draws the one-process global batch (``batch_size x
    world_size`` samples, and their flips, from the same RNG calls) and keeps this rank's positions of it, so the N
    ranks together see exactly what one process sees, flips included. Evaluation takes every N-th sample."""

    def __init__(self, *args, rank: int = 0, world_size: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self.rank, self.world_size = int(rank), int(world_size)

    @classmethod
    def from_loader(cls, loader, rank: int, world_size: int) -> 'ShardedMemoryLoader':
        shard = cls.__new__(cls)
        shard.__dict__.update(loader.__dict__)
        shard.rank, shard.world_size = int(rank), int(world_size)
        return shard

    def _eval_indices(self) -> torch.Tensor:
        return torch.arange(self.rank, len(self.targets), self.world_size, device=self.device)

    def __len__(self) -> int:
        if self.training:
            return len(self.targets) // (self.batch_size * self.world_size)
        return math.ceil(len(self._eval_indices()) / self.batch_size)

    def _batch(self, idx: torch.Tensor, flip: Optional[torch.Tensor]):
        x = self.images[idx].float().div_(255.0)
        if flip is not None:
            x = torch.where(flip.to(self.device).view(-1, 1, 1, 1), x.flip(-1), x)
        return x.sub_(self.mean).div_(self.std), self.targets[idx]

    def __iter__(self):
        if not self.training:
            mine = self._eval_indices()
            for b in range(len(self)):
                yield self._batch(mine[b * self.batch_size:(b + 1) * self.batch_size], None)
            return
        n, step = len(self.targets), self.batch_size * self.world_size
        order = torch.randperm(n).to(self.device)
        for b in range(len(self)):
            idx = order[b * step:(b + 1) * step]
            flip = (torch.rand(len(idx)) < self.hflip) if self.hflip > 0 else None
            keep = slice(self.rank, step, self.world_size)
            yield self._batch(idx[keep], None if flip is None else flip[keep])


# --- BatchNorm over the global batch on CPU --------------------------------------------------------------------

def _global_batch_norm(bn: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Training-mode batch norm with the mean and variance of the batch of all ranks. The per-channel sums are
    all-reduced with ``torch.distributed.nn`` (differentiable: the backward all-reduces their gradients), so the
    gradient is that of one process normalising the whole global batch. Statistics in float64."""
    from torch.distributed.nn.functional import all_reduce
    dims = [0] + list(range(2, x.dim()))
    count = x.numel() // x.shape[1]
    x64 = x.double()
    local = torch.cat([x64.sum(dims), (x64 * x64).sum(dims), x64.new_full((1,), float(count))])
    group = getattr(bn, 'process_group', None) or dist.group.WORLD
    total = all_reduce(local, group=group)
    channels = x.shape[1]
    n = total[-1]
    mean = total[:channels] / n
    var = (total[channels:2 * channels] / n - mean * mean).clamp_min(0)
    shape = [1, channels] + [1] * (x.dim() - 2)
    y = (x64 - mean.view(shape)) * torch.rsqrt(var + bn.eps).view(shape)
    y = y.to(x.dtype)
    if bn.affine:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
            samples = float(n)
            unbiased = var * (samples / max(samples - 1.0, 1.0))
            bn.running_mean.mul_(1 - factor).add_(mean.detach().to(bn.running_mean.dtype), alpha=factor)
            bn.running_var.mul_(1 - factor).add_(unbiased.detach().to(bn.running_var.dtype), alpha=factor)
    return y


_SYNCED: Dict[type, type] = {}


def _synced_class(cls: type) -> type:
    """``cls`` with a forward that normalises over the global batch while training under a process group."""
    if cls not in _SYNCED:
        def forward(self, x):
            if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
                return cls.forward(self, x)
            y = _global_batch_norm(self, x)
            for post in ('drop', 'act'):  # timm's BatchNormAct layers: dropout and activation after the norm
                if hasattr(self, post):
                    y = getattr(self, post)(y)
            return y
        _SYNCED[cls] = type(f'GlobalBatch{cls.__name__}', (cls,), {'forward': forward, '__module__': __name__})
    return _SYNCED[cls]


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """BatchNorm layers that normalise with the global batch's statistics under a process group.

    CUDA: timm's ``convert_sync_batchnorm`` (torch's SyncBatchNorm, also for timm's BatchNormAct layers). Other
    devices: each BatchNorm keeps its class, parameters and state-dict keys and gets a forward that all-reduces
    the per-channel sums (see :func:`_global_batch_norm`); on one process or in eval mode it is the plain layer."""
    if device.type == 'cuda':
        from timm.layers import convert_sync_batchnorm as timm_convert
        return timm_convert(model)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and type(module) not in _SYNCED.values():
            module.__class__ = _synced_class(type(module))
    return model
