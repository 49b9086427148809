#!/usr/bin/env python
"""Train (if needed) and export the project's published weights, and measure them into a timm results table.

    python hub/make_weights.py [--epochs N] [--retrain] [--runs demo_output] [--out weights]
                               [--results-csv results/results-fashion_mnist.csv]

The weights: Fashion-MNIST mlp5 at the paper's best MLP graph (``relgraph_mlp5``, inside the sweet spot) and at
the complete graph (``relgraph_mlp5_c1.0_l1.0``).

1. Training is the demo's: the project's trainer with the ``mlp5_fashion_mnist`` recipe and the in-memory
   loader (``memory_loader=True``). Runs under ``--runs`` (default ``demo_output/``, where ``make demo`` leaves
   them) are reused when they are complete with the same number of epochs, unless ``--retrain``.
2. Each run's ``model_best.pth.tar`` is exported with the publisher into ``<out>/<run>/`` (model.safetensors,
   config.json, model card).
3. Each folder is reloaded with ``timm.create_model('local-dir:<folder>', pretrained=True)`` and evaluated with
   timm's eval transforms on the Fashion-MNIST test split; the accuracy must equal the run's best epoch within
   0.01 points.
4. The measured accuracies (never typed in) and this command go into every card (with a comparison of both
   models), into ``--results-csv`` in timm's ``results/results-*.csv`` format, and into a note beside it
   (``.md``: the command, the versions, the training settings).
"""
import argparse
import platform
import shlex
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timm_relgraph import hub  # noqa: E402

CONFIG = 'mlp5_fashion_mnist'
MODELS: Tuple[Tuple[str, str], ...] = (
    ('sweet spot (the paper\'s best MLP graph)', 'relgraph_mlp5'),
    ('complete graph (the ordinary MLP)', 'relgraph_mlp5_c1.0_l1.0'),
)
TOLERANCE = 0.01


def _complete_run(run: Path, model: str, epochs: int) -> bool:
    """A finished run of ``model`` with ``epochs`` epochs, trained with the memory loader."""
    import yaml
    if not (run / 'model_best.pth.tar').is_file() or not (run / 'args.yaml').is_file():
        return False
    args = yaml.safe_load((run / 'args.yaml').read_text()) or {}
    if args.get('model') != model or args.get('epochs') != epochs or not args.get('memory_loader'):
        return False
    with open(run / 'summary.csv') as f:
        return sum(1 for _ in f) - 1 == epochs


def make_weights(config: Union[str, Dict[str, Any]] = CONFIG, models: Sequence[Tuple[str, str]] = MODELS,
                 runs: Union[str, Path] = ROOT / 'demo_output', out: Union[str, Path] = ROOT / 'weights',
                 results_csv: Optional[Union[str, Path]] = ROOT / 'results' / 'results-fashion_mnist.csv',
                 overrides: Optional[Dict[str, Any]] = None, retrain: bool = False,
                 command: str = 'python hub/make_weights.py', progress: Optional[bool] = False) -> Dict[str, Any]:
    """Steps 1-4 of the module doc; returns the folders, the evaluations and the results rows."""
    from timm_relgraph import trainer
    from timm_relgraph.demo import _best_top1, _device, _experiment, _summary

    runs, out = Path(runs), Path(out)
    overrides = dict(overrides or {}, memory_loader=True)
    done = []
    for label, model in models:
        args = trainer.make_args(config, model=model, output=str(runs), **overrides)
        args.experiment = _experiment(model, args.dataset)
        run = runs / args.experiment
        t0 = time.time()
        if retrain or not _complete_run(run, model, args.epochs):
            shutil.rmtree(run, ignore_errors=True)
            print(f'== train {model} ({label}): {args.epochs} epochs -> {run}', flush=True)
            metrics = trainer.train(args, progress=progress)
        else:
            print(f'== reuse {run} ({args.epochs} epochs)', flush=True)
            metrics = {'best_epoch': None, 'best_metric': None}
        rows = _summary(run)
        if metrics.get('best_epoch') is None:  # a reused run: its best epoch is the best row of its summary
            best = max(rows, key=lambda r: r['eval_top1'])
            metrics = {'best_epoch': int(best['epoch']), 'best_metric': best['eval_top1']}
        trained_top1 = _best_top1(metrics, rows)
        folder = out / run.name
        shutil.rmtree(folder, ignore_errors=True)
        hub.export_checkpoint(run / 'model_best.pth.tar', folder)
        evaluation = hub.evaluate_folder(folder, args.dataset, split=args.val_split,
                                         data_dir=args.data_dir or args.data, num_samples=args.val_num_samples,
                                         device=_device(args), progress=progress)
        hub.check_reload(folder, trained_top1, evaluation, TOLERANCE)
        print(f'{model}: reloaded from {folder}: top-1 {evaluation["top1"]:.3f}% (trained {trained_top1:.3f}%), '
              f'top-5 {evaluation["top5"]:.3f}% on {evaluation["samples"]:,} images '
              f'({time.time() - t0:.0f}s)', flush=True)
        done.append(dict(label=label, model=model, folder=folder, run=run, args=args, evaluation=evaluation,
                         trained_top1=trained_top1, epochs=len(rows)))

    split, samples = done[0]['args'].val_split, done[0]['evaluation']['samples']
    where = hub.split_text(done[0]['args'].dataset, split, samples)
    measured = (f'Measured by `{command}`: each folder reloaded through `local-dir:` and evaluated with timm\'s '
                f'eval transforms on the {where}.')
    comparison = [hub.comparison_row(d['model'], d['evaluation'], measured_by=measured) for d in done]
    for d in done:
        ev = d['evaluation']
        hub.update_card(d['folder'], results={
            'dataset': where,
            'recipe': f"{config if isinstance(config, str) else 'custom'} (project trainer, memory loader), "
                      f"{d['epochs']} epoch{'s' if d['epochs'] != 1 else ''}, seed {d['args'].seed}",
            'top-1 (%)': round(ev['top1'], 3), 'top-5 (%)': round(ev['top5'], 3), 'command': command,
        }, comparison=comparison)
        hub.verify_folder(d['folder'])
    rows = [hub.results_row(d['model'], d['evaluation']) for d in done]
    if results_csv:
        path = hub.write_results_csv(rows, results_csv)
        _write_note(Path(path).with_suffix('.md'), path, done, command, where, config)
        print(f'wrote {path} and {Path(path).with_suffix(".md")}')
    return dict(done=done, rows=rows, results_csv=results_csv)


