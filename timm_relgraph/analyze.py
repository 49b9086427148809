#!/usr/bin/env python
"""Analyse a sweep results table the way the paper does: C-L heat map, sweet spot, best vs complete graph.

    relgraph analyze results/mlp5_fmnist/full.csv --cheap results/mlp5_fmnist/cheap.csv \\
        --out results/mlp5_fmnist --title "mlp5, Fashion-MNIST"

Writes into ``--out``: ``heatmap.png`` (test top-1 error over C-L, sweet-spot box, complete graph and connectomes
marked), ``error_vs_c_l.png``, ``cheap_vs_full.png`` (with ``--cheap``), ``summary.json`` and ``report.md``.

Method (You et al., 2020, Sec. 5): graphs are grouped into the bins of a 15 x 15 grid over C in [0, 1] and
L in [1, 4.5]; a bin's samples are the top-1 errors of all its runs (graphs x seeds). The sweet spot is every bin
not significantly worse than the best bin (one-tailed Student t-test, equal variances, as the authors' notebook
does it; kept when p >= 0.05), reported as the bounding box of those bins' graphs. Welch's p is reported beside
every Student p. Smoothness is checked by predicting each graph's error from its nearest neighbours in C-L.

Two splits. ``top1``/``top5`` are the test set. When the table has ``val_top1`` (top-1 on a validation split held
out of the training set, final epoch) in every row, everything that *selects* (the best graph, the best bin,
the sweet-spot bins and box) is decided on validation error, and everything *reported* (best vs complete,
sweet-spot graphs vs complete, the paper-box test, the ANOVA of graph effect, the complete graph's rank,
smoothness, the per-graph table) uses test error. Without ``val_top1`` both use the test set, and the report
says that the best graph's margin is then optimistic.
"""
import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from .names import family_of
from .paper import PAPER_SWEET_SPOTS

C_EDGES = np.linspace(0.0, 1.0, 16)
L_EDGES = np.linspace(1.0, 4.5, 16)
ALPHA = 0.05


REQUIRED_COLUMNS = ('name', 'graph_set', 'generator', 'C', 'L', 'top1', 'top5', 'train_seed', 'epochs')
OPTIONAL_COLUMNS = ('val_top1',)  # older tables lack it; then selection and report share the test split
SAME_SPLIT_WARNING = 'best graph chosen and reported on the same split: its margin is optimistic'


class TableError(ValueError):
    """A results table that cannot be analysed (missing, empty, truncated or without the needed columns)."""


def _cell(path, line: int, row: Dict[str, Any], key: str, kind=float):
    value = row.get(key)
    if value is None:  # csv.DictReader fills the fields a short row lacks with None
        raise TableError(f'{path}: line {line} is truncated (no value in column {key})')
    try:
        x = kind(value)
    except (TypeError, ValueError):
        raise TableError(f'{path}: line {line} is malformed: column {key} = {value!r} is not a number') from None
    if kind is float and not math.isfinite(x):
        raise TableError(f'{path}: line {line} is malformed: column {key} = {value!r} is not finite')
    return x


def load(path) -> List[Dict[str, Any]]:
    """Read a sweep table; every problem is a :class:`TableError` naming the file, line and column.

    Adds ``error`` (100 - top1, the test split) and ``val_error`` (100 - val_top1, or None where the table has no
    ``val_top1`` column or the cell is empty)."""
    try:
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise TableError(f'{path}: cannot read the table ({err})') from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise TableError(f'{path}: missing columns {missing}; a sweep table (relgraph sweep) has {list(REQUIRED_COLUMNS)}')
    if not rows:
        raise TableError(f'{path}: no runs in the table (only a header)')
    has_val = 'val_top1' in header
    for i, r in enumerate(rows, start=2):
        for key in ('C', 'L', 'top1', 'top5'):
            r[key] = _cell(path, i, r, key)
        r['error'] = 100.0 - r['top1']
        r['train_seed'] = _cell(path, i, r, 'train_seed', int)
        r['epochs'] = _cell(path, i, r, 'epochs', int)
        r['val_error'] = None
        if has_val:
            if r.get('val_top1') is None:
                raise TableError(f'{path}: line {i} is truncated (no value in column val_top1)')
            if r['val_top1'].strip():
                r['val_top1'] = _cell(path, i, r, 'val_top1')
                r['val_error'] = 100.0 - r['val_top1']
        try:
            r['top1_by_epoch'] = json.loads(r.get('top1_by_epoch') or '[]')
        except (TypeError, ValueError) as err:
            raise TableError(f'{path}: line {i} is malformed: column top1_by_epoch is not a JSON list ({err})') from None
    return rows


def selection_split(rows) -> Dict[str, Any]:
    """Which split selects: 'validation' when every row has ``val_top1``, else 'test' (the same split as the
    report). Reported comparisons always use the test split."""
    n_val = sum(r.get('val_error') is not None for r in rows)
    if n_val == len(rows):
        return dict(selection='validation', report='test', val_rows=n_val, rows=len(rows),
                    note='best graph, best bin and sweet spot chosen on validation error (100 - val_top1); '
                         'every comparison reported on test error (100 - top1)')
    if 'val_top1' not in rows[0]:  # csv.DictReader gives every row a key for each header column
        why = 'the table has no val_top1 column'
    else:
        why = f'val_top1 is empty in {len(rows) - n_val} of {len(rows)} rows'
    return dict(selection='test', report='test', val_rows=n_val, rows=len(rows),
                note=f'{why}, so selection and report use the test split; {SAME_SPLIT_WARNING}')


