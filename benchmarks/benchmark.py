"""Training and inference speed of every relgraph family, side by side with its references, as a timm-style CSV.

For each family the paper's best graph (FLOPs-matched) is timed in one run, interleaved round by round, with:

* ``folded``: the same model with its relational layers folded into plain dense layers (same widths, the
  cost of the dense kernel alone),
* ``complete``: the complete-graph model (the paper's baseline network),
* ``timm``: timm's own model of the family where one exists,
* ``sparse``: the relational model with ``execution='sparse'`` (CSR kernels for Linear / 1x1 convs at
  inference; its training step is the dense one, so it is timed for inference only).

    python benchmarks/benchmark.py --out benchmarks/results_cpu_b8.csv --batch 8 --img-size 224
    python benchmarks/benchmark.py --device cuda --amp --batch 256 --out results_gpu.csv

Columns follow timm's ``benchmark.py`` (``infer_samples_per_sec``, ``infer_step_time`` in ms, ...) plus
``param_count`` (millions, as the paper counts: a relational layer's parameters are the weights its graph
keeps), ``stored_bytes`` (its safetensors state dict), ``gmacs`` (analytic multiply-adds at the timed size)
and ``*_vs_folded``: this model's step time over the folded model's, the median over rounds of the ratio within
one round (the relational and folded models run back to back in every round, in alternating order).
A training step is forward, cross-entropy, backward and an SGD (momentum, Nesterov, weight decay) step.
"""
import argparse
import copy
import csv
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Callable, Dict, List

import timm
import torch
from safetensors.torch import save as safetensors_bytes

import timm_relgraph  # noqa: F401
from timm_relgraph._io import atomic_open
from timm_relgraph.flops import count_macs
from timm_relgraph.layers import EXECUTION_STRATEGIES, fold_masks

TIMM_EQUIVALENTS = {'resnet18': 'resnet18', 'resnet34': 'resnet34', 'resnet50': 'resnet50',
                    'efficientnet_b0': 'efficientnet_b0'}
FAMILIES = ['mlp5', 'cnn8', 'resnet18', 'resnet34', 'resnet34sep', 'resnet50', 'efficientnet_b0']

COLUMNS = ['model', 'family', 'role', 'device', 'amp', 'infer_batch_size', 'infer_img_size',
           'infer_samples_per_sec', 'infer_step_time', 'infer_vs_folded', 'train_batch_size', 'train_img_size',
           'train_samples_per_sec', 'train_step_time', 'train_vs_folded', 'param_count', 'stored_bytes', 'gmacs',
           'stat']


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timer(fn: Callable[[], None], device: torch.device, steps: int) -> Callable[[], float]:
    def run() -> float:
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        _sync(device)
        return (time.perf_counter() - start) / steps
    return run


def _infer_fn(model, x, amp):
    model.eval()

    def fn():
        with torch.inference_mode(), amp():
            model(x)
    return fn


def _train_fn(model, x, amp):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    target = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def fn():
        opt.zero_grad(set_to_none=True)
        with amp():
            loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
    return fn


STATS = {'median': statistics.median, 'min': min}


def _interleaved(fns: Dict[str, Callable[[], float]], rounds: int) -> Dict[str, List[float]]:
    """Seconds per step of each function in every round, measured round-robin so drifts hit every model
    alike; the order reverses every round, so no model always runs right after a given other one."""
    times: Dict[str, List[float]] = {label: [] for label in fns}
    for fn in fns.values():
        fn()  # warm-up (and the inference weight caches)
    labels = list(fns)
    for r in range(rounds):
        for label in (labels if r % 2 == 0 else labels[::-1]):
            times[label].append(fns[label]())
    return times


def paired_ratio(times: List[float], reference: List[float]) -> float:
    """Median over rounds of this model's step time over the reference's in the same round.

    The two are timed back to back in every round (keep them adjacent in the round's order), so a slow
    spell of a shared machine inflates both terms of a round's ratio instead of one model's statistic."""
    return statistics.median(t / ref for t, ref in zip(times, reference))


