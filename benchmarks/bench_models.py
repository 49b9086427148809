"""Training-step and inference time of every relgraph family on CPU, as ratios to its references.

For each family, the paper's best graph (FLOPs-matched) is timed against:
- the same model with its masks folded into plain dense layers (same widths, no per-step masking), and
- the complete-graph relgraph model (the paper's baseline network), and
- timm's own model of the family where one exists (resnet18, resnet34, resnet50, efficientnet_b0).

    python benchmarks/bench_models.py [--batch 8] [--img-size 224] [--iters 3] [--families resnet34,mlp5]

Times are medians over ``--iters`` runs after one warm-up; small batches on CPU are noisy, so read the ratios,
not the absolute numbers. MACs are the analytic counts at the timed input size.
"""
import argparse
import copy
import statistics
import sys
import time

import timm
import torch

import timm_relgraph  # noqa: F401
from timm_relgraph.flops import count_macs
from timm_relgraph.layers import fold_masks

TIMM_BASELINES = {'resnet18': 'resnet18', 'resnet34': 'resnet34', 'resnet50': 'resnet50',
                  'efficientnet_b0': 'efficientnet_b0'}
FAMILIES = ['mlp5', 'cnn8', 'resnet18', 'resnet34', 'resnet34sep', 'resnet50', 'efficientnet_b0']


def _median_time(fn, iters: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_model(model: torch.nn.Module, x: torch.Tensor, iters: int):
    model.eval()
    with torch.inference_mode():
        infer = _median_time(lambda: model(x), iters)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    target = torch.zeros(x.shape[0], dtype=torch.long)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        opt.step()

    train = _median_time(step, iters)
    return train, infer


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=224, help='input size of the ImageNet families')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: leave as is)')
    parser.add_argument('--families', default=','.join(FAMILIES))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for family in args.families.split(','):
        size = 32 if family == 'mlp5' else args.img_size
        x = torch.randn(args.batch, 3, size, size)
        relational = timm.create_model(f'relgraph_{family}')
        folded = fold_masks(copy.deepcopy(relational))
        complete = timm.create_model(f'relgraph_{family}_c1.0_l1.0')
        models = {'relational': relational, 'folded (same width)': folded, 'complete graph': complete}
        if family in TIMM_BASELINES:
            models['timm ' + TIMM_BASELINES[family]] = timm.create_model(TIMM_BASELINES[family])
        times = {label: time_model(m, x, args.iters) for label, m in models.items()}
        macs = count_macs(relational, (3, size, size))
        base_train, base_infer = times['relational']
        for label, (train, infer) in times.items():
            rows.append((family, label, train * 1e3, infer * 1e3, base_train / train, base_infer / infer,
                         macs if label == 'relational' else count_macs(models[label], (3, size, size))))
        print(f'{family}: done', file=sys.stderr, flush=True)
    print(f'batch {args.batch}, ImageNet families at {args.img_size}px, mlp5 at 32px, torch threads '
          f'{torch.get_num_threads()}, median of {args.iters}')
    print(f"| family | model | train step ms | inference ms | relational/this (train) | relational/this (infer) "
          f"| MACs |")
    print('|---|---|---:|---:|---:|---:|---:|')
    for family, label, train, infer, rt, ri, macs in rows:
        print(f'| {family} | {label} | {train:.1f} | {infer:.1f} | {rt:.2f} | {ri:.2f} | {macs:,} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