def per_graph(rows, selection: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Per graph (over training seeds): test errors with their mean/std, and the selection split's errors
    (``sel_errors``/``sel_mean``: validation when ``selection == 'validation'``, else the test errors)."""
    selection = selection or selection_split(rows)['selection']
    groups = defaultdict(list)
    for r in rows:
        groups[r['name']].append(r)
    out = {}
    for name, rs in groups.items():
        rs = sorted(rs, key=lambda r: r['train_seed'])
        errors = np.array([r['error'] for r in rs])
        val = [r.get('val_error') for r in rs]
        val_errors = np.array(val, dtype=float) if all(v is not None for v in val) else None
        sel = val_errors if selection == 'validation' else errors
        out[name] = dict(name=name, C=rs[0]['C'], L=rs[0]['L'], generator=rs[0]['generator'],
                         graph_set=rs[0]['graph_set'], errors=errors, seeds=[r['train_seed'] for r in rs],
                         mean=float(errors.mean()),
                         std=float(errors.std(ddof=1)) if len(errors) > 1 else 0.0, runs=len(rs),
                         val_errors=val_errors, val_mean=float(val_errors.mean()) if val_errors is not None else None,
                         sel_errors=sel, sel_mean=float(sel.mean()),
                         sel_std=float(sel.std(ddof=1)) if len(sel) > 1 else 0.0,
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


def _finite(x) -> Optional[float]:
    return float(x) if x is not None and math.isfinite(x) else None


# The authors' notebook (graph2nn analysis/analyze_results.ipynb) runs ``t, p = ttest_ind(best, other)`` -- scipy's
# default, Student's equal-variance test, two-sided -- and calls ``other`` significantly worse iff t < 0 and
# p / 2 < 0.05. As a one-tailed p that is p / 2 when t < 0 and 1 - p / 2 otherwise, which is exactly
# ``ttest_ind(other, best, equal_var=True, alternative='greater').pvalue`` (t(other, best) = -t(best, other); at
# t = 0 both give 0.5). We checked this numerically on random samples and the tests assert it
# (``notebook_one_tailed_p`` below is the notebook's form, kept for that check). So the decision "not
# significantly worse iff one-tailed p >= 0.05" is the notebook's rule.
def notebook_one_tailed_p(best: Sequence[float], other: Sequence[float]) -> float:
    """The notebook's convention: the one-tailed p that ``other`` is worse (higher error) than ``best``, taken
    as half the two-sided Student p when the difference points that way."""
    t, p = stats.ttest_ind(best, other)
    return float(p / 2 if t < 0 else 1 - p / 2)


def one_tailed(a: Sequence[float], b: Sequence[float], alternative: str = 'less') -> Optional[Dict[str, Any]]:
    """One-tailed two-sample t-tests of H1: mean(a) < mean(b) (``'less'``) or mean(a) > mean(b) (``'greater'``).

    ``p_value`` is Student's (equal variances; the paper's test), ``p_welch`` Welch's (unequal variances), shown
    beside it because the two samples can differ in size and spread (e.g. 15 complete-graph seeds vs 5). None
    when a sample has fewer than two values; a p is None when the test is undefined (both samples constant)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    with np.errstate(all='ignore'):
        s = stats.ttest_ind(a, b, equal_var=True, alternative=alternative)
        w = stats.ttest_ind(a, b, equal_var=False, alternative=alternative)
    return dict(p_value=_finite(s.pvalue), p_welch=_finite(w.pvalue), t=_finite(s.statistic), n=[len(a), len(b)])


