"""relgraph sweep (timm_relgraph.sweep): graph sets, and a sweep killed mid-way that resumes without losing or repeating a run."""
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
from timm_relgraph import sweep

pytest.importorskip('sklearn')  # the tiny 'digits' dataset

NAMES = ['relgraph_mlp5_c1.0_l1.0', 'relgraph_mlp5_c0.4_l2.0', 'relgraph_mlp5_c0.6_l3.0']


def tiny_recipe(tmp_path: Path) -> Path:
    """mlp5 (base width 64) on 1x8x8 digits, the full 1500 training images so that a run lasts a few seconds."""
    cfg = dict(num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8, 'base_width': 64},
               mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
               val_num_samples=128, batch_size=16, opt='sgd', lr=0.05, weight_decay=5e-4,
               opt_kwargs={'filter_bias_and_bn': False}, sched='cosine', warmup_epochs=0, smoothing=0.0,
               hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0, train_interpolation='bilinear',
               workers=0, device='cpu', checkpoint_hist=1)
    path = tmp_path / 'tiny.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def sweep_cmd(recipe: Path, results: Path, runs: Path):
    return [sys.executable, '-m', 'timm_relgraph.cli', 'sweep', '--family', 'mlp5', '--config', str(recipe),
            '--graphs', ','.join(NAMES), '--seeds', '0', '--epochs', '3', '--results', str(results),
            '--runs-dir', str(runs)]


def read_rows(path: Path):
    if not path.is_file():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_graph_sets_expand_as_documented():
    grid = sweep.graph_set('mlp5', 'grid')
    cheap = sweep.graph_set('mlp5', 'cheap13')
    assert len(grid) == 52 and len({g['name'] for g in grid}) == 52
    assert len(cheap) == 13
    assert {g['name'] for g in cheap} <= {g['name'] for g in grid}
    both = sweep.graph_set('mlp5', 'grid,cheap13,complete')
    assert len(both) == 53  # duplicates dropped, the first set wins
    assert both[-1]['set'] == 'complete' and both[-1]['C'] == 1.0 and both[-1]['L'] == 1.0
    with pytest.raises(ValueError, match='relgraph_mlp5'):
        sweep.graph_set('mlp5', 'relgraph_resnet34_c0.4_l2.0')


def test_sweep_killed_mid_way_resumes_without_losing_or_repeating_runs(tmp_path):
    recipe = tiny_recipe(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS='1')

    # reference: the same sweep, never interrupted
    straight = tmp_path / 'straight.csv'
    subprocess.run(sweep_cmd(recipe, straight, tmp_path / 'straight_runs'), check=True, env=env,
                   stdout=subprocess.DEVNULL, cwd=str(ROOT), timeout=600)
    reference = {r['run_id']: r for r in read_rows(straight)}
    assert len(reference) == len(NAMES)

    # killed with SIGKILL as soon as the first run is recorded, i.e. while the second one trains
    results, runs = tmp_path / 'killed.csv', tmp_path / 'killed_runs'
    proc = subprocess.Popen(sweep_cmd(recipe, results, runs), env=env, stdout=subprocess.DEVNULL,
                            cwd=str(ROOT), start_new_session=True)
    deadline = time.time() + 300
    while len(read_rows(results)) < 1:
        assert proc.poll() is None, 'the sweep ended before it could be killed'
        assert time.time() < deadline, 'no run was recorded within 5 minutes'
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = read_rows(results)
    assert 1 <= len(before) < len(NAMES), 'the kill came too late to interrupt the sweep'
    header = results.read_text().splitlines()[0]
    assert header == ','.join(sweep.COLUMNS)  # the table on disk is whole: written atomically

    out = subprocess.run(sweep_cmd(recipe, results, runs), check=True, env=env, capture_output=True,
                         text=True, cwd=str(ROOT), timeout=600)
    assert f'{len(before)} runs already in' in out.stdout
    assert f'{len(NAMES) - len(before)} to go' in out.stdout
    after = read_rows(results)
    ids = [r['run_id'] for r in after]
    assert len(ids) == len(set(ids)) == len(NAMES)  # nothing lost, nothing repeated
    assert after[:len(before)] == before  # finished runs are kept as they were
    for row in after:  # resumed runs give the same result as uninterrupted ones
        ref = reference[row['run_id']]
        assert (row['top1'], row['top5'], row['top1_by_epoch']) == (ref['top1'], ref['top5'], ref['top1_by_epoch'])
        assert row['params'] == ref['params'] and row['macs'] == ref['macs']

    # a third call has nothing left to do
    again = subprocess.run(sweep_cmd(recipe, results, runs), check=True, env=env, capture_output=True,
                           text=True, cwd=str(ROOT), timeout=600)
    assert '0 to go' in again.stdout and read_rows(results) == after


def test_seed_ranges_parse():
    assert sweep.parse_seeds('0-4') == [0, 1, 2, 3, 4]
    assert sweep.parse_seeds('3,0-1,1') == [0, 1, 3]
    for bad in ('4-0', 'a', '-1', ''):
        with pytest.raises(ValueError, match='--seeds'):
            sweep.parse_seeds(bad)
