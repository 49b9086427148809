"""relgraph demo (timm_relgraph.demo): the whole pipeline on tiny data (scikit-learn digits, 1x8x8)."""
import json
from pathlib import Path

import pytest
import timm

from timm_relgraph import demo, hub

pytest.importorskip('sklearn')  # the tiny 'digits' dataset

# mlp5 on 1x8x8 digits with the paper's recipe keys (as tests/test_trainer.py), a few hundred samples
TINY = dict(model='relgraph_mlp5', num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8},
            mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
            train_num_samples=256, val_num_samples=None, batch_size=32, validation_batch_size=128, epochs=2,
            opt='sgd', lr=0.1, weight_decay=5e-4, opt_kwargs={'filter_bias_and_bn': False}, sched='cosine',
            warmup_epochs=0, smoothing=0.0, hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0,
            train_interpolation='bilinear', workers=0, seed=0, device='cpu', checkpoint_hist=1)


@pytest.fixture(scope='module')
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    lines = []
    res = demo.run_demo(out, TINY, progress=False, command='relgraph demo (test)', log=lines.append)
    res['log'] = lines
    res['output'] = out
    return res


def test_trains_both_models_with_the_memory_loader(result):
    assert [r['model'] for r in result['runs']] == ['relgraph_mlp5', 'relgraph_mlp5_c1.0_l1.0']
    for run in result['runs']:
        assert len(run['summary']) == 2 and 0 <= run['top1'] <= 100
        assert (run['run_dir'] / 'model_best.pth.tar').is_file()
        args = (run['run_dir'] / 'args.yaml').read_text()
        assert 'memory_loader: true' in args
    sweet, complete = result['runs']
    assert sweet['graph']['C'] < 1 and complete['graph']['C'] == 1.0
    assert sweet['macs'] >= complete['macs'] > 0  # FLOPs-matched: the first width reaching the baseline
    # the model was first created by name and its graph printed
    assert result['log'][1].startswith("timm.create_model('relgraph_mlp5'")
    assert any(line.lstrip().startswith('graph') and 'seed=4' in line for line in result['log'])


def test_published_folder_reloads_through_local_dir_with_the_same_accuracy(result):
    folder = Path(result['published'])
    assert folder.parent == result['output'] / 'hub'
    assert sorted(p.name for p in folder.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    hub.verify_folder(folder)
    sweet = result['runs'][0]
    assert result['reload_difference'] <= demo.TOLERANCE
    assert abs(result['evaluation']['top1'] - sweet['top1']) <= 0.01
    assert sweet['reloaded_top1'] == result['evaluation']['top1']
    assert result['evaluation']['samples'] == 297  # the whole digits validation split
    model = timm.create_model(f'local-dir:{folder}', pretrained=True)
    assert model.pretrained_cfg['graph']['edges_sha256'] == sweet['graph']['edges_sha256']
    config = json.loads((folder / 'config.json').read_text())
    assert config['relgraph']['results']['top-1 (%)'] == round(result['evaluation']['top1'], 3)
    card = (folder / 'README.md').read_text()
    assert 'relgraph demo (test)' in card and f"{result['evaluation']['top1']:.2f}" in card


def test_figure_is_a_png(result):
    png = Path(result['figure'])
    assert png == result['output'] / 'demo.png'
    data = png.read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 20_000


def test_final_table(result):
    table = demo.format_table(result)
    for text in ('relgraph_mlp5 ', 'relgraph_mlp5_c1.0_l1.0', 'sweet spot', 'complete graph', 'reloaded', 'OK',
                 str(result['published']), 'demo.png'):
        assert text in table, text


def test_reload_mismatch_fails_loudly(tmp_path, monkeypatch):
    real = hub.evaluate_folder

    def off_by_one_sample(*args, **kwargs):
        evaluation = real(*args, **kwargs)
        evaluation['top1'] += 100.0 / evaluation['samples']
        return evaluation

    monkeypatch.setattr(hub, 'evaluate_folder', off_by_one_sample)
    tiny = dict(TINY, train_num_samples=64, val_num_samples=64, epochs=1)
    with pytest.raises(hub.ReloadMismatchError, match='local-dir'):
        demo.run_demo(tmp_path, tiny, models=[('sweet spot', 'relgraph_mlp5')], progress=False, plot=False,
                      log=lambda line: None)


def test_missing_data_is_reported_before_training(tmp_path, capsys):
    assert demo.main(['--data-dir', str(tmp_path / 'nowhere'), '--output', str(tmp_path / 'out'),
                      '--no-progress']) == 2
    assert 'Fashion-MNIST' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