def sweet_spot(graphs: Dict[str, Dict[str, Any]], alpha: float = ALPHA) -> Dict[str, Any]:
    """Bins not significantly worse than the best bin; their graphs' bounding box in C and L.

    Decided on the selection split (``sel_errors``): the best bin has the lowest mean, and a bin is kept unless
    the one-tailed Student t-test says it is worse than the best at ``alpha``. Welch's p is computed beside it
    (and how many bins Welch's test would keep), but does not decide."""
    bins = defaultdict(list)
    test_bins = defaultdict(list)
    members = defaultdict(list)
    for g in graphs.values():
        if g['generator'] != 'ws_flex' or is_complete(g):
            continue
        b = bin_of(g['C'], g['L'])
        bins[b].extend(g['sel_errors'].tolist())
        test_bins[b].extend(g['errors'].tolist())
        members[b].append(g)
    if not bins:
        raise ValueError('no WS-flex graphs in the results table')
    means = {b: float(np.mean(v)) for b, v in bins.items()}
    best = min(means, key=means.get)
    spot, spot_welch, pvalues, details = [], [], {}, []
    for b in sorted(bins):
        samples = bins[b]
        t = None if b == best else one_tailed(samples, bins[best], 'greater')
        p_student = 1.0 if b == best else (t or {}).get('p_value')
        p_welch = 1.0 if b == best else (t or {}).get('p_welch')
        # too few runs or no spread: the test is undefined; keep the bin when its mean is no worse than the best
        fallback = 1.0 if means[b] <= means[best] else 0.0
        keep = (p_student if p_student is not None else fallback) >= alpha
        pvalues[b] = p_student if p_student is not None else fallback
        if keep:
            spot.append(b)
        if (p_welch if p_welch is not None else fallback) >= alpha:
            spot_welch.append(b)
        ci, li = b
        details.append(dict(bin=[ci, li], C=[float(C_EDGES[ci]), float(C_EDGES[ci + 1])],
                            L=[float(L_EDGES[li]), float(L_EDGES[li + 1])], graphs=len(members[b]),
                            runs=len(samples), selection_mean=means[b], test_mean=float(np.mean(test_bins[b])),
                            p_value=p_student, p_welch=p_welch, in_sweet_spot=keep, best=b == best))
    gs = [g for b in spot for g in members[b]]
    return dict(best_bin=best, bins=sorted(spot), bins_welch=sorted(spot_welch), bin_means=means,
                bin_test_means={b: float(np.mean(v)) for b, v in test_bins.items()}, pvalues=pvalues,
                details=details,
                box=dict(C=[min(g['C'] for g in gs), max(g['C'] for g in gs)],
                         L=[min(g['L'] for g in gs), max(g['L'] for g in gs)]),
                num_bins=len(bins))


def _by_seed(g) -> Dict[int, float]:
    """Test error per training seed (the first run when a seed repeats)."""
    out = {}
    for s, e in zip(g['seeds'], g['errors']):
        out.setdefault(s, float(e))
    return out


