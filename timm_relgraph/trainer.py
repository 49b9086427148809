#!/usr/bin/env python
"""A small trainer for relational-graph models on timm's library.

Reads the same YAML configs as timm's ``train.py`` (same key names and defaults) and writes the same output
layout: ``<output>/<experiment>/`` with ``args.yaml``, ``summary.csv`` (epoch, train_loss, eval_loss,
eval_top1, eval_top5, lr), ``checkpoint-<epoch>.pth.tar``, ``last.pth.tar`` and ``model_best.pth.tar``.

    relgraph train --config mlp5_fashion_mnist --model relgraph_mlp5_c1.0_l1.0
    relgraph train --config ... --resume output/train/<experiment>/last.pth.tar --epochs 10
    torchrun --nproc_per_node 4 -m timm_relgraph.trainer --config ... --sync-bn   # data-parallel (DDP)

In-process (for sweeps): ``from timm_relgraph.trainer import train, make_args; train(make_args(config, epochs=3))``
returns the final metrics as a dict.

Under ``torchrun`` (``WORLD_SIZE > 1``) every process trains a DistributedDataParallel replica (gloo on CPU,
NCCL on CUDA; see ``timm_relgraph.distributed``). As in train.py, ``--batch-size`` is per process: the global
batch is ``batch_size x world_size``, and the ``--lr`` rule scales by the global batch. Each epoch's order is the
one process's order of the global batch, split across the ranks, so with ``--sync-bn`` (CPU too) N processes of
batch b train the same weights as one process of batch N x b. Evaluation is sharded and combined exactly; rank 0
alone writes ``args.yaml``, the summary, the checkpoints and ``test_metrics.json``; every rank resumes from the
same checkpoint. ``--dist-bn reduce`` (the default) averages the ranks' BatchNorm statistics before evaluating.

Differences from train.py: no prefetcher (``no_prefetcher`` is implied), AMP only on CUDA; ``--resume``
without ``--experiment`` continues in the checkpoint's folder; the epoch's RNGs are reseeded from
``seed + epoch`` so a resumed run repeats the uninterrupted one; checkpoints carry no pickled ``args`` (they
load with ``torch.load(weights_only=True)``; the args are in ``args.yaml``).
Options of train.py this trainer does not implement are accepted only at train.py's default value.

Its own options: ``--holdout N`` holds N training samples out as the validation split (per-epoch evaluation,
best checkpoint, model selection) and evaluates ``--val-split`` once at the end as the test set
(``test_metrics.json``); ``--precise-bn SAMPLES`` recomputes BatchNorm statistics before each evaluation as
graph2nn does (``BN.USE_PRECISE_STATS``, 1024 samples).
"""
from __future__ import annotations

import argparse
import csv
import difflib
import importlib
import logging
import os
import random
import sys
import time
from collections import OrderedDict
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # deterministic cuBLAS, needed before CUDA init

import numpy as np
import torch
import yaml
from tqdm import tqdm

import timm

import timm_relgraph  # noqa: F401  (registers the relgraph_* models)
from timm import utils
from timm.data import Mixup, create_loader, resolve_data_config
from timm.models import safe_model_name
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs
from timm.task import ClassificationTask, load_task_ema_checkpoint, resume_task_checkpoint
from . import distributed as _dist
from ._io import atomic_open
from .data import DatasetNotFoundError, create_relgraph_dataset
from .recipes import recipe_path

__all__ = ['build_parser', 'parse_args', 'make_args', 'train', 'ConfigError', 'DatasetNotFoundError']

_logger = logging.getLogger('timm_relgraph.trainer')

