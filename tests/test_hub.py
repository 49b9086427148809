import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

import timm_relgraph  # noqa: F401
from timm_relgraph import hub
from timm_relgraph.layers import GraphMismatchError

from conftest import prefill_hf_cache

NAME = 'relgraph_mlp5_c0.4_l2.0'
KWARGS = dict(in_chans=1, img_size=8, num_classes=10)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = timm.create_model(NAME, **KWARGS).eval()
    folder = hub.export_model(model, tmp_path_factory.mktemp('export') / 'model', results={'top1': 12.5})
    return model, folder


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_export_folder_contents(exported):
    model, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    config = json.loads((folder / 'config.json').read_text())
    graph = config['model_args']['graph']
    assert set(graph) == {'generator', 'n', 'k', 'p', 'seed'}
    recorded = config['pretrained_cfg']['graph']
    assert recorded['edges_sha256'] == model.pretrained_cfg['graph']['edges_sha256']
    assert abs(recorded['C'] - 0.4) <= 0.02 and abs(recorded['L'] - 2.0) <= 0.05
    card = (folder / 'README.md').read_text()
    assert 'clustering C' in card and 'top1 | 12.5' in card and 'Graph Structure of Neural Networks' in card
    assert '## Our results' in card and 'you2020graph' in card  # the family card follows this model's table
    hub.verify_folder(folder)


def test_card_without_family_card_still_cites(exported, tmp_path, monkeypatch):
    model, _ = exported
    monkeypatch.setattr(hub, 'FAMILY_CARD', tmp_path / 'absent.md')
    folder = hub.export_model(model, tmp_path / 'bare')
    card = (folder / 'README.md').read_text()
    assert 'you2020graph' in card and '## Our results' not in card


def test_reload_local_dir_bit_identical(exported):
    model, folder = exported
    again = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    assert _same_state(model, again)
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), again(x))


def test_reload_hf_hub_offline_bit_identical(exported, tmp_path):
    model, folder = exported
    prefill_hf_cache(folder, tmp_path / 'hub', 'relgraph-test/mlp5')
    x = torch.randn(3, 1, 8, 8)
    torch.save({'x': x, 'y': model(x).detach(), 'state': model.state_dict()}, tmp_path / 'ref.pt')
    code = f'''
import torch, timm, timm_relgraph
ref = torch.load({str(tmp_path / 'ref.pt')!r}, weights_only=True)
m = timm.create_model('hf-hub:relgraph-test/mlp5', pretrained=True).eval()
s = m.state_dict()
assert s.keys() == ref['state'].keys() and all(torch.equal(s[k], ref['state'][k]) for k in s)
assert torch.equal(m(ref['x']), ref['y'])
print('identical')
'''
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'hub'), HF_HOME=str(tmp_path / 'home'))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'identical' in out.stdout


def test_published_name_loads_through_its_hf_hub_id(exported, tmp_path):
    """A name listed in PUBLISHED gets the hub id in its pretrained cfg: create_model(name, pretrained=True)."""
    model, folder = exported
    prefill_hf_cache(folder, tmp_path / 'hub', 'relgraph-test/published')
    x = torch.randn(3, 1, 8, 8)
    torch.save({'x': x, 'y': model(x).detach()}, tmp_path / 'ref.pt')
    code = f'''
import torch, timm, timm_relgraph
from timm_relgraph.models import _builder
ref = torch.load({str(tmp_path / 'ref.pt')!r}, weights_only=True)
_builder.PUBLISHED[('mlp5', {model.pretrained_cfg['tag']!r})] = 'relgraph-test/published'
m = timm.create_model({NAME!r}, pretrained=True, **{KWARGS!r}).eval()
assert m.pretrained_cfg['hf_hub_id'] == 'relgraph-test/published'
assert torch.equal(m(ref['x']), ref['y'])
fresh = timm.create_model('relgraph_mlp5_c0.6_l3.0', pretrained=False)
assert not fresh.pretrained_cfg.get('hf_hub_id')
print('loaded')
'''
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'hub'), HF_HOME=str(tmp_path / 'home'))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'loaded' in out.stdout


def test_changed_seed_in_config_is_refused(exported, tmp_path):
    _, folder = exported
    bad = tmp_path / 'bad'
    shutil.copytree(folder, bad)
    config = json.loads((bad / 'config.json').read_text())
    config['model_args']['graph']['seed'] += 1
    (bad / 'config.json').write_text(json.dumps(config))
    with pytest.raises(GraphMismatchError):
        timm.create_model(f'local-dir:{bad}', pretrained=True)
    with pytest.raises(hub.HubError, match='edges_sha256'):
        hub.verify_folder(bad)


