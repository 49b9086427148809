"""Relational-graph ResNets (ResNet-18/34, ResNet-34-sep, ResNet-50) on timm's ResNet: structure, MACs,
matching, timm API, and the complete graph being timm's own network.

Forward/backward tests use small explicit stage widths (the matched widths make 10^8-parameter models); the
matched widths themselves are checked analytically and on meta-device builds.
"""
import os
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import timm
import torch
import torch.nn as nn

import timm_relgraph  # noqa: F401  (registers the models)
from timm_relgraph.catalogue import C_TOL, L_TOL
from timm_relgraph.paper import BASELINE_MACS, PAPER_BEST
from timm_relgraph.flops import GraphCounter, count_macs
from timm_relgraph.graphs import GraphSpec, complete_graph, graph_stats
from timm_relgraph.layers import GraphMismatchError, RelationalConv2d, is_relational
from timm_relgraph.models._builder import family_tags
from timm_relgraph.models.resnet import (
    RESNET_FAMILIES, PaperBottleneck, RelGraphResNet, SepBlock, bottleneck_inner, resnet_macs, resnet_widths,
)

FAMILIES = list(RESNET_FAMILIES)
# Widths of the authors' matcher re-run on the paper's best graphs (spec section 7), and our MACs for them.
# graph2nn truncates each relational layer's float MAC count, so its ResNet-50 total is 4,090,273,322.
PAPER_MATCH = {
    'resnet34': ((165, 328, 659, 1318), 3_664_349_848),
    'resnet34sep': ((145, 288, 576, 1152), 553_719_512),
    'resnet50': ((412, 822, 1644, 3288), 4_090_273_336),
}
# Small widths for the forward/backward tests: stage 1 differs from the 64-channel stem (so it has a
# projection shortcut, as matched models do); every relational layer keeps >= 64 channels (no n clipping).
SMALL = {
    'resnet18': (72, 80, 96, 112),
    'resnet34': (72, 80, 96, 112),
    'resnet34sep': (72, 80, 96, 112),
    'resnet50': (264, 272, 280, 288),
}
NUM_GRAPHS = 3  # catalogue graphs per family in the per-graph tests


@pytest.fixture(autouse=True, scope='module')
def _one_thread():
    # Tiny convs: intra-op threads only add overhead (and spin badly on a shared machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _names(family, count=NUM_GRAPHS):
    tags = [f'{arch}.{tag}' for arch, tag in family_tags(family) if not arch.endswith('_c1')]
    picks = [tags[i] for i in np.linspace(0, len(tags) - 1, count).round().astype(int)]
    return picks + [f'relgraph_{family}_c1.0_l1.0']


CASES = [(family, name) for family in FAMILIES for name in _names(family)]


def _name_cl(name):
    tail = name.split('.', 1)[0].rsplit('_c', 1)[1] + '.' + name.split('.', 1)[1]
    c, l = tail.split('_l')
    return float(c), float(l)


def _small(name, **kwargs):
    family = name.split('.')[0][len('relgraph_'):].rsplit('_c', 1)[0]
    return timm.create_model(name, widths=SMALL[family], **kwargs)


def _relational_convs(model):
    return [m for m in model.modules() if isinstance(m, RelationalConv2d)]


def _stage(model, i):
    return getattr(model, f'layer{i + 1}')


@pytest.mark.parametrize('family', FAMILIES)
def test_complete_graph_macs_equal_paper_baselines(family):
    widths = RESNET_FAMILIES[family][2]
    assert resnet_macs(family, widths, GraphCounter(None)) == BASELINE_MACS[family]
    # A relational counter on the complete graph counts every pair, as the dense network.
    assert resnet_macs(family, widths, GraphCounter(complete_graph(64))) == BASELINE_MACS[family]
    assert resnet_widths(family, GraphSpec('ws_flex', 64, 64.0, 0.0, 0)) == widths


@pytest.mark.parametrize('family', sorted(PAPER_MATCH))
def test_paper_best_graph_matches_authors_widths(family):
    widths, macs = PAPER_MATCH[family]
    assert resnet_widths(family, PAPER_BEST[family]) == widths
    assert resnet_macs(family, widths, GraphCounter(PAPER_BEST[family].build())) == macs
    assert 0 <= macs - BASELINE_MACS[family] <= 0.005 * BASELINE_MACS[family]


