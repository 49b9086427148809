#!/usr/bin/env python
"""`make demo`: a sweet-spot relational MLP against the complete-graph MLP on Fashion-MNIST, end to end.

    relgraph demo [--epochs N] [--output demo_output] [--data-dir DIR] [--no-progress] [--no-plot]

1. creates ``relgraph_mlp5`` by name through ``timm.create_model`` and prints its relational graph;
2. trains it and the complete-graph ``relgraph_mlp5_c1.0_l1.0`` with the ``mlp5_fashion_mnist`` recipe (the
   paper's MLP recipe, a few epochs; batches straight from memory, ``memory_loader=True``);
3. publishes the sweet-spot model to a local Hub folder (``<output>/hub/<run>/``: model.safetensors,
   config.json, model card);
4. reloads it with timm's own ``timm.create_model('local-dir:<folder>', pretrained=True)``, evaluates it on the
   test split with timm's eval transforms and checks that its top-1 equals the trained model's within 0.01
   points (a mismatch is an error: exit status 1);
5. writes ``<output>/demo.png``: the C-L map with both models and their accuracies, and the training curves;
6. prints a table of both models.

The relational model is the paper's best MLP graph (C=0.449, L=2.479), inside the MLP sweet spot (C 0.10-0.50,
L 1.82-2.75), widened to the complete graph's FLOPs (hidden width 1522 vs 512). Progress bars appear when the
output is a terminal. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package, or from
``--data-dir DIR`` holding the IDX files (e.g. torchvision's ``DIR/FashionMNIST/raw/``).
"""
from __future__ import annotations

import argparse
import csv
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

CONFIG = 'mlp5_fashion_mnist'
MODELS: Tuple[Tuple[str, str], ...] = (
    ('sweet spot', 'relgraph_mlp5'),
    ('complete graph', 'relgraph_mlp5_c1.0_l1.0'),
)
PUBLISH = 'relgraph_mlp5'   # the model published to the local Hub folder and reloaded
TOLERANCE = 0.01            # top-1 points the reloaded model may differ by
FIGURE = 'demo.png'

__all__ = ['CONFIG', 'MODELS', 'PUBLISH', 'TOLERANCE', 'run_demo', 'describe_model', 'plot_demo', 'format_table',
           'main']


def _experiment(model: str, dataset: str) -> str:
    from .hub import dataset_info
    return f'{model.replace(".", "_")}-{dataset_info(dataset)["key"]}'


def _model_kwargs(args) -> Dict[str, Any]:
    kwargs = dict(num_classes=args.num_classes, in_chans=args.in_chans or 3)
    kwargs.update(args.model_kwargs or {})
    return {k: v for k, v in kwargs.items() if v is not None}


def describe_model(name: str, kwargs: Dict[str, Any]) -> List[str]:
    """Build ``name`` through ``timm.create_model`` and describe its graph, widths, parameters and MACs."""
    import timm
    import timm_relgraph  # noqa: F401
    from .hub import _graph_line, _sweet_spot_line
    from .names import family_prefix

    model = timm.create_model(name, **kwargs)
    g = model.pretrained_cfg['graph']
    call = ', '.join([repr(name)] + [f'{k}={v!r}' for k, v in kwargs.items()])
    lines = [f'timm.create_model({call})',
             f'  graph       {_graph_line(g)}: C {g["C"]:.3f}, L {g["L"]:.3f}, {g["num_edges"]} edges '
             f'(sha256 {g["edges_sha256"][:12]}...)']
    spot = _sweet_spot_line(family_prefix(name), g['C'], g['L'])
    if spot:
        lines.append(f'  sweet spot  {spot}')
    if getattr(model, 'macs', None) is not None:
        width = f'relational width {model.width}, ' if hasattr(model, 'width') else ''
        lines.append(f'  FLOPs       {width}{model.macs:,} MACs (complete graph: {model.baseline_macs:,})')
    lines.append(f'  params      {model.pretrained_cfg["num_params"]:,} (only the weights its graph keeps)')
    return lines


def _device(args) -> str:
    """The device the trainer uses for ``args`` (the reloaded model is evaluated on the same one)."""
    if args.device:
        return args.device
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def _macs(model: str, args) -> int:
    import timm
    return int(getattr(timm.create_model(model, **_model_kwargs(args)), 'macs', 0) or 0)


def _summary(run_dir: Path) -> List[Dict[str, float]]:
    with open(run_dir / 'summary.csv', newline='') as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _best_top1(metrics: Dict[str, Any], rows: List[Dict[str, float]]) -> float:
    """Top-1 of the epoch whose checkpoint is model_best.pth.tar."""
    for row in rows:
        if int(row['epoch']) == metrics.get('best_epoch'):
            return row['eval_top1']
    return float(metrics['best_metric'])


