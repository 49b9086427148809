#!/usr/bin/env python
"""Train one model family on many relational graphs and record one results table (the paper's experiment).

    relgraph sweep --family mlp5 --config mlp5_fashion_mnist \\
        --graphs grid,complete --seeds 0,1 --epochs 5 --results results/mlp5_fmnist/full.csv

Graph sets (comma-separated, combinable):
  grid         the paper's coarse C-L grid, selected from the catalogue by graph2nn's rule (52 graphs for n = 64)
  cheap13      13 graphs spread over the grid (farthest-point sampling in normalised C-L), for cheap sweeps
  complete     the complete graph (the ordinary network, the paper's baseline)
  connectomes  the macaque whole-cortex, macaque visual-cortex and cat connectomes (directed, as the authors
               train them) as relational graphs
  best         the paper's best graph of the family
  <names>      model names such as relgraph_mlp5_c0.4_l2.0, or @file with one name per line

Each (graph, train seed) is one run of the project's trainer (``relgraph train``) or, with ``--train-py``, of
timm's own ``train.py`` (through ``timm_relgraph.run``). The table (columns ``COLUMNS``) is rewritten
atomically after every run; a killed sweep restarts where it stopped: finished runs are skipped, an
interrupted run resumes from its last checkpoint. ``--workers N`` trains N runs at once (threads split).

``--backend ray`` runs each (graph, seed) as a Ray task instead (``timm_relgraph.ray_backend``): on the cluster
named by ``--address`` or ``RAY_ADDRESS``, else on a Ray instance started on this machine. Each task asks for
``--cpus-per-run`` CPUs and ``--gpus-per-run`` GPUs and is retried (``--max-retries``) when its worker or node
dies; the driver alone writes the table, so every run appears once, and a re-run after the driver died skips the
finished runs. Run folders and recipes must then be on storage every node sees (see docs/scale_out.md).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ._io import atomic_open
from .catalogue import paper_grid
from .graphs import GraphSpec, graph_stats
from .models import spec_for_name
from .names import format_name, parse_name, RelgraphNameError
from .paper import FAMILIES, best_graph
from .ray_backend import RunsFailed
from .recipes import recipe_path

COLUMNS = ['run_id', 'graph_set', 'name', 'generator', 'n', 'k', 'p', 'seed', 'C', 'L', 'params', 'macs',
           'top1', 'top5', 'val_top1', 'top1_by_epoch', 'epochs', 'train_seed', 'wall_time']
# top1/top5: the final model on the recipe's val split (the test set). With the trainer's ``holdout``, val_top1 is
# the final epoch on the held-out part of the training split (the selection split) and top1_by_epoch its curve;
# without it val_top1 is empty and selection and report share one split.


def cheap_subset(specs: List[GraphSpec], stats: List[tuple], count: int = 13) -> List[int]:
    """Indices of ``count`` graphs spread over C-L: farthest-point sampling on (C, L / 3.5), starting from the
    graph nearest the centroid. Deterministic."""
    pts = np.array([(c, l / 3.5) for c, l in stats])
    first = int(np.argmin(((pts - pts.mean(0)) ** 2).sum(1)))
    chosen = [first]
    dist = ((pts - pts[first]) ** 2).sum(1)
    while len(chosen) < min(count, len(pts)):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((pts - pts[nxt]) ** 2).sum(1))
    return sorted(chosen)


def graph_set(family: str, names: str) -> List[Dict[str, Any]]:
    """Expand ``--graphs`` into ``[{'set', 'name', 'spec'}]`` (unique by spec, first set wins)."""
    n = FAMILIES[family]
    items: List[Dict[str, Any]] = []

    def add(set_name, spec, label=None):
        G = spec.build()
        C, L = graph_stats(G)
        items.append(dict(set=set_name, spec=spec, C=C, L=L,
                          name=label or format_name(family, 1.0 if spec.is_complete else C, L)))

    grid = paper_grid(n)
    for token in [t.strip() for t in names.split(',') if t.strip()]:
        if token == 'grid':
            for e in grid:
                add('grid', e.spec)
        elif token == 'cheap13':
            for i in cheap_subset([e.spec for e in grid], [(e.C, e.L) for e in grid]):
                add('cheap13', grid[i].spec)
        elif token == 'complete':
            add('complete', GraphSpec('ws_flex', n, float(n), 0.0, 0))
        elif token == 'best':
            add('best', best_graph(family), f'relgraph_{family}')
        elif token == 'connectomes':
            for cname in ('mcwhole', 'mcvisual', 'cat'):
                add('connectomes', GraphSpec('connectome', name=cname), cname)
        else:
            lines = Path(token[1:]).read_text().split() if token.startswith('@') else [token]
            for line in lines:
                if parse_name(line).family != family:
                    raise RelgraphNameError(f'{line!r} is not a relgraph_{family} model name')
                add('names', spec_for_name(line), line)
    unique, seen = [], set()
    for item in items:
        key = json.dumps(item['spec'].to_dict(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def parse_seeds(text: str) -> List[int]:
    """``'0,1'`` or ``'0-4'`` or ``'0-4,9'`` -> sorted unique seeds; ValueError naming the bad part."""
    seeds = set()
    for part in (p.strip() for p in str(text).split(',')):
        if not part:
            continue
        lo, sep, hi = part.partition('-')
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f'--seeds: {part!r} is not a seed or a range like 0-4') from None
        if first < 0 or last < first:
            raise ValueError(f'--seeds: {part!r} is not an increasing range of non-negative seeds')
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError(f'--seeds: no seed in {text!r}')
    return sorted(seeds)


def run_id(item: Dict[str, Any], train_seed: int, epochs: int) -> str:
    spec = item['spec']
    if spec.generator == 'connectome':
        graph = spec.name
    else:
        graph = f'n{spec.n}_k{spec.k:.6g}_p{spec.p:.6g}_s{spec.seed}'
    return f'{graph}__seed{train_seed}__ep{epochs}'


def read_table(path: Path) -> List[Dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_table(path: Path, rows: List[Dict[str, Any]]) -> None:
    with atomic_open(path) as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator='\n')
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, '') for k in COLUMNS})


def _summary_top1(summary: Path) -> List[float]:
    with open(summary, newline='') as f:
        return [float(r['eval_top1']) for r in csv.DictReader(f)]


def _run_one(job: Dict[str, Any]) -> Dict[str, Any]:
    """Train one (graph, seed); resumes from the run's last checkpoint when one exists. Runs in a worker (a local
    process or a Ray task)."""
    import torch
    if job['threads']:
        torch.set_num_threads(job['threads'])
    out_root, experiment = Path(job['out_root']), job['run_id']
    run_dir = out_root / experiment
    last = run_dir / 'last.pth.tar'
    start = time.time()
    overrides = dict(job['overrides'], model=job['model'], seed=job['train_seed'], epochs=job['epochs'],
                     output=str(out_root), experiment=experiment,
                     model_kwargs=dict(job['overrides'].get('model_kwargs') or {}, graph=job['graph']))
    if last.is_file():
        overrides['resume'] = str(last)
    if job['train_py']:
        cmd = [sys.executable, '-m', 'timm_relgraph.run', job['train_py'], '--config', job['config'],
               '--model', job['model'], '--seed', str(job['train_seed']), '--epochs', str(job['epochs']),
               '--output', str(out_root), '--experiment', experiment, '--model-kwargs',
               *[f'{k}={json.dumps(v)}' for k, v in overrides['model_kwargs'].items()]]
        if 'resume' in overrides:
            cmd += ['--resume', overrides['resume']]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    else:
        from .trainer import make_args, train
        # the recipe's content when the job carries it (Ray: nodes need not see the file), else its path
        train(make_args(job.get('config_data') or job['config'], **overrides), progress=False)
    by_epoch = _summary_top1(run_dir / 'summary.csv')
    with open(run_dir / 'summary.csv', newline='') as f:
        final = list(csv.DictReader(f))[-1]
    result = dict(top1=float(final['eval_top1']), top5=float(final['eval_top5']), val_top1='',
                  top1_by_epoch=json.dumps(by_epoch), wall_time=round(time.time() - start, 1))
    test = run_dir / 'test_metrics.json'
    if test.is_file():  # trained with a held-out validation split: report the test set, keep the selection metric
        metrics = json.loads(test.read_text())
        result.update(top1=float(metrics['top1']), top5=float(metrics['top5']), val_top1=float(final['eval_top1']))
    return result


def _model_stats(family: str, spec: GraphSpec, overrides: Dict[str, Any]) -> Dict[str, Any]:
    import timm
    from timm_relgraph.flops import count_macs
    kwargs = dict(overrides.get('model_kwargs') or {})
    for key in ('num_classes', 'in_chans'):
        if overrides.get(key) is not None:
            kwargs[key] = overrides[key]
    model = timm.create_model(f'relgraph_{family}', graph=spec.to_dict(), **kwargs)
    size = overrides.get('img_size') or kwargs.get('img_size') or model.pretrained_cfg['input_size'][-1]
    in_chans = kwargs.get('in_chans', model.pretrained_cfg['input_size'][0])
    macs = getattr(model, 'macs', None) or count_macs(model, (in_chans, size, size))
    return dict(params=sum(p.numel() for p in model.parameters()), macs=macs)


def sweep(family: str, config: str, graphs: str, seeds: List[int], epochs: int, results: Path,
          out_root: Optional[Path] = None, workers: int = 1, train_py: Optional[str] = None,
          overrides: Optional[Dict[str, Any]] = None, limit: Optional[int] = None, backend: str = 'local',
          address: Optional[str] = None, cpus_per_run: Optional[float] = None, gpus_per_run: float = 0,
          max_retries: int = 3) -> List[Dict[str, Any]]:
    """Run (or resume) a sweep; returns the results table rows.

    ``backend``: ``'local'`` (this machine; ``workers`` runs at once) or ``'ray'`` (one Ray task per run on the
    cluster at ``address`` / ``RAY_ADDRESS``, else a local Ray instance; ``cpus_per_run`` (default 1) and
    ``gpus_per_run`` per task, ``max_retries`` retries after a worker or node dies)."""
    import yaml
    if family not in FAMILIES:
        raise ValueError(f'unknown family {family!r}; choose one of {sorted(FAMILIES)}')
    if backend not in ('local', 'ray'):
        raise ValueError(f'unknown backend {backend!r}; choose local or ray')
    config = Path(recipe_path(config)).resolve()  # absolute: workers may run elsewhere (other cwd, other node)
    results = Path(results).resolve()
    base = yaml.safe_load(config.read_text()) or {}
    overrides = dict(overrides or {})
    # --set model_kwargs=... adds to the recipe's model_kwargs rather than replacing them
    model_kwargs = dict(base.get('model_kwargs') or {}, **(overrides.get('model_kwargs') or {}))
    if model_kwargs:
        overrides['model_kwargs'] = model_kwargs
    merged = dict(base, **overrides)
    items = graph_set(family, graphs)
    out_root = Path(out_root or results.parent / (results.stem + '_runs')).resolve()
    rows = read_table(results)
    done = {r['run_id'] for r in rows}
    jobs = []
    for item in items:
        for s in seeds:
            rid = run_id(item, s, epochs)
            if rid in done:
                continue
            spec = item['spec']
            jobs.append(dict(run_id=rid, item=item, model=f'relgraph_{family}', graph=spec.to_dict(),
                             train_seed=s, epochs=epochs, config=str(config), overrides=overrides,
                             out_root=str(out_root), train_py=train_py,
                             threads=max(1, int(cpus_per_run or 1)) if backend == 'ray' else
                             max(1, (os.cpu_count() or 1) // max(workers, 1))))
    if limit is not None:
        jobs = jobs[:limit]
    total = len(jobs)
    print(f'{family}: {len(items)} graphs x {len(seeds)} seeds, {len(done)} runs already in {results}, '
          f'{total} to go', flush=True)
    stats_cache: Dict[str, Dict[str, Any]] = {}

    def record(job, result):
        item, spec = job['item'], job['item']['spec']
        key = json.dumps(spec.to_dict(), sort_keys=True)
        if key not in stats_cache:
            stats_cache[key] = _model_stats(family, spec, merged)
        d = spec.to_dict()
        row = dict(run_id=job['run_id'], graph_set=item['set'], name=item['name'], generator=spec.generator,
                   n=spec.n, k=d.get('k', ''), p=d.get('p', ''),
                   seed=d.get('seed', ''), C=round(item['C'], 6), L=round(item['L'], 6),
                   epochs=job['epochs'], train_seed=job['train_seed'], **stats_cache[key], **result)
        rows.append(row)
        write_table(results, rows)
        print(f"[{len(rows) - len(done)}/{total}] {item['name']} seed {job['train_seed']}: top1 {result['top1']:.2f} "
              f"({result['wall_time']:.0f}s)", flush=True)

    if backend == 'ray':
        from .ray_backend import run_jobs
        run_jobs([{k: v for k, v in job.items() if k != 'item'} for job in jobs], jobs, record, address=address,
                 cpus_per_run=cpus_per_run or 1, gpus_per_run=gpus_per_run, max_retries=max_retries)
    elif workers <= 1:
        for job in jobs:
            record(job, _run_one({k: v for k, v in job.items() if k != 'item'}))
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(workers, mp_context=mp.get_context('spawn')) as pool:
            futures = {pool.submit(_run_one, {k: v for k, v in job.items() if k != 'item'}): job for job in jobs}
            for fut in as_completed(futures):
                record(futures[fut], fut.result())
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='relgraph sweep', description=__doc__.split('\n')[0])
    parser.add_argument('--family', required=True, choices=sorted(FAMILIES))
    parser.add_argument('--config', required=True, help='trainer / train.py YAML recipe')
    parser.add_argument('--graphs', default='grid,complete', help='graph sets or names, comma-separated')
    parser.add_argument('--seeds', default='0', help='training seeds, e.g. 0,1 or 0-4')
    parser.add_argument('--epochs', type=int, required=True)
    parser.add_argument('--results', required=True, type=Path, help='results table (CSV), resumed if present')
    parser.add_argument('--runs-dir', type=Path, help='where run folders go (default: next to the table)')
    parser.add_argument('--workers', type=int, default=1, help='runs at once (local backend)')
    parser.add_argument('--backend', choices=['local', 'ray'], default='local',
                        help='local: this machine (process pool); ray: one Ray task per run (pip install '
                        "'timm-relgraph[ray]')")
    parser.add_argument('--address', help='Ray cluster address (default: $RAY_ADDRESS, else a new local instance)')
    parser.add_argument('--cpus-per-run', type=float, default=1, help='CPUs each Ray task asks for')
    parser.add_argument('--gpus-per-run', type=float, default=0, help='GPUs each Ray task asks for (0.5: two share)')
    parser.add_argument('--max-retries', type=int, default=3,
                        help='Ray: retries of a run whose worker or node died (errors in a run are not retried)')
    parser.add_argument('--train-py', help="path to timm's train.py to train with instead of the project's trainer")
    parser.add_argument('--limit', type=int, help='run at most this many new runs, then stop')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override a recipe key (YAML value), e.g. --set batch_size=256')
    args = parser.parse_args(argv)
    import yaml
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition('=')
        if not sep:
            parser.error(f'--set takes KEY=VALUE, got {item!r}')
        overrides[key] = yaml.safe_load(value)
    try:
        seeds = parse_seeds(args.seeds)
        sweep(args.family, args.config, args.graphs, seeds, args.epochs, args.results, out_root=args.runs_dir,
              workers=args.workers, train_py=args.train_py, overrides=overrides, limit=args.limit,
              backend=args.backend, address=args.address, cpus_per_run=args.cpus_per_run,
              gpus_per_run=args.gpus_per_run, max_retries=args.max_retries)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f'relgraph sweep: error: {err}', file=sys.stderr)
        return 2
    except RunsFailed as err:
        print(f'relgraph sweep: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