def test_resnet34_best_graph_params_match_authors():
    model = timm.create_model('relgraph_resnet34', device='meta')
    assert model.widths == (165, 328, 659, 1318)
    # graph2nn's params_count (relational weights scaled by density, BN included): 23,047,072; baseline 21,797,672.
    # The parameters are the kept weights: their plain count is the paper's; the graph's own count agrees.
    assert sum(p.numel() for p in model.parameters()) == model.num_params() == 23_047_072
    G = PAPER_BEST['resnet34'].build()
    counter = GraphCounter(G)
    total = 0
    for m in model.modules():
        for pname, p in m.named_parameters(recurse=False):
            if pname == 'weight' and is_relational(m):
                total += counter.pairs(m.in_channels, m.out_channels) * m.kernel_size[0] * m.kernel_size[1]
            else:
                total += p.numel()
    assert total == 23_047_072


@pytest.mark.parametrize('family,name', CASES)
def test_matched_macs_within_half_percent(family, name):
    arch = name.split('.', 1)[0]
    model = timm.create_model(name, device='meta')
    base = RESNET_FAMILIES[family][2]
    assert model.baseline_macs == BASELINE_MACS[family]
    if arch.endswith('_c1'):
        assert model.widths == base and model.macs == BASELINE_MACS[family]
    else:
        assert model.widths != base
        assert 0 <= model.macs - model.baseline_macs <= 0.005 * model.baseline_macs
        assert model.widths[0] > base[0]
        # The matcher keeps the stage ratios (up to the per-stage nudges).
        for w, b in zip(model.widths, base):
            assert abs((w / model.widths[0]) / (b / base[0]) - 1) < 0.02
    plain = timm.create_model(name, device='meta', match_flops=False)
    assert plain.widths == base


@pytest.mark.parametrize('family,name', CASES)
def test_forward_backward(family, name):
    torch.manual_seed(0)
    model = _small(name, num_classes=7)
    model.train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    convs = _relational_convs(model)
    assert bool(convs) != name.split('.')[0].endswith('_c1')  # the complete graph is the plain network
    for conv in convs:
        assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
        # Masked-out weights get no gradient; kept ones do.
        assert conv.weight.shape[0] == conv.kept_connections()  # only the kept weights exist
    assert model.fc.weight.grad.abs().sum() > 0
    if not name.split('.')[0].endswith('_c1'):
        assert min(float(c.mask.mean()) for c in convs) < 1.0  # a non-complete graph really masks (grid graphs
        # reach C = 0.96, mask density above 0.9)


@pytest.mark.parametrize('family', FAMILIES)
def test_analytic_macs_equal_hook_count(family):
    name = _names(family, 1)[0]
    model = _small(name, num_classes=10)
    counter = GraphCounter(model.graph_spec.build())
    for size in (32, 40):
        analytic = resnet_macs(family, model.widths, counter, num_classes=10, img_size=size)
        assert count_macs(model, (3, size, size)) == analytic
    dense = resnet_macs(family, model.widths, GraphCounter(None), num_classes=10, img_size=32)
    assert count_macs(model, (3, 32, 32)) < dense
    assert model.macs == resnet_macs(family, model.widths, counter, num_classes=10)


def test_matched_model_hook_count_at_224():
    model = timm.create_model('relgraph_resnet18_c0.37_l2.28')
    assert count_macs(model, (3, 224, 224)) == model.macs
    assert 0 <= model.macs - BASELINE_MACS['resnet18'] <= 0.005 * BASELINE_MACS['resnet18']


@pytest.mark.parametrize('family', FAMILIES)
def test_graph_buffer_has_named_c_and_l(family):
    name = _names(family, 1)[0]
    c, l = _name_cl(name)
    model = _small(name)
    graphs = [conv.graph for conv in _relational_convs(model)]
    for g in graphs[1:]:
        assert torch.equal(g, graphs[0])  # one graph shared by every relational layer
    A = graphs[0].numpy().astype(np.int64)
    assert A.shape == (64, 64) and (np.diag(A) == 1).all() and (A == A.T).all()
    np.fill_diagonal(A, 0)
    C, L = graph_stats(nx.from_numpy_array(A))
    assert abs(C - c) <= C_TOL + 1e-9 and abs(L - l) <= L_TOL + 1e-9
    assert abs(model.pretrained_cfg['graph']['C'] - C) < 1e-5