def _write_note(note: Path, csv_path: Path, done, command: str, where: str, config) -> None:
    import timm
    import torch
    import timm_relgraph

    a = done[0]['args']
    out = Path(done[0]['folder']).parent.resolve()
    out = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    epochs = f'{a.epochs} epoch' + ('s' if a.epochs != 1 else '')
    lines = [
        f'# {Path(csv_path).name}', '',
        f'Written by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d} (timm {timm.__version__}, torch '
        f'{torch.__version__}, timm-relgraph {timm_relgraph.__version__}, Python {platform.python_version()}, '
        f'device {a.device or "auto"}).', '',
        f'Columns are timm\'s `results/results-*.csv` ones. Each row is a model exported to `{out}/<run>/`, '
        f'reloaded with `timm.create_model(\'local-dir:{out}/<run>\', pretrained=True)` and evaluated with '
        f'timm\'s eval transforms on the {where}. `param_count` is in millions and counts only the weights each '
        f'relational graph keeps (the paper\'s count).', '',
        f'Training: recipe `{config if isinstance(config, str) else "custom"}` (the paper\'s MLP recipe: Nesterov '
        f'SGD, lr {a.lr}, batch {a.batch_size}, weight decay {a.weight_decay}, cosine schedule), {epochs}, '
        f'seed {a.seed}, the in-memory loader; the checkpoint of the best epoch is the one exported.', '',
        '| model | graph | C | L | top-1 (%) | top-5 (%) | params | MACs | trained top-1 (%) |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for d in done:
        ev, g = d['evaluation'], d['evaluation']['graph']
        lines.append(f"| `{d['model']}` | {d['label']} | {g['C']:.3f} | {g['L']:.3f} | {ev['top1']:.3f} | "
                     f"{ev['top5']:.3f} | {ev['param_count']:,} | {ev['macs']:,} | {d['trained_top1']:.3f} |")
    note.write_text('\n'.join(lines) + '\n')


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--epochs', type=int, default=None, help="training epochs (default: the recipe's)")
    parser.add_argument('--runs', default=str(ROOT / 'demo_output'), help='training output folder')
    parser.add_argument('--out', default=str(ROOT / 'weights'), help='folder for the exported Hub folders')
    parser.add_argument('--results-csv', default=str(ROOT / 'results' / 'results-fashion_mnist.csv'),
                        help="timm-format results table to write ('' for none)")
    parser.add_argument('--data-dir', default=None, help='Fashion-MNIST IDX files (default: the Debian package)')
    parser.add_argument('--retrain', action='store_true', help='train again even when complete runs exist')
    args = parser.parse_args(argv)
    overrides = {}
    if args.epochs is not None:
        overrides['epochs'] = args.epochs
    if args.data_dir:
        overrides['data_dir'] = args.data_dir
    command = ' '.join(['python hub/make_weights.py'] + [shlex.quote(a) for a in argv])
    try:
        make_weights(CONFIG, runs=args.runs, out=args.out, results_csv=args.results_csv or None, overrides=overrides,
                     retrain=args.retrain, command=command, progress=None)
    except hub.HubError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