def models_of(family: str, device) -> Dict[str, torch.nn.Module]:
    relational = timm.create_model(f'relgraph_{family}')
    models = {
        'relational': relational,
        'folded': fold_masks(copy.deepcopy(relational)),
        'complete': timm.create_model(f'relgraph_{family}_c1.0_l1.0'),
    }
    if family in TIMM_EQUIVALENTS:
        models['timm'] = timm.create_model(TIMM_EQUIVALENTS[family])
    if 'sparse' in EXECUTION_STRATEGIES:
        models['sparse'] = timm.create_model(f'relgraph_{family}', execution='sparse')
        models['sparse'].load_state_dict(relational.state_dict())
    return {label: m.to(device) for label, m in models.items()}


def benchmark_family(family: str, batch: int, img_size: int, device, amp: bool, rounds: int, steps: int,
                     stat: str = 'median'):
    size = 32 if family == 'mlp5' else img_size  # the MLP's input is CIFAR-sized
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16 if device.type == 'cpu'
                                       else torch.float16)) if amp else nullcontext
    models = models_of(family, device)
    x = torch.randn(batch, 3, size, size, device=device)
    infer_times = _interleaved({k: _timer(_infer_fn(m, x, autocast), device, steps) for k, m in models.items()},
                               rounds)
    train_times = _interleaved({k: _timer(_train_fn(m, x, autocast), device, steps) for k, m in models.items()
                                if k != 'sparse'}, rounds)
    infer = {k: STATS[stat](ts) for k, ts in infer_times.items()}
    train = {k: STATS[stat](ts) for k, ts in train_times.items()}
    rows = []
    for label, model in models.items():
        name = model.pretrained_cfg.get('architecture', '') if label != 'timm' else TIMM_EQUIVALENTS[family]
        tag = model.pretrained_cfg.get('tag') if label in ('relational', 'sparse', 'folded') else None
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        row = dict(
            model=f'{name}.{tag}' if tag else name, family=family, role=label, device=device.type, amp=amp,
            infer_batch_size=batch, infer_img_size=size, infer_samples_per_sec=round(batch / infer[label], 2),
            infer_step_time=round(infer[label] * 1e3, 3),
            infer_vs_folded=round(paired_ratio(infer_times[label], infer_times['folded']), 3),
            train_batch_size=batch if label in train else '', train_img_size=size if label in train else '',
            train_samples_per_sec=round(batch / train[label], 2) if label in train else '',
            train_step_time=round(train[label] * 1e3, 3) if label in train else '',
            train_vs_folded=round(paired_ratio(train_times[label], train_times['folded']), 3)
            if label in train else '',
            param_count=round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            stored_bytes=len(safetensors_bytes(state)),
            gmacs=round(count_macs(model.cpu(), (3, size, size)) / 1e9, 4),
            stat=f'{stat} of {rounds} rounds x {steps} steps; ratios: median of paired rounds',
        )
        model.to(device)
        rows.append(row)
    return rows


def write_rows(rows: List[dict], path: str) -> None:
    """Atomic write: the CSV is complete or untouched."""
    with atomic_open(path) as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='CSV file to write (rewritten after every family)')
    parser.add_argument('--families', default=','.join(FAMILIES))
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224, help='input size of the ImageNet families')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true', help='autocast (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--rounds', type=int, default=9,
                        help='interleaved measurement rounds (single rounds on a shared CPU vary by several per cent)')
    parser.add_argument('--steps', type=int, default=1, help='steps per measurement')
    parser.add_argument('--stat', choices=sorted(STATS), default='median',
                        help='statistic of the step times over the rounds')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(',') if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        print(f'error: unknown families {unknown}; choose from {FAMILIES}', file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows: List[dict] = []
    for family in families:
        rows += benchmark_family(family, args.batch, args.img_size, device, args.amp, args.rounds, args.steps,
                                 args.stat)
        write_rows(rows, args.out)
        print(f'{family}: done ({len(rows)} rows in {args.out})', file=sys.stderr, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
