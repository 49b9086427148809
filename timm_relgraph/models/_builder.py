"""Building a relational-graph model through timm: name or kwargs -> graph -> model with its pretrained cfg.

Every family registers ``relgraph_<family>`` (the paper's best graph) and the entrypoints
``relgraph_<family>_c0`` / ``_c1`` that receive the rest of a C-L name as timm's pretrained tag (see
``timm_relgraph.names``). The graph is resolved from the C-L catalogue, and the resolved graph (generator, n,
k, p, seed, measured C and L, edge hash) is stored in ``model.pretrained_cfg['graph']`` and in the model args
timm records for ``save_for_hf``.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import networkx as nx
import torch
import torch.nn as nn

from ..catalogue import C_TOL, L_TOL, nearest, paper_grid, resolve
from ..flops import count_params
from ..graphs import GraphSpec, graph_stats
from ..names import (PREFIX, RelgraphName, RelgraphNameError, format_name, join_tag, parse_name, quote,
                     split_tag)
from ..paper import FAMILIES, PAPER_ID, PAPER_NAME, best_graph

__all__ = ['RelGraphMixin', 'WeightsIntegrityError', 'verify_recorded_weights', 'create_relgraph', 'graph_for', 'spec_for_name', 'base_cfg', 'family_tags',
           'suggest_names', 'explain_name', 'init_paper_head', 'PUBLISHED', 'TIMM_EQUIVALENTS']

# Weights published on the Hugging Face Hub: (family, tag) -> hub id.
PUBLISHED: Dict[Tuple[str, str], str] = {}

# The complete-graph network of these families *is* a timm architecture, key for key: its names get that
# model's default pretrained cfg (timm's own ImageNet weights on the Hub).
TIMM_EQUIVALENTS: Dict[str, str] = {
    'resnet18': 'resnet18', 'resnet34': 'resnet34', 'resnet50': 'resnet50', 'efficientnet_b0': 'efficientnet_b0',
}


def suggest_names(family: str, c: Optional[float] = None, l: Optional[float] = None, count: int = 3) -> List[str]:
    """Valid names near a request: by C-L distance when c and l are numbers, else the family's best and grid."""
    if c is not None and l is not None and all(isinstance(v, (int, float)) and math.isfinite(v) for v in (c, l)):
        names = [format_name(family, e.C, e.L) for e in nearest(c, l, FAMILIES[family], count=4 * count)]
        return list(dict.fromkeys(names))[:count]
    return [f'{PREFIX}{family}', f'{PREFIX}{family}_c1.0_l1.0'] + [
        join_tag(arch, tag) for arch, tag in family_tags(family)[:max(count - 2, 0)]]


def explain_name(name: str) -> str:
    """Why ``name`` cannot be built, with the nearest valid names."""
    try:
        parsed = parse_name(str(name).split(':', 1)[-1])
    except RelgraphNameError as err:
        return str(err)
    try:
        graph_for(parsed)
    except RelgraphNameError as err:
        return str(err)
    return f'{quote(name)} is a valid name'


@lru_cache(maxsize=None)
def family_tags(family: str) -> List[Tuple[str, str]]:
    """``(entrypoint, tag)`` pairs listed by ``timm.list_models('relgraph*', include_tags=True)``: the
    family's best graph, its coarse C-L grid and the complete graph."""
    n = FAMILIES[family]
    names = []
    best_c, best_l = graph_stats(best_graph(family).build())
    try:
        e = resolve(round(best_c, 2), round(best_l, 2), n)
        names.append(format_name(family, e.C, e.L))
    except ValueError:
        pass
    names += [format_name(family, e.C, e.L) for e in paper_grid(n)]
    names.append(format_name(family, 1.0, 1.0))
    return [split_tag(name) for name in dict.fromkeys(names)]


def _as_spec(graph: Union[GraphSpec, Dict[str, Any]]) -> GraphSpec:
    if isinstance(graph, GraphSpec):
        return graph
    if isinstance(graph, dict):
        return GraphSpec.from_dict(graph)
    raise RelgraphNameError(f'graph must be a dict(n=, k=, p=, seed=) or a GraphSpec, got {type(graph).__name__}')


