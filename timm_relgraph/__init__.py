"""timm-relgraph: relational-graph networks (You, Leskovec, He, Xie, ICML 2020) as timm models.

``import timm_relgraph`` registers the ``relgraph_*`` models with timm::

    import timm, timm_relgraph
    model = timm.create_model('relgraph_resnet34_c0.4_l2.0')
"""
from .graphs import GraphSpec, complete_graph, connectome, edge_hash, graph_stats, ws_flex
from .masks import channel_mask, node_channel_sizes
from .catalogue import load_catalogue, paper_grid, resolve
from .layers import GraphMismatchError, RelationalConv2d, RelationalLinear
from . import models
from .models import RelgraphNameError

__version__ = '0.1.0'