def run_demo(output: Union[str, Path] = 'demo_output', config: Union[str, Dict[str, Any]] = CONFIG,
             models: Sequence[Tuple[str, str]] = MODELS, publish: str = PUBLISH,
             overrides: Optional[Dict[str, Any]] = None, progress: Optional[bool] = None, plot: bool = True,
             command: str = 'relgraph demo', log: Callable[[str], None] = print) -> Dict[str, Any]:
    """The demo's pipeline (see the module doc); returns what it measured and wrote.

    ``config``: a recipe name, YAML file or dict of trainer options; ``overrides``: trainer options on top
    (``memory_loader=True`` is always added). Raises :class:`timm_relgraph.hub.ReloadMismatchError` when the
    reloaded model's accuracy differs from the trained one's.
    """
    from . import trainer
    from .hub import (check_reload, comparison_row, dataset_info, evaluate_folder, export_checkpoint, split_text,
                      update_card)

    output = Path(output)
    overrides = dict(overrides or {})
    overrides['memory_loader'] = True
    base = trainer.make_args(config, output=str(output), **overrides)
    data = dataset_info(base.dataset)
    t_all = time.time()

    log('== 1. a model by name ==')
    for line in describe_model(models[0][1], _model_kwargs(base)):
        log(line)

    runs = []
    for i, (label, model) in enumerate(models, start=1):
        experiment = _experiment(model, base.dataset)
        shutil.rmtree(output / experiment, ignore_errors=True)  # a fresh run, not a resume
        log(f'\n== 2. train ({i}/{len(models)}) the {label} model: {model} ==')
        t0 = time.time()
        args = trainer.make_args(config, model=model, output=str(output), experiment=experiment, **overrides)
        metrics = trainer.train(args, progress=progress)
        run_dir = Path(metrics['output_dir'])
        rows = _summary(run_dir)
        runs.append(dict(label=label, model=model, metrics=metrics, run_dir=run_dir, summary=rows,
                         graph=metrics.get('graph') or {}, params=metrics['params'], macs=_macs(model, args),
                         top1=_best_top1(metrics, rows), seconds=time.time() - t0))

    target = next((r for r in runs if r['model'] == publish), runs[0])
    folder = output / 'hub' / target['run_dir'].name
    log(f'\n== 3. publish {target["model"]} to a local Hub folder ==')
    shutil.rmtree(folder, ignore_errors=True)
    epochs = len(target['summary'])
    export_checkpoint(target['run_dir'] / 'model_best.pth.tar', folder,
                      results={'epochs': epochs, 'top-1 of the trained model (%)': round(target['top1'], 3)})
    log(f'{folder}: ' + ', '.join(sorted(p.name for p in folder.iterdir())))

    log(f"\n== 4. reload it through timm.create_model('local-dir:{folder}', pretrained=True) ==")
    evaluation = evaluate_folder(folder, base.dataset, split=base.val_split, data_dir=base.data_dir or base.data,
                                 num_samples=base.val_num_samples, device=_device(base), progress=progress)
    diff = check_reload(folder, target['top1'], evaluation, TOLERANCE)
    target['reloaded_top1'] = evaluation['top1']
    where = split_text(base.dataset, base.val_split, evaluation['samples'])
    measured = (f'Measured by `{command}`: the folder reloaded through `local-dir:` and evaluated on the {where}, '
                f'after {epochs} epoch{"s" if epochs != 1 else ""} of training.')
    update_card(folder, results={
        'dataset': where,
        'epochs': epochs, 'top-1 (%)': round(evaluation['top1'], 3), 'top-5 (%)': round(evaluation['top5'], 3),
        'top-1 of the trained model (%)': round(target['top1'], 3), 'command': command,
    }, comparison=[comparison_row(target['model'], evaluation, measured_by=measured)])
    log(f'reloaded top-1 {evaluation["top1"]:.2f}% = trained {target["top1"]:.2f}% (difference {diff:.4f} <= '
        f'{TOLERANCE}): OK')

    figure = None
    if plot:
        log('\n== 5. figure ==')
        title = f'{data["name"]}, {epochs} epoch' + ('s' if epochs != 1 else '')
        figure = plot_demo(output / FIGURE, runs, title=title)
        log(f'wrote {figure}' if figure else "matplotlib is not installed (pip install 'timm-relgraph[plots]'): "
                                             'no figure')
    return dict(runs=runs, published=folder, evaluation=evaluation, reload_difference=diff, figure=figure,
                dataset=data['name'], split=base.val_split, where=split_text(base.dataset, base.val_split),
                epochs=epochs, seconds=time.time() - t_all)


