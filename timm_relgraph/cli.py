"""``relgraph``: the one command of timm-relgraph.

    relgraph graph --c 0.4 --l 2.0          describe one relational graph
    relgraph catalogue [--plot cl.png]      summarise, plot or rebuild the C-L catalogue
    relgraph train --config RECIPE ...      train a model (timm train.py's options; torchrun for several GPUs)
    relgraph sweep --family mlp5 ...        train one family over many graphs into one results table
    relgraph analyze TABLE --out DIR        the paper's analysis of a results table
    relgraph publish CKPT OUT_DIR ...       a checkpoint as a Hub model folder (optionally pushed)
    relgraph data torchvision-fashion-mnist ROOT   unpack data for timm's own scripts
    relgraph run SCRIPT.py ...              run a timm script (validate.py, ...) with the models registered
    relgraph demo                           the quick-start demo (``make demo``)

``relgraph <command> --help`` shows each command's options.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

__all__ = ['main']


def _cmd_graph(args) -> int:
    from .catalogue import resolve
    from .paper import PAPER_BEST
    from .graphs import GraphSpec, connectome

    if args.connectome:
        G = connectome(args.connectome)
        spec = GraphSpec('connectome', n=G.number_of_nodes(), name=args.connectome)
    elif args.family:
        if args.family not in PAPER_BEST:
            raise ValueError(f'unknown family {args.family!r}; choose one of {sorted(PAPER_BEST)}')
        spec = PAPER_BEST[args.family]
        G = spec.build()
    elif args.k is not None:
        spec = GraphSpec('ws_flex', args.n, args.k, args.p, args.seed)
        G = spec.build()
    else:
        if args.c is None or args.l is None:
            raise ValueError('give --c and --l, or --k/--p/--seed, or --family, or --connectome')
        spec = resolve(args.c, args.l, n=args.n).spec
        G = spec.build()
    info = spec.describe(G)
    n = G.number_of_nodes()
    info['density'] = round((2 * G.number_of_edges() + n) / (n * n), 6)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(key) for key in info)
        for key, value in info.items():
            print(f'{key:<{width}}  {value}')
    return 0


def _cmd_catalogue(args) -> int:
    from . import catalogue as cat

    if args.build:
        for n in args.n or list(cat.SUPPORTED_N):
            start = time.time()
            rows = cat.build_catalogue(n, seeds=args.seeds, workers=args.workers)
            cat.write_catalogue(rows, cat.catalogue_path(n))
            print(f'n={n}: {len(rows)} graphs written to {cat.catalogue_path(n)} in {time.time() - start:.0f}s')
    for n in args.n or list(cat.SUPPORTED_N):
        entries = cat.load_catalogue(n)
        Cs = [e.C for e in entries]
        Ls = [e.L for e in entries]
        grid = cat.paper_grid(n)
        print(f'n={n}: {len(entries)} graphs, C {min(Cs):.3f}-{max(Cs):.3f}, L {min(Ls):.3f}-{max(Ls):.3f}, '
              f'coarse grid of {len(grid)} graphs')
    if args.plot:
        path = plot_catalogue(args.plot, n=(args.n or [64])[0])
        print(f'wrote {path}')
    return 0


def plot_catalogue(path: str, n: int = 64) -> str:
    """Scatter of the catalogue in C-L space with the coarse grid and the paper's best graphs marked."""
    from ._compat import pyplot
    plt = pyplot('the catalogue plot')
    from .catalogue import load_catalogue, paper_grid
    from .paper import PAPER_BEST
    from .graphs import graph_stats

    entries = load_catalogue(n)
    grid = paper_grid(n)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    ax.scatter([e.C for e in entries], [e.L for e in entries], s=3, c='0.7', label=f'catalogue ({len(entries)})')
    ax.scatter([e.C for e in grid], [e.L for e in grid], s=18, c='tab:blue', label=f'coarse grid ({len(grid)})')
    for family, spec in PAPER_BEST.items():
        if spec.n != n:
            continue
        C, L = graph_stats(spec.build())
        ax.scatter([C], [L], marker='*', s=140, edgecolor='k', linewidth=0.5, zorder=3)
        ax.annotate(family, (C, L), textcoords='offset points', xytext=(5, 4), fontsize=8)
    ax.set_xlabel('clustering coefficient C')
    ax.set_ylabel('average path length L')
    ax.set_title(f'WS-flex catalogue, n = {n} (stars: paper\'s best graphs)')
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _delegate(module: str, prefix: Tuple[str, ...] = ()) -> Callable[[List[str]], int]:
    def run(argv: List[str]) -> int:
        return importlib.import_module(module).main([*prefix, *argv])
    return run


# Commands whose options belong to a module of the package: `relgraph <command> ARGS` is that module's main(ARGS).
DELEGATED: Dict[str, Tuple[Callable[[List[str]], int], str]] = {
    'train': (_delegate('timm_relgraph.trainer'), "train a model with timm train.py's options"),
    'sweep': (_delegate('timm_relgraph.sweep'), 'train one family over many relational graphs (resumable table)'),
    'analyze': (_delegate('timm_relgraph.analyze'), "the paper's analysis of a sweep table (sweet spot, plots)"),
    'publish': (_delegate('timm_relgraph.hub', ('publish',)), 'export a checkpoint as a Hub folder, optionally push'),
    'data': (_delegate('timm_relgraph.data'), "prepare datasets for timm's own scripts"),
    'run': (_delegate('timm_relgraph.run'), 'run a timm script (train.py, validate.py, ...) with the models registered'),
    'demo': (_delegate('timm_relgraph.demo'), 'the quick-start demo: sweet-spot vs complete-graph MLP'),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='relgraph', description='Relational graphs for timm models.',
                                     epilog='relgraph <command> --help shows the options of each command.')
    sub = parser.add_subparsers(dest='command', required=True, metavar='command')
    for name, (_, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)

    g = sub.add_parser('graph', help='resolve and describe one relational graph')
    g.add_argument('--c', type=float, help='target clustering coefficient')
    g.add_argument('--l', type=float, help='target average path length')
    g.add_argument('--n', type=int, default=64, help='number of nodes (64, or 16 for EfficientNet)')
    g.add_argument('--k', type=float, help='explicit WS-flex average degree (skips the catalogue)')
    g.add_argument('--p', type=float, default=0.0, help='explicit WS-flex rewiring probability')
    g.add_argument('--seed', type=int, default=0, help='explicit WS-flex seed')
    g.add_argument('--family', help="the paper's best graph of a model family, e.g. resnet34")
    g.add_argument('--connectome', help='mcwhole, mcvisual or cat')
    g.add_argument('--json', action='store_true', help='print JSON')
    g.set_defaults(func=_cmd_graph)

    c = sub.add_parser('catalogue', help='summarise, plot or rebuild the C-L catalogue')
    c.add_argument('--n', type=int, action='append', help='node count (64 or 16); repeatable')
    c.add_argument('--plot', metavar='PNG', help='write a scatter plot of the catalogue')
    c.add_argument('--build', action='store_true', help='rebuild the catalogue files (a few minutes)')
    c.add_argument('--seeds', type=int, default=None, help='graph seeds per (k, p) when building')
    c.add_argument('--workers', type=int, default=0, help='worker processes when building (0: all cores)')
    c.set_defaults(func=_cmd_catalogue)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0](argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'seeds', 1) is None:
        from .catalogue import SEEDS
        args.seeds = SEEDS
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f'relgraph: error: {err}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