# train.py options this trainer does not implement, with train.py's defaults (a config may carry them at
# these values, e.g. an args.yaml written by train.py).
TRAIN_PY_ONLY: Dict[str, Any] = {
    'input_key': None, 'target_key': None, 'dataset_trust_remote_code': False, 'pretrained_path': None,
    'channels_last': False, 'fuser': '', 'grad_accum_steps': 1, 'grad_checkpointing': False, 'fast_norm': False,
    'head_init_scale': None, 'head_init_bias': None, 'torchcompile_mode': None, 'torchscript': False,
    'torchcompile': None, 'model_dtype': None, 'no_ddp_bb': False, 'synchronize_step': False, 'local_rank': 0,
    'epoch_repeats': 0.0, 'aug_repeats': 0, 'aug_splits': 0, 'jsd_loss': False, 'bce_loss': False,
    'bce_sum': False, 'bce_target_thresh': None, 'bce_pos_weight': None, 'resplit': False, 'drop_connect': None,
    'drop_block': None, 'bn_momentum': None, 'bn_eps': None,
    'split_bn': False, 'recovery_interval': 0, 'save_images': False, 'tta': 0, 'use_multi_epochs_loader': False,
    'log_wandb': False, 'wandb_project': None, 'wandb_tags': [], 'wandb_resume_id': '', 'train_img_sizes': None,
    'train_batch_sizes': None, 'train_size_probs': None, 'train_size_schedule': 'constant',
    'train_size_schedule_spread': 0.65, 'train_size_random_mix': 0.1, 'train_batches_per_epoch': None,
    'variable_batch_loss_scale': 'none', 'naflex_loader': False,
    'naflex_train_seq_lens': [128, 256, 576, 784, 1024], 'naflex_max_seq_len': 576, 'naflex_patch_sizes': None,
    'naflex_patch_size_probs': None, 'naflex_loss_scale': 'linear', 'naflex_patchify_channels_first': False,
    'kd_model_name': None, 'kd_distill_type': 'logit', 'kd_loss_type': 'kl', 'distill_loss_weight': None,
    'task_loss_weight': None, 'kd_temperature': 4.0, 'kd_student_feature_dim': None,
    'kd_teacher_feature_dim': None, 'kd_token_distill_type': 'soft',
}


class ConfigError(ValueError):
    """A config key or value this trainer cannot use (the message names the valid alternatives)."""


