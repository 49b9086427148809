"""Property-based fuzzing of what users and files feed in: model names, graph specs and Hub config.json files.

Every generated case must either build or be refused with an error of the project's hierarchy (rooted in
ValueError / RuntimeError) whose message is bounded; no case may take over 5 s (hypothesis' deadline).
``RELGRAPH_FUZZ_EXAMPLES`` sets the number of cases per target (2,000 by default).
"""
import copy
import json
import os
import re
import shutil
from collections import Counter

import pytest
import timm
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import timm_relgraph  # noqa: F401
from timm_relgraph import hub
from timm_relgraph.catalogue import C_TOL, L_TOL, resolve
from timm_relgraph.graphs import MAX_NODES, GraphSpec
from timm_relgraph.masks import channel_mask
from timm_relgraph.models._builder import graph_for
from timm_relgraph.names import MAX_NAME_LENGTH, RelgraphNameError, parse_name
from timm_relgraph.paper import FAMILIES

EXAMPLES = int(os.environ.get('RELGRAPH_FUZZ_EXAMPLES', '2000'))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
MAX_MESSAGE = 700
COUNTS = {target: Counter() for target in ('names', 'specs', 'configs')}


_CITED = re.compile(r'relgraph_[a-z0-9_]+?(?:_c[0-9.]+_l[0-9.]+)?(?=[^a-z0-9_.]|\.?$|\.\s)')


def _refused(err: BaseException, target: str) -> None:
    assert isinstance(err, (ValueError, RuntimeError)), f'{type(err).__name__} is outside the hierarchy: {err}'
    assert len(str(err)) <= MAX_MESSAGE, f'unbounded message ({len(str(err))} characters)'
    COUNTS[target]['refused'] += 1


def _cites_a_valid_name(message: str) -> bool:
    for candidate in _CITED.findall(message):
        try:
            graph_for(parse_name(candidate))
            return True
        except (RelgraphNameError, ValueError):
            continue
    return False


# --- names -----------------------------------------------------------------------------------------------------

_number = st.one_of(
    st.from_regex(r'[0-9]{1,3}(\.[0-9]{0,4})?', fullmatch=True),
    st.sampled_from(['0.4', '1.0', '1', '0', '-0.2', 'nan', 'inf', '1e3', '0.\u096a4', '\uff10.4', '', '.5', '2.']),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_family = st.one_of(st.sampled_from(sorted(FAMILIES)), st.text(max_size=12))
_structured = st.builds(
    lambda pre, fam, c, l, tail: f'{pre}{fam}' + (f'_c{c}_l{l}' if c is not None else '') + tail,
    st.sampled_from(['relgraph_', 'relgraph_', 'relgraph_', 'Relgraph_', 'relgraph', 'hf-hub:relgraph_', '']),
    _family, st.one_of(st.none(), _number), _number,
    st.sampled_from(['', '', '', '.garbage', '\n', ' ', '.', '._c0.63_l3.62', 'x' * 200]))
NAMES = st.one_of(_structured, st.text(max_size=2 * MAX_NAME_LENGTH))


@FUZZ
@given(name=NAMES)
def test_fuzz_names(name):
    COUNTS['names']['tried'] += 1
    try:
        parsed = parse_name(name)
        spec = graph_for(parsed)
    except BaseException as err:  # noqa: B902  (the hierarchy is what is checked)
        _refused(err, 'names')
        assert _cites_a_valid_name(str(err)), f'no valid name suggested in: {err}'
        return
    COUNTS['names']['built'] += 1
    assert name.isascii() and name == name.strip()
    if parsed.c is not None and not parsed.is_complete:
        entry = resolve(parsed.c, parsed.l, FAMILIES[parsed.family])
        assert entry.spec == spec
        assert abs(entry.C - parsed.c) <= C_TOL and abs(entry.L - parsed.l) <= L_TOL
    if parsed.is_complete:
        assert spec.is_complete


# --- graph specs -----------------------------------------------------------------------------------------------

_value = st.one_of(
    st.integers(min_value=-5, max_value=300), st.integers(), st.just(2 ** 31), st.just(10 ** 400),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=0, max_value=1), st.booleans(),
    st.none(), st.text(max_size=10), st.lists(st.integers(), max_size=3))