def test_which_layers_are_relational():
    # ResNet-34: both 3x3s and the projection; ResNet-34-sep: the 1x1s and the projection (depthwise dense);
    # ResNet-50: the three bottleneck convs, projection dense. The stem and the classifier are dense everywhere.
    for family, relational in (('resnet34', {'conv1', 'conv2', 'downsample.0'}),
                               ('resnet34sep', {'conv_pw1', 'conv_pw2', 'downsample.0'}),
                               ('resnet50', {'conv1', 'conv2', 'conv3'})):
        model = _small(f'relgraph_{family}_c0.37_l2.28' if family != 'resnet50' else 'relgraph_resnet50_c0.63_l1.81')
        block0 = model.layer1[0]
        found = {n for n, m in block0.named_modules() if is_relational(m)}
        assert found == relational, family
        assert block0.downsample is not None  # 64 -> 72 (or 256+) needs a projection
        assert not is_relational(model.conv1) and isinstance(model.fc, nn.Linear)
        if family == 'resnet50':
            assert type(block0.downsample[0]) is nn.Conv2d
        if family == 'resnet34sep':
            assert block0.conv_dw1.groups == 64 and block0.conv_dw1.stride == (1, 1)
            assert model.layer2[0].conv_dw1.stride == (2, 2) and model.layer2[0].conv_dw1.groups == 72


def test_sep_block_order_has_no_bn_between_depthwise_and_pointwise():
    block = SepBlock(64, 72, 2, downsample=nn.Sequential(nn.Conv2d(64, 72, 1, stride=2, bias=False),
                                                         nn.BatchNorm2d(72)))
    names = [n for n, _ in block.named_children()]
    assert names[:7] == ['conv_dw1', 'conv_pw1', 'bn1', 'act1', 'conv_dw2', 'conv_pw2', 'bn2']
    x = torch.randn(1, 64, 8, 8)
    block.eval()
    y = block.conv_pw1(block.conv_dw1(x))  # forward order: dw (stride) -> pw with nothing in between
    ref = block.act2(block.bn2(block.conv_pw2(block.conv_dw2(block.act1(block.bn1(y))))) + block.downsample(x))
    assert torch.allclose(block(x), ref)


def test_bottleneck_inner_width_uses_bankers_rounding():
    assert bottleneck_inner(822) == 206 and bottleneck_inner(410) == 102 and bottleneck_inner(412) == 103
    block = PaperBottleneck(256, 822, 2)
    assert block.conv2.in_channels == 206 and block.conv2.stride == (2, 2) and block.conv1.stride == (1, 1)
    assert block.conv3.out_channels == 822


def test_init_follows_paper():
    model = _small('relgraph_resnet34_c0.37_l2.28')
    block = model.layer2[0]
    assert (block.bn2.weight == 0).all() and (block.bn1.weight == 1).all()
    assert (block.downsample[1].weight == 1).all()  # the shortcut BN is not zero-initialised
    assert (model.fc.bias == 0).all() and abs(model.fc.weight.std().item() - 0.01) < 0.002
    conv = block.conv2
    expected = (2.0 / (9 * conv.out_channels * conv.density)) ** 0.5
    assert abs(conv.weight.std().item() / expected - 1) < 0.05
    assert abs(model.conv1.weight.std().item() / (2.0 / (49 * 64)) ** 0.5 - 1) < 0.05
    sep = _small('relgraph_resnet34sep_c0.37_l2.28')
    dw = sep.layer3[1].conv_dw2  # groups ignored: std sqrt(2 / (9 * C))
    assert abs(dw.weight.std().item() / (2.0 / (9 * dw.out_channels)) ** 0.5 - 1) < 0.1
    no_zero = _small('relgraph_resnet34_c0.37_l2.28', zero_init_last=False)
    assert (no_zero.layer2[0].bn2.weight == 1).all()