def graph_for(name: RelgraphName, graph=None, c=None, l=None) -> GraphSpec:
    """The graph a parsed name and kwargs ask for. Precedence: ``graph=`` > ``c=, l=`` > the name."""
    family = name.family
    n = FAMILIES[family]
    if graph is not None:
        spec = _as_spec(graph)
        if c is not None and l is not None:
            C, L = graph_stats(spec.build())
            if abs(C - float(c)) > C_TOL or abs(L - float(l)) > L_TOL:
                raise RelgraphNameError(f'graph={spec.to_dict()} has C={C:.3f}, L={L:.3f}, not the requested '
                                        f'c={c}, l={l}; pass one of them')
        return spec
    if c is None and l is None:
        if name.is_best:
            return best_graph(family)
        c, l = name.c, name.l
    elif c is None or l is None:
        raise RelgraphNameError(f'give both c= and l= (got c={c}, l={l})')
    try:
        c, l = float(c), float(l)
    except (TypeError, ValueError):
        raise RelgraphNameError(f'c and l must be numbers, got c={c!r}, l={l!r}') from None
    if not (math.isfinite(c) and math.isfinite(l)) or not 0.0 <= c <= 1.0 or l < 1:
        raise RelgraphNameError(
            f'C must lie in [0, 1] and L be >= 1, got C={c}, L={l}; valid names include '
            f'{", ".join(suggest_names(family))}')
    try:
        return resolve(c, l, n).spec
    except ValueError as err:
        raise RelgraphNameError(
            f'{PREFIX}{family}: {err}; nearest valid names: {", ".join(suggest_names(family, c, l))}') from None


def spec_for_name(name: str) -> GraphSpec:
    """The graph of a model name such as ``relgraph_resnet34_c0.4_l2.0`` or ``relgraph_mlp5``."""
    return graph_for(parse_name(name))


def base_cfg(**kwargs) -> Dict[str, Any]:
    cfg = {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225),
        'license': 'apache-2.0', 'paper_ids': PAPER_ID, 'paper_name': PAPER_NAME,
    }
    cfg.update(kwargs)
    return cfg


