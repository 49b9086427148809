import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from timm_relgraph.graphs import (GraphSpec, complete_graph, connectome, edge_hash, edge_list, fast_graph_stats,
                                  graph_from_adjacency, graph_stats, ws_flex)

FIXTURE = Path(__file__).parent / 'fixtures' / 'ws_flex_edges.json'


@pytest.mark.parametrize('filename', ['graphs_n64_52.npy', 'graphs_n16_48.npy'])
def test_regenerates_authors_graphs_exactly(graph2nn_dir, filename):
    rows = np.load(graph2nn_dir / filename)
    assert len(rows) in (52, 48)
    for n, k_over_n, p, seed, C, L in rows:
        n = int(n)
        G = ws_flex(n, k_over_n * n, p, int(seed))
        c, l = graph_stats(G)
        assert abs(c - C) <= 1e-9 and abs(l - L) <= 1e-9, (n, k_over_n, p, seed, c, C, l, L)


def test_fast_stats_agree_with_networkx():
    for n, k, p, seed in [(64, 8.19, 0.128, 4), (64, 40.0, 0.7, 1), (16, 3.0, 0.3, 9), (30, 2.0, 0.0, 0)]:
        G = ws_flex(n, k, p, seed)
        A = nx.to_numpy_array(G, nodelist=range(n))
        assert np.allclose(fast_graph_stats(A), graph_stats(G), atol=1e-12)


def test_edge_list_fixture_is_reproduced():
    for case in json.loads(FIXTURE.read_text()):
        G = ws_flex(case['n'], case['k'], case['p'], case['seed'])
        assert edge_list(G) == case['edges'], case


def test_graphs_are_identical_across_processes():
    code = ('import sys; sys.path.insert(0, %r); from timm_relgraph.graphs import ws_flex, edge_hash; '
            'print(edge_hash(ws_flex(64, 12.7, 0.9, 7)))') % str(Path(__file__).resolve().parent.parent)
    hashes = {subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                             env={'PYTHONHASHSEED': str(s), 'PATH': '/usr/bin:/bin'}).stdout.strip()
              for s in (0, 1, 2)}
    assert hashes == {edge_hash(ws_flex(64, 12.7, 0.9, 7))}


def test_no_global_rng_is_touched():
    import random
    random.seed(123)
    np.random.seed(123)
    expected_py, expected_np = random.random(), np.random.rand()
    random.seed(123)
    np.random.seed(123)
    ws_flex(64, 10.0, 0.5, 3)
    from timm_relgraph.masks import channel_mask
    channel_mask(ws_flex(16, 4.0, 0.2, 1), 100, 70)
    assert random.random() == expected_py and np.random.rand() == expected_np


def test_ring_lattice_and_edge_count():
    G = ws_flex(10, 4, 0.0, 0)
    assert sorted(d for _, d in G.degree()) == [4] * 10
    assert G.number_of_edges() == 20
    # real-valued k: e = round(k * n / 2) edges, preserved by rewiring
    for k, p in [(2.5, 0.0), (2.5, 0.7), (8.19, 0.128)]:
        G = ws_flex(64, k, p, 4)
        assert G.number_of_edges() == int(round(k * 64 / 2))
        assert nx.is_connected(G)


def test_complete_graph_stats():
    G = complete_graph(64)
    assert G.number_of_edges() == 64 * 63 // 2
    assert graph_stats(G) == (1.0, 1.0)


@pytest.mark.parametrize('kwargs, message', [
    (dict(n=1, k=2, p=0.1, seed=0), 'n must be >= 2'),
    (dict(n=64.0, k=8, p=0.1, seed=0), 'n must be an integer'),
    (dict(n=64, k=1.5, p=0.1, seed=0), 'k must lie in [2, 64]'),
    (dict(n=64, k=65, p=0.1, seed=0), 'nearest valid: 64'),
    (dict(n=64, k=8, p=-0.1, seed=0), 'p must lie in [0, 1]'),
    (dict(n=64, k=8, p=1.5, seed=0), 'p must lie in [0, 1]'),
    (dict(n=64, k=8, p=0.1, seed=1.5), 'seed must be an integer'),
    (dict(n=64, k=8, p=0.1, seed=3.0), 'did you mean 3'),
    (dict(n=64, k=8, p=0.1, seed='1'), 'seed must be an integer'),
    (dict(n=64, k=float('nan'), p=0.1, seed=0), 'k must be a number, got NaN'),
    (dict(n=64, k=8, p=float('nan'), seed=0), 'p must be a number, got NaN'),
    (dict(n=True, k=8, p=0.1, seed=0), 'n must be an integer'),
])
def test_ws_flex_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        ws_flex(**kwargs)
    assert message in str(err.value)


