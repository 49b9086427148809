#!/usr/bin/env python
"""Analyse a sweep results table the way the paper does: C-L heat map, sweet spot, best vs complete graph.

    python train/analyze.py results/mlp5_fmnist/full.csv --cheap results/mlp5_fmnist/cheap.csv \\
        --out results/mlp5_fmnist --title "mlp5, Fashion-MNIST"

Writes into ``--out``: ``heatmap.png`` (top-1 error over C-L, sweet-spot box, complete graph and connectomes
marked), ``error_vs_c_l.png``, ``cheap_vs_full.png`` (with ``--cheap``), ``summary.json`` and ``report.md``.

Method (You et al., 2020, Sec. 5): graphs are grouped into the bins of a 15 x 15 grid over C in [0, 1] and
L in [1, 4.5]; a bin's samples are the top-1 errors of all its runs (graphs x seeds). The sweet spot is every bin
not significantly worse than the best bin (one-tailed Welch t-test, p >= 0.05), reported as the bounding box of
those bins' graphs. Smoothness is checked by predicting each graph's error from its nearest neighbours in C-L.
"""
import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from scipy import stats

from timm_relgraph.names import family_of
from timm_relgraph.paper import PAPER_SWEET_SPOTS

C_EDGES = np.linspace(0.0, 1.0, 16)
L_EDGES = np.linspace(1.0, 4.5, 16)
ALPHA = 0.05


REQUIRED_COLUMNS = ('name', 'graph_set', 'generator', 'C', 'L', 'top1', 'top5', 'train_seed', 'epochs')


class TableError(ValueError):
    """A results table that cannot be analysed (missing, empty, truncated or without the needed columns)."""


def load(path) -> List[Dict[str, Any]]:
    """Read a sweep table; every problem is a :class:`TableError` naming the file, row and column."""
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TableError(f'{path}: cannot read the table ({err})') from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TableError(f'{path}: missing columns {missing}; a sweep table (train/sweep.py) has {list(REQUIRED_COLUMNS)}')
    if not rows:
        raise TableError(f'{path}: no runs in the table (only a header)')
    for i, r in enumerate(rows, start=2):
        try:
            for key in ('C', 'L', 'top1', 'top5'):
                r[key] = float(r[key])
                if not math.isfinite(r[key]):
                    raise ValueError(f'{key} is not finite')
            r['error'] = 100.0 - r['top1']
            r['train_seed'] = int(r['train_seed'])
            r['epochs'] = int(r['epochs'])
            r['top1_by_epoch'] = json.loads(r.get('top1_by_epoch') or '[]')
        except (TypeError, ValueError) as err:  # None for a truncated row, bad numbers, bad JSON
            raise TableError(f'{path}: line {i} is malformed or truncated ({err})') from None
    return rows


def per_graph(rows) -> Dict[str, Dict[str, Any]]:
    """Mean/std error per graph (over training seeds)."""
    groups = defaultdict(list)
    for r in rows:
        groups[r['name']].append(r)
    out = {}
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: r['train_seed'])
        errors = np.array([r['error'] for r in rs])
        out[name] = dict(name=name, C=rs[0]['C'], L=rs[0]['L'], generator=rs[0]['generator'],
                         graph_set=rs[0]['graph_set'], errors=errors, seeds=[r['train_seed'] for r in rs],
                         mean=float(errors.mean()),
                         std=float(errors.std(ddof=1)) if len(errors) > 1 else 0.0, runs=len(rs),
                         params=int(float(rs[0]['params'])) if rs[0].get('params') else None,
                         macs=int(float(rs[0]['macs'])) if rs[0].get('macs') else None,
                         by_epoch=np.array([r['top1_by_epoch'] for r in rs], dtype=float))
    return out


def is_complete(g) -> bool:
    return g['C'] == 1.0 and g['L'] == 1.0


def bin_of(C: float, L: float) -> Tuple[int, int]:
    ci = int(np.clip(np.digitize(C, C_EDGES) - 1, 0, len(C_EDGES) - 2))
    li = int(np.clip(np.digitize(L, L_EDGES) - 1, 0, len(L_EDGES) - 2))
    return ci, li


