"""Relational-graph EfficientNet-B0 on timm's EfficientNet: the complete graph is timm's efficientnet_b0, a
relational graph graph2nn's MBTalkConv network; MACs, FLOPs matching, init, graphs and the timm API.

Forward/backward checks run at 64x64; the MAC counts at 224x224 are single no-grad forwards.
"""
import math
from functools import lru_cache

import pytest
import timm
import torch
import torch.nn as nn
from timm.layers import DropPath
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual

import timm_relgraph  # noqa: F401  (registers the models)
from timm_relgraph.flops import GraphCounter, count_macs
from timm_relgraph.graphs import complete_graph
from timm_relgraph.layers import GraphMismatchError, RelationalConv2d, is_relational
from timm_relgraph.masks import node_adjacency
from timm_relgraph.models._builder import family_tags, spec_for_name
from timm_relgraph.models.efficientnet import (
    BASE_WIDTHS, EXPANSION_WIDTHS, RelGraphEfficientNet, efficientnet_b0_macs, efficientnet_b0_widths)
from timm_relgraph.paper import BASELINE_MACS, PAPER_BEST

BASELINE = BASELINE_MACS['efficientnet_b0']  # 385,824,092
BEST = 'relgraph_efficientnet_b0'
COMPLETE = 'relgraph_efficientnet_b0_c1.0_l1.0'
# graph2nn's matcher on the paper's best graph (n=16, k=5.61, p=0.026, seed 2): widths and MACs.
AUTHORS_BEST = ((30, 42, 74, 145, 203, 348, 580), 386_319_325)
# graph2nn's MBTalkConv network (fixed expansion widths) at B0's widths, counted densely.
RELATIONAL_ARCH_DENSE = 467_785_436
RELATIONAL_TAGS = [f'{arch}.{tag}' for arch, tag in family_tags('efficientnet_b0') if not arch.endswith('_c1')]
HIGH_C = RELATIONAL_TAGS[-1]  # the densest catalogue graph: matched first stage below 16 channels (n clipped)
SIZE = 64


@pytest.fixture(autouse=True, scope='module')
def _two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield
    torch.set_num_threads(threads)


@lru_cache(maxsize=None)
def _model(name, **kwargs):
    """A cached eval-mode model (tests that change a model build their own)."""
    torch.manual_seed(0)
    return _check_matched(timm.create_model(name, **kwargs).eval())


def _check_matched(model):
    """Every relational model built here: FLOPs-matched within [0, +0.5%] of the baseline."""
    assert model.baseline_macs == efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None), model.num_classes,
                                                       model.in_chans, pool_mult=model.global_pool.feat_mult())
    if model.relational and model.widths != BASE_WIDTHS:
        assert 0 <= model.macs - model.baseline_macs <= 0.005 * model.baseline_macs, (model.widths, model.macs)
    return model


def _relational(model):
    return {name: m for name, m in model.named_modules() if is_relational(m)}


def _x(batch=2, chans=3):
    return torch.randn(batch, chans, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------------------------------------------------------
# the complete graph is timm's efficientnet_b0


def test_complete_graph_is_timm_efficientnet_b0():
    ours = _model(COMPLETE)
    theirs = timm.create_model('efficientnet_b0').eval()
    assert isinstance(ours, RelGraphEfficientNet) and not _relational(ours)
    assert [(n, type(m)) for n, m in ours.named_modules()][1:] == [(n, type(m)) for n, m in theirs.named_modules()][1:]
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(ref) and all(mine[k].shape == ref[k].shape for k in ref)
    fresh = timm.create_model(COMPLETE).eval()
    fresh.load_state_dict(ref, strict=True)
    x = _x()
    with torch.no_grad():
        assert torch.equal(fresh(x), theirs(x))
    assert ours.widths == BASE_WIDTHS
    assert ours.macs == ours.baseline_macs == BASELINE
    assert count_macs(ours, (3, 224, 224)) == BASELINE == count_macs(theirs, (3, 224, 224))
    # the complete graph's pretrained cfg is timm's (its ImageNet weights)
    assert ours.pretrained_cfg['hf_hub_id'] == theirs.pretrained_cfg['hf_hub_id']


def test_baseline_complexities():
    assert efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None)) == BASELINE
    assert efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(complete_graph(16))) == BASELINE
    # graph2nn's relational architecture (fixed expansion widths) is not B0: on all weights it has more MACs
    assert efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(None), relational=True) == RELATIONAL_ARCH_DENSE
    assert efficientnet_b0_widths(PAPER_BEST['efficientnet_b0'], False) == BASE_WIDTHS
    assert efficientnet_b0_widths(spec_for_name(COMPLETE)) == BASE_WIDTHS