def build_parser() -> argparse.ArgumentParser:
    """The supported subset of train.py's options: same flags, same dests, same defaults."""
    p = argparse.ArgumentParser(prog='relgraph train', description='Train a timm model (relational-graph models registered)',
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    floats, ints = dict(type=float, nargs='+'), dict(type=int, nargs='+')
    flag = dict(action='store_true', default=False)
    kwargs = dict(nargs='*', default={}, action=utils.ParseKwargs)
    # dataset
    a('data', nargs='?', metavar='DIR', default=None, help='dataset root (deprecated positional, use --data-dir)')
    a('--data-dir', default=None)
    a('--dataset', default='', help='fashion_mnist | cifar10 | digits | imagefolder ("" = ImageFolder); '
      'torch/ prefixes accepted')
    a('--train-split', default='train'); a('--val-split', default='validation')
    a('--train-num-samples', type=int, default=None, help='use only the first N training samples')
    a('--val-num-samples', type=int, default=None, help='use only the first N validation samples')
    a('--dataset-download', **flag); a('--class-map', default=''); a('--input-img-mode', default=None)
    # model
    a('--model', default='resnet50'); a('--pretrained', **flag); a('--initial-checkpoint', default='')
    a('--resume', default=''); a('--no-resume-opt', **flag)
    a('--num-classes', type=int, default=None); a('--gp', default=None)
    a('--img-size', type=int, default=None); a('--in-chans', type=int, default=None)
    a('--input-size', default=None, nargs=3, type=int); a('--crop-pct', type=float, default=None)
    a('--mean', default=None, **floats); a('--std', default=None, **floats); a('--interpolation', default='')
    a('-b', '--batch-size', type=int, default=128); a('-vb', '--validation-batch-size', type=int, default=None)
    a('--model-kwargs', **kwargs)
    a('--drop', type=float, default=0.0); a('--drop-path', type=float, default=None)
    # device
    a('--device', default=None, help='default: cuda when available, else cpu')
    a('--amp', **flag); a('--amp-dtype', default='float16')
    a('--sync-bn', **flag, help='under torchrun: BatchNorm with the statistics of the global batch (works on CPU)')
    a('--dist-bn', default='reduce', choices=['reduce', 'broadcast', ''],
      help='under torchrun without --sync-bn: average (reduce) or copy from rank 0 (broadcast) the BatchNorm '
      'statistics before each evaluation; "" = leave each rank\'s own')
    a('--device-modules', default=None, type=str, nargs='+', help='modules to import (e.g. timm_relgraph)')
    # optimizer
    a('--opt', default='sgd', help="timm optimizer name; 'sgd' is Nesterov SGD, 'momentum' plain")
    a('--opt-eps', type=float, default=None); a('--opt-betas', default=None, **floats)
    a('--momentum', type=float, default=0.9); a('--weight-decay', type=float, default=2e-5)
    a('--clip-grad', type=float, default=None); a('--clip-mode', default='norm')
    a('--layer-decay', type=float, default=None); a('--layer-decay-min-scale', type=float, default=0)
    a('--layer-decay-no-opt-scale', type=float, default=None)
    a('--opt-kwargs', **kwargs)
    # schedule
    a('--sched', default='cosine'); a('--sched-on-updates', **flag)
    a('--lr', type=float, default=None); a('--lr-base', type=float, default=0.1)
    a('--lr-base-size', type=int, default=256); a('--lr-base-scale', default='')
    a('--lr-noise', default=None, **floats); a('--lr-noise-pct', type=float, default=0.67)
    a('--lr-noise-std', type=float, default=1.0); a('--lr-cycle-mul', type=float, default=1.0)
    a('--lr-cycle-decay', type=float, default=0.5); a('--lr-cycle-limit', type=int, default=1)
    a('--lr-k-decay', type=float, default=1.0); a('--warmup-lr', type=float, default=1e-5)
    a('--min-lr', type=float, default=0); a('--epochs', type=int, default=300)
    a('--start-epoch', type=int, default=None); a('--decay-milestones', default=[90, 180, 270], **ints)
    a('--decay-epochs', type=float, default=90); a('--warmup-epochs', type=int, default=5)
    a('--warmup-prefix', **flag); a('--cooldown-epochs', type=int, default=0)
    a('--patience-epochs', type=int, default=10); a('--decay-rate', '--dr', type=float, default=0.1)
    # augmentation and regularisation
    a('--no-aug', **flag); a('--train-crop-mode', default=None)
    a('--scale', default=[0.08, 1.0], **floats); a('--ratio', default=[3. / 4., 4. / 3.], **floats)
    a('--hflip', type=float, default=0.5); a('--vflip', type=float, default=0.)
    a('--color-jitter', type=float, default=0.4); a('--color-jitter-prob', type=float, default=None)
    a('--grayscale-prob', type=float, default=None); a('--gaussian-blur-prob', type=float, default=None)
    a('--aa', default=None); a('--reprob', type=float, default=0.); a('--remode', default='pixel')
    a('--recount', type=int, default=1)
    a('--mixup', type=float, default=0.0); a('--cutmix', type=float, default=0.0)
    a('--cutmix-minmax', default=None, **floats); a('--mixup-prob', type=float, default=1.0)
    a('--mixup-switch-prob', type=float, default=0.5); a('--mixup-mode', default='batch')
    a('--mixup-off-epoch', type=int, default=0); a('--smoothing', type=float, default=0.1)
    a('--train-interpolation', default='random')
    # EMA
    a('--model-ema', **flag); a('--model-ema-force-cpu', **flag)
    a('--model-ema-decay', type=float, default=0.9998); a('--model-ema-warmup', **flag)
    # misc
    a('--seed', type=int, default=42); a('--worker-seeding', default='all')
    a('--log-interval', type=int, default=50); a('--val-interval', type=int, default=1)
    a('--checkpoint-hist', type=int, default=10); a('-j', '--workers', type=int, default=4)
    a('--pin-mem', **flag); a('--no-prefetcher', **flag)
    a('--output', default=''); a('--experiment', default=''); a('--eval-metric', default='top1')
    # this trainer's own options (not in train.py)
    a('--holdout', type=int, default=0, help='hold out this many training samples as the validation split '
      '(per-epoch evaluation, best checkpoint); --val-split is then the test set, evaluated once at the end')
    a('--holdout-seed', type=int, default=0, help='seed of the held-out subset (independent of --seed, so every '
      'run of a sweep holds out the same samples)')
    a('--precise-bn', type=int, default=0, metavar='SAMPLES', help='before each evaluation, recompute BatchNorm '
      'statistics over this many training samples with the weights fixed (graph2nn: 1024); 0 = off')
    a('--memory-loader', **flag, help='build batches from the in-memory image array (fashion_mnist, cifar10, '
      'digits; flip-only augmentation): the same transforms without per-sample PIL work')
    return p


def _valid_keys(parser: argparse.ArgumentParser) -> List[str]:
    return [act.dest for act in parser._actions if act.dest != 'help']


def check_config(cfg: Dict[str, Any], parser: Optional[argparse.ArgumentParser] = None, source: str = 'config'):
    """Raise ConfigError for keys neither this trainer nor train.py knows, or train.py-only keys set away from
    their default; the message lists the nearest valid keys."""
    parser = parser or build_parser()
    valid = _valid_keys(parser)
    problems = []
    for key, value in cfg.items():
        if key in valid:
            continue
        if key in TRAIN_PY_ONLY:
            if value != TRAIN_PY_ONLY[key]:
                problems.append(f"'{key}: {value!r}' is a timm train.py option this trainer does not implement "
                                f"(only its default {TRAIN_PY_ONLY[key]!r} is accepted); run timm's train.py via "
                                f"'python -m timm_relgraph.run train.py ...' for it")
            continue
        close = difflib.get_close_matches(key.replace('-', '_'), valid, n=3, cutoff=0.6)
        problems.append(f"unknown key '{key}'" + (f"; did you mean {', '.join(close)}?" if close else '') +
                        ' (keys are train.py argument names with underscores, e.g. batch_size, weight_decay)')
    if problems:
        raise ConfigError(f'{source}: ' + '; '.join(problems))


def _load_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    path = recipe_path(path)
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        where = getattr(err, 'problem_mark', None)
        at = f' (line {where.line + 1}, column {where.column + 1})' if where is not None else ''
        raise ConfigError(f'{path}: not valid YAML{at}: {getattr(err, "problem", None) or err}') from None
    except UnicodeDecodeError:
        raise ConfigError(f'{path}: not a text (UTF-8) YAML file') from None
    if not isinstance(cfg, dict):
        raise ConfigError(f'{path}: expected a mapping of train.py argument names to values')
    return cfg


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse ``[--config FILE] [train.py options]`` like train.py: the YAML sets defaults, flags override."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('-c', '--config', default='')
    pre.add_argument('--no-progress', action='store_true')
    known, remaining = pre.parse_known_args(argv)
    parser = build_parser()
    parser.add_argument('-c', '--config', default='', help='YAML file of train.py options (defaults for flags)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    if known.config:
        cfg = _load_yaml(known.config)
        check_config(cfg, parser, source=known.config)
        parser.set_defaults(**{k: v for k, v in cfg.items() if k not in TRAIN_PY_ONLY})
    args = parser.parse_args(remaining)
    args.progress = False if args.no_progress else None
    del args.no_progress, args.config
    return args


def make_args(config: Optional[Union[str, Path, Dict[str, Any]]] = None, **overrides) -> argparse.Namespace:
    """Namespace from defaults < YAML file (or dict) < keyword overrides; every key is checked."""
    parser = build_parser()
    cfg = dict(_load_yaml(config) if isinstance(config, (str, Path)) else (config or {}))
    cfg.update(overrides)
    check_config(cfg, parser, source=str(config) if isinstance(config, (str, Path)) else 'arguments')
    parser.set_defaults(**{k: v for k, v in cfg.items() if k not in TRAIN_PY_ONLY})
    return parser.parse_args([])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _resolve_lr(args, world_size: int = 1) -> None:
    if args.lr is None:  # train.py's rule: scale lr_base by the global batch size
        ratio = args.batch_size * world_size / args.lr_base_size
        scale = args.lr_base_scale or ('sqrt' if any(o in args.opt.lower() for o in ('ada', 'lamb')) else 'linear')
        args.lr = args.lr_base * (ratio ** 0.5 if scale == 'sqrt' else ratio)


def _datasets(args, input_img_mode: str):
    root = args.data_dir or args.data
    common = dict(root=root, download=args.dataset_download)
    if (args.dataset or '').lower() in ('', 'folder', 'imagefolder', 'image_folder'):
        common.update(class_map=args.class_map, input_img_mode=input_img_mode)
    train_ds = create_relgraph_dataset(args.dataset, split=args.train_split, num_samples=args.train_num_samples,
                                       **common)
    eval_ds = create_relgraph_dataset(args.dataset, split=args.val_split, num_samples=args.val_num_samples,
                                      **common)
    return train_ds, eval_ds


def _loader(dataset, data_config, args, device, training: bool):
    if args.memory_loader:
        from .memory_loader import MemoryLoader, memory_loader_problems
        problems = memory_loader_problems(args, data_config, dataset)
        if problems:
            raise ConfigError('memory_loader cannot serve this run: ' + '; '.join(problems)
                              + ' (drop memory_loader to use timm\'s loader)')
        return MemoryLoader(dataset, args.batch_size if training else (args.validation_batch_size or args.batch_size),
                            mean=data_config['mean'], std=data_config['std'], training=training,
                            hflip=0.0 if args.no_aug else args.hflip, device=device)
    kw = dict(
        input_size=data_config['input_size'], batch_size=args.batch_size if training else
        (args.validation_batch_size or args.batch_size), is_training=training, use_prefetcher=False,
        interpolation=data_config['interpolation'], mean=data_config['mean'], std=data_config['std'],
        num_workers=args.workers, crop_pct=data_config['crop_pct'], pin_memory=args.pin_mem, device=device,
        persistent_workers=False,  # workers restart each epoch, seeded from the reseeded torch RNG
        worker_seeding=args.worker_seeding,
    )
    if training:
        kw.update(no_aug=args.no_aug, re_prob=args.reprob, re_mode=args.remode, re_count=args.recount,
                  train_crop_mode=args.train_crop_mode, scale=args.scale, ratio=args.ratio, hflip=args.hflip,
                  vflip=args.vflip, color_jitter=args.color_jitter, color_jitter_prob=args.color_jitter_prob,
                  grayscale_prob=args.grayscale_prob or 0., gaussian_blur_prob=args.gaussian_blur_prob or 0.,
                  auto_augment=args.aa, interpolation=args.train_interpolation)
    return create_loader(dataset, **kw)


def _output_dir(args, data_config) -> str:
    if args.experiment:
        name = args.experiment
    elif args.resume:  # continue next to the checkpoint
        return str(Path(args.resume).resolve().parent)
    else:
        name = '-'.join([datetime.now().strftime('%Y%m%d-%H%M%S'), safe_model_name(args.model),
                         str(data_config['input_size'][-1])])
    return utils.get_outdir(args.output or './output/train', name)


def _write_json(path: str, data: Dict[str, Any]) -> None:
    import json
    with atomic_open(path) as f:
        json.dump({k: float(v) if isinstance(v, (np.floating, torch.Tensor)) else v for k, v in data.items()}, f,
                  indent=2)


@torch.no_grad()
def keep_summary_before(path: str, epoch: int) -> None:
    """Drop the summary rows of epochs >= ``epoch`` (they are redone), atomically; a no-op without any."""
    if not os.path.isfile(path):
        return
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].strip().isdigit() and int(r[0]) < epoch]
    if len(kept) == len(rows):
        return
    with atomic_open(path) as f:
        csv.writer(f).writerows(kept if len(kept) > 1 else [])