def test_changed_graph_buffer_in_weights_is_refused(exported, tmp_path):
    _, folder = exported
    bad = tmp_path / 'bad'
    shutil.copytree(folder, bad)
    tensors = load_file(str(bad / 'model.safetensors'))
    key = next(k for k in tensors if k.endswith('.graph'))
    g = tensors[key].clone()
    g[0, 5] = g[5, 0] = 1 - g[0, 5]
    tensors[key] = g
    save_file(tensors, str(bad / 'model.safetensors'))
    from timm_relgraph.models._builder import WeightsIntegrityError
    with pytest.raises(WeightsIntegrityError):  # the recorded sha256 catches it first
        timm.create_model(f'local-dir:{bad}', pretrained=True)
    with pytest.raises(hub.HubError):
        hub.verify_folder(bad)
    # with the hash edited too, the graph buffers themselves still refuse the weights
    config = json.loads((bad / 'config.json').read_text())
    del config['pretrained_cfg']['weights_sha256']
    (bad / 'config.json').write_text(json.dumps(config))
    with pytest.raises(GraphMismatchError, match='relational graph mismatch'):
        timm.create_model(f'local-dir:{bad}', pretrained=True)


def test_export_checkpoint_roundtrip(tmp_path):
    model = timm.create_model(NAME, **KWARGS)
    ckpt = tmp_path / 'model_best.pth.tar'
    torch.save({'arch': NAME, 'state_dict': model.state_dict(), 'epoch': 3,
                'args': {'model': NAME, 'in_chans': 1, 'img_size': 8, 'num_classes': 10,
                         'mean': [0.286], 'std': [0.353]}}, ckpt)
    assert hub.main(['publish', str(ckpt), str(tmp_path / 'out')]) == 0
    config = json.loads((tmp_path / 'out' / 'config.json').read_text())
    assert config['pretrained_cfg']['mean'] == [0.286]
    again = timm.create_model(f'local-dir:{tmp_path / "out"}', pretrained=True)
    assert _same_state(model, again)
    # errors: unknown model, existing folder, missing checkpoint
    torch.save({'arch': 'resnet18', 'state_dict': {}}, tmp_path / 'other.pth.tar')
    assert hub.main(['publish', str(tmp_path / 'other.pth.tar'), str(tmp_path / 'o2')]) == 2
    with pytest.raises(hub.HubError, match='not empty'):
        hub.export_checkpoint(ckpt, tmp_path / 'out')
    with pytest.raises(hub.HubError, match='does not exist'):
        hub.export_checkpoint(tmp_path / 'missing.pth.tar', tmp_path / 'o3')


class FakeApi:
    calls = []
    existing = set()

    def __init__(self, token=None, **kwargs):
        self.token = token

    def repo_exists(self, repo_id, **kwargs):
        FakeApi.calls.append(('repo_exists', repo_id))
        return repo_id in FakeApi.existing

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        FakeApi.calls.append(('create_repo', repo_id, exist_ok))

    def upload_folder(self, repo_id, folder_path, commit_message=None, **kwargs):
        files = sorted(str(p.relative_to(folder_path)) for p in Path(folder_path).rglob('*') if p.is_file())
        FakeApi.calls.append(('upload_folder', repo_id, files))


def test_push_uploads_exactly_the_folder(exported, monkeypatch):
    _, folder = exported
    import huggingface_hub
    import huggingface_hub.utils
    monkeypatch.setattr(huggingface_hub, 'HfApi', FakeApi)
    monkeypatch.setattr(huggingface_hub.utils, 'get_token', lambda: 'hf_test')
    FakeApi.calls = []
    files = hub.push_folder(folder, 'org/mlp5')
    assert files == ['README.md', 'config.json', 'model.safetensors']
    assert FakeApi.calls == [('repo_exists', 'org/mlp5'), ('create_repo', 'org/mlp5', False),
                             ('upload_folder', 'org/mlp5', ['README.md', 'config.json', 'model.safetensors'])]
    # dry run: no network call at all
    FakeApi.calls = []
    assert hub.push_folder(folder, 'org/mlp5', dry_run=True) == files and FakeApi.calls == []
    # existing repo without --exist-ok, and a missing token
    FakeApi.existing = {'org/taken'}
    with pytest.raises(hub.HubError, match='already exists'):
        hub.push_folder(folder, 'org/taken')
    monkeypatch.setattr(huggingface_hub.utils, 'get_token', lambda: None)
    with pytest.raises(hub.HubError, match='no Hugging Face token'):
        hub.push_folder(folder, 'org/mlp5')


def test_exported_weights_hold_only_the_kept_weights(tmp_path):
    model = timm.create_model('relgraph_mlp5').eval()  # the paper's best MLP graph at full width
    folder = hub.export_model(model, tmp_path / 'best')
    state = load_file(str(folder / 'model.safetensors'))
    params = sum(p.numel() for p in model.parameters())
    assert params == model.pretrained_cfg['num_params'] == 2_375_290
    buffers = sum(t.numel() * t.element_size() for k, t in state.items() if not k.endswith('.weight')
                  and not k.endswith('.bias'))
    assert (folder / 'model.safetensors').stat().st_size <= 1.05 * 4 * params + buffers
    card = (folder / 'README.md').read_text()
    assert f'{params:,}' in card and f"{model.macs:,}" in card