# ---------------------------------------------------------------------------------------------------------------
# FLOPs matching


def test_paper_best_graph_reproduces_authors_matcher():
    widths, macs = AUTHORS_BEST
    spec = PAPER_BEST['efficientnet_b0']
    assert efficientnet_b0_widths(spec) == widths
    assert efficientnet_b0_macs(widths, GraphCounter(spec.build())) == macs
    model = _model(BEST)
    assert model.widths == widths and model.macs == macs and model.relational
    assert model.graph_spec == spec


def test_catalogue_graphs_match_within_half_percent():
    assert len(RELATIONAL_TAGS) >= 20
    for name in RELATIONAL_TAGS:
        spec = spec_for_name(name)
        widths = efficientnet_b0_widths(spec)
        macs = efficientnet_b0_macs(widths, GraphCounter(spec.build()))
        assert widths != BASE_WIDTHS and 0 <= macs - BASELINE <= 0.005 * BASELINE, (name, widths, macs)
        assert efficientnet_b0_widths(spec, match_flops=False) == BASE_WIDTHS


@pytest.mark.parametrize('name', [BEST, COMPLETE, HIGH_C])
def test_analytic_macs_equal_hook_count(name):
    model = _model(name)
    assert count_macs(model, (3, 224, 224)) == model.macs
    counter = GraphCounter(model.graph_spec.build())
    assert count_macs(model, (3, SIZE, SIZE)) == efficientnet_b0_macs(model.widths, counter, img_size=SIZE)


def test_macs_follow_channels_classes_and_pool():
    model = _model(BEST, in_chans=1, num_classes=10, global_pool='catavgmax')
    assert model.widths == AUTHORS_BEST[0]  # matched in the paper's setting whatever the head and input
    counter = GraphCounter(model.graph_spec.build())
    assert model.macs == efficientnet_b0_macs(model.widths, counter, 10, 1, pool_mult=2)
    assert count_macs(model, (1, SIZE, SIZE)) == efficientnet_b0_macs(model.widths, counter, 10, 1, SIZE,
                                                                      pool_mult=2)


# ---------------------------------------------------------------------------------------------------------------
# architecture


