"""The benchmark entry points run and write a complete timm-style CSV (tiny sizes, CPU)."""
import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_runs_on_cpu_and_writes_the_csv(tmp_path):
    out = tmp_path / 'gpu.csv'
    env = dict(os.environ, PY=sys.executable, FAMILIES='mlp5')
    proc = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu.sh'), '--cpu', str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [r['role'] for r in rows] == ['relational', 'folded', 'complete', 'sparse']
    by_role = {r['role']: r for r in rows}
    assert all(r['amp'] == 'True' and r['device'] == 'cpu' for r in rows)
    assert float(by_role['folded']['infer_vs_folded']) == 1.0
    # the paper's parameter count: the relational model stores only the weights its graph keeps
    assert float(by_role['relational']['param_count']) < float(by_role['folded']['param_count'])
    assert int(by_role['relational']['stored_bytes']) < int(by_role['folded']['stored_bytes'])
    assert float(by_role['relational']['gmacs']) < float(by_role['folded']['gmacs'])
    assert by_role['sparse']['train_step_time'] == ''  # inference only


def test_unknown_family_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'benchmark.py'), '--out',
                           str(tmp_path / 'x.csv'), '--families', 'resnet99'], capture_output=True, text=True)
    assert proc.returncode == 2 and 'resnet99' in proc.stderr and not (tmp_path / 'x.csv').exists()


def _benchmark_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location('relgraph_benchmark', ROOT / 'benchmarks' / 'benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rounds_alternate_order_and_ratios_pair_rounds():
    bench = _benchmark_module()
    calls = []
    fns = {label: (lambda label=label: calls.append(label) or 1.0) for label in ('a', 'b', 'c')}
    times = bench._interleaved(fns, rounds=3)
    assert calls == ['a', 'b', 'c'] + ['a', 'b', 'c'] + ['c', 'b', 'a'] + ['a', 'b', 'c']  # warm-up first
    assert {k: len(v) for k, v in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    # a slow spell (round 2) hits both models of that round: the paired ratio is not fooled by it
    assert bench.paired_ratio([1.0, 3.0, 1.0], [1.0, 3.0, 1.0]) == 1.0
    assert bench.paired_ratio([1.1, 2.2, 1.1], [1.0, 2.0, 1.0]) == 1.1
    assert abs(bench.paired_ratio([1.0, 1.3, 1.02], [1.0, 1.0, 1.0]) - 1.02) < 1e-12
