import csv
import itertools
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from timm_relgraph import analyze
from timm_relgraph.catalogue import paper_grid
from timm_relgraph.sweep import COLUMNS

SPOT_C, SPOT_L = (0.35, 0.55), (1.8, 2.3)


def _write(path, rows):
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, '') for k in COLUMNS})


def _synthetic(path, seeds=3, noise=0.15, epochs=4, seed=0):
    """Error 20% everywhere, 17% inside a planted box of C-L, 19% for the complete graph."""
    rng = np.random.RandomState(seed)
    rows = []
    for e in paper_grid(64):
        inside = SPOT_C[0] <= e.C <= SPOT_C[1] and SPOT_L[0] <= e.L <= SPOT_L[1]
        # a smooth bowl plus a planted dip inside the box
        base = 20.0 + 3 * (e.C - 0.45) ** 2 + 1.5 * (e.L - 2.0) ** 2 - (3.0 if inside else 0.0)
        for s in range(seeds):
            err = base + rng.randn() * noise
            curve = [100 - (err + 10 / (i + 1)) for i in range(epochs - 1)] + [100 - err]
            rows.append(dict(run_id=f'{e.k}_{e.p}_{e.seed}_{s}', graph_set='grid', name=f'g_{e.C:.4f}_{e.L:.4f}',
                             generator='ws_flex', n=64, k=e.k, p=e.p, seed=e.seed, C=e.C, L=e.L, params=1, macs=1,
                             top1=100 - err, top5=99, top1_by_epoch=json.dumps(curve), epochs=epochs, train_seed=s,
                             wall_time=1))
    for s in range(seeds):
        err = 19.0 + rng.randn() * noise
        rows.append(dict(run_id=f'complete_{s}', graph_set='complete', name='relgraph_mlp5_c1.0_l1.0',
                         generator='ws_flex', n=64, k=64, p=0, seed=0, C=1.0, L=1.0, params=1, macs=1, top1=100 - err,
                         top5=99, top1_by_epoch=json.dumps([100 - err]), epochs=epochs, train_seed=s, wall_time=1))
    rows.append(dict(run_id='cat_0', graph_set='connectomes', name='cat', generator='connectome', n=52, C=0.666,
                     L=1.633, params=1, macs=1, top1=81.0, top5=99, top1_by_epoch='[81.0]', epochs=epochs,
                     train_seed=0, wall_time=1))
    _write(path, rows)
    return rows


def test_finds_planted_sweet_spot(tmp_path):
    _synthetic(tmp_path / 'full.csv')
    s = analyze.analyze(tmp_path / 'full.csv', tmp_path / 'out', title='synthetic')
    box = s['sweet_spot']['box']
    # the box must sit on the planted region: inside it, and covering most of it
    assert SPOT_C[0] - 0.01 <= box['C'][0] and box['C'][1] <= SPOT_C[1] + 0.01
    assert SPOT_L[0] - 0.01 <= box['L'][0] and box['L'][1] <= SPOT_L[1] + 0.01
    assert box['C'][1] - box['C'][0] > 0.05
    assert SPOT_C[0] <= s['best']['C'] <= SPOT_C[1] and SPOT_L[0] <= s['best']['L'] <= SPOT_L[1]
    assert s['best']['mean'] < s['complete']['mean']
    assert s['best_better_than_complete_p'] < 0.05
    assert s['smoothness']['pearson'] > 0.5
    assert set(s['epoch_correlation']) == {1, 2, 3}
    for name in ('heatmap.png', 'error_vs_c_l.png', 'report.md', 'summary.json'):
        assert (tmp_path / 'out' / name).stat().st_size > 500
    report = (tmp_path / 'out' / 'report.md').read_text()
    assert 'Sweet spot' in report and 'complete graph' in report and 'cat' in report
    verdicts = [c['verdict'] for c in s['claims']]
    assert verdicts[:2] == ['holds', 'holds']
    assert verdicts[2] == 'partly'  # synthetic names carry no family, so the paper's own box is not tested
    assert verdicts[3] == 'holds'  # early-epoch errors are the final ones shifted: r = 1
    assert verdicts[4] == 'does not hold'  # the cat connectome lies outside the planted box
    assert "The paper's claims on this data" in report and '**does not hold**' in report


