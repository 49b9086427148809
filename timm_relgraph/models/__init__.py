"""Relational-graph model families, registered with timm on import."""
from ._relgraph import FAMILIES, RelgraphNameError, graph_for, model_name
from .mlp import RelGraphMLP
from .resnet import RelGraphResNet
