"""End-to-end check of an installed timm-relgraph wheel, run from a temporary folder outside the checkout.

    VENV/bin/python -I .ci/wheel_smoke.py core  [--timm VERSION]   # after `pip install timm_relgraph-*.whl`
    VENV/bin/python -I .ci/wheel_smoke.py plots [--timm VERSION]   # after `pip install 'timm_relgraph-*.whl[plots]'`

core: the package is imported from the venv (not the checkout) with its package data; ``relgraph --help``; a
tiny ``relgraph train`` and ``relgraph sweep`` on Fashion-MNIST (Debian's dataset-fashion-mnist, ``make data``)
with the packaged recipe; ``relgraph analyze`` of the sweep table; figures without matplotlib fail with the
install line of the ``plots`` extra. plots: the same analysis writes its figures, and so does
``relgraph catalogue --plot``. Exits non-zero at the first failed check.
"""
import argparse
import csv
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLOTS_HINT = "pip install 'timm-relgraph[plots]'"
TINY = ['--set', 'train_num_samples=256', '--set', 'val_num_samples=256', '--set', 'workers=0']
GRAPHS = 'relgraph_mlp5_c1.0_l1.0,relgraph_mlp5_c0.4_l2.0,relgraph_mlp5_c0.6_l3.0'


def check(ok: bool, what: str) -> None:
    if not ok:
        sys.exit(f'wheel smoke: FAILED: {what}')
    print(f'wheel smoke: ok: {what}', flush=True)


def relgraph(*args: str, cwd: Path, expect_ok: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONSAFEPATH='1')
    env.pop('PYTHONPATH', None)
    out = subprocess.run([str(BIN / 'relgraph'), *args], cwd=str(cwd), env=env, capture_output=True, text=True,
                         timeout=600)
    if expect_ok and out.returncode != 0:
        sys.exit(f'wheel smoke: FAILED: relgraph {" ".join(args)} exited {out.returncode}\n'
                 f'{out.stdout[-3000:]}\n{out.stderr[-3000:]}')
    return out


def rows(path: Path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def installed(timm_version: str) -> None:
    import timm_relgraph
    from timm_relgraph.catalogue import load_catalogue
    from timm_relgraph.recipes import recipe_path

    where = Path(timm_relgraph.__file__).resolve()
    check(where.parent != REPO / 'timm_relgraph' and Path(sys.prefix).resolve() in where.parents,
          f'timm_relgraph is imported from the venv ({where}), not from the checkout')
    check(Path(recipe_path('mlp5_fashion_mnist')).is_file() and len(load_catalogue(64)) > 1000,
          'package data (recipes, catalogues) is installed')
    if timm_version:
        got = importlib.metadata.version('timm')
        check(got == timm_version, f'timm {got} is installed (expected {timm_version})')


def core(tmp: Path) -> None:
    out = relgraph('--help', cwd=tmp)
    check(all(c in out.stdout for c in ('train', 'sweep', 'analyze', 'publish', 'demo')), 'relgraph --help')

    relgraph('train', '--config', 'mlp5_fashion_mnist', '--epochs', '1', '--train-num-samples', '256',
             '--val-num-samples', '256', '--workers', '0', '--output', str(tmp / 'train'), '--experiment', 'tiny',
             '--no-progress', cwd=tmp)
    run = tmp / 'train' / 'tiny'
    summary = rows(run / 'summary.csv')
    check(len(summary) == 1 and summary[0]['epoch'] == '0' and 0 <= float(summary[0]['eval_top1']) <= 100,
          'relgraph train wrote one epoch to summary.csv')
    check(all((run / f).is_file() for f in ('args.yaml', 'last.pth.tar', 'model_best.pth.tar')),
          'relgraph train wrote args.yaml and its checkpoints')

    table = tmp / 'sweep' / 'results.csv'
    relgraph('sweep', '--family', 'mlp5', '--config', 'mlp5_fashion_mnist', '--graphs', GRAPHS, '--seeds', '0',
             '--epochs', '1', '--results', str(table), '--workers', '1', *TINY, cwd=tmp)
    results = rows(table)
    check(sorted(r['name'] for r in results) == sorted(GRAPHS.split(','))
          and all(0 <= float(r['top1']) <= 100 for r in results),
          'relgraph sweep recorded one run per graph')

    analysis = tmp / 'analysis'
    out = relgraph('analyze', str(table), '--out', str(analysis), '--title', 'smoke', cwd=tmp, expect_ok=False)
    try:
        import matplotlib  # noqa: F401
        have_plots = True
    except ImportError:
        have_plots = False
    if have_plots or out.returncode == 0:
        check(out.returncode == 0 and (analysis / 'report.md').is_file() and
              json.loads((analysis / 'summary.json').read_text())['complete']['name'] == 'relgraph_mlp5_c1.0_l1.0',
              'relgraph analyze wrote report.md and summary.json')
        check(have_plots or PLOTS_HINT in out.stderr + out.stdout,
              f'relgraph analyze without matplotlib says that figures need {PLOTS_HINT}')
    else:
        check(PLOTS_HINT in out.stderr + out.stdout,
              f'relgraph analyze without matplotlib names {PLOTS_HINT} (exit {out.returncode}: '
              f'{(out.stderr or out.stdout).strip().splitlines()[-1:]})')
    if not have_plots:
        out = relgraph('catalogue', '--plot', str(tmp / 'cl.png'), cwd=tmp, expect_ok=False)
        check(out.returncode != 0 and PLOTS_HINT in out.stderr and not (tmp / 'cl.png').exists(),
              f'relgraph catalogue --plot without matplotlib names {PLOTS_HINT}')


def plots(tmp: Path) -> None:
    table = tmp / 'sweep' / 'results.csv'
    relgraph('sweep', '--family', 'mlp5', '--config', 'mlp5_fashion_mnist', '--graphs', GRAPHS, '--seeds', '0',
             '--epochs', '1', '--results', str(table), '--workers', '1', *TINY, cwd=tmp)
    analysis = tmp / 'analysis'
    relgraph('analyze', str(table), '--out', str(analysis), '--title', 'smoke', cwd=tmp)
    pngs = [analysis / f for f in ('heatmap.png', 'error_vs_c_l.png')]
    check(all(p.is_file() and p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' for p in pngs) and
          (analysis / 'report.md').is_file(), 'relgraph analyze wrote its figures and report')
    relgraph('catalogue', '--plot', str(tmp / 'cl.png'), cwd=tmp)
    check((tmp / 'cl.png').read_bytes()[:4] == b'\x89PNG', 'relgraph catalogue --plot wrote a PNG')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('mode', choices=['core', 'plots'])
    parser.add_argument('--timm', default='', help='the timm version the venv must hold')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='relgraph-wheel-') as tmp:
        os.chdir(tmp)
        installed(args.timm)
        (core if args.mode == 'core' else plots)(Path(tmp))
    print(f'wheel smoke: {args.mode}: all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
