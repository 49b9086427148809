"""relgraph train (timm_relgraph.trainer): one epoch per model family on tiny data, --resume, config and dataset errors."""
import csv
import sys
from pathlib import Path

import pytest
import timm
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
from timm_relgraph import trainer

pytest.importorskip('sklearn')  # the tiny 'digits' dataset

FAMILIES = ['mlp5', 'cnn8', 'resnet18', 'resnet34sep', 'resnet50', 'efficientnet_b0']
CONFIGS = sorted((ROOT / 'timm_relgraph' / 'recipes').glob('*.yaml'))


def tiny_args(tmp_path, experiment, **overrides):
    """mlp5 on 1x8x8 digits: 64 train / 64 eval samples, batch 16, 1 epoch, no workers."""
    cfg = dict(model='relgraph_mlp5_c1.0_l1.0', num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8},
               mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
               train_num_samples=64, val_num_samples=64, batch_size=16, epochs=1, opt='sgd', lr=0.1,
               weight_decay=5e-4, opt_kwargs={'filter_bias_and_bn': False}, sched='cosine', warmup_epochs=0,
               smoothing=0.0, hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0,
               train_interpolation='bilinear', workers=0, seed=0, device='cpu', output=str(tmp_path),
               experiment=experiment, checkpoint_hist=2)
    cfg.update(overrides)
    return trainer.make_args(cfg)


def read_summary(folder):
    with open(Path(folder) / 'summary.csv') as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize('family', FAMILIES)
def test_one_epoch_per_family(tmp_path, family):
    name = f'relgraph_{family}'
    if not timm.is_model(name):  # families land one by one; each runs as soon as it is registered
        pytest.skip(f'{name} is not registered yet')
    if family == 'mlp5':
        args = tiny_args(tmp_path, family, model=name)
    else:  # conv nets on digits upsampled to 1x32x32
        args = tiny_args(tmp_path, family, model=name, img_size=32, model_kwargs={}, train_num_samples=32,
                         val_num_samples=16, batch_size=16)
    metrics = trainer.train(args, progress=False)
    out = Path(metrics['output_dir'])
    assert out == tmp_path / family
    for f in ('args.yaml', 'summary.csv', 'checkpoint-0.pth.tar', 'last.pth.tar', 'model_best.pth.tar'):
        assert (out / f).is_file(), f
    rows = read_summary(out)
    assert list(rows[0]) == ['epoch', 'train_loss', 'eval_loss', 'eval_top1', 'eval_top5', 'lr']
    assert len(rows) == 1 and rows[0]['epoch'] == '0'
    assert torch.isfinite(torch.tensor(metrics['train_loss'])) and 0 <= metrics['eval_top1'] <= 100
    # checkpoints hold plain data only: loadable with weights_only=True, straight into a fresh model
    ckpt = torch.load(out / 'model_best.pth.tar', map_location='cpu', weights_only=True)
    assert ckpt['epoch'] == 0 and 'optimizer' in ckpt and 'args' not in ckpt
    model = timm.create_model(name, num_classes=10, in_chans=1, **args.model_kwargs)
    model.load_state_dict(ckpt['state_dict'])


def test_mlp5_learns_digits(tmp_path):
    metrics = trainer.train(tiny_args(tmp_path, 'learn', train_num_samples=None, val_num_samples=None,
                                      batch_size=64, epochs=2), progress=False)
    assert metrics['eval_top1'] > 80, metrics


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def test_resume_continues_at_next_epoch_with_optimizer_state(tmp_path):
    straight = trainer.train(tiny_args(tmp_path, 'straight', epochs=2), progress=False)
    first = trainer.train(tiny_args(tmp_path, 'resumed', epochs=1), progress=False)
    ckpt1 = _state(Path(first['output_dir']) / 'last.pth.tar')
    momentum = [s['momentum_buffer'] for s in ckpt1['optimizer']['state'].values()]
    assert momentum and all(m is not None and m.abs().sum() > 0 for m in momentum)

    resumed = trainer.train(tiny_args(tmp_path, 'resumed', epochs=2,
                                      resume=str(Path(first['output_dir']) / 'last.pth.tar')), progress=False)
    assert resumed['epoch'] == 1 and resumed['output_dir'] == first['output_dir']
    assert [r['epoch'] for r in read_summary(resumed['output_dir'])] == ['0', '1']
    last = _state(Path(resumed['output_dir']) / 'last.pth.tar')
    assert last['epoch'] == 1
    # 1 epoch + resume for 1 == 2 epochs straight, bit for bit: the resumed run had the same weights, BN
    # statistics, momentum buffers, LR and data order (the RNGs are reseeded per epoch); on CPU this is exact.
    ref = _state(Path(straight['output_dir']) / 'last.pth.tar')
    for key, value in ref['state_dict'].items():
        assert torch.equal(value, last['state_dict'][key]), key
    for k, s in ref['optimizer']['state'].items():
        assert torch.equal(s['momentum_buffer'], last['optimizer']['state'][k]['momentum_buffer'])
    assert resumed['eval_top1'] == straight['eval_top1']

    # without the optimizer state (fresh momentum) the result differs: the check above is sensitive to it
    no_opt = trainer.train(tiny_args(tmp_path, 'no_opt', epochs=2, no_resume_opt=True,
                                     resume=str(Path(first['output_dir']) / 'checkpoint-0.pth.tar')), progress=False)
    other = _state(Path(no_opt['output_dir']) / 'last.pth.tar')
    assert not all(torch.equal(v, other['state_dict'][k]) for k, v in ref['state_dict'].items())


