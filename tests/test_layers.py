"""relationalize(): any timm model's Linear / Conv2d layers as relational layers (the inverse of fold_masks)."""
import copy

import pytest
import timm
import torch
import torch.nn as nn

from timm_relgraph.graphs import complete_graph, ws_flex
from timm_relgraph.layers import RelationalConv2d, RelationalLinear, fold_masks, is_relational, relationalize


def test_relationalize_keeps_weights_on_kept_blocks_and_folds_back():
    torch.manual_seed(0)
    model = timm.create_model('resnet18', num_classes=10).eval()
    before = copy.deepcopy(model)
    G = ws_flex(16, 4, 0.2, 1)
    relationalize(model, G, ['layer*.*.conv1', 'layer*.*.conv2', 'fc'])
    convs = [m for m in model.modules() if is_relational(m)]
    assert len(convs) == 17 and isinstance(model.fc, RelationalLinear)
    conv = model.layer2[0].conv1
    assert isinstance(conv, RelationalConv2d) and conv.stride == (2, 2) and conv.padding == (1, 1)
    ref = before.layer2[0].conv1.weight
    assert torch.equal(conv.dense_weight(), ref * conv.mask)
    assert 0 < conv.density < 1
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    folded = fold_masks(copy.deepcopy(model))
    assert not any(is_relational(m) for m in folded.modules())
    assert torch.allclose(folded(x), out, atol=1e-6)
    assert set(folded.state_dict()) == set(before.state_dict())


def test_relationalize_paper_init_and_predicate():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64))
    relationalize(model, ws_flex(16, 4, 0.0, 0), lambda name, m: isinstance(m, nn.Linear), init='paper')
    assert all(isinstance(model[i], RelationalLinear) for i in (0, 2))
    assert abs(model[0].weight.std().item() - 0.01) < 0.002 and model[0].weight.numel() == model[0].kept_connections()


def test_relationalize_complete_graph_leaves_the_plain_layers():
    model = timm.create_model('resnet18')
    relationalize(model, complete_graph(16), 'layer*.*.conv1')
    assert not any(is_relational(m) for m in model.modules())


def test_relationalize_refuses_what_it_cannot_convert():
    model = timm.create_model('resnet18')
    with pytest.raises(ValueError, match='no module'):
        relationalize(model, ws_flex(16, 4, 0.2, 1), 'layer9.*')
    depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8))
    with pytest.raises(ValueError, match='groups=8'):
        relationalize(depthwise, ws_flex(8, 4, 0.2, 1), '0')
    with pytest.raises(ValueError, match='BatchNorm2d'):
        relationalize(model, ws_flex(16, 4, 0.2, 1), 'bn1')
    with pytest.raises(ValueError, match="init must be"):
        relationalize(model, ws_flex(16, 4, 0.2, 1), 'fc', init='random')


# --- packed weights train exactly as the earlier dense-masked layers ------------------------------------------