def test_features_only_and_intermediates():
    name = 'relgraph_resnet50_c0.63_l1.81'
    widths = SMALL['resnet50']
    feats = timm.create_model(name, widths=widths, features_only=True)
    assert feats.feature_info.channels() == [64, *widths]
    assert feats.feature_info.reduction() == [2, 4, 8, 16, 32]
    outs = feats(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 32, 32), (2, 264, 16, 16), (2, 272, 8, 8),
                                              (2, 280, 4, 4), (2, 288, 2, 2)]
    some = timm.create_model(name, widths=widths, features_only=True, out_indices=(1, 3))
    assert [o.shape[1] for o in some(torch.randn(2, 3, 64, 64))] == [264, 280]

    model = timm.create_model(name, widths=widths).eval()
    x = torch.randn(2, 3, 64, 64)
    final, inter = model.forward_intermediates(x)
    assert [t.shape[1] for t in inter] == [64, *widths]
    assert torch.allclose(final, model.forward_features(x))
    last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
    assert [t.shape[1] for t in last2] == [280, 288]
    early = model.forward_intermediates(x, indices=[0, 2], stop_early=True, intermediates_only=True)
    assert [tuple(t.shape) for t in early] == [(2, 64, 32, 32), (2, 272, 8, 8)]
    kept = model.prune_intermediate_layers([1, 2])
    assert list(kept) == [1, 2] and len(model.layer3) == len(model.layer4) == 0 and model.num_features == 272
    assert model(x).shape == (2, 272, 8, 8)  # head pruned (timm: no pooling left)
    pruned_inter = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
    assert torch.allclose(pruned_inter[1], early[1], atol=1e-5)


def test_head_api():
    model = _small('relgraph_resnet18_c0.37_l2.28', num_classes=10, drop_rate=0.2).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.num_features == model.head_hidden_size == SMALL['resnet18'][-1]
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, SMALL['resnet18'][-1])
    assert model.get_classifier() is model.fc
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0, '')
    assert model(x).shape == (2, SMALL['resnet18'][-1], 1, 1)
    assert model.no_weight_decay() == set()
    assert set(model.group_matcher()) == {'stem', 'blocks'}
    cfg = model.pretrained_cfg
    assert cfg['first_conv'] == 'conv1' and cfg['classifier'] == 'fc' and cfg['input_size'] == (3, 224, 224)
    assert isinstance(model.get_submodule(cfg['first_conv']), nn.Conv2d)
    one = _small('relgraph_resnet18_c0.37_l2.28', in_chans=1, num_classes=4)
    assert one(torch.randn(2, 1, 32, 32)).shape == (2, 4)


def test_grad_checkpointing_matches():
    torch.manual_seed(0)
    model = _small('relgraph_resnet34sep_c0.37_l2.28').train()
    x = torch.randn(2, 3, 32, 32)
    ref = model.forward_features(x)
    model.set_grad_checkpointing(True)
    out = model.forward_features(x)
    assert torch.allclose(out, ref, atol=1e-5)
    out.sum().backward()


