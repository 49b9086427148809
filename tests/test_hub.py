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
    assert '### Our results' in card and 'you2020graph' in card  # the family card, inside the timm layout
    hub.verify_folder(folder)


def test_card_without_family_card_still_cites(exported, tmp_path, monkeypatch):
    model, _ = exported
    monkeypatch.setattr(hub, 'FAMILY_CARD', tmp_path / 'absent.md')
    folder = hub.export_model(model, tmp_path / 'bare')
    card = (folder / 'README.md').read_text()
    assert 'you2020graph' in card and 'Our results' not in card and '## Model Usage' in card


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


# --- the model card in timm's Hub layout, measured results, timm's results CSV -------------------------------

DIGITS = dict(in_chans=1, img_size=8, num_classes=10)
DIGITS_DATA = {'mean': [0.5], 'std': [0.5], 'crop_pct': 1.0, 'interpolation': 'bilinear'}


@pytest.fixture(scope='module')
def digits_export(tmp_path_factory):
    """An mlp5 (random weights) exported as trained on digits, with a Hub id for the usage code."""
    torch.manual_seed(0)
    model = timm.create_model(NAME, **DIGITS).eval()
    folder = hub.export_model(model, tmp_path_factory.mktemp('digits') / 'model', repo_id='relgraph-test/mlp5',
                              results={'top1': 12.5, 'command': 'relgraph train --config x'}, dataset='digits',
                              data_config=DIGITS_DATA)
    return model, folder


def _sections(card):
    """Markdown headings, outside fenced code blocks."""
    headings, fenced = [], False
    for line in card.splitlines():
        if line.startswith('```'):
            fenced = not fenced
        elif not fenced and line.startswith('#'):
            headings.append(line)
    return headings


def test_card_follows_timm_hub_layout(digits_export):
    model, folder = digits_export
    card = (folder / 'README.md').read_text()
    assert card.startswith('---\ntags:\n- image-classification\n- timm\n')
    front = card.split('---\n')[1]
    for key in ('library_name: timm', 'license: apache-2.0', 'pipeline_tag: image-classification'):
        assert key in front
    headings = [h for h in _sections(card) if not h.startswith('### ') or h[4:] in (
        'Image Classification', 'Feature Map Extraction', 'Image Embeddings')]
    top = [h for h in headings if h.startswith('# ') or h.startswith('## ')]
    assert top == ['# Model card for relgraph_mlp5_c0.4_l2.0', '## Model Details', '## Model Usage',
                   '## Model Comparison', '## About relgraph models', '## Citation']
    usage = card[card.index('## Model Usage'):card.index('## Model Comparison')]
    assert [h for h in _sections(usage) if h.startswith('### ')] == [
        '### Image Classification', '### Feature Map Extraction', '### Image Embeddings']
    details = card[card.index('## Model Details'):card.index('## Model Usage')]
    params = model.pretrained_cfg['num_params']
    for text in ('- **Model Type:** Image classification / feature backbone', '- **Model Stats:**',
                 f'  - Params (M): {params / 1e6:.2f} ({params:,}: only the weights the graph keeps',
                 f'  - GMACs: {model.macs / 1e9:.3g} ({model.macs:,} MACs, analytic',
                 '  - Activations (M):', '  - Image size: 8 x 8 (1 channel)', '- **Relational graph:**',
                 '  - Generator: WS-flex (n=64', 'seed=28)', '  - Clustering coefficient C: 0.4004',
                 '  - Average path length L: 2.0069', '- **Papers:**',
                 '  - Graph Structure of Neural Networks: https://arxiv.org/abs/2007.06559',
                 '- **Dataset:** scikit-learn digits', '- **Original:** https://github.com/facebookresearch/graph2nn'):
        assert text in details, text
    # activations, counted honestly: the outputs of the 5 linear layers for one image
    assert f'({512 + 3 * model.width + 10:,} outputs of conv and linear layers)' in details
    # the install line comes before any hf-hub: usage, and the measured results carry their command
    assert card.index('pip install timm-relgraph') < card.index('hf-hub:') < card.index('## Model Comparison')
    assert 'import timm_relgraph' in usage and '"Unknown model"' in usage
    comparison = card[card.index('## Model Comparison'):card.index('## About relgraph models')]
    assert '| top1 | 12.5 |' in comparison and 'Produced by: `relgraph train --config x`' in comparison
    assert card.rstrip().endswith('```') and '@inproceedings{you2020graph' in card[card.index('## Citation'):]
    config = json.loads((folder / 'config.json').read_text())
    assert config['label_names'] == [str(i) for i in range(10)]
    assert config['relgraph']['stats']['activations'] == 512 + 3 * model.width + 10


