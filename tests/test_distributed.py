"""The trainer under torchrun (timm_relgraph.distributed): 2 CPU processes (gloo) give the weights of one process on
the same global batch, and resume; the data sharding in-process."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from timm_relgraph import distributed as rdist
from timm_relgraph import trainer

pytest.importorskip('sklearn')  # the tiny 'digits' dataset


def tiny_cfg(tmp_path, **overrides):
    """mlp5 (BatchNorm after every layer) on 1x8x8 digits: 128 train / 64 eval samples, 16 samples a step."""
    cfg = dict(model='relgraph_mlp5_c0.4_l2.0', num_classes=10, in_chans=1, img_size=8, model_kwargs={'img_size': 8},
               mean=[0.5], std=[0.5], crop_pct=1.0, interpolation='bilinear', dataset='digits',
               train_num_samples=128, val_num_samples=64, batch_size=16, epochs=2, opt='sgd', lr=0.02,
               weight_decay=5e-4, opt_kwargs={'filter_bias_and_bn': False}, sched='cosine', warmup_epochs=0,
               smoothing=0.0, hflip=0.0, scale=[1.0, 1.0], ratio=[1.0, 1.0], color_jitter=0.0,
               train_interpolation='bilinear', workers=0, seed=0, device='cpu', output=str(tmp_path),
               checkpoint_hist=2)
    cfg.update(overrides)
    return cfg


def torchrun(tmp_path, cfg, *extra, nproc=2):
    """``torchrun --standalone --nproc_per_node 2 -m timm_relgraph.trainer --config <cfg> ...`` (one thread each)."""
    path = tmp_path / f'{cfg["experiment"]}.yaml'
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS='1')  # the installed timm_relgraph (cwd is tmp_path)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(nproc),
           '-m', 'timm_relgraph.trainer', '--config', str(path), '--no-progress', *extra]
    out = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def assert_close_state(ref, other, atol=1e-5):
    """Weights and momenta within ``atol``; BatchNorm running statistics (variances of several units) within
    ``atol`` relative to their largest entry (float32 keeps ~7 digits)."""
    a, b = ref['state_dict'], other['state_dict']
    assert a.keys() == b.keys()
    for key, value in a.items():
        if value.is_floating_point():
            diff = (value - b[key]).abs().max().item()
            scale = max(1.0, value.abs().max().item()) if 'running_' in key else 1.0
            assert diff <= atol * scale, f'{key}: max |difference| {diff:.3g} > {atol:g} x {scale:.3g}'
        else:
            assert torch.equal(value, b[key]), key
    for k, s in ref['optimizer']['state'].items():
        diff = (s['momentum_buffer'] - other['optimizer']['state'][k]['momentum_buffer']).abs().max().item()
        assert diff <= atol, f'momentum of parameter {k}: {diff:.3g}'


def max_difference(ref, other):
    return max((v - other['state_dict'][k]).abs().max().item()
               for k, v in ref['state_dict'].items() if v.is_floating_point())


def summary(folder):
    with open(Path(folder) / 'summary.csv') as f:
        return list(csv.DictReader(f))


def test_two_processes_train_the_weights_of_one_process_and_resume(tmp_path):
    """1 process x batch 16 == 2 processes x batch 8 (--sync-bn); the 2-process run stopped after epoch 1 and
    resumed under torchrun ends with the 2-epoch one-process weights. timm's DataLoader path."""
    one = trainer.train(trainer.make_args(tiny_cfg(tmp_path, experiment='one')), progress=False)
    one_dir = Path(one['output_dir'])

    cfg = tiny_cfg(tmp_path, experiment='ddp', batch_size=8, sync_bn=True, epochs=1)
    log = torchrun(tmp_path, cfg)
    assert '2 processes x batch 8 (global batch 16)' in log
    ddp_dir = tmp_path / 'ddp'
    assert_close_state(weights(one_dir / 'checkpoint-0.pth.tar'), weights(ddp_dir / 'last.pth.tar'))
    assert [r['epoch'] for r in summary(ddp_dir)] == ['0']  # one summary, written by rank 0 alone

    log = torchrun(tmp_path, dict(cfg, epochs=2), '--resume', str(ddp_dir / 'last.pth.tar'))
    assert 'epochs 1->2' in log
    resumed = weights(ddp_dir / 'last.pth.tar')
    assert resumed['epoch'] == 1
    assert_close_state(weights(one_dir / 'last.pth.tar'), resumed)
    rows, ref_rows = summary(ddp_dir), summary(one_dir)
    assert [r['epoch'] for r in rows] == ['0', '1']
    for row, ref in zip(rows, ref_rows):  # train loss all-reduced, evaluation sharded and combined
        assert row['eval_top1'] == ref['eval_top1'] and row['eval_top5'] == ref['eval_top5']
        assert float(row['train_loss']) == pytest.approx(float(ref['train_loss']), rel=1e-5)
        assert float(row['eval_loss']) == pytest.approx(float(ref['eval_loss']), rel=1e-5)