def test_torchscript_and_fx():
    model = _small('relgraph_resnet34sep_c0.37_l2.28', num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    scripted = torch.jit.script(model)
    assert torch.allclose(scripted(x), model(x), atol=1e-5)
    fx = timm.create_model('relgraph_resnet34sep_c0.37_l2.28', widths=SMALL['resnet34sep'], features_only=True,
                           feature_cls='fx', out_indices=(1, 4))
    assert [o.shape[1] for o in fx(x)] == [72, 112]


def test_meta_device_then_load():
    meta = timm.create_model('relgraph_resnet34sep_c0.37_l2.28', widths=SMALL['resnet34sep'], device='meta')
    assert meta.conv1.weight.is_meta
    assert meta(torch.zeros(2, 3, 32, 32, device='meta')).shape == (2, 1000)
    ref = _small('relgraph_resnet34sep_c0.37_l2.28').eval()
    x = torch.randn(2, 3, 32, 32)
    meta.load_state_dict(ref.state_dict(), assign=True)
    assert torch.allclose(meta.eval()(x), ref(x), atol=1e-6)
    empty = timm.create_model('relgraph_resnet34sep_c0.37_l2.28', widths=SMALL['resnet34sep'], device='meta')
    empty.to_empty(device='cpu')
    empty.load_state_dict(ref.state_dict())
    assert torch.allclose(empty.eval()(x), ref(x), atol=1e-6)
    full = timm.create_model('relgraph_resnet50', device='meta')  # matched widths, nothing allocated
    assert full.widths == PAPER_MATCH['resnet50'][0]


def test_state_dict_from_other_graph_is_refused():
    a = _small('relgraph_resnet34_c0.37_l2.28')
    b = _small('relgraph_resnet34_c0.37_l2.28')
    b.load_state_dict(a.state_dict())  # same graph: fine
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(a.eval()(x), b.eval()(x))
    other = _names('resnet34', 2)[1]
    c = _small(other)
    assert c.widths == a.widths
    with pytest.raises(GraphMismatchError):
        c.load_state_dict(a.state_dict())


def test_bad_arguments():
    with pytest.raises(TypeError):
        timm.create_model('relgraph_resnet34_c1.0_l1.0', device='meta', bogus=1)
    with pytest.raises(ValueError):
        timm.create_model('relgraph_resnet34_c1.0_l1.0', device='meta', widths=(64, 128))
    with pytest.raises(ValueError):
        RelGraphResNet(complete_graph_spec(), arch='resnet101')


def complete_graph_spec():
    return GraphSpec('ws_flex', 64, 64.0, 0.0, 0)


@pytest.mark.parametrize('family', ['resnet18', 'resnet34', 'resnet50'])
def test_complete_graph_is_timms_network(family):
    ref = timm.create_model(family).eval()
    model = timm.create_model(f'relgraph_{family}_c1.0_l1.0').eval()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    assert [type(m).__name__ for m in model.modules()][1:] == [
        type(m).__name__ if not isinstance(m, (timm.models.resnet.BasicBlock, timm.models.resnet.Bottleneck))
        else type(model.get_submodule(n)).__name__ for n, m in ref.named_modules()][1:]
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), ref(x))
    assert not _relational_convs(model)
    assert model.pretrained_cfg['hf_hub_id'] == timm.models.get_pretrained_cfg(family).hf_hub_id


def test_complete_graph_pretrained_loads_timms_hub_weights_offline(tmp_path):
    # timm's own resnet18 weights, as a networked machine would download them, from a pre-filled HF cache.
    from safetensors.torch import save_file
    from conftest import prefill_hf_cache

    torch.manual_seed(3)
    ref = timm.create_model('resnet18')
    weights = tmp_path / 'weights'
    weights.mkdir()
    save_file(ref.state_dict(), str(weights / 'model.safetensors'))
    hub_id = timm.models.get_pretrained_cfg('resnet18').hf_hub_id
    prefill_hf_cache(weights, tmp_path / 'hub', hub_id)
    x = torch.randn(2, 3, 64, 64)
    torch.save({'x': x, 'y': ref.eval()(x).detach()}, tmp_path / 'ref.pt')
    code = (
        'import torch, timm, timm_relgraph\n'
        f'ref = torch.load({str(tmp_path / "ref.pt")!r}, weights_only=True)\n'
        'model = timm.create_model("relgraph_resnet18_c1.0_l1.0", pretrained=True).eval()\n'
        'assert torch.equal(model(ref["x"]), ref["y"])\n'
        'print("ok")\n')
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HUB_CACHE=str(tmp_path / 'hub'))
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr[-2000:]


@pytest.mark.parametrize('family', FAMILIES)
def test_timm_options_reach_the_model(family):
    name = _names(family, 1)[0]
    model = _small(name, drop_path_rate=0.1, act_layer='silu', num_classes=3).train()
    blocks = [b for i in range(4) for b in _stage(model, i)]
    assert blocks[-1].drop_path is not None and blocks[-1].drop_path.drop_prob == pytest.approx(0.1)
    assert isinstance(blocks[0].act1, nn.SiLU)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    dilated = _small(name, output_stride=16).eval()
    assert dilated.forward_features(torch.randn(1, 3, 64, 64)).shape[-1] == 4
    with pytest.raises(TypeError, match='stem_type'):
        _small(name, stem_type='deep')