class _MaskedReference(nn.Module):
    """The earlier execution: a dense weight multiplied by the graph's mask in every forward."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer
        self.weight = nn.Parameter(layer.dense_weight().detach().clone())
        self.register_buffer('mask', layer.mask.clone())
        self.bias = None if layer.bias is None else nn.Parameter(layer.bias.detach().clone())

    def forward(self, x):
        w = self.weight * self.mask
        if isinstance(self.layer, RelationalLinear):
            return nn.functional.linear(x, w, self.bias)
        return self.layer._conv_forward(x, w, self.bias)


def _to_reference(model):
    for name, child in list(model.named_children()):
        if is_relational(child):
            setattr(model, name, _MaskedReference(child))
        else:
            _to_reference(child)
    return model


def _kept_of_reference(ref_layer):
    packed = ref_layer.weight.detach().reshape(ref_layer.weight.shape[0] * ref_layer.weight.shape[1], -1)
    return packed[ref_layer.layer.kept].reshape(ref_layer.layer.weight.shape)


OPTIMIZERS = {
    'sgd_nesterov': lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
    'adamw': lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05),
}


def _train_both(packed, reference, x, make_opt, steps=5):
    opt_p, opt_r = make_opt(packed.parameters()), make_opt(reference.parameters())
    for _ in range(steps):
        for model, opt in ((packed, opt_p), (reference, opt_r)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    return packed(x), reference(x)


@pytest.mark.parametrize('opt', sorted(OPTIMIZERS))
@pytest.mark.parametrize('kind', ['linear', 'conv', 'pointwise'])
def test_packed_layer_trains_as_dense_masking(kind, opt):
    torch.manual_seed(0)
    G = ws_flex(16, 4, 0.2, 1)
    if kind == 'linear':
        layer, x = RelationalLinear(48, 40, G, bias=True), torch.randn(6, 48)
    elif kind == 'pointwise':
        layer, x = RelationalConv2d(48, 40, 1, G, bias=True), torch.randn(2, 48, 6, 6)
    else:
        layer, x = RelationalConv2d(48, 40, 3, G, padding=1, bias=True), torch.randn(2, 48, 6, 6)
    reference = _MaskedReference(copy.deepcopy(layer))
    out_p, out_r = _train_both(layer, reference, x, OPTIMIZERS[opt])
    assert torch.allclose(out_p, out_r, atol=1e-5)
    assert torch.allclose(layer.weight, _kept_of_reference(reference), atol=1e-5)
    assert torch.allclose(layer.bias, reference.bias, atol=1e-5)


def test_packed_model_trains_as_dense_masking():
    torch.manual_seed(0)
    model = timm.create_model('relgraph_resnet18_c0.37_l2.28', widths=(72, 80, 96, 112), num_classes=5)
    reference = _to_reference(copy.deepcopy(model))
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in reference.parameters())
    x = torch.randn(4, 3, 32, 32)
    out_p, out_r = _train_both(model.train(), reference.train(), x, OPTIMIZERS['sgd_nesterov'])
    assert torch.allclose(out_p, out_r, atol=1e-5)
    refs = [m for m in reference.modules() if isinstance(m, _MaskedReference)]
    mine = [m for m in model.modules() if is_relational(m)]
    assert len(refs) == len(mine) > 0
    for layer, ref in zip(mine, refs):
        assert torch.allclose(layer.weight, _kept_of_reference(ref), atol=1e-5)


def test_init_distribution_matches_the_paper():
    torch.manual_seed(0)
    conv = RelationalConv2d(256, 256, 3, ws_flex(64, 8, 0.1, 2), padding=1)
    expected = (2.0 / (9 * 256 * conv.density)) ** 0.5
    assert abs(conv.weight.std().item() / expected - 1) < 0.02 and abs(conv.weight.mean().item()) < 1e-3


def test_inference_caches_the_dense_weight_until_it_changes():
    torch.manual_seed(0)
    layer = RelationalConv2d(32, 32, 3, ws_flex(16, 4, 0.2, 1), padding=1).eval()
    x = torch.randn(1, 32, 5, 5)
    with torch.no_grad():
        first = layer(x)
        cache = layer._dense_cache
        layer(x)
        assert layer._dense_cache is cache  # built once, reused
        layer.weight.mul_(2)  # an in-place change (an optimizer step, a load) refreshes it
        assert torch.allclose(layer(x), 2 * first, atol=1e-5) and layer._dense_cache is not cache
    layer.load_state_dict({'weight': layer.weight.detach() / 2, 'graph': layer.graph})
    with torch.no_grad():
        assert torch.allclose(layer(x), first, atol=1e-5)
        layer.double()  # moving the module drops it too
        assert layer._dense_cache is None
        assert layer(x.double()).dtype == torch.float64 and layer._dense_cache[1].dtype == torch.float64
    out = layer(x.double())  # autograd on: gradients reach the packed weight
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == layer.weight.shape


def test_changing_weights_between_forward_and_backward_is_reported_as_for_dense_layers():
    layer = RelationalLinear(32, 32, ws_flex(16, 4, 0.2, 1)).train()
    out = layer(torch.randn(4, 32))
    with torch.no_grad():
        layer.weight.add_(1.0)
    with pytest.raises(RuntimeError, match='inplace'):
        out.sum().backward()


def test_two_forwards_then_one_backward_give_the_summed_gradient():
    torch.manual_seed(0)
    layer = RelationalConv2d(16, 16, 3, ws_flex(16, 4, 0.2, 1), padding=1).train()
    a, b = torch.randn(2, 16, 4, 4), torch.randn(2, 16, 4, 4)
    (layer(a).sum() + layer(b).square().sum()).backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    w = layer.dense_weight()
    (layer._conv_forward(a, w, None).sum() + layer._conv_forward(b, w, None).square().sum()).backward()
    assert torch.allclose(grad, layer.weight.grad, atol=1e-5)


def test_dense_masked_state_dict_of_the_earlier_format_is_packed_on_load():
    torch.manual_seed(0)
    layer = RelationalConv2d(32, 48, 3, ws_flex(16, 4, 0.2, 1), padding=1)
    earlier = {'weight': layer.dense_weight().detach() + 0.0, 'graph': layer.graph.clone()}
    again = RelationalConv2d(32, 48, 3, ws_flex(16, 4, 0.2, 1), padding=1)
    again.load_state_dict(earlier)
    assert torch.equal(again.weight, layer.weight)
    with pytest.raises(Exception):
        RelationalConv2d(32, 48, 3, ws_flex(16, 4, 0.5, 2), padding=1).load_state_dict(earlier)


@pytest.mark.parametrize('kind', ['linear', 'pointwise', 'pointwise_stride2'])
def test_sparse_execution_matches_dense(kind):
    torch.manual_seed(0)
    G = ws_flex(16, 4, 0.2, 1)
    if kind == 'linear':
        layer, x = RelationalLinear(64, 48, G, bias=True, execution='sparse'), torch.randn(5, 64)
    else:
        stride = 2 if kind.endswith('2') else 1
        layer = RelationalConv2d(64, 48, 1, G, stride=stride, bias=True, execution='sparse')
        x = torch.randn(2, 64, 7, 7)
    layer.eval()
    dense = layer(x)  # autograd on: the dense path
    with torch.no_grad():
        assert torch.allclose(layer(x), dense, atol=1e-5)


def test_auto_execution_uses_csr_only_where_it_was_measured_faster():
    G = ws_flex(16, 4, 0.2, 1)
    linear = RelationalLinear(64, 48, G).eval()
    conv = RelationalConv2d(64, 48, 1, G).eval()
    assert linear.execution == conv.execution == 'auto'
    with torch.no_grad():
        linear(torch.randn(3, 64))
        conv(torch.randn(1, 64, 4, 4))
    assert linear._csr_cache is not None and conv._csr_cache is None


def test_training_after_inference_mode_works():
    layer = RelationalConv2d(16, 16, 3, ws_flex(16, 4, 0.2, 1), padding=1)
    x = torch.randn(1, 16, 4, 4)
    layer.eval()
    with torch.inference_mode():
        ref = layer(x)
    layer.train()
    layer(x).sum().backward()  # the buffer built in inference mode is not reused by autograd
    layer.eval()
    with torch.no_grad():
        assert torch.allclose(layer(x), ref)
