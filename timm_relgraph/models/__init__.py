"""Relational-graph model families, registered with timm on import."""
from ._relgraph import FAMILIES, RelgraphNameError, explain_name, graph_for, install_name_errors, model_name
from .mlp import RelGraphMLP
from .cnn import RelGraphCNN
from .resnet import RelGraphResNet
from .efficientnet import RelGraphEfficientNet

install_name_errors()
