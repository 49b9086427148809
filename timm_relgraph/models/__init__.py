"""Relational-graph model families, registered with timm on import."""
from ..names import RelgraphNameError
from ..paper import FAMILIES
from ._builder import RelGraphMixin, explain_name, graph_for, spec_for_name
from ._patch import install_name_errors
from .mlp import RelGraphMLP
from .cnn import RelGraphCNN
from .resnet import RelGraphResNet
from .efficientnet import RelGraphEfficientNet

install_name_errors()