@pytest.mark.parametrize('pool', ['avg', 'max', 'avgmax', 'catavgmax'])
def test_head_hidden_size_with_every_pool(pool):
    model = _small('relgraph_resnet18_c0.37_l2.28', global_pool=pool).eval()
    pre = model.forward_head(model.forward_features(torch.randn(2, 3, 32, 32)), pre_logits=True)
    assert pre.shape == (2, model.head_hidden_size)


def test_state_dict_keys_of_a_relational_model_are_timms_plus_graphs():
    model = _small('relgraph_resnet34_c0.37_l2.28')
    plain = timm.create_model('resnet34', channels=SMALL['resnet34'])
    keys = set(model.state_dict())
    assert keys - set(plain.state_dict()) == {k for k in keys if k.endswith('.graph')}
    assert set(plain.state_dict()) <= keys


class _CountingBatchNorm(torch.nn.BatchNorm2d):
    """A norm layer whose constructor sets state that ``reset_parameters`` does not restore."""

    def __init__(self, num_features, **kwargs):
        super().__init__(num_features, **kwargs)
        self.register_buffer('marker', torch.full((1,), 7.0, device=self.weight.device))


class _NoResetNorm(torch.nn.Module):
    """A norm layer with a buffer and no ``reset_parameters``: the model cannot be built on meta and re-initialised."""

    def __init__(self, num_features, device=None, dtype=None):
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(num_features, device=device, dtype=dtype)
        self.register_buffer('scale', torch.full((1,), 2.0, device=device))

    def forward(self, x):
        return self.bn(x) * self.scale


@pytest.mark.parametrize('family', sorted(SMALL))
def test_thinned_convs_are_never_built_dense_and_the_rest_is_initialised_as_timm(family):
    name = f'relgraph_{family}_c0.37_l2.28'
    model = _small(name)
    for m in model.modules():
        for p in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False)):
            assert not p.is_meta and torch.isfinite(p.float()).all()
        if isinstance(m, torch.nn.BatchNorm2d):
            assert (m.running_mean == 0).all() and (m.running_var == 1).all() and int(m.num_batches_tracked) == 0
            assert (m.bias == 0).all() and set(m.weight.unique().tolist()) <= {0.0, 1.0}
    assert abs(model.conv1.weight.std().item() / (2.0 / (49 * 64)) ** 0.5 - 1) < 0.05  # timm's init_weights
    for conv in _relational_convs(model):
        assert torch.equal(conv.graph.cpu(), conv._adjacency) and torch.equal(conv.kept.cpu(), conv._kept_cpu)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    with torch.device('meta'):  # a meta model stays meta
        meta = _small(name)
    assert all(p.is_meta for p in meta.parameters())


@pytest.mark.parametrize('norm_layer, attr, value', [(_NoResetNorm, 'scale', 2.0), (_CountingBatchNorm, 'marker', 7.0)])
def test_norm_layers_of_other_code_keep_their_constructor_state(norm_layer, attr, value):
    model = _small('relgraph_resnet18_c0.37_l2.28', norm_layer=norm_layer)
    states = [getattr(m, attr) for m in model.modules() if isinstance(m, norm_layer)]
    assert states and all(float(s) == value for s in states)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_no_dense_weight_of_a_thinned_conv_is_drawn(monkeypatch):
    drawn = []
    for fn in ('kaiming_uniform_', 'kaiming_normal_', 'normal_', 'uniform_'):
        original = getattr(torch.nn.init, fn)

        def record(tensor, *args, _original=original, **kwargs):
            if not tensor.is_meta:
                drawn.append(tuple(tensor.shape))
            return _original(tensor, *args, **kwargs)
        monkeypatch.setattr(torch.nn.init, fn, record)
    model = _small('relgraph_resnet34_c0.37_l2.28')
    dense_shapes = {tuple(c.dense_shape_) for c in _relational_convs(model)}
    assert drawn and not dense_shapes & set(drawn)