def sweet_spot(graphs: Dict[str, Dict[str, Any]], alpha: float = ALPHA) -> Dict[str, Any]:
    """Bins not significantly worse than the best bin; their graphs' bounding box in C and L."""
    bins = defaultdict(list)
    members = defaultdict(list)
    for g in graphs.values():
        if g['generator'] != 'ws_flex' or is_complete(g):
            continue
        b = bin_of(g['C'], g['L'])
        bins[b].extend(g['errors'].tolist())
        members[b].append(g)
    if not bins:
        raise ValueError('no WS-flex graphs in the results table')
    means = {b: float(np.mean(v)) for b, v in bins.items()}
    best = min(means, key=means.get)
    spot = []
    pvalues = {}
    for b, samples in bins.items():
        if b == best:
            p = 1.0
        elif len(samples) < 2 or len(bins[best]) < 2:
            p = 1.0 if means[b] <= means[best] else 0.0
        else:
            t = stats.ttest_ind(samples, bins[best], equal_var=False, alternative='greater')
            p = float(t.pvalue) if not math.isnan(t.pvalue) else (1.0 if means[b] <= means[best] else 0.0)
        pvalues[b] = p
        if p >= alpha:
            spot.append(b)
    gs = [g for b in spot for g in members[b]]
    return dict(best_bin=best, bins=sorted(spot), bin_means=means, pvalues=pvalues,
                box=dict(C=[min(g['C'] for g in gs), max(g['C'] for g in gs)],
                         L=[min(g['L'] for g in gs), max(g['L'] for g in gs)]),
                num_bins=len(bins))