def test_flat_landscape_has_no_narrow_sweet_spot(tmp_path):
    rows = _synthetic(tmp_path / 'full.csv', noise=0.15)
    for r in rows:  # remove the dip and the bowl: pure noise around 20%
        if r['generator'] == 'ws_flex' and r['C'] != 1.0:
            r['top1'] = 80.0 + np.random.RandomState(zlib.crc32(r['run_id'].encode())).randn() * 0.15
    _write(tmp_path / 'flat.csv', rows)
    s = analyze.analyze(tmp_path / 'flat.csv', tmp_path / 'out2')
    # with no real differences most bins are statistically tied with the best one
    assert s['sweet_spot']['bins'] > 0.5 * s['sweet_spot']['of_bins']
    claims = {c['claim'][:3]: c['verdict'] for c in s['claims']}
    assert claims['(1)'] == 'does not hold'  # every graph is worse than the complete graph here
    assert claims['(2)'] != 'holds'
    assert s['graph_effect']['p_value'] > 0.01


def test_cheap_vs_full_correlation(tmp_path):
    _synthetic(tmp_path / 'full.csv', seed=0)
    _synthetic(tmp_path / 'cheap.csv', seeds=1, noise=0.3, seed=1)
    s = analyze.analyze(tmp_path / 'full.csv', tmp_path / 'out', cheap_path=tmp_path / 'cheap.csv')
    c = s['cheap_vs_full']
    assert c['pearson'] > 0.8 and c['spearman'] > 0.7 and c['error'] == 'test'
    # the cheap sweep's best graph (lowest error in the planted dip) lies in the full sweep's sweet spot
    assert c['cheap_best_in_sweet_spot_bins'] and c['cheap_best_in_sweet_spot']
    assert SPOT_C[0] <= c['cheap_best']['C'] <= SPOT_C[1] and SPOT_L[0] <= c['cheap_best']['L'] <= SPOT_L[1]
    assert (tmp_path / 'out' / 'cheap_vs_full.png').is_file()


def _g(errors, seeds=(0, 1)):
    return dict(errors=np.array(errors, dtype=float), seeds=list(seeds))


def test_complete_rank_exact_p_value():
    ws = [_g([1.0, 2.0]), _g([1.5, 2.5])]
    worst = analyze.complete_rank(ws, _g([3.0, 4.0]))
    assert [r['rank'] for r in worst['ranks']] == [3, 3]
    assert worst['p_value'] == pytest.approx(1 / 9)  # both ranks at the top, of 3 x 3 equally likely pairs
    best = analyze.complete_rank(ws, _g([0.5, 1.0]))
    assert [r['rank'] for r in best['ranks']] == [1, 1] and best['p_value'] == pytest.approx(1.0)


def test_graph_effect_removes_the_shared_seed_effect():
    rng = np.random.RandomState(0)
    # 30 identical graphs; seed 1 is 1 point worse for every graph, plus small noise: no graph effect
    same = [_g([10 + 0.05 * rng.randn(), 11 + 0.05 * rng.randn()]) for _ in range(30)]
    e = analyze.graph_effect(same)
    assert e['test'].startswith('two-way') and e['p_value'] > 0.05
    assert e['seed_means'][1] - e['seed_means'][0] == pytest.approx(1.0, abs=0.05)
    # the same seed effect, and graphs that really differ by up to 1 point
    differ = [_g([10 + i / 30 + 0.05 * rng.randn(), 11 + i / 30 + 0.05 * rng.randn()]) for i in range(30)]
    assert analyze.graph_effect(differ)['p_value'] < 1e-6
    assert analyze.graph_effect(differ)['seed_rank_correlation'] > 0.8


def test_paper_box_test_compares_the_papers_sweet_spot_with_the_rest():
    rng = np.random.RandomState(0)
    grid = [(c, l) for c in np.linspace(0.05, 0.9, 10) for l in np.linspace(1.2, 4.0, 8)]

    def inside(c, l):
        return 0.10 <= c <= 0.50 and 1.82 <= l <= 2.75

    better = [dict(C=c, L=l, mean=11.0 - (0.3 if inside(c, l) else 0) + 0.05 * rng.randn()) for c, l in grid]
    t = analyze.paper_box_test(better, 'mlp5')
    assert t['inside'] == sum(inside(c, l) for c, l in grid) and t['inside'] + t['outside'] == len(grid)
    assert t['inside_mean'] < t['outside_mean'] and t['p_value'] < 1e-6
    worse = [dict(g, mean=22.0 - g['mean']) for g in better]  # the box now holds the worst graphs
    assert analyze.paper_box_test(worse, 'mlp5')['p_value'] > 0.99
    assert analyze.paper_box_test(better, 'unknown_family') is None
    assert analyze.family_of(['relgraph_mlp5_c0.4_l2.0', 'relgraph_mlp5_c1.0_l1.0']) == 'mlp5'
    assert analyze.family_of(['relgraph_mlp5_c0.4_l2.0', 'relgraph_cnn8_c0.4_l2.0']) is None


