"""MemoryLoader: the same tensors as timm's loader for identity-crop, flip-only pipelines."""
import argparse

import pytest
import torch
from timm.data import create_loader

from timm_relgraph.data import create_relgraph_dataset
from timm_relgraph.memory_loader import MemoryLoader, memory_arrays, memory_loader_problems
from timm_relgraph.trainer import ConfigError, make_args, split_holdout, train

pytest.importorskip('sklearn')  # the tiny 'digits' dataset

MEAN, STD = (0.3,), (0.2,)


def _timm_loader(ds, training, hflip=0.0):
    kw = dict(input_size=(1, 8, 8), batch_size=32, is_training=training, use_prefetcher=False, mean=MEAN, std=STD,
              crop_pct=1.0, interpolation='bilinear', num_workers=0)
    if training:
        kw.update(scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=hflip, color_jitter=0.0)
    return create_loader(ds, **kw)


def test_eval_batches_equal_timms():
    ds = create_relgraph_dataset('digits', split='validation')
    ours = list(MemoryLoader(ds, 32, MEAN, STD))
    theirs = list(_timm_loader(ds, training=False))
    assert len(ours) == len(theirs) == 10  # 297 samples, last batch partial
    for (a, ya), (b, yb) in zip(ours, theirs):
        assert torch.equal(ya, yb) and torch.equal(a, b)


def test_training_samples_are_timms_flipped_or_not():
    ds = create_relgraph_dataset('digits', split='validation')
    reference = torch.cat([x for x, _ in _timm_loader(ds, training=False)])
    torch.manual_seed(0)
    loader = MemoryLoader(ds, 32, MEAN, STD, training=True, hflip=0.5)
    assert len(loader) == 297 // 32  # the last partial batch is dropped, as timm's training loader does
    images = torch.from_numpy(memory_arrays(ds)[0])
    flipped = kept = 0
    for x, y in loader:
        for xi, yi in zip(x, y):
            # find the sample by its pixels: either orientation matches a reference row exactly
            same = (reference == xi).flatten(1).all(1)
            mirrored = (reference == xi.flip(-1)).flatten(1).all(1)
            assert same.any() or mirrored.any()
            flipped += int(not same.any())
            kept += int(same.any())
    assert flipped > 50 and kept > 50  # p = 0.5 over 288 samples
    assert images.dtype == torch.uint8


def test_order_follows_torch_seed():
    ds = create_relgraph_dataset('digits', split='validation')
    loader = MemoryLoader(ds, 32, MEAN, STD, training=True, hflip=0.5)
    torch.manual_seed(3)
    a = [y for _, y in loader]
    torch.manual_seed(3)
    b = [y for _, y in loader]
    torch.manual_seed(4)
    c = [y for _, y in loader]
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and not all(torch.equal(u, v) for u, v in zip(a, c))


def test_subsets_and_holdout_read_through():
    ds = create_relgraph_dataset('digits', split='train', num_samples=400)
    train_part, held = split_holdout(ds, 100, seed=0)
    x_train, y_train = memory_arrays(train_part)
    x_held, y_held = memory_arrays(held)
    assert len(y_train) == 300 and len(y_held) == 100
    full = memory_arrays(ds)[0]
    rows = {bytes(r) for r in full.reshape(400, -1)}
    assert all(bytes(r) in rows for r in x_held.reshape(100, -1))
    assert sorted(y_train.tolist() + y_held.tolist()) == sorted(memory_arrays(ds)[1].tolist())


def test_problems_are_named():
    ds = create_relgraph_dataset('digits', split='validation')
    args = argparse.Namespace(no_aug=False, scale=[0.08, 1.0], ratio=[0.75, 1.33], color_jitter=0.4, vflip=0.0,
                              reprob=0.0, gaussian_blur_prob=None, grayscale_prob=None, aa=None, train_crop_mode=None)
    problems = memory_loader_problems(args, dict(input_size=(1, 8, 8), crop_pct=0.875), ds)
    text = '; '.join(problems)
    assert 'scale' in text and 'color_jitter' in text and 'crop_pct' in text


def test_trainer_memory_loader_runs_and_refuses_crops(tmp_path):
    # the Fashion-MNIST recipe (flip-only augmentation) on the tiny digits set
    common = dict(model_kwargs={'img_size': 8, 'base_width': 32}, dataset='digits', img_size=8, mean=list(MEAN),
                  std=list(STD), epochs=2, batch_size=64, output=str(tmp_path), memory_loader=True, checkpoint_hist=1)
    metrics = train(make_args('mlp5_fashion_mnist', experiment='mem', **common), progress=False)
    assert metrics['eval_top1'] > 50.0  # 10 classes: chance is 10 %
    with pytest.raises(ConfigError, match='scale'):
        train(make_args('mlp5_fashion_mnist', experiment='crop', scale=[0.5, 1.0], **common), progress=False)
