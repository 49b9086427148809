"""Packaging: the dependency range, the optional plots extra, and (in CI's oldest venv) that the tests exercise the
installed wheel rather than the checkout."""
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLOTS_HINT = "pip install 'timm-relgraph[plots]'"


def _requirements():
    """(name, specifier, extra) of the distribution as installed (editable or wheel)."""
    out = []
    for req in importlib.metadata.requires('timm-relgraph') or []:
        spec, _, marker = req.partition(';')
        name = re.match(r'[A-Za-z0-9_.\-]+', spec.strip()).group().lower().replace('_', '-')
        extra = re.search(r'extra\s*==\s*["\']([^"\']+)', marker)
        out.append((name, spec.strip()[len(name):].strip(), extra.group(1) if extra else None))
    return out


def _pyproject():
    tomllib = pytest.importorskip('tomllib')
    return tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']


def test_timm_and_torch_have_a_floor_and_no_upper_bound():
    deps = {re.match(r'[A-Za-z0-9_.\-]+', d).group().lower(): d for d in _pyproject()['dependencies']}
    for name in ('timm', 'torch', 'torchvision'):
        assert '>=' in deps[name] and not re.search(r'<|==|~=|!=', deps[name]), deps[name]


def test_ci_tests_the_declared_timm_floor():
    floor = re.search(r'timm>=([0-9.]+)', ' '.join(_pyproject()['dependencies'])).group(1)
    pinned = re.search(r'^OLDEST_TIMM\s*:?=\s*(\S+)', (ROOT / 'Makefile').read_text(), re.M).group(1)
    assert pinned == floor, f'Makefile tests timm {pinned} as the oldest, pyproject declares timm>={floor}'


def test_matplotlib_is_only_in_the_plots_extra():
    project = _pyproject()
    assert not any(d.lower().startswith('matplotlib') for d in project['dependencies'])
    extras = project['optional-dependencies']
    assert any(d.startswith('matplotlib') for d in extras['plots'])
    assert any(d.startswith('timm-relgraph[') and 'plots' in d for d in extras['dev'])


def test_library_imports_and_runs_without_matplotlib(tmp_path):
    """Every library module imports with matplotlib absent; a figure names the extra to install."""
    code = '''
import sys
sys.modules['matplotlib'] = None  # as if not installed
import timm_relgraph, timm_relgraph.trainer, timm_relgraph.sweep, timm_relgraph.analyze, timm_relgraph.cli
import timm_relgraph.demo, timm_relgraph.hub
from timm_relgraph import cli
try:
    cli.plot_catalogue(sys.argv[1])
except ImportError as err:
    print('ERROR', err)
'''
    out = subprocess.run([sys.executable, '-c', code, str(tmp_path / 'cl.png')], capture_output=True, text=True,
                         timeout=300, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    assert f'ERROR the catalogue plot: matplotlib is not installed ({PLOTS_HINT})' in out.stdout
    assert not (tmp_path / 'cl.png').exists()


@pytest.mark.skipif(not os.environ.get('RELGRAPH_EXPECT_INSTALLED'),
                    reason='only in a venv holding the built wheel (make oldest)')
def test_the_tests_import_the_installed_wheel():
    import timm

    import timm_relgraph
    where = Path(timm_relgraph.__file__).resolve()
    assert where.parent != ROOT / 'timm_relgraph', f'timm_relgraph comes from the checkout: {where}'
    assert Path(sys.prefix).resolve() in where.parents
    assert timm.__version__ == os.environ['RELGRAPH_EXPECT_INSTALLED']
    dist = importlib.metadata.distribution('timm-relgraph')
    assert not (dist.read_text('direct_url.json') or '').count('"editable": true')
    files = {str(f) for f in dist.files}
    assert {'timm_relgraph/recipes/mlp5_fashion_mnist.yaml', 'timm_relgraph/data/catalogue_n64.csv'} <= files
    reqs = _requirements()
    core = {name for name, _, extra in reqs if extra is None}
    assert {'timm', 'torch', 'scipy', 'tqdm', 'numpy'} <= core and 'matplotlib' not in core
    assert ('matplotlib', 'plots') in {(name, extra) for name, _, extra in reqs}
