import json

import pytest
import timm
import torch

import timm_relgraph  # noqa: F401  (registers the models)
from timm_relgraph.catalogue import C_TOL, L_TOL
from timm_relgraph.flops import count_macs
from timm_relgraph.graphs import graph_from_adjacency, graph_stats
from timm_relgraph.layers import GraphMismatchError, RelationalLinear
from timm_relgraph.models import RelgraphNameError
from timm_relgraph.models._builder import family_tags

MLP_BASELINE = 2_364_416


def test_best_and_complete_mlp_match_paper_macs():
    best = timm.create_model('relgraph_mlp5')
    assert best.width == 1522 and best.macs == 2_365_124 and best.baseline_macs == MLP_BASELINE
    complete = timm.create_model('relgraph_mlp5_c1.0_l1.0')
    assert complete.width == 512 and complete.macs == MLP_BASELINE
    assert count_macs(complete, (3, 32, 32)) == MLP_BASELINE
    assert count_macs(best, (3, 32, 32)) == 2_365_124


@pytest.mark.parametrize('name', ['relgraph_mlp5_c0.4_l2.0', 'relgraph_mlp5_c0.2_l2.1', 'relgraph_mlp5_c0.7_l1.6'])
def test_flops_matched_and_named_graph(name):
    model = timm.create_model(name)
    assert 0 <= model.macs - MLP_BASELINE <= 0.005 * MLP_BASELINE
    assert count_macs(model, (3, 32, 32)) == model.macs
    no_match = timm.create_model(name, match_flops=False)
    assert no_match.width == 512 and no_match.macs < MLP_BASELINE
    # the graph stored in the weights has the name's C and L
    layer = next(m for m in model.modules() if isinstance(m, RelationalLinear))
    A = layer.graph.numpy()
    C, L = graph_stats(graph_from_adjacency(A))
    c, l = float(name.split('_c')[1].split('_l')[0]), float(name.split('_l')[1])
    assert abs(C - c) <= C_TOL and abs(L - l) <= L_TOL
    assert model.pretrained_cfg['graph']['C'] == pytest.approx(C, abs=1e-6)


def test_forward_backward_fashion_mnist_shape():
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0', in_chans=1, img_size=28, num_classes=10)
    x = torch.randn(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    out.sum().backward()
    layer = model.stages[0].fc
    # gradients reach only the weights the graph keeps
    # the parameter is only the kept weights (the graph's), and every one of them learns
    assert layer.weight.shape == (layer.kept_connections(),) and layer.weight.grad.shape == layer.weight.shape
    assert (layer.weight.grad != 0).float().mean() > 0.5


def test_graph_and_args_recorded_for_export():
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0')
    graph = model.pretrained_cfg['graph']
    assert graph['generator'] == 'ws_flex' and graph['n'] == 64 and len(graph['edges_sha256']) == 64
    json.dumps(model.pretrained_cfg)
    assert model._model_args['graph'] == {k: graph[k] for k in ('generator', 'n', 'k', 'p', 'seed')}
    again = timm.create_model('relgraph_mlp5_c0', **model._model_args)
    assert torch.equal(again.stages[0].fc.graph, model.stages[0].fc.graph)


def test_explicit_graph_and_c_l_kwargs():
    a = timm.create_model('relgraph_mlp5_c0', c=0.4, l=2.0)
    b = timm.create_model('relgraph_mlp5_c0.4_l2.0')
    assert torch.equal(a.stages[1].fc.graph, b.stages[1].fc.graph)
    c = timm.create_model('relgraph_mlp5', graph=dict(n=64, k=8.19, p=0.128, seed=4))
    assert c.width == 1522
    with pytest.raises(RelgraphNameError, match='not the requested'):
        timm.create_model('relgraph_mlp5', graph=dict(n=64, k=8.19, p=0.128, seed=4), c=0.9, l=1.1)


def test_state_dict_from_another_graph_is_refused():
    a = timm.create_model('relgraph_mlp5_c0.4_l2.0', match_flops=False)
    b = timm.create_model('relgraph_mlp5_c0.5_l1.85', match_flops=False)
    with pytest.raises(GraphMismatchError, match='relational graph mismatch'):
        b.load_state_dict(a.state_dict())
    b.load_state_dict(b.state_dict())  # its own graph loads


def test_list_models_shows_tagged_grid():
    names = timm.list_models('relgraph_mlp5*', include_tags=True)
    assert 'relgraph_mlp5_c1.0_l1.0' in names and 'relgraph_mlp5' in names
    assert len(names) >= 50
    assert timm.is_model('relgraph_resnet34_c0.4_l2.0')
    for arch, tag in family_tags('mlp5')[:3]:
        assert f'{arch}.{tag}' in names


@pytest.mark.parametrize('name, expected', [
    ('relgraph_resnet34_c0.2_l1.5', 'nearest valid names: relgraph_resnet34_c'),
    ('relgraph_resnet34_cx_l2', 'malformed C/L'),
    ('relgraph_resnet99_c0.4_l2.0', "unknown relgraph family 'resnet99'"),
    ('relgraph_mlp5_c-0.2_l2.0', 'malformed C/L'),
    ('relgraph_mlp5_cnan_l2.0', 'malformed C/L'),
    ('relgraph_mlp5_c0.nan_l2', 'malformed C/L'),
    ('relgraph_mlp5_c0.4_l0.5', 'L be >= 1'),
    ('relgraph_mlp5_c1.5_l2.0', 'C must lie in [0, 1]'),
    ('relgraph_mlp5_c0.4_l2.0\n', 'malformed C/L'),
    ('relgraph_mlp5.garbage', 'malformed'),
    ('relgraph_mlp5._c0.63_l3.62', 'malformed'),
])
def test_bad_names_explain_themselves(name, expected):
    with pytest.raises(ValueError) as err:
        timm.create_model(name)
    assert expected in str(err.value)
    assert 'relgraph_' in str(err.value).split(expected)[-1] or 'relgraph_' in str(err.value)


def test_device_meta_and_torchscript():
    meta = timm.create_model('relgraph_mlp5_c0.4_l2.0', device='meta')
    assert all(p.is_meta for p in meta.parameters())
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0').eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(scripted(x), model(x), atol=1e-6)


def test_fold_masks_keeps_outputs():
    import copy
    from timm_relgraph.layers import fold_masks, is_relational
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0').eval()
    folded = fold_masks(copy.deepcopy(model))
    assert not any(is_relational(m) for m in folded.modules())
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model(x), folded(x), atol=1e-6)