@torch.no_grad()
def recompute_bn_stats(model: torch.nn.Module, loader, num_samples: int, device) -> int:
    """Precise BatchNorm statistics, as graph2nn's ``compute_precise_bn_stats`` (``BN.USE_PRECISE_STATS``):
    run ``num_samples // batch_size`` training batches (at least one) through the model in train mode with
    momentum 1, and set each BN layer's running mean to the mean of the batch means and its running variance
    to the mean of ``var + mean**2`` minus the squared mean. Returns the number of batches used."""
    bns = [m for m in model.modules()
           if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or num_samples <= 0:
        return 0
    batches = max(1, min(num_samples // max(loader.batch_size or 1, 1), len(loader)))
    means = [torch.zeros_like(bn.running_mean) for bn in bns]
    squares = [torch.zeros_like(bn.running_var) for bn in bns]
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    model.train()
    for bn in bns:
        bn.momentum = 1.0
    used = 0
    for x, _ in loader:
        if used == batches:
            break
        model(x.to(device))
        for i, bn in enumerate(bns):
            means[i] += bn.running_mean / batches
            squares[i] += (bn.running_var + bn.running_mean ** 2) / batches
        used += 1
    for bn, mean, square, momentum in zip(bns, means, squares, momenta):
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(square - mean ** 2)
        bn.momentum = momentum
    model.train(was_training)
    return used


def split_holdout(dataset, count: int, seed: int = 0):
    """``(train_part, held_out)``: ``count`` samples drawn without replacement by ``numpy`` seed ``seed`` are
    held out, the rest train. The two parts are separate views (each takes its own transform)."""
    import copy
    from torch.utils.data import Subset
    from .data import _TransformSubset
    total = len(dataset)
    if not 0 < count < total:
        raise ConfigError(f'holdout {count} must be between 1 and {total - 1} (the training split has {total} samples)')
    base, index = (dataset.dataset, list(dataset.indices)) if isinstance(dataset, Subset) else (dataset, range(total))
    order = np.random.RandomState(seed).permutation(total)
    held, kept = np.sort(order[:count]), np.sort(order[count:])
    return (_TransformSubset(base, [index[i] for i in kept]),
            _TransformSubset(copy.copy(base), [index[i] for i in held]))


def evaluate(task, model, loader, device, amp_autocast=nullcontext, progress=None, desc='eval',
             dist_info: Optional[_dist.DistInfo] = None) -> Dict[str, float]:
    """Metrics of ``model`` over ``loader``; under a process group (``dist_info``) each rank evaluates its shard
    and the sample-weighted means are combined over the ranks."""
    model.eval()
    evaluator = task.create_evaluator()
    samples = 0
    for x, y in tqdm(loader, desc=desc, leave=False, disable=None if progress is None else not progress):
        x, y = x.to(device), y.to(device)
        with amp_autocast():
            output = model(x)
        evaluator.update(output, y)
        samples += y.shape[0]
    metrics = dict(evaluator.compute())
    if dist_info is not None and dist_info.enabled:
        metrics = _dist.reduce_metrics(metrics, samples, dist_info, device)
    return metrics


def train(args: Union[argparse.Namespace, Dict[str, Any]], progress: Optional[bool] = None) -> Dict[str, Any]:
    """Train and evaluate per ``args`` (a Namespace from ``parse_args``/``make_args`` or a dict of options);
    return the final metrics: epoch, train_loss, eval_loss, eval_top1, eval_top5, best_metric, best_epoch,
    output_dir. ``progress``: True/False for a progress bar, None for one only on a terminal.

    Under torchrun (``WORLD_SIZE > 1``) this joins the process group (and leaves it at the end when it created
    it); every rank returns the same metrics."""
    if isinstance(args, dict):
        args = make_args(args)
    info, device = _dist.setup(args.device)
    try:
        return _train(args, progress, info, device)
    finally:
        _dist.cleanup(info)


def _train(args, progress: Optional[bool], info: '_dist.DistInfo', device: torch.device) -> Dict[str, Any]:
    if isinstance(args, dict):
        args = make_args(args)
    else:
        args = argparse.Namespace(**vars(args))
        progress = getattr(args, 'progress', progress) if progress is None else progress
        if hasattr(args, 'progress'):
            del args.progress
        check_config(vars(args))
    if not info.primary:  # one progress bar and one log, from rank 0
        progress = False
    say = print if info.primary else (lambda *a, **k: None)
    bar = dict(disable=None if progress is None else not progress, dynamic_ncols=True)
    for module in args.device_modules or ():
        importlib.import_module(module)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    seed_everything(args.seed)

    if not timm.is_model(args.model):
        close = difflib.get_close_matches(args.model, timm.list_models(), n=3, cutoff=0.6)
        raise ConfigError(f'unknown model {args.model!r}' + (f'; did you mean {", ".join(close)}?' if close else '')
                          + ' (relational-graph models: timm.list_models("relgraph*"))')
    in_chans = args.in_chans or (args.input_size[0] if args.input_size else 3)
    model = timm.create_model(
        args.model, pretrained=args.pretrained, in_chans=in_chans, num_classes=args.num_classes,
        drop_rate=args.drop, drop_path_rate=args.drop_path, global_pool=args.gp,
        checkpoint_path=args.initial_checkpoint or None, **args.model_kwargs)
    if args.sync_bn and info.enabled:
        model = _dist.convert_sync_batchnorm(model, device)
    model.to(device)
    if args.num_classes is None:
        args.num_classes = model.num_classes
    data_config = resolve_data_config(vars(args), model=model)
    _resolve_lr(args, info.world_size)

    mixup_active = args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None
    task = ClassificationTask(model, criterion_kwargs=dict(smoothing=args.smoothing, soft_targets=mixup_active),
                              device=device, verbose=False)
    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args), **args.opt_kwargs)
    amp_autocast, loss_scaler = nullcontext, None
    if args.amp and device.type == 'cuda':
        dtype = torch.bfloat16 if args.amp_dtype in ('bfloat16', 'bf16') else torch.float16
        amp_autocast = lambda: torch.autocast('cuda', dtype=dtype)  # noqa: E731
        loss_scaler = utils.NativeScaler() if dtype == torch.float16 else None
    elif args.amp:
        _logger.warning('--amp is only used on CUDA; training in float32 on %s', device)

    resume_epoch = None
    if args.resume:
        if not os.path.isfile(args.resume):
            raise FileNotFoundError(f'--resume {args.resume}: no such checkpoint')
        resume_epoch = resume_task_checkpoint(task, args.resume, optimizer=None if args.no_resume_opt else optimizer,
                                              loss_scaler=None if args.no_resume_opt else loss_scaler,
                                              log_info=False)
    if args.model_ema:
        task.setup_ema(decay=args.model_ema_decay, use_warmup=args.model_ema_warmup,
                       device='cpu' if args.model_ema_force_cpu else None)
        if args.resume:
            load_task_ema_checkpoint(task, args.resume)
    if info.enabled:
        # every rank has read the checkpoint before rank 0 may write into its folder; DDP takes rank 0's weights
        _dist.barrier(info)
        task.prepare_distributed(device_ids=[device.index] if device.type == 'cuda' else None)

    input_img_mode = args.input_img_mode or ('RGB' if data_config['input_size'][0] == 3 else 'L')
    with _dist.primary_first(info) if args.dataset_download else nullcontext():  # one download
        train_ds, eval_ds = _datasets(args, input_img_mode)
    test_ds = loader_test = None
    if args.holdout:  # select on samples held out of the training split; the val split becomes the test set
        train_ds, held_out = split_holdout(train_ds, args.holdout, args.holdout_seed)
        test_ds, eval_ds = eval_ds, held_out
    # under torchrun: this rank's share of the one-process order of the global batch (timm_relgraph.distributed)
    loader_train = _dist.shard_loader(_loader(train_ds, data_config, args, device, training=True), info, True)
    loader_eval = _dist.shard_loader(_loader(eval_ds, data_config, args, device, training=False), info, False)
    if test_ds is not None:
        loader_test = _dist.shard_loader(_loader(test_ds, data_config, args, device, training=False), info, False)
    if len(loader_train) == 0:
        per = f' x {info.world_size} processes' if info.enabled else ''
        raise ConfigError(f'batch_size {args.batch_size}{per} exceeds the {len(train_ds)} training samples '
                          '(the last partial batch is dropped): lower batch_size')
    mixup_fn = None
    if mixup_active:
        mixup_fn = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                         prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                         label_smoothing=args.smoothing, num_classes=args.num_classes)

    updates_per_epoch = len(loader_train)
    lr_scheduler, num_epochs = create_scheduler_v2(optimizer, **scheduler_kwargs(args),
                                                   updates_per_epoch=updates_per_epoch)
    start_epoch = args.start_epoch if args.start_epoch is not None else (resume_epoch or 0)
    if start_epoch > 0:
        if args.sched_on_updates:
            lr_scheduler.step_update(start_epoch * updates_per_epoch)
        else:
            lr_scheduler.step(start_epoch)

    # rank 0 names (and creates) the folder, e.g. a timestamped one, and tells the other ranks
    output_dir = _dist.broadcast_object(_output_dir(args, data_config) if info.primary else None, info)
    saver = utils.CheckpointSaver(model=model, optimizer=optimizer, args=None, amp_scaler=loss_scaler,
                                  checkpoint_dir=output_dir, recovery_dir=output_dir,
                                  decreasing=args.eval_metric == 'loss', max_history=args.checkpoint_hist, task=task)
    if args.resume and Path(args.resume).resolve().parent == Path(output_dir).resolve():
        saver.load_state_dict_from_checkpoint(args.resume)
    summary_path = os.path.join(output_dir, 'summary.csv')
    if info.primary:
        with open(os.path.join(output_dir, 'args.yaml'), 'w') as f:
            yaml.safe_dump(vars(args), f, default_flow_style=False)
        keep_summary_before(summary_path, start_epoch)

    world = (f', {info.world_size} processes x batch {args.batch_size} (global batch '
             f'{args.batch_size * info.world_size})' if info.enabled else '')
    say(f'{args.model}: {sum(p.numel() for p in model.parameters()):,} params, input {data_config["input_size"]}, '
        f'{len(train_ds)} train / {len(eval_ds)} {"held-out validation" if args.holdout else "eval"} samples'
        f'{f" / {len(test_ds)} test" if test_ds is not None else ""}, epochs {start_epoch}->{num_epochs}, '
        f'lr {args.lr:g}, device {device}{world}, output {output_dir}', flush=True)
    metrics: Dict[str, Any] = {}
    best_metric, best_epoch = saver.best_metric, saver.best_epoch
    num_updates = start_epoch * updates_per_epoch
    for epoch in range(start_epoch, num_epochs):
        seed_everything(args.seed + epoch)  # resumable: the epoch's shuffling/augmentation depend on it alone
        if mixup_fn is not None and args.mixup_off_epoch and epoch >= args.mixup_off_epoch:
            mixup_fn.mixup_enabled = False
        t0 = time.time()
        model.train()
        loss_sum, seen = 0.0, 0
        pbar = tqdm(loader_train, desc=f'epoch {epoch + 1}/{num_epochs}', **bar)
        for step, (x, y) in enumerate(pbar):
            x, y = x.to(device), y.to(device)
            if mixup_fn is not None:
                x, y = mixup_fn(x, y)
            with amp_autocast():
                loss = task(x, y)['loss']
            optimizer.zero_grad(set_to_none=True)
            if loss_scaler is not None:
                loss_scaler(loss, optimizer, clip_grad=args.clip_grad, clip_mode=args.clip_mode,
                            parameters=model.parameters())
            else:
                loss.backward()
                if args.clip_grad is not None:
                    utils.dispatch_clip_grad(model.parameters(), value=args.clip_grad, mode=args.clip_mode)
                optimizer.step()
            num_updates += 1
            task.update_ema(step=num_updates)
            if args.sched_on_updates:
                lr_scheduler.step_update(num_updates=num_updates)
            loss_sum += loss.item() * x.shape[0]
            seen += x.shape[0]
            if step % max(args.log_interval, 1) == 0 or step == updates_per_epoch - 1:
                pbar.set_postfix(loss=f'{loss_sum / seen:.4f}', lr=f'{optimizer.param_groups[0]["lr"]:.4g}')
        pbar.close()
        loss_sum, seen = _dist.all_reduce_sums([loss_sum, seen], info, device)  # the mean over all ranks
        train_metrics = OrderedDict(loss=loss_sum / max(seen, 1))
        lr = sum(g['lr'] for g in optimizer.param_groups) / len(optimizer.param_groups)
        epoch_p_1 = epoch + 1
        if epoch_p_1 % args.val_interval != 0 and epoch_p_1 != num_epochs:
            lr_scheduler.step(epoch_p_1)
            continue
        if args.precise_bn:  # each rank its share of the samples: the same number of global batches as one process
            recompute_bn_stats(model, loader_train, max(1, args.precise_bn // info.world_size), device)
        if info.enabled and not args.sync_bn and args.dist_bn in ('reduce', 'broadcast'):
            utils.distribute_bn(model, info.world_size, args.dist_bn == 'reduce')
            if task.has_ema():
                utils.distribute_bn(task.get_trainable_module(ema=True), info.world_size, args.dist_bn == 'reduce')
        eval_metrics = evaluate(task, model, loader_eval, device, amp_autocast, progress, dist_info=info)
        if task.has_ema():
            eval_metrics = evaluate(task, task.get_eval_model(ema=True), loader_eval, device, amp_autocast, progress,
                                    desc='eval (EMA)', dist_info=info)
        # The summary row, then the checkpoint: a run killed between the two has no checkpoint of this epoch,
        # so --resume redoes it, and keep_summary_before() (above) drops the row it had already written.
        if info.primary:
            utils.update_summary(epoch, train_metrics, eval_metrics, summary_path, lr=lr)
            best_metric, best_epoch = saver.save_checkpoint(epoch, metric=eval_metrics[args.eval_metric])
        if info.enabled:  # the checkpoint is on disk before any rank starts the next epoch
            best_metric, best_epoch = _dist.broadcast_object((best_metric, best_epoch), info)
        lr_scheduler.step(epoch_p_1, eval_metrics[args.eval_metric])
        metrics = dict(epoch=epoch, train_loss=train_metrics['loss'],
                       **{f'eval_{k}': v for k, v in eval_metrics.items()}, lr=lr)
        say(f'epoch {epoch_p_1}/{num_epochs}: train_loss {train_metrics["loss"]:.4f}  eval_loss '
            f'{eval_metrics["loss"]:.4f}  top1 {eval_metrics["top1"]:.2f}  top5 {eval_metrics["top5"]:.2f}  '
            f'lr {lr:.4g}  ({time.time() - t0:.1f}s)', flush=True)
    if loader_test is not None:
        final_model = task.get_eval_model(ema=True) if task.has_ema() else model
        test_metrics = evaluate(task, final_model, loader_test, device, amp_autocast, progress, desc='test',
                                dist_info=info)
        metrics.update({f'test_{k}': v for k, v in test_metrics.items()})
        if info.primary:
            _write_json(os.path.join(output_dir, 'test_metrics.json'),
                        dict(epoch=num_epochs - 1, split=args.val_split, samples=len(test_ds), **test_metrics))
        say(f'test ({args.val_split}, {len(test_ds)} samples) after epoch {num_epochs}: '
            f'top1 {test_metrics["top1"]:.2f}  top5 {test_metrics["top5"]:.2f}', flush=True)
    metrics.update(best_metric=best_metric, best_epoch=best_epoch, output_dir=output_dir, num_epochs=num_epochs,
                   model=args.model, params=sum(p.numel() for p in model.parameters()),
                   graph=dict(getattr(model, 'pretrained_cfg', {}).get('graph') or {}))
    _dist.barrier(info)  # rank 0's files are complete when train() returns on any rank
    return metrics


def main(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    try:
        args = parse_args(argv)
        metrics = train(args)
    except (ConfigError, DatasetNotFoundError, FileNotFoundError, timm_relgraph.RelgraphNameError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if metrics.get('best_metric') is not None:
        print(f'*** best {metrics["best_metric"]:.4f} (epoch {metrics["best_epoch"]}), output {metrics["output_dir"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