def test_args_yaml_round_trip(tmp_path):
    metrics = trainer.train(tiny_args(tmp_path, 'rt'), progress=False)
    saved = yaml.safe_load((Path(metrics['output_dir']) / 'args.yaml').read_text())
    assert saved['model'] == 'relgraph_mlp5_c1.0_l1.0' and saved['batch_size'] == 16
    again = trainer.make_args(Path(metrics['output_dir']) / 'args.yaml')  # args.yaml is a valid config
    assert again.lr == 0.1 and again.dataset == 'digits'


def test_unknown_config_key_is_refused_with_suggestions(tmp_path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('model: relgraph_mlp5\nbatchsize: 8\nweight_deacy: 0.1\n')
    with pytest.raises(trainer.ConfigError, match=r"unknown key 'batchsize'; did you mean batch_size") as err:
        trainer.make_args(bad)
    assert 'weight_decay' in str(err.value)
    assert trainer.main(['--config', str(bad)]) == 2
    assert "unknown key 'batchsize'" in capsys.readouterr().err
    # a train.py option the trainer lacks: fine at train.py's default, refused otherwise
    trainer.make_args({'jsd_loss': False, 'model': 'relgraph_mlp5'})
    with pytest.raises(trainer.ConfigError, match='train.py option this trainer does not implement'):
        trainer.make_args({'jsd_loss': True})


def test_missing_dataset_fails_clearly(tmp_path, capsys):
    args = tiny_args(tmp_path, 'nodata', dataset='fashion_mnist', data_dir=str(tmp_path / 'nowhere'), img_size=28,
                     model_kwargs={'img_size': 28})
    with pytest.raises(trainer.DatasetNotFoundError, match='dataset-fashion-mnist'):
        trainer.train(args, progress=False)
    code = trainer.main(['--config', 'mlp5_cifar10', '--data-dir',
                         str(tmp_path / 'nocifar'), '--output', str(tmp_path), '--device', 'cpu', '--no-progress'])
    assert code == 2
    assert '--dataset-download' in capsys.readouterr().err


@pytest.mark.parametrize('config', CONFIGS, ids=[c.stem for c in CONFIGS])
def test_configs_are_valid_train_py_keys(config):
    args = trainer.make_args(config)
    assert args.opt == 'sgd' and args.momentum == 0.9 and args.sched == 'cosine' and args.warmup_epochs == 0
    assert args.opt_kwargs == {'filter_bias_and_bn': False} and args.smoothing == 0.0
    recipe = {'mlp5': (128, 0.1, 5e-4), 'efficientnet_b0': (512, 0.2, 5e-5)}
    family = args.model[len('relgraph_'):]
    assert (args.batch_size, args.lr, args.weight_decay) == recipe.get(family, (256, 0.1, 1e-4))
    epochs = 2 if 'fashion' in config.stem else 200 if 'cifar' in config.stem else 100
    assert args.epochs == epochs


def test_kill_between_summary_and_checkpoint_leaves_each_epoch_once(tmp_path, monkeypatch):
    from timm import utils

    real_save = utils.CheckpointSaver.save_checkpoint

    def dies_at_epoch_1(self, epoch, metric=None):
        if epoch == 1:
            raise KeyboardInterrupt('killed after the summary row, before the checkpoint')
        return real_save(self, epoch, metric=metric)

    monkeypatch.setattr(utils.CheckpointSaver, 'save_checkpoint', dies_at_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(tiny_args(tmp_path, 'killed', epochs=3), progress=False)
    out = next(p for p in tmp_path.rglob('summary.csv') if 'killed' in str(p)).parent
    assert [r['epoch'] for r in read_summary(out)] == ['0', '1']  # epoch 1's row, but no checkpoint of it
    monkeypatch.setattr(utils.CheckpointSaver, 'save_checkpoint', real_save)
    resumed = trainer.train(tiny_args(tmp_path, 'killed', epochs=3, resume=str(out / 'last.pth.tar')),
                            progress=False)
    assert [r['epoch'] for r in read_summary(resumed['output_dir'])] == ['0', '1', '2']
    straight = trainer.train(tiny_args(tmp_path, 'straight3', epochs=3), progress=False)
    assert [r['eval_top1'] for r in read_summary(resumed['output_dir'])] == [
        r['eval_top1'] for r in read_summary(straight['output_dir'])]


def test_corrupt_yaml_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('epochs: [1, 2\nlr: 0.1\n')
    assert trainer.main(['--config', str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and 'not valid YAML' in err and 'line' in err and '\n' not in err