def _python_blocks(text):
    parts = text.split('```python\n')[1:]
    return [p.split('\n```')[0] for p in parts]


def test_card_usage_code_runs_against_the_export(digits_export, tmp_path, monkeypatch, capsys):
    from PIL import Image

    model, folder = digits_export
    card = (folder / 'README.md').read_text()
    usage = card[card.index('## Model Usage'):card.index('## Model Comparison')]
    blocks = _python_blocks(usage)
    assert len(blocks) == 3 and all("'hf-hub:relgraph-test/mlp5'" in b for b in blocks)
    monkeypatch.chdir(tmp_path)
    Image.new('RGB', (20, 24), (200, 30, 90)).save('image.png')  # any image: converted and resized by the code
    outputs = []
    for block in blocks:
        exec(compile(block.replace('hf-hub:relgraph-test/mlp5', f'local-dir:{folder}'), 'card', 'exec'), {})
        outputs.append(capsys.readouterr().out)
    classify, features, embeddings = outputs
    assert len(classify.splitlines()) == 5 and all(line.split(':')[0] in '0123456789' for line in classify.splitlines())
    w = model.width
    assert f'torch.Size([1, {w}, 1, 1])' in features and f'[512, {w}, {w}, {w}]' in features
    assert embeddings.strip() == f'torch.Size([1, {model.width}]) True'


def test_card_classification_code_runs_unchanged_from_the_hub_offline(digits_export, tmp_path):
    _, folder = digits_export
    card = (folder / 'README.md').read_text()
    code = _python_blocks(card[card.index('### Image Classification'):])[0]
    prefill_hf_cache(folder, tmp_path / 'hub', 'relgraph-test/mlp5')
    from PIL import Image
    Image.new('L', (8, 8), 128).save(tmp_path / 'image.png')
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'hub'), HF_HOME=str(tmp_path / 'home'))
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.stdout.splitlines()) == 5


def _digits_top(model, split='validation'):
    """Top-1 / top-5 (%) of ``model`` on digits, computed directly from the arrays (no timm transforms)."""
    from timm_relgraph.data import digits
    ds = digits(split=split)
    x = (torch.from_numpy(ds.images).float()[:, None] / 255.0 - 0.5) / 0.5
    y = torch.tensor(ds.targets)
    with torch.inference_mode():
        top = model.eval()(x).topk(5, dim=1).indices
    return 100.0 * (top[:, 0] == y).float().mean().item(), 100.0 * (top == y[:, None]).any(1).float().mean().item()


def test_evaluate_folder_reloads_and_measures(digits_export):
    pytest.importorskip('sklearn')
    model, folder = digits_export
    evaluation = hub.evaluate_folder(folder, 'digits', split='validation')
    top1, top5 = _digits_top(model)
    assert evaluation['samples'] == 297
    assert abs(evaluation['top1'] - top1) < 1e-6 and abs(evaluation['top5'] - top5) < 1e-6
    assert evaluation['param_count'] == model.pretrained_cfg['num_params']
    assert (evaluation['img_size'], evaluation['crop_pct'], evaluation['interpolation']) == (8, 1.0, 'bilinear')
    assert hub.check_reload(folder, evaluation['top1'] + 0.005, evaluation) <= 0.01
    with pytest.raises(hub.ReloadMismatchError, match='local-dir'):
        hub.check_reload(folder, evaluation['top1'] + 0.02, evaluation)


def test_results_csv_in_timm_format(digits_export, tmp_path):
    pytest.importorskip('sklearn')
    model, folder = digits_export
    evaluation = hub.evaluate_folder(folder, 'digits')
    other = dict(evaluation, top1=99.5, top5=100.0, param_count=1_234_567)
    path = hub.write_results_csv([hub.results_row('relgraph_mlp5_c0.4_l2.0', evaluation),
                                  hub.results_row('relgraph_mlp5_c1.0_l1.0', other)], tmp_path / 'results-digits.csv')
    lines = path.read_text().splitlines()
    assert lines[0] == 'model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation'
    assert lines[1] == 'relgraph_mlp5_c1.0_l1.0,8,99.500,0.500,100.000,0.000,1.23,1.000,bilinear'  # best first
    p = model.pretrained_cfg['num_params']
    assert lines[2] == (f"relgraph_mlp5_c0.4_l2.0,8,{evaluation['top1']:.3f},{100 - evaluation['top1']:.3f},"
                        f"{evaluation['top5']:.3f},{100 - evaluation['top5']:.3f},{p / 1e6:.2f},1.000,bilinear")
    assert hub.read_results_csv(path)[1]['model'] == 'relgraph_mlp5_c0.4_l2.0'