def test_meta_build_then_to_empty_and_load():
    ref = timm.create_model('relgraph_mlp5_c0.4_l2.0').eval()
    empty = timm.create_model('relgraph_mlp5_c0.4_l2.0', device='meta')
    empty.to_empty(device='cpu')
    empty.load_state_dict(ref.state_dict())  # graph buffers restored: no false mismatch
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(empty.eval()(x), ref(x))
    half = ref.half().stages[0].fc
    assert half.weight.dtype == half.dense_weight().dtype == torch.float16


@pytest.mark.parametrize('pool', ['avg', 'max', 'avgmax', 'catavgmax'])
def test_head_hidden_size_with_every_pool(pool):
    model = timm.create_model('relgraph_mlp5', global_pool=pool).eval()
    pre = model.forward_head(model.forward_features(torch.randn(2, 3, 32, 32)), pre_logits=True)
    assert pre.shape == (2, model.head_hidden_size)
    model.reset_classifier(4, 'catavgmax')
    assert model.head_hidden_size == 2 * model.num_features and model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize('indices, width', [([0], 512), ([1], 1522), (2, 1522)])
def test_prune_updates_num_features(indices, width):
    model = timm.create_model('relgraph_mlp5').eval()
    model.prune_intermediate_layers(indices)
    assert model.num_features == model.head_hidden_size == width
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, width, 1, 1)


def test_drop_rate_works_and_drop_path_is_refused_with_a_reason():
    model = timm.create_model('relgraph_mlp5', drop_rate=0.5).train()
    assert model.head_drop.p == 0.5
    x = torch.randn(4, 3, 32, 32)
    assert not torch.equal(model.forward_head(model.forward_features(x), pre_logits=True),
                           model.eval().forward_head(model.forward_features(x), pre_logits=True))
    timm.create_model('relgraph_mlp5', drop_path_rate=0.0)
    with pytest.raises(ValueError, match='no residual'):
        timm.create_model('relgraph_mlp5', drop_path_rate=0.1)


def test_complete_graph_is_a_plain_mlp():
    model = timm.create_model('relgraph_mlp5_c1.0_l1.0')
    assert not [m for m in model.modules() if isinstance(m, RelationalLinear)]
    assert model.num_params() == sum(p.numel() for p in model.parameters())