SPECS = st.dictionaries(
    st.sampled_from(['generator', 'n', 'k', 'p', 'seed', 'name', 'C', 'L', 'bogus']),
    st.one_of(_value, st.sampled_from(['ws_flex', 'connectome', 'mcwhole', 'cat', 'er'])), max_size=6)


@FUZZ
@given(d=SPECS, channels=st.integers(min_value=1, max_value=96))
def test_fuzz_graph_specs(d, channels):
    COUNTS['specs']['tried'] += 1
    try:
        spec = GraphSpec.from_dict(d)
        G = spec.build()
        mask = channel_mask(G, channels, channels)
    except BaseException as err:  # noqa: B902
        _refused(err, 'specs')
        return
    COUNTS['specs']['built'] += 1
    assert 2 <= G.number_of_nodes() <= MAX_NODES
    assert mask.shape == (channels, channels) and bool((mask.diagonal() == 1).all())  # self-loops always on


# --- config.json of a Hub folder -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model = timm.create_model('relgraph_mlp5_c0.4_l2.0', in_chans=1, img_size=8, num_classes=3, base_width=16)
    return hub.export_model(model.eval(), tmp_path_factory.mktemp('fuzz') / 'model')


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))


_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-3, max_value=70),
              st.floats(allow_nan=False), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children,
                                                                                  max_size=3)), max_leaves=6)
EDITS = st.lists(st.tuples(st.sampled_from(['set', 'delete', 'weights', 'text']), st.integers(0, 10 ** 6),
                           _json_value), min_size=1, max_size=3)


def _tamper(src, dst, edits):
    shutil.copytree(src, dst)
    config = json.loads((src / 'config.json').read_text())
    paths = list(_paths(config))
    text = None
    for kind, pick, value in edits:
        if kind == 'weights':
            data = bytearray((dst / 'model.safetensors').read_bytes())
            data[pick % len(data)] ^= 0x5A
            (dst / 'model.safetensors').write_bytes(bytes(data))
            continue
        if kind == 'text':
            text = json.dumps(config)[: pick % 400] + str(value)[:20]
            continue
        path = paths[pick % len(paths)]
        parent = config
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent:
            if kind == 'delete':
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
    (dst / 'config.json').write_text(text if text is not None else json.dumps(config))


@FUZZ
@given(edits=EDITS)
def test_fuzz_tampered_hub_folders(folder, tmp_path_factory, edits):
    COUNTS['configs']['tried'] += 1
    dst = tmp_path_factory.mktemp('t') / 'model'
    _tamper(folder, dst, edits)
    try:
        model = timm.create_model(f'local-dir:{dst}', pretrained=True).eval()
        out = model(torch.randn(2, *model.pretrained_cfg['input_size']))
    except BaseException as err:  # noqa: B902
        _refused(err, 'configs')
        return
    finally:
        shutil.rmtree(dst.parent, ignore_errors=True)
    COUNTS['configs']['built'] += 1
    # what loads is what was exported: the same graph, weights that passed their recorded hash
    assert model.pretrained_cfg['graph']['edges_sha256'] == json.loads(
        (folder / 'config.json').read_text())['pretrained_cfg']['graph']['edges_sha256']
    if not any(kind == 'weights' for kind, _, _ in edits):  # (weights and their recorded hash both edited can
        assert torch.isfinite(out).all()                     # load: nothing else vouches for the bytes)


def test_fuzz_report():
    """Writes the tried / refused / built counts (for the record) when RELGRAPH_FUZZ_REPORT names a file."""
    report = os.environ.get('RELGRAPH_FUZZ_REPORT')
    if report and any(COUNTS.values()):
        with open(report, 'w') as f:
            json.dump({k: dict(v) for k, v in COUNTS.items()}, f, indent=2)
    for counts in COUNTS.values():
        assert counts['tried'] == counts['refused'] + counts['built']
