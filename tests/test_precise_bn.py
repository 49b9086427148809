"""Precise BatchNorm statistics (graph2nn's BN.USE_PRECISE_STATS) and the held-out selection split."""
import torch

from timm_relgraph.data import create_relgraph_dataset
from timm_relgraph.trainer import recompute_bn_stats, split_holdout


class _Batches(list):
    batch_size = 8


def test_precise_bn_is_the_mean_of_batch_statistics():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5), torch.nn.BatchNorm1d(5))
    batches = _Batches((torch.randn(8, 3, 8, 8) * (i + 1), None) for i in range(6))
    model.eval()
    used = recompute_bn_stats(model, batches, num_samples=32, device='cpu')  # 32 // 8 = 4 batches
    assert used == 4 and not model.training
    # expected: per-batch mean and unbiased variance of each BN input, combined as graph2nn does
    conv = model[0]
    feats = [conv(x) for x, _ in batches[:4]]
    means = torch.stack([f.mean((0, 2, 3)) for f in feats])
    variances = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats])
    mean = means.mean(0)
    var = (variances + means ** 2).mean(0) - mean ** 2
    bn = model[1]
    assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, atol=1e-4)
    assert bn.momentum == 0.1  # restored
    # a different sample count changes the statistics; 0 leaves them alone
    before = bn.running_mean.clone()
    assert recompute_bn_stats(model, batches, num_samples=0, device='cpu') == 0
    assert torch.equal(bn.running_mean, before)
    recompute_bn_stats(model, batches, num_samples=48, device='cpu')
    assert not torch.allclose(bn.running_mean, before)


def test_holdout_is_fixed_and_disjoint():
    ds = create_relgraph_dataset('digits', split='train')
    a_train, a_held = split_holdout(ds, 200, seed=0)
    b_train, b_held = split_holdout(ds, 200, seed=0)
    c_train, c_held = split_holdout(ds, 200, seed=1)
    assert a_held.indices == b_held.indices and a_held.indices != c_held.indices
    assert not set(a_held.indices) & set(a_train.indices)
    assert len(a_held) + len(a_train) == len(ds)
    a_held.transform = 'eval'
    a_train.transform = 'train'
    assert a_held.transform == 'eval' and a_train.transform == 'train'  # separate views