@pytest.mark.parametrize('content, expected', [
    ('', 'missing columns'),
    ('run_id,name,graph_set,generator,C,L,top1,top5,train_seed,epochs\n', 'no runs'),
    ('a,b,c\n1,2,3\n', 'missing columns'),
    ('name,graph_set,generator,C,L,top1,top5,train_seed,epochs\nrelgraph_mlp5_c0.4_l2.0,grid,ws_flex,0.4,2.0,88', 'line 2'),
    ('name,graph_set,generator,C,L,top1,top5,train_seed,epochs\nx,grid,ws_flex,0.4,2.0,abc,99,0,5\n', 'line 2'),
])
def test_bad_tables_fail_with_one_line_and_no_output(tmp_path, capsys, content, expected):
    table = tmp_path / 'bad.csv'
    table.write_text(content)
    out = tmp_path / 'report'
    assert analyze.main([str(table), '--out', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and expected in err and '\n' not in err
    assert not out.exists()


# --- small hand-built tables: selection split, t-tests, unequal seed counts -------------------------------------

# (name, C, L, validation error, test error); every graph sits in a bin of its own
SMALL = [('g_a', 0.45, 2.00, 10.0, 15.0),  # best on validation, mediocre on test
         ('g_b', 0.25, 2.60, 14.0, 12.0),  # best on test, not on validation
         *[(f'g_{i}', c, l, 16.0, 16.0) for i, (c, l) in enumerate(
             [(0.10, 1.5), (0.15, 3.0), (0.35, 3.5), (0.55, 1.3), (0.65, 2.4), (0.75, 1.8), (0.85, 2.9), (0.05, 4.0)])]]


def _small(path, val=True, seeds=5, complete_seeds=5, columns=COLUMNS, noise=0.1):
    rng = np.random.RandomState(0)
    rows = []
    for name, C, L, v, t in SMALL:
        for s in range(seeds):
            rows.append(dict(run_id=f'{name}_{s}', graph_set='grid', name=name, generator='ws_flex', n=64, C=C, L=L,
                             params=1, macs=1, top1=100 - (t + noise * rng.randn()), top5=99,
                             val_top1=100 - (v + noise * rng.randn()) if val else '', top1_by_epoch='[]', epochs=5,
                             train_seed=s, wall_time=1))
    for s in range(complete_seeds):
        rows.append(dict(run_id=f'complete_{s}', graph_set='complete', name='complete', generator='ws_flex', n=64,
                         C=1.0, L=1.0, params=1, macs=1, top1=100 - (17 + noise * rng.randn()), top5=99,
                         val_top1=100 - (17 + noise * rng.randn()) if val else '', top1_by_epoch='[]', epochs=5,
                         train_seed=s, wall_time=1))
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, '') for k in columns})
    return rows


def _errors(rows, name, key='top1'):
    return np.array([100 - r[key] for r in rows if r['name'] == name])


def test_selection_on_validation_report_on_test(tmp_path):
    rows = _small(tmp_path / 'full.csv')
    s = analyze.analyze(tmp_path / 'full.csv', tmp_path / 'out')
    assert s['split']['selection'] == 'validation' and s['split']['val_rows'] == len(rows)
    b, bt = s['best'], s['best_on_test']
    assert b['name'] == 'g_a' and b['selected_on'] == 'validation'
    assert b['mean'] == pytest.approx(_errors(rows, 'g_a').mean())  # its test error ...
    assert b['mean'] == pytest.approx(15.0, abs=0.25)
    assert b['selection_mean'] == pytest.approx(_errors(rows, 'g_a', 'val_top1').mean())  # ... chosen on validation
    assert bt['name'] == 'g_b' and not bt['same_as_best'] and bt['mean'] == pytest.approx(12.0, abs=0.25)
    # the best bin and the box are g_a's (decided on validation, where every other bin is far worse)
    assert s['sweet_spot']['best_bin']['bin'] == list(analyze.bin_of(0.45, 2.0))
    assert s['sweet_spot']['box'] == dict(C=[0.45, 0.45], L=[2.0, 2.0]) and s['sweet_spot']['bins'] == 1
    # best vs complete is on test errors, Student's test, with Welch's beside it
    a, c = _errors(rows, 'g_a'), _errors(rows, 'complete')
    assert s['best_better_than_complete_p'] == pytest.approx(
        stats.ttest_ind(a, c, equal_var=True, alternative='less').pvalue)
    assert s['best_better_than_complete_p_welch'] == pytest.approx(
        stats.ttest_ind(a, c, equal_var=False, alternative='less').pvalue)
    assert s['sweet_spot_vs_complete']['mean'] == pytest.approx(a.mean())
    report = (tmp_path / 'out' / 'report.md').read_text()
    assert '## Which split decided what' in report and "winner's curse" in report
    assert 'validation error' in report and analyze.SAME_SPLIT_WARNING not in report
    assert json.loads((tmp_path / 'out' / 'summary.json').read_text())['best']['name'] == 'g_a'