def test_publish_evaluate_writes_card_and_results_row(tmp_path):
    pytest.importorskip('sklearn')
    torch.manual_seed(1)
    model = timm.create_model(NAME, **DIGITS).eval()
    ckpt = tmp_path / 'run' / 'model_best.pth.tar'
    ckpt.parent.mkdir()
    torch.save({'arch': NAME, 'state_dict': model.state_dict(),
                'args': {'model': NAME, 'dataset': 'digits', **DIGITS, **DIGITS_DATA}}, ckpt)
    csv_path = tmp_path / 'results' / 'results-digits.csv'
    argv = ['publish', str(ckpt), str(tmp_path / 'out'), '--evaluate', '--results-csv', str(csv_path)]
    assert hub.main(argv) == 0
    top1, top5 = _digits_top(model)
    row = hub.read_results_csv(csv_path)
    assert [r['model'] for r in row] == [NAME] and row[0]['top1'] == f'{top1:.3f}' and row[0]['top5'] == f'{top5:.3f}'
    card = (tmp_path / 'out' / 'README.md').read_text()
    assert f'| top-1 (%) | {round(top1, 3)} |' in card and 'Produced by: `relgraph publish ' in card
    assert f'| `{NAME}` (this model) |' in card
    hub.verify_folder(tmp_path / 'out')  # the card was rewritten, the weights were not
    # publishing the same model again replaces its row
    argv = ['publish', str(ckpt), str(tmp_path / 'out2'), '--model', NAME, '--results-csv', str(csv_path)]
    assert hub.main(argv) == 0
    assert len(hub.read_results_csv(csv_path)) == 1  # same model name: its row is replaced, not duplicated


def _load_make_weights():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / 'hub' / 'make_weights.py'
    spec = importlib.util.spec_from_file_location('make_weights', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY_RUN = dict(model='relgraph_mlp5', num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8},
                mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
                train_num_samples=64, batch_size=16, validation_batch_size=128, epochs=1, opt='sgd', lr=0.1,
                weight_decay=5e-4, opt_kwargs={'filter_bias_and_bn': False}, sched='cosine', warmup_epochs=0,
                smoothing=0.0, hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0,
                train_interpolation='bilinear', workers=0, seed=0, device='cpu', checkpoint_hist=1)


def test_make_weights_measures_every_export_into_the_results_csv(tmp_path, capsys):
    pytest.importorskip('sklearn')
    mw = _load_make_weights()
    csv_path = tmp_path / 'results' / 'results-digits.csv'
    result = mw.make_weights(TINY_RUN, runs=tmp_path / 'runs', out=tmp_path / 'weights', results_csv=csv_path,
                             command='python hub/make_weights.py --test')
    rows = hub.read_results_csv(csv_path)
    assert sorted(r['model'] for r in rows) == ['relgraph_mlp5', 'relgraph_mlp5_c1.0_l1.0']
    for d in result['done']:
        # the row holds what reloading the exported folder measured, not a typed-in number
        again = hub.evaluate_folder(d['folder'], 'digits')
        row = next(r for r in rows if r['model'] == d['model'])
        assert row['top1'] == f"{again['top1']:.3f}" and row['img_size'] == '8'
        assert row['param_count'] == f"{again['param_count'] / 1e6:.2f}"
        assert abs(again['top1'] - d['trained_top1']) <= 0.01
        card = (d['folder'] / 'README.md').read_text()
        assert '`relgraph_mlp5_c1.0_l1.0`' in card and '`relgraph_mlp5`' in card  # the comparison of both
        assert 'Measured by `python hub/make_weights.py --test`' in card
        hub.verify_folder(d['folder'])
    note = csv_path.with_suffix('.md').read_text()
    assert 'python hub/make_weights.py --test' in note and 'in-memory loader' in note
    # complete runs are reused, and measured again
    capsys.readouterr()
    mw.make_weights(TINY_RUN, runs=tmp_path / 'runs', out=tmp_path / 'weights', results_csv=csv_path,
                    command='python hub/make_weights.py --test')
    assert capsys.readouterr().out.count('== reuse') == 2
    assert hub.read_results_csv(csv_path) == rows
