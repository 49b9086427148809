"""Relational-graph model families, registered with timm on import."""
from ._relgraph import FAMILIES, RelgraphNameError, graph_for, model_name
from .mlp import RelGraphMLP
from .cnn import RelGraphCNN
from .resnet import RelGraphResNet
from .efficientnet import RelGraphEfficientNet