def test_memory_loader_with_flips_holdout_and_precise_bn_matches_one_process(tmp_path):
    """The MemoryLoader's shards draw the one-process global batch and its flips; the held-out validation, the
    precise BN statistics and the test set agree too. Without --sync-bn each rank normalises with its own half
    batch and the weights differ (which is why the equality needs --sync-bn)."""
    base = dict(memory_loader=True, hflip=0.5, holdout=32, precise_bn=32, epochs=1, train_num_samples=160)
    one = trainer.train(trainer.make_args(tiny_cfg(tmp_path, experiment='one', **base)), progress=False)
    ref = weights(Path(one['output_dir']) / 'last.pth.tar')

    torchrun(tmp_path, tiny_cfg(tmp_path, experiment='sync', batch_size=8, sync_bn=True, **base))
    assert_close_state(ref, weights(tmp_path / 'sync' / 'last.pth.tar'))
    test_ref = yaml.safe_load((Path(one['output_dir']) / 'test_metrics.json').read_text())
    test_ddp = yaml.safe_load((tmp_path / 'sync' / 'test_metrics.json').read_text())
    assert (test_ddp['top1'], test_ddp['samples']) == (test_ref['top1'], test_ref['samples'])

    torchrun(tmp_path, tiny_cfg(tmp_path, experiment='local_bn', batch_size=8, **base))
    assert max_difference(ref, weights(tmp_path / 'local_bn' / 'last.pth.tar')) > 1e-3


def test_shards_partition_the_one_process_order():
    from torch.utils.data import RandomSampler, SequentialSampler
    data = list(range(23))
    torch.manual_seed(5)
    single = list(RandomSampler(data))
    shards = []
    for rank in range(2):
        torch.manual_seed(5)  # every rank reseeds alike, as the trainer does each epoch
        shards.append(list(rdist.ShardSampler(RandomSampler(data), rank, 2, even=True)))
    assert len(shards[0]) == len(shards[1]) == 11
    assert [i for pair in zip(*shards) for i in pair] == single[:22]
    evals = [list(rdist.ShardSampler(SequentialSampler(data), r, 2, even=False)) for r in range(2)]
    assert sorted(evals[0] + evals[1]) == data  # evaluation: every sample once, no padding


def test_sharded_memory_loader_is_the_global_batch_split(tmp_path):
    from timm_relgraph.data import create_relgraph_dataset
    from timm_relgraph.memory_loader import MemoryLoader
    ds = create_relgraph_dataset('digits', split='train', num_samples=70)
    kw = dict(mean=[0.5], std=[0.5], training=True, hflip=0.5)
    torch.manual_seed(3)
    single = list(MemoryLoader(ds, 16, **kw))
    shards = []
    for rank in range(2):
        torch.manual_seed(3)
        shards.append(list(rdist.ShardedMemoryLoader(ds, 8, rank=rank, world_size=2, **kw)))
    assert len(single) == len(shards[0]) == len(shards[1]) == 4
    for (x, y), (x0, y0), (x1, y1) in zip(single, *shards):
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)


def test_lr_rule_scales_with_the_global_batch():
    args = trainer.make_args(dict(batch_size=64, lr_base=0.1, lr_base_size=256))
    trainer._resolve_lr(args, world_size=4)
    assert args.lr == pytest.approx(0.1)  # 4 x 64 = 256
