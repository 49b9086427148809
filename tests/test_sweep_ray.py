"""relgraph sweep --backend ray on a real local Ray cluster (a head and a worker node on 127.0.0.1, one CPU each):
the same table as the local backend, and a Ray worker killed mid-run loses no run and repeats none."""
import csv
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from timm_relgraph import sweep

if importlib.util.find_spec('ray') is None:
    if os.environ.get('CI'):
        pytest.fail("ray is not installed: CI must install the ray extra (pip install -e '.[dev]')", pytrace=False)
    pytest.skip("ray is not installed (pip install 'timm-relgraph[ray]')", allow_module_level=True)
pytest.importorskip('sklearn')  # the tiny 'digits' dataset

NAMES = ['relgraph_mlp5_c1.0_l1.0', 'relgraph_mlp5_c0.4_l2.0', 'relgraph_mlp5_c0.6_l3.0']
EPOCHS = 3
TASK = 'ray::relgraph_sweep_run:'  # a Ray worker's process title while it runs a sweep task (named by run_id)


def tiny_recipe(tmp_path: Path) -> Path:
    """mlp5 (base width 64) on 1x8x8 digits, the 1500 training images: a run lasts a few seconds."""
    cfg = dict(num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8, 'base_width': 64},
               mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
               val_num_samples=128, batch_size=16, opt='sgd', lr=0.05, weight_decay=5e-4,
               opt_kwargs={'filter_bias_and_bn': False}, sched='cosine', warmup_epochs=0, smoothing=0.0,
               hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0, train_interpolation='bilinear',
               workers=0, device='cpu', checkpoint_hist=1)
    path = tmp_path / 'tiny.yaml'
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_rows(path: Path):
    if not path.is_file():
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ray_env():
    env = dict(os.environ, OMP_NUM_THREADS='1', RAY_USAGE_STATS_ENABLED='0')
    env.pop('RAY_ADDRESS', None)
    return env


@pytest.fixture(scope='module')
def ray_cluster():
    """``ray start --head`` on 127.0.0.1 plus one worker node, 1 CPU each (two runs at once); ``ray stop --force``
    afterwards (it stops every Ray process of this machine)."""
    ray_bin = shutil.which('ray', path=str(Path(sys.executable).parent)) or shutil.which('ray')
    assert ray_bin, 'the ray command is missing'
    port, env = free_port(), ray_env()
    common = ['--node-ip-address=127.0.0.1', '--num-cpus=1', '--num-gpus=0', '--object-store-memory=200000000']
    try:
        subprocess.run([ray_bin, 'start', '--head', f'--port={port}', '--include-dashboard=false',
                        '--disable-usage-stats', *common], check=True, env=env, capture_output=True, timeout=120)
        subprocess.run([ray_bin, 'start', f'--address=127.0.0.1:{port}', *common], check=True, env=env,
                       capture_output=True, timeout=120)
        yield f'127.0.0.1:{port}'
    finally:
        subprocess.run([ray_bin, 'stop', '--force'], env=env, capture_output=True, timeout=120)