def _student_p_by_hand(a, b):
    """One-tailed p of H1: mean(a) < mean(b), pooled variance (Student)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    sp2 = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    t = (a.mean() - b.mean()) / np.sqrt(sp2 * (1 / na + 1 / nb))
    return stats.t.cdf(t, na + nb - 2)


def _welch_p_by_hand(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return stats.t.cdf(t, df)


def test_student_and_welch_p_values_and_the_notebook_convention():
    a = [31.9, 32.1, 32.0, 32.2, 31.8]  # tight, 5 seeds
    b = [32.0, 33.5, 31.9, 34.0, 32.6, 33.1, 32.2, 33.8, 32.9, 31.7, 33.3, 32.4, 34.2, 32.8, 33.0]  # wide, 15 seeds
    t = analyze.one_tailed(a, b, 'less')
    assert t['p_value'] == pytest.approx(_student_p_by_hand(a, b), rel=1e-9)
    assert t['p_welch'] == pytest.approx(_welch_p_by_hand(a, b), rel=1e-9)
    assert t['p_value'] == pytest.approx(0.010655, abs=1e-6) and t['p_welch'] == pytest.approx(0.000296, abs=1e-6)
    assert t['n'] == [5, 15]
    # the notebook: t, p = ttest_ind(best, other); other is worse iff t < 0 and p / 2 < 0.05
    tt, p2 = stats.ttest_ind(a, b)
    assert tt < 0 and analyze.notebook_one_tailed_p(a, b) == pytest.approx(p2 / 2)
    assert analyze.one_tailed(b, a, 'greater')['p_value'] == pytest.approx(p2 / 2)
    # the wrong direction: 1 - p / 2 on both sides
    assert analyze.notebook_one_tailed_p(b, a) == pytest.approx(1 - p2 / 2)
    assert analyze.one_tailed(a, b, 'greater')['p_value'] == pytest.approx(1 - p2 / 2)
    assert analyze.one_tailed([1.0], b) is None


def test_sweet_spot_bins_use_the_notebook_rule():
    rng = np.random.RandomState(3)
    graphs = {}
    for i, (c, l, m) in enumerate([(0.45, 2.0, 10.0), (0.25, 2.6, 10.2), (0.65, 2.4, 10.5), (0.85, 2.9, 12.0)]):
        e = m + 0.15 * rng.randn(5)
        graphs[f'g{i}'] = dict(name=f'g{i}', C=c, L=l, generator='ws_flex', errors=e, sel_errors=e)
    spot = analyze.sweet_spot(graphs)
    best = graphs['g0']['sel_errors']
    assert spot['best_bin'] == analyze.bin_of(0.45, 2.0)
    for g in graphs.values():
        b = analyze.bin_of(g['C'], g['L'])
        if b != spot['best_bin']:
            assert spot['pvalues'][b] == pytest.approx(analyze.notebook_one_tailed_p(best, g['sel_errors']))
            tt, p = stats.ttest_ind(best, g['sel_errors'])
            assert (b in spot['bins']) == (not (tt < 0 and p / 2 < 0.05))
    assert analyze.bin_of(0.85, 2.9) not in spot['bins'] and analyze.bin_of(0.25, 2.6) in spot['bins']
    d = next(d for d in spot['details'] if d['bin'] == list(analyze.bin_of(0.85, 2.9)))
    assert d['p_welch'] == pytest.approx(
        stats.ttest_ind(graphs['g3']['sel_errors'], best, equal_var=False, alternative='greater').pvalue)


def test_complete_graph_with_more_seeds_is_ranked_on_the_shared_seeds():
    seeds = range(5)
    ws = [_g([1.0] * 5, seeds), _g([2.0] * 5, seeds), _g([3.0] * 5, seeds)]
    complete = _g([0.0, 2.5, 4.0, 4.0, 4.0] + [9.0] * 10, range(15))
    r = analyze.complete_rank(ws, complete)
    assert r is not None and r['seeds_used'] == 5 and r['seeds_left_out'] == list(range(5, 15))
    assert [(x['seed'], x['rank'], x['of']) for x in r['ranks']] == [(0, 1, 4), (1, 3, 4), (2, 4, 4), (3, 4, 4),
                                                                     (4, 4, 4)]
    total = 1 + 3 + 4 + 4 + 4
    exact = sum(sum(c) >= total for c in itertools.product(range(1, 5), repeat=5)) / 4 ** 5
    assert r['p_value'] == pytest.approx(exact)
    assert analyze.complete_rank(ws, _g([0.0, 1.0], [7, 8])) is None  # no seed in common at all


def test_graph_effect_uses_the_common_seeds_when_one_graph_has_more():
    rng = np.random.RandomState(0)
    five = [_g([10 + i / 10 + s + 0.05 * rng.randn() for s in range(5)], range(5)) for i in range(10)]
    extra = _g(list(five[0]['errors']) + [50.0] * 10, range(15))  # the same first five runs, plus outliers
    e = analyze.graph_effect([extra] + five[1:])
    ref = analyze.graph_effect(five)
    assert e['test'].startswith('two-way') and e['seeds_used'] == [0, 1, 2, 3, 4] and e['runs_left_out'] == 10
    assert e['F'] == pytest.approx(ref['F']) and e['p_value'] < 1e-6 and 'left out' in e['note']
    disjoint = [_g([10.0 + i, 11.0 - i], [2 * i, 2 * i + 1]) for i in range(4)]
    assert analyze.graph_effect(disjoint)['test'] == 'one-way ANOVA'


def test_analyze_with_15_complete_seeds(tmp_path):
    _small(tmp_path / 'full.csv', complete_seeds=15)
    s = analyze.analyze(tmp_path / 'full.csv', tmp_path / 'out')
    assert s['complete']['runs'] == 15
    assert s['complete_rank']['seeds_used'] == 5 and len(s['complete_rank']['ranks']) == 5
    assert s['complete_rank']['seeds_left_out'] == list(range(5, 15))
    assert all(x['of'] == len(SMALL) + 1 for x in s['complete_rank']['ranks'])
    assert s['graph_effect']['test'].startswith('two-way') and s['graph_effect']['runs_left_out'] == 0
    assert s['graph_effect']['p_value'] < 1e-6


def test_old_table_without_val_top1_selects_and_reports_on_one_split(tmp_path):
    old = [c for c in COLUMNS if c != 'val_top1']
    rows = _small(tmp_path / 'old.csv', val=False, columns=old)
    s = analyze.analyze(tmp_path / 'old.csv', tmp_path / 'out')
    assert s['split']['selection'] == 'test' and 'no val_top1 column' in s['split']['note']
    assert s['best']['name'] == 'g_b' and s['best']['selected_on'] == 'test'  # lowest test error
    assert s['best']['mean'] == pytest.approx(_errors(rows, 'g_b').mean())
    assert s['best_on_test']['same_as_best']
    report = (tmp_path / 'out' / 'report.md').read_text()
    assert '## Which split decided what' in report and '**same split**' in report
    assert 'best graph chosen and reported on the same split: its margin is optimistic' in report
    # a table whose val_top1 is filled in some rows only also falls back to one split, and says why
    rows[0]['val_top1'] = 88.0
    _write(tmp_path / 'partial.csv', rows)
    s = analyze.analyze(tmp_path / 'partial.csv', tmp_path / 'out2')
    assert s['split']['selection'] == 'test' and f'empty in {len(rows) - 1} of {len(rows)} rows' in s['split']['note']


def test_malformed_val_top1_names_line_and_column(tmp_path, capsys):
    rows = _small(tmp_path / 'ok.csv')
    rows[2]['val_top1'] = 'n/a'  # data line 3 -> file line 4
    _write(tmp_path / 'bad.csv', rows)
    with pytest.raises(analyze.TableError, match=r'line 4 is malformed: column val_top1'):
        analyze.load(tmp_path / 'bad.csv')
    assert analyze.main([str(tmp_path / 'bad.csv'), '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert 'line 4' in err and 'val_top1' in err and not (tmp_path / 'out').exists()