def graph_effect(ws: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Do the relational graphs differ at all, beyond seed noise?

    When every graph was trained with the same seeds, a two-way ANOVA (graph + training seed, additive) removes
    the seed's shared effect (same data order and init stream for every graph); otherwise a one-way ANOVA."""
    replicated = [g for g in ws if len(g['errors']) > 1]
    if len(replicated) < 3:
        return None
    seeds = replicated[0]['seeds']
    if all(g['seeds'] == seeds for g in replicated) and len(set(seeds)) == len(seeds):
        a = np.array([g['errors'] for g in replicated])
        n_g, n_s = a.shape
        mu, by_graph, by_seed = a.mean(), a.mean(1), a.mean(0)
        resid = a - by_graph[:, None] - by_seed[None, :] + mu
        df_g, df_r = n_g - 1, (n_g - 1) * (n_s - 1)
        F = (n_s * ((by_graph - mu) ** 2).sum() / df_g) / ((resid ** 2).sum() / df_r)
        return dict(test='two-way ANOVA (graph + seed)', F=float(F), p_value=float(stats.f.sf(F, df_g, df_r)),
                    graphs=n_g, seed_means=by_seed.tolist(),
                    seed_rank_correlation=float(stats.spearmanr(a[:, 0], a[:, 1])[0]) if n_s == 2 else None)
    f = stats.f_oneway(*[g['errors'] for g in replicated])
    return dict(test='one-way ANOVA', F=float(f.statistic), p_value=float(f.pvalue), graphs=len(replicated))


def complete_rank(ws: List[Dict[str, Any]], complete: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The complete graph's rank (1 = lowest error) among all graphs, per training seed, and the exact p-value
    of a rank sum this high if the complete graph were just one more draw among the graphs (ranks uniform)."""
    seeds = complete['seeds']
    per_seed = []
    for i, s in enumerate(seeds):
        others = [g['errors'][g['seeds'].index(s)] for g in ws if s in g['seeds']]
        if not others:
            return None
        per_seed.append((int(sum(e < complete['errors'][i] for e in others)) + 1, len(others) + 1))
    dist = np.array([1.0])  # distribution of the rank sum under uniform ranks, by convolution
    for _, size in per_seed:
        dist = np.convolve(dist, np.full(size, 1.0 / size))
    total = sum(r for r, _ in per_seed)
    offset = len(per_seed)  # the smallest possible rank sum
    return dict(ranks=[dict(seed=s, rank=r, of=n) for s, (r, n) in zip(seeds, per_seed)],
                p_value=float(dist[total - offset:].sum()))


def in_box(g: Dict[str, Any], box: Dict[str, Any]) -> bool:
    """Whether graph ``g`` lies in ``box`` (``{'C': (lo, hi), 'L': (lo, hi)}``), bounds included."""
    return box['C'][0] <= g['C'] <= box['C'][1] and box['L'][0] <= g['L'] <= box['L'][1]


def paper_box_test(ws: List[Dict[str, Any]], family: Optional[str]) -> Optional[Dict[str, Any]]:
    """Is the paper's own sweet spot for this family (found on another dataset) better here than the rest of
    the grid? One-tailed Welch t-test on per-graph mean errors, a hypothesis fixed by the paper in advance."""
    box = PAPER_SWEET_SPOTS.get(family or '')
    if box is None:
        return None
    inside, outside = [], []
    for g in ws:
        (inside if in_box(g, box) else outside).append(g['mean'])
    if len(inside) < 2 or len(outside) < 2:
        return None
    t = stats.ttest_ind(inside, outside, equal_var=False, alternative='less')
    return dict(family=family, box=dict(C=list(box['C']), L=list(box['L'])), inside=len(inside),
                outside=len(outside), inside_mean=float(np.mean(inside)), outside_mean=float(np.mean(outside)),
                p_value=float(t.pvalue))


def neighbour_smoothness(graphs, k: int = 4) -> Optional[Dict[str, float]]:
    """Pearson r between each graph's error and the mean error of its k nearest neighbours in (C, L / 3.5)."""
    gs = [g for g in graphs.values() if g['generator'] == 'ws_flex' and not is_complete(g)]
    if len(gs) < k + 3:
        return None
    pts = np.array([(g['C'], g['L'] / 3.5) for g in gs])
    err = np.array([g['mean'] for g in gs])
    pred = []
    for i in range(len(gs)):
        d = ((pts - pts[i]) ** 2).sum(1)
        d[i] = np.inf
        pred.append(err[np.argsort(d)[:k]].mean())
    r, p = stats.pearsonr(err, pred)
    return dict(pearson=float(r), p_value=float(p), k=k, graphs=len(gs))


def epoch_correlations(graphs) -> Dict[int, float]:
    """Pearson r between per-graph mean error after epoch e and after the last epoch (cheap-by-epochs)."""
    gs = [g for g in graphs.values()
          if g['by_epoch'].ndim == 2 and g['by_epoch'].size and g['generator'] == 'ws_flex' and not is_complete(g)]
    if len(gs) < 3:
        return {}
    epochs = min(g['by_epoch'].shape[1] for g in gs)
    final = np.array([100 - g['by_epoch'][:, epochs - 1].mean() for g in gs])
    out = {}
    for e in range(epochs - 1):
        early = np.array([100 - g['by_epoch'][:, e].mean() for g in gs])
        if np.std(early) > 0 and np.std(final) > 0:
            out[e + 1] = float(stats.pearsonr(early, final)[0])
    return out


def cheap_vs_full(cheap, full) -> Optional[Dict[str, Any]]:
    common = sorted(set(cheap) & set(full))
    common = [n for n in common if cheap[n]['generator'] == 'ws_flex']
    if len(common) < 3:
        return None
    a = np.array([cheap[n]['mean'] for n in common])
    b = np.array([full[n]['mean'] for n in common])
    r, p = stats.pearsonr(a, b)
    rho = stats.spearmanr(a, b)[0]
    return dict(pearson=float(r), p_value=float(p), spearman=float(rho), graphs=len(common), names=common,
                cheap=a.tolist(), full=b.tolist())


def plot_heatmap(graphs, spot, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    grid = np.full((len(L_EDGES) - 1, len(C_EDGES) - 1), np.nan)
    for (ci, li), m in spot['bin_means'].items():
        grid[li, ci] = m
    fig, ax = plt.subplots(figsize=(7, 5.2))
    mesh = ax.pcolormesh(C_EDGES, L_EDGES, np.ma.masked_invalid(grid), cmap='viridis_r', shading='flat')
    fig.colorbar(mesh, ax=ax, label='top-1 error (%)')
    ws = [g for g in graphs.values() if g['generator'] == 'ws_flex' and not is_complete(g)]
    ax.scatter([g['C'] for g in ws], [g['L'] for g in ws], s=6, c='k', alpha=0.4, label='graphs')
    box = spot['box']
    ax.add_patch(Rectangle((box['C'][0], box['L'][0]), box['C'][1] - box['C'][0], box['L'][1] - box['L'][0],
                           fill=False, edgecolor='red', linewidth=2, label='sweet spot'))
    for g in graphs.values():
        if g['generator'] == 'connectome':
            ax.scatter([g['C']], [g['L']], marker='*', s=160, c='orange', edgecolor='k', zorder=3)
            ax.annotate(f"{g['name']} ({g['mean']:.2f})", (g['C'], g['L']), xytext=(4, 4),
                        textcoords='offset points', fontsize=8)
        elif is_complete(g):
            ax.scatter([1.0], [1.0], marker='s', s=60, c='white', edgecolor='k', zorder=3)
            ax.annotate(f"complete ({g['mean']:.2f})", (1.0, 1.0), xytext=(-70, 8), textcoords='offset points',
                        fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(1, max(3.0, max(g['L'] for g in graphs.values()) + 0.1))
    ax.set_xlabel('clustering coefficient C')
    ax.set_ylabel('average path length L')
    ax.set_title(title)
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_error_vs(graphs, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    ws = [g for g in graphs.values() if g['generator'] == 'ws_flex' and not is_complete(g)]
    complete = [g for g in graphs.values() if is_complete(g)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, edges in ((axes[0], 'C', C_EDGES), (axes[1], 'L', L_EDGES)):
        x = np.array([g[key] for g in ws])
        y = np.array([g['mean'] for g in ws])
        ax.errorbar(x, y, yerr=[g['std'] for g in ws], fmt='o', ms=3, alpha=0.6, label='graph (mean +- std)')
        centres, means = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (x >= lo) & (x < hi)
            if sel.any():
                centres.append((lo + hi) / 2)
                means.append(y[sel].mean())
        ax.plot(centres, means, 'r-', label='bin mean')
        if complete:
            ax.axhline(complete[0]['mean'], color='k', linestyle='--', label='complete graph')
        ax.set_xlabel('clustering coefficient C' if key == 'C' else 'average path length L')
    axes[0].set_ylabel('top-1 error (%)')
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cheap(cmp, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.scatter(cmp['cheap'], cmp['full'])
    ax.set_xlabel('cheap sweep top-1 error (%)')
    ax.set_ylabel('full sweep top-1 error (%)')
    ax.set_title(f"{title}\nPearson r = {cmp['pearson']:.2f} over {cmp['graphs']} graphs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt_box(box) -> str:
    return f"C {box['C'][0]:.2f}-{box['C'][1]:.2f}, L {box['L'][0]:.2f}-{box['L'][1]:.2f}"


def analyze(full_path, out_dir, cheap_path=None, title='sweep', command: str = '') -> Dict[str, Any]:
    out_dir = Path(out_dir)
    rows = load(full_path)
    cheap_rows = load(cheap_path) if cheap_path else None
    graphs = per_graph(rows)
    if not any(g['generator'] == 'ws_flex' and not is_complete(g) for g in graphs.values()):
        raise TableError(f'{full_path}: no relational (WS-flex, non-complete) graph to analyse')
    out_dir.mkdir(parents=True, exist_ok=True)
    spot = sweet_spot(graphs)
    ws = {n: g for n, g in graphs.items() if g['generator'] == 'ws_flex' and not is_complete(g)}
    best = min(ws.values(), key=lambda g: g['mean'])
    complete = next((g for g in graphs.values() if is_complete(g)), None)
    connectomes = [g for g in graphs.values() if g['generator'] == 'connectome']
    smooth = neighbour_smoothness(graphs)
    by_epoch = epoch_correlations(graphs)
    cheap = cheap_vs_full(per_graph(cheap_rows), graphs) if cheap_rows else None
    inside = [g for g in ws.values() if in_box(g, spot['box'])]
    outside = [g for g in ws.values() if g not in inside]

    test_best = None
    if complete is not None and len(best['errors']) > 1 and len(complete['errors']) > 1:
        t = stats.ttest_ind(best['errors'], complete['errors'], equal_var=False, alternative='less')
        test_best = float(t.pvalue)
    spot_vs_complete = None
    if complete is not None and inside:
        spot_errors = np.concatenate([g['errors'] for g in inside])
        t = stats.ttest_ind(spot_errors, complete['errors'], equal_var=False, alternative='less')
        spot_vs_complete = dict(mean=float(spot_errors.mean()), p_value=float(t.pvalue), runs=len(spot_errors))
    effect = graph_effect(list(ws.values()))
    ranked = complete_rank(list(ws.values()), complete) if complete is not None else None
    paper_box = paper_box_test(list(ws.values()), family_of(ws))
    plot_heatmap(graphs, spot, out_dir / 'heatmap.png', title)
    plot_error_vs(graphs, out_dir / 'error_vs_c_l.png', title)
    if cheap:
        plot_cheap(cheap, out_dir / 'cheap_vs_full.png', title)

    summary = dict(
        title=title, runs=len(rows), graphs=len(graphs), seeds=sorted({r['train_seed'] for r in rows}),
        epochs=sorted({r['epochs'] for r in rows}),
        best=dict(name=best['name'], C=best['C'], L=best['L'], mean=best['mean'], std=best['std'], runs=best['runs']),
        complete=(dict(mean=complete['mean'], std=complete['std'], runs=complete['runs']) if complete else None),
        best_better_than_complete_p=test_best, sweet_spot=dict(box=spot['box'], bins=len(spot['bins']),
                                                               of_bins=spot['num_bins']),
        sweet_spot_vs_complete=spot_vs_complete,
        inside_mean=float(np.mean([g['mean'] for g in inside])) if inside else None,
        outside_mean=float(np.mean([g['mean'] for g in outside])) if outside else None,
        smoothness=smooth, epoch_correlation=by_epoch, graph_effect=effect,
        complete_rank=ranked, paper_box=paper_box,
        cheap_vs_full=({k: v for k, v in cheap.items() if k not in ('names', 'cheap', 'full')} if cheap else None),
        connectomes=[dict(name=g['name'], C=g['C'], L=g['L'], mean=g['mean'], std=g['std'],
                          in_sweet_spot=in_box(g, spot['box']))
                     for g in connectomes],
    )
    summary['claims'] = paper_claims(summary)
    (out_dir / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
    (out_dir / 'report.md').write_text(render_report(summary, graphs, command))
    return summary


# The paper's claims (PAPER_FACTS / the paper's abstract), as judged by ``paper_claims``.
SWEET_SPOT = '(1) a sweet spot of (C, L) beats the complete graph'
SMOOTH = '(2) performance is a smooth function of C and L'
ACROSS = '(3) this holds across tasks and datasets'
CHEAP = '(4) the sweet spot can be found cheaply'
BIOLOGY = '(5) the best graphs resemble biological networks'


def paper_claims(s: Dict[str, Any], alpha: float = ALPHA) -> List[Dict[str, str]]:
    """The paper's five claims, each judged from this sweep's numbers alone: 'holds', 'partly', 'does not hold'
    or 'not tested', with the evidence. The rules live here, in one place, so every report applies the same ones."""
    out = []

    def claim(text, verdict, evidence):
        out.append(dict(claim=text, verdict=verdict, evidence=evidence))

    b, c, v = s['best'], s['complete'], s['sweet_spot_vs_complete']
    if c is None:
        claim(SWEET_SPOT, 'not tested', 'no complete-graph runs')
    else:
        p_best, p_spot = s['best_better_than_complete_p'], (v or {}).get('p_value')
        evidence = (f"best graph {b['mean']:.2f} +- {b['std']:.2f} vs complete {c['mean']:.2f} +- {c['std']:.2f} "
                    f"(one-tailed p = {p_best:.3g})" if p_best is not None else
                    f"best graph {b['mean']:.2f} vs complete {c['mean']:.2f} (too few runs for a test)")
        if v:
            evidence += f"; sweet-spot graphs {v['mean']:.2f} (p = {v['p_value']:.3g})"
        rank = s.get('complete_rank')
        if rank:
            evidence += ('; rank of the complete graph among all graphs (1 = best), per seed: ' +
                         ', '.join(f"{r['rank']}/{r['of']}" for r in rank['ranks']) +
                         f" (p = {rank['p_value']:.3g} under equal graphs)")
        significant = [p for p in (p_best, p_spot) if p is not None and p < alpha]
        if significant and b['mean'] < c['mean']:
            verdict = 'holds'
        elif b['mean'] < c['mean'] and (v is None or v['mean'] < c['mean']):
            verdict = 'partly'
            evidence += f'; the direction matches the paper but is not significant at {alpha}'
        else:
            verdict = 'does not hold'
        claim(SWEET_SPOT, verdict, evidence)

    m, e = s['smoothness'], s.get('graph_effect')
    if not m:
        claim(SMOOTH, 'not tested', 'too few graphs')
    else:
        evidence = (f"error vs its {m['k']} nearest C-L neighbours: Pearson r = {m['pearson']:.2f} "
                    f"(p = {m['p_value']:.3g})")
        if e:
            evidence += (f"; do the relational graphs differ at all ({e['test']} over {e['graphs']} graphs): "
                         f"F = {e['F']:.2f}, p = {e['p_value']:.3g}")
            if e.get('seed_rank_correlation') is not None:
                evidence += f"; rank correlation of graphs between the two seeds: {e['seed_rank_correlation']:.2f}"
        if e and e['p_value'] >= alpha:
            verdict = 'does not hold'
            evidence += ('; at this precision the relational graphs are indistinguishable from seed noise, '
                         'so there is no landscape to be smooth')
        elif m['p_value'] < alpha and m['pearson'] >= 0.5:
            verdict = 'holds'
        elif m['p_value'] < alpha and m['pearson'] > 0:
            verdict = 'partly'
            evidence += '; significant but weak'
        else:
            verdict = 'does not hold'
        claim(SMOOTH, verdict, evidence)

    first, box = out[0]['verdict'], s.get('paper_box')
    evidence = f"the paper's datasets were CIFAR-10 and ImageNet, this sweep's is {s['title']}; claim (1) here: {first}"
    box_better = bool(box) and box['p_value'] < alpha
    if box:
        evidence += (f"; graphs inside the paper's {box['family']} sweet spot (C {box['box']['C'][0]:.2f}-"
                     f"{box['box']['C'][1]:.2f}, L {box['box']['L'][0]:.2f}-{box['box']['L'][1]:.2f}): mean error "
                     f"{box['inside_mean']:.2f} over {box['inside']} graphs vs {box['outside_mean']:.2f} over "
                     f"{box['outside']} outside (one-tailed p = {box['p_value']:.3g})")
    if first == 'not tested' and not box:
        verdict = 'not tested'
    elif first == 'holds' and box_better:
        verdict = 'holds'
    elif box_better or first in ('holds', 'partly'):
        verdict = 'partly'
    else:
        verdict = 'does not hold'
    claim(ACROSS, verdict, evidence)

    ch, ep = s['cheap_vs_full'], s['epoch_correlation']
    parts, rs = [], []
    if ch:
        parts.append(f"cheap sweep vs full sweep: Pearson r = {ch['pearson']:.2f} over {ch['graphs']} graphs "
                     f"(p = {ch['p_value']:.3g})")
        rs.append(ch['pearson'])
    if ep:
        last = max(ep)
        parts.append(f"epoch {last} vs final epoch: r = {ep[last]:.2f}")
        rs.append(ep[last])
    if not rs:
        claim(CHEAP, 'not tested', 'no cheap sweep and a single epoch')
    else:
        verdict = 'holds' if min(rs) >= 0.7 else 'partly' if max(rs) >= 0.7 else 'does not hold'
        claim(CHEAP, verdict,
              '; '.join(parts) + " (the paper: r = 0.90 for 52 graphs vs 3942, 0.93 for 3 vs 100 epochs; "
                                 "rule here: r >= 0.7)")

    cons = s['connectomes']
    if not cons:
        claim(BIOLOGY, 'not tested', 'no connectome runs')
    else:
        narrow = s['sweet_spot']['bins'] < s['sweet_spot']['of_bins']
        inside = [g['name'] for g in cons if g['in_sweet_spot']]
        beat = [g['name'] for g in cons if c is not None and g['mean'] < c['mean']]
        evidence = (f"connectomes inside the sweet-spot box: {', '.join(inside) or 'none'}; "
                    f"better than the complete graph: {', '.join(beat) or 'none'}")
        if not narrow:
            verdict = 'not tested'
            evidence += '; the sweet spot covers every bin, so lying inside it says nothing'
        elif len(inside) == len(cons):
            verdict = 'holds'
        elif inside:
            verdict = 'partly'
        else:
            verdict = 'does not hold'
        claim(BIOLOGY, verdict, evidence)
    return out


def render_report(s, graphs, command: str) -> str:
    lines = [f"# {s['title']}: relational-graph sweep", '']
    if command:
        lines += ['Reproduce:', '', '```bash', command, '```', '']
    lines += [f"{s['runs']} runs, {s['graphs']} graphs, training seeds {s['seeds']}, epochs {s['epochs']}.", '',
              "## The paper's claims on this data", '',
              '| claim | verdict | evidence |', '|---|---|---|',
              *[f"| {c['claim']} | **{c['verdict']}** | {c['evidence']} |" for c in s.get('claims', [])], '',
              '## Best graph vs complete graph (top-1 error %, mean +- std over seeds)', '',
              '| graph | C | L | top-1 error | runs |', '|---|---:|---:|---:|---:|']
    b = s['best']
    lines.append(f"| best: `{b['name']}` | {b['C']:.3f} | {b['L']:.3f} | {b['mean']:.2f} +- {b['std']:.2f} | {b['runs']} |")
    if s['complete']:
        c = s['complete']
        lines.append(f"| complete graph | 1.000 | 1.000 | {c['mean']:.2f} +- {c['std']:.2f} | {c['runs']} |")
    for g in s['connectomes']:
        lines.append(f"| connectome `{g['name']}` | {g['C']:.3f} | {g['L']:.3f} | {g['mean']:.2f} +- {g['std']:.2f} | |")
    lines += ['', '## Sweet spot', '',
              f"Bins not significantly worse than the best bin (one-tailed Welch t-test, alpha {ALPHA}): "
              f"{s['sweet_spot']['bins']} of {s['sweet_spot']['of_bins']} bins, bounding box "
              f"{_fmt_box(s['sweet_spot']['box'])}.", '']
    if s['sweet_spot_vs_complete']:
        v = s['sweet_spot_vs_complete']
        lines.append(f"Graphs inside the box: mean error {v['mean']:.2f} over {v['runs']} runs; one-tailed p that they "
                     f"beat the complete graph: {v['p_value']:.3g}.")
    if s['inside_mean'] is not None and s['outside_mean'] is not None:
        lines.append(f"Mean error of graphs inside the box {s['inside_mean']:.2f}, outside {s['outside_mean']:.2f}.")
    lines += ['', '![heat map](heatmap.png)', '', '![error vs C and L](error_vs_c_l.png)', '',
              '## Cheap sweeps', '']
    if s['epoch_correlation']:
        lines.append('Pearson r between per-graph error after epoch e and after the last epoch: ' +
                     ', '.join(f'epoch {e}: {r:.2f}' for e, r in s['epoch_correlation'].items()) + '.')
    if s['cheap_vs_full']:
        c = s['cheap_vs_full']
        lines += ['', f"Cheap sweep vs full sweep over {c['graphs']} shared graphs: Pearson r = {c['pearson']:.2f} "
                      f"(p = {c['p_value']:.3g}), Spearman rho = {c['spearman']:.2f}.", '',
                  '![cheap vs full](cheap_vs_full.png)']
    if s['smoothness']:
        m = s['smoothness']
        lines += ['', f"Smoothness: Pearson r = {m['pearson']:.2f} (p = {m['p_value']:.3g}) between each graph's error "
                      f"and the mean of its {m['k']} nearest neighbours in C-L ({m['graphs']} graphs)."]
    lines += ['', '## Per-graph results', '', '| graph | C | L | top-1 error | std | runs |',
              '|---|---:|---:|---:|---:|---:|']
    for g in sorted(graphs.values(), key=lambda g: g['mean']):
        lines.append(f"| `{g['name']}` | {g['C']:.3f} | {g['L']:.3f} | {g['mean']:.2f} | {g['std']:.2f} | {g['runs']} |")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('results', type=Path, help='full sweep results table (CSV from train/sweep.py)')
    parser.add_argument('--cheap', type=Path, help='cheap sweep results table to correlate with the full one')
    parser.add_argument('--out', type=Path, required=True)
    parser.add_argument('--title', default='sweep')
    parser.add_argument('--command', default='', help='the command line that reproduces the table (for the report)')
    args = parser.parse_args(argv)
    try:
        s = analyze(args.results, args.out, args.cheap, args.title, args.command)
    except TableError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(json.dumps({k: s[k] for k in ('best', 'complete', 'sweet_spot', 'cheap_vs_full')}, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
