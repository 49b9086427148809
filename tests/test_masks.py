import numpy as np
import pytest
import torch

from timm_relgraph.graphs import complete_graph, ws_flex
from timm_relgraph.masks import channel_mask, mask_density, node_channel_sizes, node_of_channel


def test_partition_matches_paper_example():
    sizes = node_channel_sizes(1522, 64)
    assert sizes.sum() == 1522
    assert (sizes == 24).sum() == 50 and (sizes == 23).sum() == 14
    # floor/remainder vector permuted by RandomState(1)
    base = np.array([24] * 50 + [23] * 14)
    assert (sizes == np.random.RandomState(1).permutation(base)).all()


def test_mask_blocks_follow_graph():
    G = ws_flex(16, 4.0, 0.3, 2)
    mask = channel_mask(G, 40, 56)
    assert mask.shape == (56, 40) and mask.dtype == torch.float32
    rows, cols = node_of_channel(56, 16), node_of_channel(40, 16)
    for o in range(56):
        for i in range(40):
            u, v = rows[o], cols[i]
            assert mask[o, i] == float(u == v or G.has_edge(u, v))


def test_complete_graph_is_dense_and_density_matches():
    assert channel_mask(complete_graph(64), 128, 96).min() == 1.0
    G = ws_flex(64, 8.19, 0.128, 4)
    m = channel_mask(G, 512, 1522)
    assert abs(int(m.sum()) / (512 * 1522) - mask_density(G, 512, 1522)) < 1e-12
    # the paper's best MLP graph at width 1522: this is what makes 2,365,124 MACs
    assert int(m.sum()) + 2 * int(channel_mask(G, 1522, 1522).sum()) == 2365124 - 3072 * 512 - 1522 * 10


def test_nodes_clipped_to_channels():
    G = ws_flex(64, 16.0, 0.2, 1)
    mask = channel_mask(G, 32, 200)
    assert mask.shape == (200, 32)
    # 32 input channels -> 32 nodes, each input channel its own node; the graph is redrawn at n = 32
    assert node_channel_sizes(32, 32).tolist() == [1] * 32
    clipped = ws_flex(32, 8.0, 0.2, 1)
    expected = channel_mask(clipped, 32, 200)
    assert torch.equal(mask, expected)


def test_bad_channels():
    with pytest.raises(ValueError, match='in_channels must be >= 1'):
        channel_mask(complete_graph(4), 0, 4)
    with pytest.raises(ValueError, match='cannot split 3 channels over 4 nodes'):
        node_channel_sizes(3, 4)