def test_relational_blocks_follow_graph2nn():
    assert EXPANSION_WIDTHS == (16, 144, 240, 480, 672, 1152, 1920)
    model = _model(BEST)
    in_chs, names = 32, set()
    for i, stage in enumerate(model.blocks):
        for j, blk in enumerate(stage):
            out_chs = model.widths[i]
            if i == 0:  # expansion 1: no expansion conv, the depthwise conv runs on the block input
                assert isinstance(blk, DepthwiseSeparableConv)
                assert blk.conv_dw.in_channels == in_chs and blk.conv_pw.out_channels == out_chs
                names.add(f'blocks.{i}.{j}.conv_pw')
            else:  # a fixed expansion width per stage, whatever the block input
                assert isinstance(blk, InvertedResidual)
                assert blk.conv_pw.in_channels == in_chs
                assert blk.conv_pw.out_channels == blk.conv_dw.out_channels == EXPANSION_WIDTHS[i]
                assert blk.conv_pwl.in_channels == EXPANSION_WIDTHS[i] and blk.conv_pwl.out_channels == out_chs
                names |= {f'blocks.{i}.{j}.conv_pw', f'blocks.{i}.{j}.conv_pwl'}
            assert blk.se.conv_reduce.out_channels == int(in_chs * 0.25)  # floor of the block input width
            assert blk.has_skip == (in_chs == out_chs and (j > 0 or blk.conv_dw.stride == (1, 1)))
            in_chs = out_chs
    assert model.blocks[1][0].se.conv_reduce.out_channels == 7  # int(30 * 0.25); timm's rounding would give 8
    rel = _relational(model)
    assert set(rel) == names and len(rel) == 31
    assert all(m.kernel_size == (1, 1) and m.graph.shape == (16, 16) for m in rel.values())
    assert model.conv_head.out_channels == 1280 and model.conv_stem.out_channels == 32
    # unmatched relational widths keep the fixed expansion too
    plain = timm.create_model(BEST, match_flops=False, device='meta')
    assert plain.widths == BASE_WIDTHS and plain.blocks[1][0].conv_pw.out_channels == 144
    assert plain.macs == efficientnet_b0_macs(BASE_WIDTHS, GraphCounter(plain.graph_spec.build()))


def test_graph_buffers_carry_the_graph():
    a = timm.create_model(BEST, match_flops=False)
    b = timm.create_model(RELATIONAL_TAGS[1], match_flops=False)
    assert a.widths == b.widths  # identical shapes: only the graph differs
    expected = torch.tensor(node_adjacency(a.graph_spec.build()), dtype=torch.uint8)
    state = a.state_dict()
    keys = [k for k in state if k.endswith('.graph')]
    assert len(keys) == 31 and all(torch.equal(state[k], expected) for k in keys)
    timm.create_model(BEST, match_flops=False).load_state_dict(state)
    with pytest.raises(GraphMismatchError):
        b.load_state_dict(state)
    assert a.pretrained_cfg['graph']['edges_sha256'] != b.pretrained_cfg['graph']['edges_sha256']


# ---------------------------------------------------------------------------------------------------------------
# init and training


def test_paper_init():
    for name in (BEST, COMPLETE):
        model = _model(name)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert bool((m.weight == 1).all()) and bool((m.bias == 0).all())
        fc = model.get_classifier()
        assert abs(fc.weight.std().item() / 0.01 - 1) < 0.02 and bool((fc.bias == 0).all())
        dw = model.blocks[5][0].conv_dw  # groups ignored: std sqrt(2 / (k * k * out)), not timm's sqrt(2 / (k * k))
        assert abs(dw.weight.std().item() / math.sqrt(2.0 / (25 * dw.out_channels)) - 1) < 0.05
        se = model.blocks[5][0].se.conv_reduce  # bias at PyTorch's default, not zero
        bound = 1 / math.sqrt(se.in_channels)
        assert se.bias.abs().max() <= bound and se.bias.abs().max() > 0.5 * bound
    big = max(_relational(_model(BEST)).values(), key=lambda m: m.weight.numel())
    assert big.weight.shape == (big.kept_connections(), 1)  # the layer holds only the weights its graph keeps
    assert abs(big.weight.std().item() / math.sqrt(2.0 / (big.out_channels * big.density)) - 1) < 0.05


def test_drop_path_trains():
    torch.manual_seed(0)
    model = timm.create_model(BEST, drop_path_rate=0.1, drop_rate=0.2, num_classes=10)
    _check_matched(model)
    assert sum(isinstance(m, DropPath) for m in model.modules()) == 15  # every block but the first
    model.train()
    out = model(_x())
    assert out.shape == (2, 10)
    out.logsumexp(1).mean().backward()
    for m in _relational(model).values():
        g = m.weight.grad
        assert g is not None and g.shape == (m.kept_connections(), 1)  # only kept weights exist and learn
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert model.classifier.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------------------
# timm API