def _timm_cfg(family: str) -> Dict[str, Any]:
    """timm's default pretrained cfg of the architecture the complete graph equals (its ImageNet weights)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(TIMM_EQUIVALENTS[family]).to_dict()
    cfg.update(paper_ids=PAPER_ID, paper_name=PAPER_NAME)
    return cfg


def _tag_of(pretrained_cfg) -> Tuple[Optional[str], Dict[str, Any]]:
    """Split what timm passes as ``pretrained_cfg`` into (tag, extra cfg fields)."""
    if pretrained_cfg is None:
        return None, {}
    if isinstance(pretrained_cfg, str):
        return pretrained_cfg, {}
    if hasattr(pretrained_cfg, 'to_dict'):
        pretrained_cfg = pretrained_cfg.to_dict()
    cfg = dict(pretrained_cfg)
    return cfg.get('tag'), cfg


def _default_tag(entrypoint: str) -> Optional[str]:
    """The tag a bare ``relgraph_<family>_c<int>`` entrypoint stands for (the first listed one)."""
    family = entrypoint[len(PREFIX):].rsplit('_c', 1)[0]
    return next((tag for arch, tag in family_tags(family) if arch == entrypoint), None)


# Bounds on the size arguments a name, a config.json or a caller may pass: far above any real use, low enough
# that a typo or a tampered config fails at once instead of allocating gigabytes.
SIZE_LIMITS = {'num_classes': (0, 1_000_000), 'in_chans': (1, 4096), 'img_size': (1, 8192),
               'base_width': (1, 65536), 'width': (1, 65536)}
MAX_WIDTH = 65536


def _check_sizes(kwargs: Dict[str, Any]) -> None:
    def check(key, value, low, high):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RelgraphNameError(f'{key} must be an integer in [{low}, {high}], got {quote(repr(value))}')

    for key, (low, high) in SIZE_LIMITS.items():
        value = kwargs.get(key)
        if value is None:
            continue
        if key == 'img_size' and isinstance(value, (tuple, list)) and len(value) == 2:
            for v in value:
                check(key, v, low, high)
        else:
            check(key, value, low, high)
    widths = kwargs.get('widths')
    if widths is not None:
        if not isinstance(widths, (tuple, list)) or not widths:
            raise RelgraphNameError(f'widths must be a list of stage widths, got {quote(repr(widths))}')
        for w in widths:
            check('widths', w, 1, MAX_WIDTH)


def create_relgraph(model_cls: Callable[..., nn.Module], family: str, variant: str, pretrained: bool = False,
                    default_cfg: Optional[Dict[str, Any]] = None, **kwargs) -> nn.Module:
    """Build a relational-graph model through timm's ``build_model_with_cfg``.

    ``variant`` is the entrypoint (``relgraph_<family>`` or ``relgraph_<family>_c<int>``); the tag and the
    ``graph``, ``c``, ``l`` kwargs choose the graph.
    """
    from timm.models import build_model_with_cfg
    from timm.models._pretrained import PretrainedCfg

    from ..layers import GraphMismatchError

    _check_sizes(kwargs)
    tag, given_cfg = _tag_of(kwargs.pop('pretrained_cfg', None))
    graph, c, l = kwargs.pop('graph', None), kwargs.pop('c', None), kwargs.pop('l', None)
    if tag is None and variant != f'{PREFIX}{family}':
        tag = _default_tag(variant)
    parsed = parse_name(join_tag(variant, tag))
    if parsed.entrypoint != variant:
        raise RelgraphNameError(f'{quote(join_tag(variant, tag))} is not a name of {variant}')
    spec = graph_for(parsed, graph=graph, c=c, l=l)

    if spec.is_complete and family in TIMM_EQUIVALENTS:
        cfg = _timm_cfg(family)
    else:
        cfg = dict(default_cfg or base_cfg())
    known = set(PretrainedCfg.__dataclass_fields__)
    cfg.update({key: value for key, value in given_cfg.items() if key in known})
    cfg.update(architecture=variant, tag=tag or None)
    hub_id = PUBLISHED.get((family, tag or ''))
    if hub_id and not given_cfg.get('hf_hub_id'):
        cfg['hf_hub_id'] = hub_id
    if pretrained:
        verify_recorded_weights({**cfg, 'weights_sha256': given_cfg.get('weights_sha256')})
    from safetensors import SafetensorError

    try:
        model = build_model_with_cfg(model_cls, variant, pretrained, pretrained_cfg=cfg, graph=spec, **kwargs)
    except SafetensorError as err:
        raise WeightsIntegrityError(f'the pretrained weights file is not valid safetensors: {str(err)[:200]}') from err
    except RuntimeError as err:
        if not pretrained or isinstance(err, GraphMismatchError) or 'state_dict' not in str(err):
            raise
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise WeightsIntegrityError(
            f'the pretrained weights do not fit the model their config describes ({len(lines) - 1} problems; first: '
            f'{lines[1][:200] if len(lines) > 1 else lines[0][:200]})') from err
    info = getattr(model, 'graph_info', None) or spec.describe()  # a features_only wrapper has none
    recorded = given_cfg.get('graph')
    if isinstance(recorded, dict) and recorded.get('edges_sha256') not in (None, info['edges_sha256']):
        raise GraphMismatchError(
            f'the config describes a graph with edges_sha256={str(recorded["edges_sha256"])[:16]}..., but its model '
            f'args {spec.to_dict()} build edges_sha256={info["edges_sha256"][:16]}...; the config was edited or '
            f'corrupted')
    model.pretrained_cfg['graph'] = dict(info)
    model.pretrained_cfg['num_params'] = count_params(model)
    if getattr(model, 'macs', None) is not None:
        model.pretrained_cfg['macs'] = model.macs
    model._model_args = {'graph': spec.to_dict()}
    return model


class WeightsIntegrityError(RuntimeError):
    """A weights file whose sha256 differs from the one recorded in its config.json (corrupted or edited)."""


def _weights_file(cfg: Dict[str, Any]):
    """The weights file ``pretrained=True`` would load for a config from a Hub folder or repo, or None."""
    from pathlib import Path

    if cfg.get('file'):
        path = Path(cfg['file'])
        return path / 'model.safetensors' if path.is_dir() else path
    if cfg.get('hf_hub_id'):
        from huggingface_hub import hf_hub_download
        return Path(hf_hub_download(cfg['hf_hub_id'], filename=cfg.get('hf_hub_filename') or 'model.safetensors',
                                    revision=cfg.get('hf_hub_revision')))
    return None


def verify_recorded_weights(cfg: Dict[str, Any]) -> None:
    """Refuse weights whose sha256 is not the one recorded next to them (checked before anything is loaded)."""
    from ..hub import file_sha256

    expected = cfg.get('weights_sha256')
    if expected is not None and not (isinstance(expected, str) and len(expected) == 64):
        raise WeightsIntegrityError(f'config.json records a malformed weights_sha256 ({quote(repr(expected))})')
    path = _weights_file(cfg) if expected else None
    if path is None:
        return
    digest = file_sha256(path)
    if digest != expected:
        raise WeightsIntegrityError(f'{path.name} has sha256 {digest[:16]}..., but its config.json '
                                    f'records {str(expected)[:16]}...: the weights were corrupted or edited')


def init_paper_head(fc: nn.Module) -> None:
    """The paper's classifier init: N(0, 0.01) weights, zero bias."""
    if isinstance(fc, nn.Linear):
        nn.init.normal_(fc.weight, std=0.01)
        if fc.bias is not None:
            nn.init.zeros_(fc.bias)


class RelGraphMixin:
    """What every relational-graph family adds to its network: the graph it was built on and the paper's
    counts. ``_setup_graph`` records the spec and its description (C, L, edge hash) and returns the networkx
    graph the relational layers follow; a family sets ``macs`` and ``baseline_macs`` (its complete graph's)
    at 224x224 (32x32 for the MLP) with its own channels and classes."""

    def _setup_graph(self, graph: GraphSpec) -> nx.Graph:
        G = graph.build()
        self.graph_spec = graph
        self.graph_info = graph.describe(G)
        return G

    def num_params(self) -> int:
        """Parameters as the paper counts them: a relational layer counts only the weights its graph keeps."""
        return count_params(self)

    @torch.jit.ignore
    def no_weight_decay(self):
        return set()  # the paper decays every parameter