def plot_demo(path: Union[str, Path], runs: List[Dict[str, Any]], title: str = '',
              family: str = 'mlp5') -> Optional[Path]:
    """PNG: the C-L map (catalogue, the paper's sweet spot, each model with its test top-1) beside the
    training curves (test top-1 and losses per epoch). None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        return None
    from .catalogue import load_catalogue
    from .paper import FAMILIES, PAPER_SWEET_SPOTS

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_map, ax_acc, ax_loss) = plt.subplots(1, 3, figsize=(15, 4.6))
    entries = load_catalogue(FAMILIES[family])
    ax_map.scatter([e.C for e in entries], [e.L for e in entries], s=3, c='0.8', label='catalogue graphs')
    box = PAPER_SWEET_SPOTS.get(family)
    if box:
        (c0, c1), (l0, l1) = box['C'], box['L']
        ax_map.add_patch(Rectangle((c0, l0), c1 - c0, l1 - l0, facecolor='tab:green', alpha=0.15,
                                   edgecolor='tab:green', label="paper's sweet spot"))
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for i, run in enumerate(runs):
        color = colors[i % len(colors)]
        C, L = run['graph'].get('C', float('nan')), run['graph'].get('L', float('nan'))
        text = f"{run['label']}\n{run['model']}\ntop-1 {run['top1']:.2f}%"
        if run.get('reloaded_top1') is not None:
            text += f" (reloaded {run['reloaded_top1']:.2f}%)"
        ax_map.scatter([C], [L], marker='*' if C < 1 else 's', s=220, color=color, edgecolor='k', zorder=3)
        ax_map.annotate(text, (C, L), textcoords='offset points', fontsize=8, zorder=4,
                        xytext=(-10, 14) if C > 0.8 else (10, 6), ha='right' if C > 0.8 else 'left')
        epochs = [int(r['epoch']) + 1 for r in run['summary']]
        ax_acc.plot(epochs, [r['eval_top1'] for r in run['summary']], 'o-', color=color, label=run['model'])
        ax_loss.plot(epochs, [r['train_loss'] for r in run['summary']], 'o-', color=color,
                     label=f"{run['model']} train")
        ax_loss.plot(epochs, [r['eval_loss'] for r in run['summary']], 'o--', color=color, alpha=0.6,
                     label=f"{run['model']} test")
    ax_map.set(xlabel='clustering coefficient C', ylabel='average path length L', xlim=(-0.02, 1.05),
               title='relational graphs (C-L)')
    ax_map.set_ylim(0.9, max(e.L for e in entries) + 0.1)
    ax_map.legend(loc='upper right', fontsize=8)
    ax_acc.set(xlabel='epoch', ylabel='test top-1 (%)', title='test accuracy')
    ax_loss.set(xlabel='epoch', ylabel='cross-entropy', title='loss')
    for ax in (ax_acc, ax_loss):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def format_table(result: Dict[str, Any]) -> str:
    """The demo's closing table."""
    runs = result['runs']
    epochs = f'{result["epochs"]} epoch' + ('s' if result['epochs'] != 1 else '')
    head = f'{result["where"]}: top-1 after {epochs} ({result["seconds"]:.0f} s in all)'
    cols = f'{"model":26s} {"graph":15s} {"C":>6s} {"L":>6s} {"params":>11s} {"MACs":>11s} {"top-1 %":>8s} ' \
           f'{"reloaded %":>10s} {"time":>6s}'
    lines = [head, cols, '-' * len(cols)]
    for r in runs:
        g = r['graph']
        reloaded = f'{r["reloaded_top1"]:10.2f}' if r.get('reloaded_top1') is not None else f'{"-":>10s}'
        C, L = g.get('C', float('nan')), g.get('L', float('nan'))
        lines.append(f'{r["model"]:26s} {r["label"]:15s} {C:6.3f} {L:6.3f} '
                     f'{r["params"]:>11,d} {r["macs"]:>11,d} {r["top1"]:8.2f} {reloaded} {r["seconds"]:5.0f}s')
    folder = result['published']
    lines += ['',
              f'published  {folder} ({", ".join(sorted(p.name for p in Path(folder).iterdir()))})',
              f"reloaded   timm.create_model('local-dir:{folder}', pretrained=True): top-1 "
              f'{result["evaluation"]["top1"]:.2f}% on {result["evaluation"]["samples"]:,} images, difference '
              f'{result["reload_difference"]:.4f} points (<= {TOLERANCE}): OK',
              f'figure     {result["figure"] or "(not written: matplotlib missing)"}',
              f'runs       {", ".join(str(r["run_dir"]) for r in runs)}']
    return '\n'.join(lines)


def main(argv=None) -> int:
    from .data import DatasetNotFoundError, create_relgraph_dataset
    from .hub import HubError
    from . import trainer

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog='relgraph demo', description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=None, help='default: the recipe\'s (2)')
    parser.add_argument('--output', default='demo_output', help='folder for the runs, the Hub folder and the figure '
                        '(the demo\'s runs in it are replaced)')
    parser.add_argument('--data-dir', default=None, help='Fashion-MNIST IDX files (default: the Debian package)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars (default: on a terminal)')
    parser.add_argument('--no-plot', action='store_true', help='skip the figure')
    args = parser.parse_args(argv)
    overrides = {}
    if args.epochs is not None:
        overrides['epochs'] = args.epochs
    if args.data_dir:
        overrides['data_dir'] = args.data_dir
    try:
        base = trainer.make_args(CONFIG, **overrides)
        # fail fast, before any training, if the data is missing
        create_relgraph_dataset(base.dataset, root=base.data_dir, split=base.val_split)
        result = run_demo(args.output, CONFIG, overrides=overrides, progress=False if args.no_progress else None,
                          plot=not args.no_plot, command=' '.join(['relgraph demo'] + [shlex.quote(a) for a in argv]))
    except DatasetNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except HubError as err:  # ReloadMismatchError included
        print(f'\nerror: {err}', file=sys.stderr)
        return 1
    print('\n' + format_table(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
