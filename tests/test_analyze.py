import csv
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train import analyze  # noqa: E402
from train.sweep import COLUMNS  # noqa: E402
from timm_relgraph.catalogue import paper_grid  # noqa: E402

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
    assert s['cheap_vs_full']['pearson'] > 0.8
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