@pytest.mark.parametrize('pool', ['avg', 'max', 'avgmax', 'catavgmax'])
def test_head_hidden_size(pool):
    model = timm.create_model(COMPLETE, global_pool=pool, num_classes=5).eval()
    x = _x(1)
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        assert pre.shape == (1, model.head_hidden_size) and model(x).shape == (1, 5)
    assert model.head_hidden_size == 1280 * (2 if pool == 'catavgmax' else 1)


def test_intermediates_and_pruning():
    model = _model(BEST)
    info = model.feature_info
    assert [i['num_chs'] for i in info] == [30, 42, 74, 203, 580]
    assert [i['reduction'] for i in info] == [2, 4, 8, 16, 32]
    x = _x(1)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        for t, i in zip(inter, info):
            assert t.shape == (1, i['num_chs'], SIZE // i['reduction'], SIZE // i['reduction'])
        assert torch.allclose(final, model.forward_features(x), atol=1e-5)
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True, stop_early=True)
        assert [t.shape for t in last2] == [t.shape for t in inter[-2:]]
        pruned = timm.create_model(BEST).eval()
        assert pruned.prune_intermediate_layers(indices=[1, 2]) == [1, 2]
        pf, pi = pruned.forward_intermediates(x, indices=[1, 2])
        assert [t.shape[1] for t in pi] == [42, 74] and pruned.num_features == 74
        assert torch.allclose(pruned(x), pi[-1])  # ends at the last kept tap, head removed


def test_features_only():
    feat = timm.create_model(BEST, features_only=True).eval()
    assert feat.feature_info.channels() == [30, 42, 74, 203, 580]
    with torch.no_grad():
        outs = feat(_x(1))
    assert [o.shape[1] for o in outs] == feat.feature_info.channels()
    assert [SIZE // o.shape[-1] for o in outs] == [2, 4, 8, 16, 32]
    sub = timm.create_model(COMPLETE, features_only=True, out_indices=(1, 2)).eval()
    with torch.no_grad():
        assert [o.shape[1] for o in sub(_x(1))] == [24, 40]


def test_timm_interface():
    model = timm.create_model(BEST, num_classes=7).eval()
    cfg = model.pretrained_cfg
    assert cfg['first_conv'] == 'conv_stem' and cfg['classifier'] == 'classifier'
    assert model.get_submodule(cfg['classifier']) is model.get_classifier()
    assert cfg['graph']['n'] == 16 and cfg['macs'] == model.macs
    assert model.no_weight_decay() == set()
    from timm.models import group_parameters
    groups = group_parameters(model, model.group_matcher())
    assert sum(len(v) for v in groups.values()) == len(list(model.parameters()))
    x = _x(1)
    with torch.no_grad():
        ref = model(x)
        model.set_grad_checkpointing(True)
        assert torch.allclose(model(x), ref, atol=1e-5)
        model.set_grad_checkpointing(False)
        model.reset_classifier(3)
        assert model(x).shape == (1, 3)
    names = timm.list_models('relgraph_efficientnet_b0*', include_tags=True)
    assert COMPLETE in names and all(name in names for name in RELATIONAL_TAGS)


def test_options():
    for option in ('stem_size', 'output_stride', 'pad_type', 'channel_multiplier', 'block_args', 'num_features'):
        with pytest.raises(TypeError, match=option):
            timm.create_model(COMPLETE, **{option: 16})
    with pytest.raises(TypeError, match='not_an_arg'):
        timm.create_model(COMPLETE, not_an_arg=1)
    # img_size is accepted (and ignored); act/norm layers are timm's options
    model = timm.create_model(COMPLETE, img_size=SIZE, act_layer='relu', device='meta')
    assert isinstance(model.bn1.act, nn.ReLU) and model.macs == BASELINE
    meta = timm.create_model(BEST, device='meta')
    assert all(p.is_meta for p in meta.parameters()) and meta.macs == AUTHORS_BEST[1]
    assert isinstance(meta.blocks[2][0].conv_pw, RelationalConv2d)