def graph_effect(ws: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Do the relational graphs differ at all, beyond seed noise? (test error)

    A two-way ANOVA (graph + training seed, additive) on the seeds every graph shares removes the seed's shared
    effect (same data order and init stream for every graph); runs on other seeds (a graph trained with extra
    seeds) are left out and counted. With fewer than two shared seeds it falls back to a one-way ANOVA on all
    runs. ``test`` and ``note`` say which was done."""
    replicated = [g for g in ws if len(g['errors']) > 1]
    if len(replicated) < 3:
        return None
    per_seed = [_by_seed(g) for g in replicated]
    common = sorted(set.intersection(*(set(d) for d in per_seed)))
    total_runs = sum(len(g['errors']) for g in replicated)
    if len(common) >= 2:
        a = np.array([[d[s] for s in common] for d in per_seed])
        n_g, n_s = a.shape
        mu, by_graph, by_seed = a.mean(), a.mean(1), a.mean(0)
        resid = a - by_graph[:, None] - by_seed[None, :] + mu
        df_g, df_r = n_g - 1, (n_g - 1) * (n_s - 1)
        ss_r = (resid ** 2).sum()
        F = (n_s * ((by_graph - mu) ** 2).sum() / df_g) / (ss_r / df_r) if ss_r > 0 else math.inf
        left_out = total_runs - n_g * n_s
        note = f'on the {n_s} seeds all {n_g} graphs share ({common})'
        if left_out:
            note += f'; {left_out} runs on other seeds left out'
        return dict(test='two-way ANOVA (graph + seed)', F=float(F), p_value=float(stats.f.sf(F, df_g, df_r)),
                    graphs=n_g, seeds_used=common, runs_left_out=left_out, note=note,
                    seed_means=by_seed.tolist(),
                    seed_rank_correlation=float(stats.spearmanr(a[:, 0], a[:, 1])[0]) if n_s == 2 else None)
    f = stats.f_oneway(*[g['errors'] for g in replicated])
    return dict(test='one-way ANOVA', F=float(f.statistic), p_value=float(f.pvalue), graphs=len(replicated),
                seeds_used=None, runs_left_out=0,
                note=f'the graphs share {len(common)} training seed(s), too few to remove the seed effect: '
                     f'one-way ANOVA over all {total_runs} runs')


def complete_rank(ws: List[Dict[str, Any]], complete: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The complete graph's rank (1 = lowest test error) among all graphs, per training seed, and the exact
    p-value of a rank sum this high if the complete graph were just one more draw among the graphs (ranks uniform).

    Only the complete graph's seeds that every other graph shares are ranked (the complete graph may have been
    trained with more seeds than the rest); if no seed is shared by all, the seeds some other graph has are used,
    each ranked among the graphs that have it. None when no seed overlaps."""
    mine = _by_seed(complete)
    others = [_by_seed(g) for g in ws]
    shared = [s for s in sorted(mine) if others and all(s in d for d in others)]
    basis = 'shared by every other graph'
    if not shared:
        shared = [s for s in sorted(mine) if any(s in d for d in others)]
        basis = 'held by some other graphs (no seed is shared by all)'
    if not shared:
        return None
    per_seed = []
    for s in shared:
        errs = [d[s] for d in others if s in d]
        per_seed.append((int(sum(e < mine[s] for e in errs)) + 1, len(errs) + 1))
    dist = np.array([1.0])  # distribution of the rank sum under uniform ranks, by convolution
    for _, size in per_seed:
        dist = np.convolve(dist, np.full(size, 1.0 / size))
    total = sum(r for r, _ in per_seed)
    offset = len(per_seed)  # the smallest possible rank sum
    left_out = [s for s in sorted(mine) if s not in shared]
    return dict(ranks=[dict(seed=s, rank=r, of=n) for s, (r, n) in zip(shared, per_seed)],
                p_value=float(min(1.0, dist[total - offset:].sum())), seeds_used=len(shared),
                seeds_left_out=left_out,
                note=f'{len(shared)} of the complete graph\'s {len(mine)} seeds, those {basis}')


def in_box(g: Dict[str, Any], box: Dict[str, Any]) -> bool:
    """Whether graph ``g`` lies in ``box`` (``{'C': (lo, hi), 'L': (lo, hi)}``), bounds included."""
    return box['C'][0] <= g['C'] <= box['C'][1] and box['L'][0] <= g['L'] <= box['L'][1]


def paper_box_test(ws: List[Dict[str, Any]], family: Optional[str]) -> Optional[Dict[str, Any]]:
    """Is the paper's own sweet spot for this family (found on another dataset) better here than the rest of
    the grid? One-tailed Student t-test (Welch's p beside it) on per-graph mean test errors; the box is fixed by
    the paper in advance, so nothing here is selected on this table."""
    box = PAPER_SWEET_SPOTS.get(family or '')
    if box is None:
        return None
    inside, outside = [], []
    for g in ws:
        (inside if in_box(g, box) else outside).append(g['mean'])
    t = one_tailed(inside, outside, 'less')
    if t is None:
        return None
    return dict(family=family, box=dict(C=list(box['C']), L=list(box['L'])), inside=len(inside),
                outside=len(outside), inside_mean=float(np.mean(inside)), outside_mean=float(np.mean(outside)),
                p_value=t['p_value'], p_welch=t['p_welch'])


def neighbour_smoothness(graphs, k: int = 4) -> Optional[Dict[str, float]]:
    """Pearson r between each graph's test error and the mean test error of its k nearest neighbours in
    (C, L / 3.5)."""
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
    """Pearson r between per-graph mean error after epoch e and after the last epoch (cheap-by-epochs), on the
    split the per-epoch curve ``top1_by_epoch`` was measured on."""
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


def cheap_vs_full(cheap, full, spot: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    """Per-graph mean *test* error of the cheap sweep vs the full sweep, over the WS-flex graphs both hold:
    Pearson and Spearman correlations. With the full sweep's ``spot``, also whether the cheap sweep's best graph
    (chosen on the cheap table's own selection split) lies in the full sweep's sweet spot."""
    common = sorted(set(cheap) & set(full))
    common = [n for n in common if cheap[n]['generator'] == 'ws_flex' and not is_complete(cheap[n])]
    if len(common) < 3:
        return None
    a = np.array([cheap[n]['mean'] for n in common])
    b = np.array([full[n]['mean'] for n in common])
    r, p = stats.pearsonr(a, b)
    rho, rho_p = stats.spearmanr(a, b)
    out = dict(error='test', pearson=float(r), p_value=float(p), spearman=float(rho), spearman_p=float(rho_p),
               graphs=len(common), names=common, cheap=a.tolist(), full=b.tolist())
    ws = [g for g in cheap.values() if g['generator'] == 'ws_flex' and not is_complete(g)]
    if spot is not None and ws:
        best = min(ws, key=lambda g: g['sel_mean'])
        out['cheap_best'] = dict(name=best['name'], C=best['C'], L=best['L'], mean=best['mean'],
                                 selection_mean=best['sel_mean'])
        out['cheap_best_in_sweet_spot'] = bool(in_box(best, spot['box']))
        out['cheap_best_in_sweet_spot_bins'] = bin_of(best['C'], best['L']) in set(spot['bins'])
    return out


def plot_heatmap(graphs, spot, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    grid = np.full((len(L_EDGES) - 1, len(C_EDGES) - 1), np.nan)
    for (ci, li), m in spot['bin_test_means'].items():
        grid[li, ci] = m
    fig, ax = plt.subplots(figsize=(7, 5.2))
    mesh = ax.pcolormesh(C_EDGES, L_EDGES, np.ma.masked_invalid(grid), cmap='viridis_r', shading='flat')
    fig.colorbar(mesh, ax=ax, label='test top-1 error (%)')
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
    axes[0].set_ylabel('test top-1 error (%)')
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
    ax.set_xlabel('cheap sweep test top-1 error (%)')
    ax.set_ylabel('full sweep test top-1 error (%)')
    ax.set_title(f"{title}\nPearson r = {cmp['pearson']:.2f}, Spearman rho = {cmp['spearman']:.2f} "
                 f"over {cmp['graphs']} graphs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _fmt_box(box) -> str:
    return f"C {box['C'][0]:.2f}-{box['C'][1]:.2f}, L {box['L'][0]:.2f}-{box['L'][1]:.2f}"


def _fmt_p(p) -> str:
    return 'n/a' if p is None else f'{p:.3g}'


def _ps(t) -> str:
    """'Student p = x, Welch p = y' for a result carrying ``p_value`` (Student) and ``p_welch``."""
    return f"one-tailed Student p = {_fmt_p(t.get('p_value'))}, Welch p = {_fmt_p(t.get('p_welch'))}"


def _graph_summary(g) -> Dict[str, Any]:
    return dict(name=g['name'], C=g['C'], L=g['L'], mean=g['mean'], std=g['std'], runs=g['runs'])


def analyze(full_path, out_dir, cheap_path=None, title='sweep', command: str = '') -> Dict[str, Any]:
    out_dir = Path(out_dir)
    rows = load(full_path)
    cheap_rows = load(cheap_path) if cheap_path else None
    split = selection_split(rows)
    graphs = per_graph(rows, split['selection'])
    if not any(g['generator'] == 'ws_flex' and not is_complete(g) for g in graphs.values()):
        raise TableError(f'{full_path}: no relational (WS-flex, non-complete) graph to analyse')
    out_dir.mkdir(parents=True, exist_ok=True)
    spot = sweet_spot(graphs)  # selection split
    ws = {n: g for n, g in graphs.items() if g['generator'] == 'ws_flex' and not is_complete(g)}
    best = min(ws.values(), key=lambda g: g['sel_mean'])  # selected on the selection split ...
    best_test = min(ws.values(), key=lambda g: g['mean'])  # ... and, for comparison, on the test split itself
    complete = next((g for g in graphs.values() if is_complete(g)), None)
    connectomes = [g for g in graphs.values() if g['generator'] == 'connectome']
    smooth = neighbour_smoothness(graphs)
    by_epoch = epoch_correlations(graphs)
    cheap = None
    if cheap_rows:
        cheap_split = selection_split(cheap_rows)
        cheap = cheap_vs_full(per_graph(cheap_rows, cheap_split['selection']), graphs, spot)
        if cheap:
            cheap['cheap_selected_on'] = cheap_split['selection']
    inside = [g for g in ws.values() if in_box(g, spot['box'])]
    outside = [g for g in ws.values() if g not in inside]

    # every comparison below is on test error
    vs_best = one_tailed(best['errors'], complete['errors'], 'less') if complete is not None else None
    spot_vs_complete = None
    if complete is not None and inside:
        spot_errors = np.concatenate([g['errors'] for g in inside])
        t = one_tailed(spot_errors, complete['errors'], 'less')
        spot_vs_complete = dict(mean=float(spot_errors.mean()), runs=len(spot_errors), graphs=len(inside),
                                p_value=(t or {}).get('p_value'), p_welch=(t or {}).get('p_welch'))
    effect = graph_effect(list(ws.values()))
    ranked = complete_rank(list(ws.values()), complete) if complete is not None else None
    paper_box = paper_box_test(list(ws.values()), family_of(ws))
    try:
        plot_heatmap(graphs, spot, out_dir / 'heatmap.png', title)
        plot_error_vs(graphs, out_dir / 'error_vs_c_l.png', title)
        if cheap:
            plot_cheap(cheap, out_dir / 'cheap_vs_full.png', title)
    except ImportError as err:  # matplotlib is the optional 'plots' extra; the tables and report need none
        from ._compat import PLOTS_EXTRA
        print(f'relgraph analyze: figures skipped ({err.name or err}; {PLOTS_EXTRA})', file=sys.stderr)

    sel_label = 'validation' if split['selection'] == 'validation' else 'test'
    best_on_test = dict(_graph_summary(best_test), same_as_best=best_test['name'] == best['name'],
                        note=('the graph with the lowest test error; picking it on the test set and reporting its '
                              'test error is a winner\'s-curse estimate (optimistic)'))
    summary = dict(
        title=title, runs=len(rows), graphs=len(graphs), seeds=sorted({r['train_seed'] for r in rows}),
        epochs=sorted({r['epochs'] for r in rows}), split=split,
        best=dict(_graph_summary(best), selected_on=sel_label, selection_mean=best['sel_mean'],
                  selection_std=best['sel_std'], error='test'),
        best_on_test=best_on_test,
        complete=(_graph_summary(complete) if complete else None),
        best_better_than_complete_p=(vs_best or {}).get('p_value'),
        best_better_than_complete_p_welch=(vs_best or {}).get('p_welch'),
        sweet_spot=dict(box=spot['box'], bins=len(spot['bins']), of_bins=spot['num_bins'],
                        bins_welch=len(spot['bins_welch']), selected_on=sel_label,
                        test='one-tailed Student t-test (equal variances) vs the best bin, alpha '
                             f'{ALPHA}; Welch p beside it',
                        best_bin=next(d for d in spot['details'] if d['best']),
                        bin_tests=spot['details']),
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
    or 'not tested', with the evidence. The rules live here, in one place, so every report applies the same ones.

    A result is called significant only when the paper's test (one-tailed Student t-test) gives p < ``alpha``;
    Welch's p is quoted beside it, and a disagreement is spelled out. Errors are test errors; which split chose
    the best graph and the sweet spot is in ``s['split']``."""
    out = []

    def claim(text, verdict, evidence):
        out.append(dict(claim=text, verdict=verdict, evidence=evidence))

    def sig(p):
        return p is not None and p < alpha

    split = s.get('split') or {}
    same_split = split.get('selection', 'test') == 'test'
    b, c, v = s['best'], s['complete'], s['sweet_spot_vs_complete']
    if c is None:
        claim(SWEET_SPOT, 'not tested', 'no complete-graph runs')
    else:
        p_best, p_best_w = s['best_better_than_complete_p'], s.get('best_better_than_complete_p_welch')
        p_spot = (v or {}).get('p_value')
        chosen = f"chosen on {b.get('selected_on', 'test')} error"
        evidence = (f"best graph ({chosen}) test error {b['mean']:.2f} +- {b['std']:.2f} vs complete "
                    f"{c['mean']:.2f} +- {c['std']:.2f} ({_ps(dict(p_value=p_best, p_welch=p_best_w))})"
                    if p_best is not None else
                    f"best graph ({chosen}) test error {b['mean']:.2f} vs complete {c['mean']:.2f} "
                    f"(too few runs for a test)")
        if same_split:
            evidence += f'; {SAME_SPLIT_WARNING}'
        if v:
            evidence += f"; sweet-spot graphs {v['mean']:.2f} over {v['runs']} runs ({_ps(v)})"
        rank = s.get('complete_rank')
        if rank:
            evidence += ('; rank of the complete graph among all graphs (1 = best), per seed: ' +
                         ', '.join(f"{r['rank']}/{r['of']}" for r in rank['ranks']) +
                         f" (p = {rank['p_value']:.3g} under equal graphs; {rank['note']})")
        significant = [(p, w) for p, w in ((p_best, p_best_w), (p_spot, (v or {}).get('p_welch'))) if sig(p)]
        if significant and b['mean'] < c['mean']:
            verdict = 'holds'
            if not any(sig(w) for _, w in significant):
                evidence += f"; Welch's test, which does not assume equal variances, does not reach {alpha}"
        elif b['mean'] < c['mean'] and (v is None or v['mean'] < c['mean']):
            verdict = 'partly'
            evidence += f'; the direction matches the paper but is not significant (Student p >= {alpha})'
        else:
            verdict = 'does not hold'
        claim(SWEET_SPOT, verdict, evidence)

    m, e = s['smoothness'], s.get('graph_effect')
    if not m:
        claim(SMOOTH, 'not tested', 'too few graphs')
    else:
        evidence = (f"test error vs its {m['k']} nearest C-L neighbours: Pearson r = {m['pearson']:.2f} "
                    f"(p = {m['p_value']:.3g})")
        if e:
            evidence += (f"; do the relational graphs differ at all ({e['test']} over {e['graphs']} graphs, "
                         f"{e['note']}): F = {e['F']:.2f}, p = {e['p_value']:.3g}")
            if e.get('seed_rank_correlation') is not None:
                evidence += f"; rank correlation of graphs between the two seeds: {e['seed_rank_correlation']:.2f}"
        if e and not sig(e['p_value']):
            verdict = 'does not hold'
            evidence += (f'; the graph effect is not significant (p >= {alpha}): at this precision the relational '
                         'graphs are indistinguishable from seed noise, so there is no landscape to be smooth')
        elif sig(m['p_value']) and m['pearson'] >= 0.5:
            verdict = 'holds'
        elif sig(m['p_value']) and m['pearson'] > 0:
            verdict = 'partly'
            evidence += '; significant but weak (r < 0.5)'
        else:
            verdict = 'does not hold'
        claim(SMOOTH, verdict, evidence)

    first, box = out[0]['verdict'], s.get('paper_box')
    evidence = f"the paper's datasets were CIFAR-10 and ImageNet, this sweep's is {s['title']}; claim (1) here: {first}"
    box_better = bool(box) and sig(box['p_value'])
    if box:
        evidence += (f"; graphs inside the paper's {box['family']} sweet spot (C {box['box']['C'][0]:.2f}-"
                     f"{box['box']['C'][1]:.2f}, L {box['box']['L'][0]:.2f}-{box['box']['L'][1]:.2f}): mean test "
                     f"error {box['inside_mean']:.2f} over {box['inside']} graphs vs {box['outside_mean']:.2f} over "
                     f"{box['outside']} outside ({_ps(box)})")
        if not box_better:
            evidence += f'; not significant (Student p >= {alpha})'
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
        parts.append(f"cheap sweep vs full sweep, per-graph test error: Pearson r = {ch['pearson']:.2f} "
                     f"(p = {ch['p_value']:.3g}), Spearman rho = {ch['spearman']:.2f} over {ch['graphs']} graphs")
        rs.append(ch['pearson'])
        if 'cheap_best_in_sweet_spot_bins' in ch:
            parts.append(f"the cheap sweep's best graph `{ch['cheap_best']['name']}` (chosen on its "
                         f"{ch.get('cheap_selected_on', 'test')} error) is "
                         f"{'inside' if ch['cheap_best_in_sweet_spot_bins'] else 'outside'} the full sweep's "
                         f"sweet-spot bins")
    if ep:
        last = max(ep)
        parts.append(f"epoch {last} vs final epoch: r = {ep[last]:.2f}")
        rs.append(ep[last])
    if not rs:
        claim(CHEAP, 'not tested', 'no cheap sweep and a single epoch')
    else:
        verdict = 'holds' if min(rs) >= 0.7 else 'partly' if max(rs) >= 0.7 else 'does not hold'
        if verdict == 'holds' and ch and ch.get('cheap_best_in_sweet_spot_bins') is False:
            verdict = 'partly'
        claim(CHEAP, verdict,
              '; '.join(parts) + " (the paper: r = 0.90 for 52 graphs vs 3942, 0.93 for 3 vs 100 epochs; "
                                 "rule here: r >= 0.7, and the cheap best graph inside the full sweet spot)")

    cons = s['connectomes']
    if not cons:
        claim(BIOLOGY, 'not tested', 'no connectome runs')
    else:
        narrow = s['sweet_spot']['bins'] < s['sweet_spot']['of_bins']
        inside = [g['name'] for g in cons if g['in_sweet_spot']]
        beat = [g['name'] for g in cons if c is not None and g['mean'] < c['mean']]
        evidence = (f"connectomes inside the sweet-spot box: {', '.join(inside) or 'none'}; "
                    f"lower test error than the complete graph (means, untested): {', '.join(beat) or 'none'}")
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
    split, b, bt = s['split'], s['best'], s['best_on_test']
    lines = [f"# {s['title']}: relational-graph sweep", '']
    if command:
        lines += ['Reproduce:', '', '```bash', command, '```', '']
    lines += [f"{s['runs']} runs, {s['graphs']} graphs, training seeds {s['seeds']}, epochs {s['epochs']}.", '',
              '## Which split decided what', '']
    if split['selection'] == 'validation':
        lines += [f"- **Selection** (the best graph, the best bin, the sweet-spot bins and box): validation error "
                  f"(100 - val_top1, a split held out of the training set), present in all {split['rows']} rows.",
                  '- **Reported comparisons** (best vs complete, sweet-spot graphs vs complete, the paper-box test, '
                  "the ANOVA of graph effect, the complete graph's rank, smoothness, the tables below): "
                  'test error (100 - top1).',
                  f"- Best graph on validation: `{b['name']}`, validation error {b['selection_mean']:.2f}, "
                  f"test error {b['mean']:.2f} +- {b['std']:.2f}.",
                  f"- Best graph on the test set itself: `{bt['name']}`, test error {bt['mean']:.2f} +- "
                  f"{bt['std']:.2f}" + (' (the same graph)' if bt['same_as_best'] else '') +
                  ". Picking on the test set and reporting the same numbers is a winner's-curse estimate, "
                  'so this row is shown for honesty only.']
    else:
        lines += [f"- Selection and report use the **same split**, the test set (100 - top1): {split['note']}.",
                  '- The sweet spot too was chosen on the numbers it is then compared with, so its margin over the '
                  'complete graph is optimistic as well.',
                  f"- Best graph: `{b['name']}`, test error {b['mean']:.2f} +- {b['std']:.2f}."]
    lines += ['- The per-epoch curves (cheap-by-epochs correlation) are on the split `top1_by_epoch` was recorded on '
              '(the validation split when the sweep held one out).', '',
              "## The paper's claims on this data", '',
              '| claim | verdict | evidence |', '|---|---|---|',
              *[f"| {c['claim']} | **{c['verdict']}** | {c['evidence']} |" for c in s.get('claims', [])], '',
              '## Best graph vs complete graph (test top-1 error %, mean +- std over seeds)', '',
              '| graph | C | L | test top-1 error | runs |', '|---|---:|---:|---:|---:|']
    lines.append(f"| best (chosen on {b['selected_on']}): `{b['name']}` | {b['C']:.3f} | {b['L']:.3f} | "
                 f"{b['mean']:.2f} +- {b['std']:.2f} | {b['runs']} |")
    if not bt['same_as_best']:
        lines.append(f"| best on the test set (winner's curse): `{bt['name']}` | {bt['C']:.3f} | {bt['L']:.3f} | "
                     f"{bt['mean']:.2f} +- {bt['std']:.2f} | {bt['runs']} |")
    if s['complete']:
        c = s['complete']
        lines.append(f"| complete graph | 1.000 | 1.000 | {c['mean']:.2f} +- {c['std']:.2f} | {c['runs']} |")
    for g in s['connectomes']:
        lines.append(f"| connectome `{g['name']}` | {g['C']:.3f} | {g['L']:.3f} | {g['mean']:.2f} +- {g['std']:.2f} | |")
    if s['best_better_than_complete_p'] is not None:
        lines += ['', f"Best graph beats the complete graph: "
                      f"{_ps(dict(p_value=s['best_better_than_complete_p'], p_welch=s['best_better_than_complete_p_welch']))}."]
    if s.get('complete_rank'):
        r = s['complete_rank']
        lines += ['', "Rank of the complete graph among all graphs per seed (1 = best): " +
                  ', '.join(f"seed {x['seed']}: {x['rank']}/{x['of']}" for x in r['ranks']) +
                  f"; p = {r['p_value']:.3g} if it were one more draw among the graphs ({r['note']})."]
    if s.get('graph_effect'):
        e = s['graph_effect']
        lines += ['', f"Graph effect ({e['test']}, {e['graphs']} graphs, {e['note']}): F = {e['F']:.2f}, "
                      f"p = {e['p_value']:.3g}."]
    sp = s['sweet_spot']
    lines += ['', '## Sweet spot', '',
              f"Bins not significantly worse than the best bin on {sp['selected_on']} error (one-tailed Student "
              f"t-test, equal variances, alpha {ALPHA}, the paper's rule): {sp['bins']} of {sp['of_bins']} bins, "
              f"bounding box {_fmt_box(sp['box'])}. Welch's test would keep {sp['bins_welch']} bins.", '']
    if s['sweet_spot_vs_complete']:
        v = s['sweet_spot_vs_complete']
        lines.append(f"Graphs inside the box: mean test error {v['mean']:.2f} over {v['runs']} runs; that they beat "
                     f"the complete graph: {_ps(v)}.")
    if s['inside_mean'] is not None and s['outside_mean'] is not None:
        lines.append(f"Mean test error of graphs inside the box {s['inside_mean']:.2f}, outside {s['outside_mean']:.2f}.")
    if s.get('paper_box'):
        pb = s['paper_box']
        lines.append(f"The paper's own {pb['family']} box ({_fmt_box(pb['box'])}): {pb['inside_mean']:.2f} over "
                     f"{pb['inside']} graphs inside vs {pb['outside_mean']:.2f} over {pb['outside']} outside; {_ps(pb)}.")
    lines += ['', f"| bin C | bin L | graphs | runs | selection ({sp['selected_on']}) error | test error | Student p | Welch p "
                  "| in sweet spot |", '|---|---|---:|---:|---:|---:|---:|---:|---|']
    for d in sorted(sp['bin_tests'], key=lambda d: d['selection_mean']):
        lines.append(f"| {d['C'][0]:.2f}-{d['C'][1]:.2f} | {d['L'][0]:.2f}-{d['L'][1]:.2f} | {d['graphs']} | "
                     f"{d['runs']} | {d['selection_mean']:.2f} | {d['test_mean']:.2f} | "
                     f"{'best' if d['best'] else _fmt_p(d['p_value'])} | {'best' if d['best'] else _fmt_p(d['p_welch'])} "
                     f"| {'yes' if d['in_sweet_spot'] else 'no'} |")
    lines += ['', '![heat map (test error; box from the selection split)](heatmap.png)', '',
              '![error vs C and L](error_vs_c_l.png)', '', '## Cheap sweeps', '']
    if s['epoch_correlation']:
        lines.append('Pearson r between per-graph error after epoch e and after the last epoch: ' +
                     ', '.join(f'epoch {e}: {r:.2f}' for e, r in s['epoch_correlation'].items()) + '.')
    if s['cheap_vs_full']:
        c = s['cheap_vs_full']
        lines += ['', f"Cheap sweep vs full sweep over {c['graphs']} shared graphs, per-graph test error: Pearson "
                      f"r = {c['pearson']:.2f} (p = {c['p_value']:.3g}), Spearman rho = {c['spearman']:.2f} "
                      f"(p = {c['spearman_p']:.3g})."]
        if 'cheap_best' in c:
            cb = c['cheap_best']
            lines += ['', f"The cheap sweep's best graph (on its {c['cheap_selected_on']} error): `{cb['name']}` "
                          f"(C {cb['C']:.3f}, L {cb['L']:.3f}); in the full sweep's sweet-spot bins: "
                          f"{'yes' if c['cheap_best_in_sweet_spot_bins'] else 'no'}; in its box: "
                          f"{'yes' if c['cheap_best_in_sweet_spot'] else 'no'}."]
        lines += ['', '![cheap vs full](cheap_vs_full.png)']
    if s['smoothness']:
        m = s['smoothness']
        lines += ['', f"Smoothness: Pearson r = {m['pearson']:.2f} (p = {m['p_value']:.3g}) between each graph's test "
                      f"error and the mean of its {m['k']} nearest neighbours in C-L ({m['graphs']} graphs)."]
    has_val = any(g['val_mean'] is not None for g in graphs.values())
    lines += ['', '## Per-graph results (test error)', '',
              '| graph | C | L | test top-1 error | std | runs |' + (' validation error |' if has_val else ''),
              '|---|---:|---:|---:|---:|---:|' + ('---:|' if has_val else '')]
    for g in sorted(graphs.values(), key=lambda g: g['mean']):
        val = (f" {g['val_mean']:.2f} |" if g['val_mean'] is not None else ' |') if has_val else ''
        lines.append(f"| `{g['name']}` | {g['C']:.3f} | {g['L']:.3f} | {g['mean']:.2f} | {g['std']:.2f} | "
                     f"{g['runs']} |{val}")
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='relgraph analyze', description=__doc__.split('\n')[0])
    parser.add_argument('results', type=Path, help='full sweep results table (CSV from relgraph sweep)')
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
    print(json.dumps({k: s[k] for k in ('split', 'best', 'best_on_test', 'complete', 'cheap_vs_full')}, indent=2))
    sp = s['sweet_spot']
    print(json.dumps(dict(sweet_spot={k: sp[k] for k in ('box', 'bins', 'of_bins', 'bins_welch', 'selected_on')}),
                     indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