def test_graph_spec_roundtrip_and_validation():
    spec = GraphSpec('ws_flex', 64, 8.19, 0.128, 4)
    assert GraphSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    info = spec.describe()
    assert info['num_edges'] == 262 and len(info['edges_sha256']) == 64
    assert abs(info['C'] - 0.448461) < 1e-6 and abs(info['L'] - 2.479167) < 1e-6
    with pytest.raises(ValueError, match='unknown graph keys'):
        GraphSpec.from_dict({'n': 64, 'kk': 3})
    with pytest.raises(ValueError, match='unknown graph generator'):
        GraphSpec('barabasi')
    with pytest.raises(ValueError, match='unknown connectome'):
        GraphSpec('connectome', name='mouse')


def test_edge_hash_tracks_edges():
    a, b = ws_flex(64, 8.19, 0.128, 4), ws_flex(64, 8.19, 0.128, 5)
    assert edge_hash(a) == edge_hash(ws_flex(64, 8.19, 0.128, 4))
    assert edge_hash(a) != edge_hash(b)


@pytest.mark.parametrize('name, nodes, C, L', [('mcwhole', 71, 0.503, 2.245), ('mcvisual', 30, 0.634, 1.589),
                                               ('cat', 52, 0.666, 1.633)])
def test_connectomes_match_paper(graph2nn_dir, name, nodes, C, L):
    G = connectome(name, root=graph2nn_dir)
    assert G.number_of_nodes() == nodes
    c, l = graph_stats(G)
    assert abs(c - C) < 5e-4 and abs(l - L) < 5e-4, (c, l)


@pytest.mark.parametrize('name, density', [('mcwhole', 0.162), ('mcvisual', 0.376), ('cat', 0.322)])
def test_connectome_masks_are_the_directed_adjacency(graph2nn_dir, name, density):
    """As graph2nn trains them (mcwholeraw, ...): block (i, j) kept iff row i, column j of the file is 1, or i == j."""
    import torch
    from timm_relgraph.layers import RelationalLinear
    from timm_relgraph.masks import channel_mask
    rows = (graph2nn_dir / f'{name}.txt').read_text().split()
    A = np.array([[int(ch) for ch in row] for row in rows], dtype=np.float32)
    expected = np.maximum(A, np.eye(len(A), dtype=np.float32))
    assert not np.array_equal(A, A.T)  # the files are directed
    G = connectome(name, root=graph2nn_dir)
    assert G.is_directed()
    n = len(A)
    assert np.array_equal(channel_mask(G, n, n).numpy(), expected)
    assert round(float(expected.mean()), 3) == density
    # on a layer with 3 channels per node, block (i, j) of the dense weight is zero exactly where A + I is
    layer = RelationalLinear(3 * n, 3 * n, graph=G)
    dense = layer.dense_weight().detach().reshape(n, 3, n, 3).abs().sum((1, 3)).numpy()
    sizes = layer.mask.reshape(n, 3, n, 3)[:, 0, :, 0].numpy()
    assert np.array_equal(sizes, expected) and np.array_equal(dense > 0, expected > 0)
    # C and L stay those of the symmetrised graph (the paper's numbers)
    assert graph_stats(G) == graph_stats(connectome(name, root=graph2nn_dir, directed=False))
    assert edge_hash(G) != edge_hash(connectome(name, root=graph2nn_dir, directed=False))


def test_connectome_errors(tmp_path):
    with pytest.raises(ValueError, match='unknown connectome'):
        connectome('mouse')
    with pytest.raises(FileNotFoundError, match='cat.txt'):
        connectome('cat', root=tmp_path / 'nowhere')
    (tmp_path / 'bad.txt').write_text('0102\n')
    from timm_relgraph.graphs import load_adjacency_file
    with pytest.raises(ValueError, match='0/1'):
        load_adjacency_file(tmp_path / 'bad.txt')
    with pytest.raises(ValueError, match='square'):
        graph_from_adjacency(np.zeros((2, 3)))
