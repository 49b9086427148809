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
