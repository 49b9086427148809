"""Bad input and faults, one test per case found by fuzzing and tampering: each is refused at once, with an error
of the project's hierarchy (ValueError / RuntimeError) that names the problem, or handled without loss."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pytest
import timm
import torch

import timm_relgraph  # noqa: F401
from timm_relgraph import hub
from timm_relgraph.catalogue import resolve
from timm_relgraph.graphs import MAX_NODES, GraphSpec, graph_stats, ws_flex
from timm_relgraph.masks import channel_mask
from timm_relgraph.models._builder import WeightsIntegrityError, explain_name
from timm_relgraph.models._patch import ConfigError
from timm_relgraph.names import MAX_NAME_LENGTH, RelgraphNameError

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(in_chans=1, img_size=8, num_classes=3, base_width=16)


@pytest.fixture()
def folder(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0', **SMALL).eval()
    return hub.export_model(model, tmp_path / 'model')


def _quick(fn, limit=2.0):
    start = time.perf_counter()
    try:
        fn()
    finally:
        assert time.perf_counter() - start < limit


@pytest.mark.parametrize('n', [5000, 2 ** 31, MAX_NODES + 1])
def test_graph_size_is_bounded(n):
    with pytest.raises(ValueError, match=f'n must be <= {MAX_NODES}'):
        _quick(lambda: timm.create_model('relgraph_mlp5', graph=dict(n=n, k=8, p=0.0, seed=4)))
    with pytest.raises(ValueError, match=f'<= {MAX_NODES}'):
        _quick(lambda: ws_flex(n, 8, 0.1, 4))


def test_config_with_a_huge_graph_is_refused_at_once(folder):
    config = json.loads((folder / 'config.json').read_text())
    config['model_args']['graph']['n'] = 5000
    (folder / 'config.json').write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f'<= {MAX_NODES}'):
        _quick(lambda: timm.create_model(f'local-dir:{folder}', pretrained=True))


def test_cli_huge_graph_is_one_line_and_exit_2():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, '-m', 'timm_relgraph.cli', 'graph', '--n', '100000', '--k', '2',
                          '--p', '0.1'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count('\n') == 1 and str(MAX_NODES) in out.stderr
    assert time.perf_counter() - start < 30


def test_corrupted_weights_are_refused_by_their_recorded_hash(folder):
    path = folder / 'model.safetensors'
    data = bytearray(path.read_bytes())
    for i in range(len(data) - 400, len(data)):  # 400 bytes of tensor data, the header intact
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match='corrupted or edited'):
        timm.create_model(f'local-dir:{folder}', pretrained=True)


def test_wrong_recorded_hash_is_refused(folder):
    config = json.loads((folder / 'config.json').read_text())
    config['pretrained_cfg']['weights_sha256'] = '0' * 64
    (folder / 'config.json').write_text(json.dumps(config))
    with pytest.raises(WeightsIntegrityError):
        timm.create_model(f'local-dir:{folder}', pretrained=True)


def test_untouched_folder_still_loads(folder):
    model = timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert model.pretrained_cfg['graph']['edges_sha256']


@pytest.mark.parametrize('text', ['{not json', '[1, 2, 3]', '{"architecture": 5}',
                                  '{"architecture": "relgraph_mlp5_c0", "model_args": [1]}'])
def test_malformed_config_json_is_a_config_error(folder, text):
    (folder / 'config.json').write_text(text)
    with pytest.raises((ConfigError, RelgraphNameError, ValueError, RuntimeError)) as err:
        timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert not isinstance(err.value, (TypeError, AttributeError, KeyError, json.JSONDecodeError)) or \
        isinstance(err.value, ConfigError)


@pytest.mark.parametrize('name', ['relgraph_mlp5.garbage', 'relgraph_mlp5._c0.63_l3.62',
                                  'relgraph_mlp5_c0.\u096a44_l1.84', 'relgraph_mlp5_c0.4_l2.0\n',
                                  'relgraph_mlp5_c0.4_l2.0 '])
def test_names_that_once_built_the_wrong_graph_are_refused(name):
    with pytest.raises(RelgraphNameError):
        timm.create_model(name)


def test_explaining_a_huge_name_is_fast_and_bounded():
    name = 'relgraph_' + 'x' * 40_000
    start = time.perf_counter()
    message = explain_name(name)
    assert time.perf_counter() - start < 0.1 and len(message) < 300
    with pytest.raises(RelgraphNameError) as err:
        timm.create_model('relgraph_mlp5_c0.4_l' + '2' * 40_000)
    assert len(str(err.value)) < 300 and str(MAX_NAME_LENGTH) in str(err.value)


@pytest.mark.parametrize('call', [lambda: resolve(10 ** 400, 2.0), lambda: ws_flex(64, 10 ** 400, 0.1, 4),
                                  lambda: ws_flex(64, 8, 10 ** 400, 4), lambda: graph_stats(None),
                                  lambda: channel_mask(nx.Graph([(0, 'a'), ('a', 1.5)]), 8, 8),
                                  lambda: GraphSpec.from_dict({'n': 64, 'k': float('inf')})])
def test_bad_arguments_raise_value_errors(call):
    with pytest.raises(ValueError):
        call()


def test_is_model_and_get_pretrained_cfg_follow_the_grammar():
    assert not timm.is_model('relgraph_mlp5_c0.9_l9.0')
    assert timm.is_model('relgraph_mlp5_c0.4_l2.0') and timm.is_model('relgraph_mlp5') and timm.is_model('resnet50')
    cfg = timm.models.get_pretrained_cfg('relgraph_resnet34_c0.4_l2.0')
    assert cfg.architecture == 'relgraph_resnet34_c0' and cfg.tag == '4_l2.0'
    with pytest.raises(RuntimeError):
        timm.models.get_pretrained_cfg('relgraph_resnet34_c0.9_l9.0')


def test_publisher_refuses_a_pickle_with_one_line(tmp_path):
    import pickle

    bad = tmp_path / 'evil.pth.tar'
    with open(bad, 'wb') as f:
        pickle.dump({'state_dict': {}, 'payload': Path('/etc')}, f)  # a class weights_only=True refuses
    out = subprocess.run([sys.executable, '-m', 'timm_relgraph.hub', 'publish', str(bad), str(tmp_path / 'o')],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith('error: ') and 'refused' in out.stderr
    assert 'Traceback' not in out.stderr and not (tmp_path / 'o').exists()


def test_a_killed_publish_leaves_no_temp_folder_behind(tmp_path):
    stale = tmp_path / '.model.abc123'
    stale.mkdir()
    (stale / 'model.safetensors').write_bytes(b'partial')
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0', **SMALL).eval()
    hub.export_model(model, tmp_path / 'model')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model']


def test_oversized_arguments_are_refused_before_allocating():
    with pytest.raises(ValueError, match='num_classes'):
        _quick(lambda: timm.create_model('relgraph_mlp5', num_classes=10 ** 9))
    with pytest.raises(ValueError, match='widths'):
        _quick(lambda: timm.create_model('relgraph_cnn8', widths=(64, 10 ** 7, 64)))