def task_workers():
    """``{run_id: pid}`` of the Ray workers running a sweep task now (from their process titles)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            title = Path(f'/proc/{pid}/cmdline').read_bytes().split(b'\0')[0].decode(errors='replace').strip()
        except OSError:
            continue
        if title.startswith(TASK):
            found[title[len(TASK):]] = int(pid)
    return found


def sweep_cmd(recipe: Path, results: Path, runs: Path, *extra):
    return [sys.executable, '-m', 'timm_relgraph.cli', 'sweep', '--family', 'mlp5', '--config', str(recipe),
            '--graphs', ','.join(NAMES), '--seeds', '0,1', '--epochs', str(EPOCHS), '--results', str(results),
            '--runs-dir', str(runs), *extra]


@pytest.fixture(scope='module')
def local_table(tmp_path_factory):
    """``(recipe, {run_id: row})``: the 6-run sweep by the local backend, in this process, one thread per run like
    the Ray tasks (``--cpus-per-run 1``)."""
    folder = tmp_path_factory.mktemp('local')
    recipe = tiny_recipe(folder)
    real = os.cpu_count
    os.cpu_count = lambda: 1  # the local backend gives each run cpu_count() // workers threads
    try:
        sweep.sweep('mlp5', str(recipe), ','.join(NAMES), [0, 1], EPOCHS, folder / 'local.csv',
                    out_root=folder / 'local_runs')
    finally:
        os.cpu_count = real
    reference = {r['run_id']: r for r in read_rows(folder / 'local.csv')}
    assert len(reference) == 6
    return recipe, reference


def same_results(row, ref):
    return {k: v for k, v in row.items() if k != 'wall_time'} == {k: v for k, v in ref.items() if k != 'wall_time'}


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='finds Ray workers through /proc')
def test_ray_sweep_matches_local_and_survives_a_killed_worker(tmp_path, ray_cluster, local_table):
    recipe, reference = local_table
    results, runs = tmp_path / 'ray.csv', tmp_path / 'ray_runs'
    cmd = sweep_cmd(recipe, results, runs, '--backend', 'ray', '--address', ray_cluster, '--cpus-per-run', '1')
    log = open(tmp_path / 'driver.log', 'w+')
    proc = subprocess.Popen(cmd, env=ray_env(), cwd=str(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    killed = None
    try:
        # SIGKILL the worker of a run that has checkpointed an epoch and is still training
        deadline = time.time() + 240
        while killed is None:
            assert proc.poll() is None, 'the sweep ended before a worker could be killed'
            assert time.time() < deadline, 'no run reached its second epoch within 4 minutes'
            recorded = {r['run_id'] for r in read_rows(results)}
            for rid, pid in task_workers().items():
                summary = runs / rid / 'summary.csv'
                done = len(read_rows(summary))
                if rid not in recorded and 1 <= done < EPOCHS and (runs / rid / 'last.pth.tar').is_file():
                    os.kill(pid, signal.SIGKILL)
                    killed = rid
                    break
            time.sleep(0.05)
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    out = log.read()
    log.close()
    rows = read_rows(results)
    ids = [r['run_id'] for r in rows]
    assert len(ids) == len(set(ids)) == 6, out[-3000:]  # nothing lost, nothing repeated
    assert set(ids) == set(reference)
    for row in rows:  # the same table as the local backend, but for the wall times
        assert same_results(row, reference[row['run_id']]), row['run_id']
    # the killed run was retried and resumed from its checkpoint (its args.yaml names it): each epoch once
    assert [r['epoch'] for r in read_rows(runs / killed / 'summary.csv')] == [str(e) for e in range(EPOCHS)]
    assert yaml.safe_load((runs / killed / 'args.yaml').read_text())['resume'] == str(runs / killed / 'last.pth.tar')

    # the table is the single source of truth: the same command again has nothing to do
    again = subprocess.run(cmd, env=ray_env(), cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert '6 runs already in' in again.stdout and '0 to go' in again.stdout
    assert read_rows(results) == rows


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='finds Ray workers through /proc')
def test_ray_sweep_resumes_after_the_driver_dies(tmp_path, ray_cluster, local_table):
    """SIGKILL the driver once a run is recorded: Ray drops the dead driver's tasks, the same command again runs
    the rest (part-trained runs resume from their checkpoints) and the table ends with each run once."""
    recipe, reference = local_table
    results, runs = tmp_path / 'ray.csv', tmp_path / 'ray_runs'
    cmd = sweep_cmd(recipe, results, runs, '--backend', 'ray', '--address', ray_cluster)
    proc = subprocess.Popen(cmd, env=ray_env(), cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 240
        while not read_rows(results):
            assert proc.poll() is None, 'the sweep ended before it could be killed'
            assert time.time() < deadline, 'no run was recorded within 4 minutes'
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    before = read_rows(results)
    assert 1 <= len(before) < 6, 'the kill came too late to interrupt the sweep'
    deadline = time.time() + 60
    while task_workers():  # Ray stops the tasks of a dead driver (none may keep writing into a run folder)
        assert time.time() < deadline, "Ray still runs the dead driver's tasks after a minute"
        time.sleep(0.1)
    again = subprocess.run(cmd, env=ray_env(), cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f'{len(before)} runs already in' in again.stdout and f'{6 - len(before)} to go' in again.stdout
    rows = read_rows(results)
    ids = [r['run_id'] for r in rows]
    assert len(ids) == len(set(ids)) == 6 and rows[:len(before)] == before
    for row in rows:
        assert same_results(row, reference[row['run_id']]), row['run_id']
