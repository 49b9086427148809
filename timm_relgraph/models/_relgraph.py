"""Names, graphs and pretrained cfgs shared by every relational-graph model family.

A model name is ``relgraph_<family>_c<C>_l<L>``, e.g. ``relgraph_resnet34_c0.4_l2.0``. timm splits names at
the first '.', so each family registers one entrypoint per integer part of C (``relgraph_resnet34_c0``,
``relgraph_resnet34_c1``) and receives the rest (``4_l2.0``) as the pretrained tag; the graph is resolved from
the C-L catalogue and the pretrained cfg is built on the fly. ``relgraph_<family>`` alone is the paper's best
graph for that family; ``..._c1.0_l1.0`` is the complete graph (the plain network).
"""
from __future__ import annotations

import difflib
import math
import re
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..catalogue import C_TOL, L_TOL, PAPER_BEST, nearest, paper_grid, resolve
from ..graphs import GraphSpec, graph_stats

__all__ = [
    'FAMILIES', 'RelgraphNameError', 'family_tags', 'graph_for', 'model_name', 'create_relgraph', 'base_cfg',
    'PAPER_ID', 'suggest_names',
]

PAPER_ID = 'arXiv:2007.06559'
PAPER_NAME = 'Graph Structure of Neural Networks'

# family -> number of graph nodes (the paper uses 64, and 16 for EfficientNet-B0)
FAMILIES: Dict[str, int] = {
    'mlp5': 64,
    'cnn8': 64,
    'resnet18': 64,
    'resnet34': 64,
    'resnet34sep': 64,
    'resnet50': 64,
    'efficientnet_b0': 16,
}
# The paper reports no best graph for our extra ResNet-18; it shares ResNet-34's.
BEST_OF = {'resnet18': 'resnet34'}

# Weights published on the Hugging Face Hub: (family, tag) -> hub id.
PUBLISHED: Dict[Tuple[str, str], str] = {}

_TAG_RE = re.compile(r'^(?P<frac>\d+)_l(?P<l>\d+(?:\.\d+)?)$')


class RelgraphNameError(ValueError, RuntimeError):
    """A relational-graph model name or graph request that cannot be built (with suggestions)."""


def model_name(family: str, C: float, L: float) -> str:
    """Canonical dotted name of a graph: C and L rounded to 2 decimals (resolves back within tolerance)."""
    if C >= 1.0:
        return f'relgraph_{family}_c1.0_l1.0'
    return f'relgraph_{family}_c{C:.2f}_l{L:.2f}'


def _split(name: str) -> Tuple[str, str]:
    arch, _, tag = name.partition('.')
    return arch, tag


def suggest_names(family: str, c: Optional[float] = None, l: Optional[float] = None, count: int = 3) -> List[str]:
    """Valid names near a request: by C-L distance when c and l are numbers, else the family's best and grid."""
    if c is not None and l is not None and all(isinstance(v, (int, float)) and math.isfinite(v) for v in (c, l)):
        names = [model_name(family, e.C, e.L) for e in nearest(c, l, FAMILIES[family], count=4 * count)]
        return list(dict.fromkeys(names))[:count]
    return [f'relgraph_{family}', f'relgraph_{family}_c1.0_l1.0'] + [
        f'{arch}.{tag}' for arch, tag in family_tags(family)[:max(count - 2, 0)]]


@lru_cache(maxsize=None)
def family_tags(family: str) -> List[Tuple[str, str]]:
    """``(entrypoint, tag)`` pairs listed by ``timm.list_models('relgraph*', include_tags=True)``: the
    family's coarse C-L grid, its best graph's neighbourhood and the complete graph."""
    n = FAMILIES[family]
    names = []
    best = PAPER_BEST[BEST_OF.get(family, family)]
    best_c, best_l = graph_stats(best.build())
    try:
        names.append(model_name(family, *_resolved_stats(best_c, best_l, n)))
    except ValueError:
        pass
    names += [model_name(family, e.C, e.L) for e in paper_grid(n)]
    names.append(model_name(family, 1.0, 1.0))
    seen, tags = set(), []
    for name in names:
        if name not in seen:
            seen.add(name)
            tags.append(_split(name))
    return tags


def _resolved_stats(c: float, l: float, n: int) -> Tuple[float, float]:
    e = resolve(round(c, 2), round(l, 2), n)
    return e.C, e.L


def _parse_tag(family: str, entry_c: int, tag: str) -> Tuple[float, float]:
    match = _TAG_RE.match(tag)
    if not match:
        raise RelgraphNameError(
            f"malformed relational-graph name 'relgraph_{family}_c{entry_c}.{tag}': expected "
            f"relgraph_{family}_c<C>_l<L> such as relgraph_{family}_c0.4_l2.0; valid names include "
            f"{', '.join(suggest_names(family))}")
    return float(f'{entry_c}.{match.group("frac")}'), float(match.group('l'))


def _as_spec(graph: Union[GraphSpec, Dict[str, Any]]) -> GraphSpec:
    if isinstance(graph, GraphSpec):
        return graph
    if isinstance(graph, dict):
        return GraphSpec.from_dict(graph)
    raise RelgraphNameError(f'graph must be a dict(n=, k=, p=, seed=) or a GraphSpec, got {type(graph).__name__}')


def graph_for(family: str, entry_c: Optional[int], tag: Optional[str], graph=None, c=None, l=None) -> GraphSpec:
    """The graph a name and kwargs ask for. Precedence: ``graph=`` > ``c=, l=`` > the name's tag > default."""
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
        if entry_c is None:
            return PAPER_BEST[BEST_OF.get(family, family)]
        if not tag:
            tag = _default_tag(family, entry_c)
        c, l = _parse_tag(family, entry_c, tag)
    elif c is None or l is None:
        raise RelgraphNameError(f'give both c= and l= (got c={c}, l={l})')
    try:
        c, l = float(c), float(l)
    except (TypeError, ValueError):
        raise RelgraphNameError(f'c and l must be numbers, got c={c!r}, l={l!r}') from None
    if not (math.isfinite(c) and math.isfinite(l)) or c < 0 or l < 1:
        raise RelgraphNameError(
            f'C must lie in [0, 1] and L be >= 1, got C={c}, L={l}; valid names include '
            f'{", ".join(suggest_names(family))}')
    if entry_c is not None and int(math.floor(c)) != entry_c and not (entry_c == 1 and c == 1.0):
        raise RelgraphNameError(f'C={c} does not belong to relgraph_{family}_c{entry_c}')
    try:
        return resolve(c, l, n).spec
    except ValueError as err:
        raise RelgraphNameError(
            f'relgraph_{family}: {err}; nearest valid names: {", ".join(suggest_names(family, c, l))}') from None


def spec_for_name(name: str) -> GraphSpec:
    """The graph of a model name such as ``relgraph_resnet34_c0.4_l2.0`` or ``relgraph_mlp5``."""
    arch, tag = _split(name)
    match = re.match(r'^relgraph_(?P<family>.+?)(?:_c(?P<c>\d+))?$', arch)
    if not match or match.group('family') not in FAMILIES:
        raise RelgraphNameError(explain_name(name))
    entry_c = int(match.group('c')) if match.group('c') is not None else None
    return graph_for(match.group('family'), entry_c, tag or None)


def _default_tag(family: str, entry_c: int) -> str:
    for arch, tag in family_tags(family):
        if arch == f'relgraph_{family}_c{entry_c}':
            return tag
    raise RelgraphNameError(f'relgraph_{family}_c{entry_c} has no default graph')


def base_cfg(**kwargs) -> Dict[str, Any]:
    cfg = {
        'num_classes': 1000, 'input_size': (3, 224, 224), 'pool_size': (7, 7), 'crop_pct': 0.875,
        'interpolation': 'bilinear', 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225),
        'license': 'apache-2.0', 'paper_ids': PAPER_ID, 'paper_name': PAPER_NAME,
    }
    cfg.update(kwargs)
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


def create_relgraph(model_cls: Callable[..., nn.Module], family: str, variant: str, pretrained: bool = False,
                    default_cfg: Optional[Dict[str, Any]] = None, **kwargs) -> nn.Module:
    """Build a relational-graph model through timm's ``build_model_with_cfg``.

    ``variant`` is ``relgraph_<family>`` or ``relgraph_<family>_c<int>``; the tag and the ``graph``, ``c``, ``l``
    kwargs choose the graph. The resolved graph (generator, n, k, p, seed, measured C and L, edge hash) is
    stored in ``model.pretrained_cfg['graph']`` and in the model args timm records for ``save_for_hf``.
    """
    from timm.models import build_model_with_cfg
    from timm.models._pretrained import PretrainedCfg

    tag, given_cfg = _tag_of(kwargs.pop('pretrained_cfg', None))
    graph = kwargs.pop('graph', None)
    c, l = kwargs.pop('c', None), kwargs.pop('l', None)
    entry_c = int(variant.rsplit('_c', 1)[1]) if re.search(r'_c\d+$', variant) else None
    spec = graph_for(family, entry_c, tag, graph=graph, c=c, l=l)
    if tag is None and entry_c is not None and graph is None and c is None:
        tag = _default_tag(family, entry_c)

    cfg = dict(default_cfg or base_cfg())
    known = set(PretrainedCfg.__dataclass_fields__)
    cfg.update({key: value for key, value in given_cfg.items() if key in known})
    cfg.update(architecture=variant, tag=tag or None)
    hub_id = PUBLISHED.get((family, tag or ''))
    if hub_id and not cfg.get('hf_hub_id'):
        cfg['hf_hub_id'] = hub_id
    model = build_model_with_cfg(model_cls, variant, pretrained, pretrained_cfg=cfg, graph=spec, **kwargs)
    info = getattr(model, 'graph_info', None) or spec.describe()
    recorded = given_cfg.get('graph')
    if isinstance(recorded, dict) and recorded.get('edges_sha256') not in (None, info['edges_sha256']):
        from ..layers import GraphMismatchError
        raise GraphMismatchError(
            f'the config describes a graph with edges_sha256={recorded["edges_sha256"][:16]}..., but its model args '
            f'{spec.to_dict()} build edges_sha256={info["edges_sha256"][:16]}...; the config was edited or corrupted')
    model.pretrained_cfg['graph'] = dict(info)
    model._model_args = {'graph': spec.to_dict()}
    return model


_NAME_RE = re.compile(r'^relgraph_(?P<family>.+?)(?:_c(?P<c>[^_]*)_l(?P<l>.*))?$')


def explain_name(name: str) -> str:
    """Why ``name`` is not a relational-graph model, with the nearest valid names."""
    arch = name.split(':', 1)[-1]
    match = _NAME_RE.match(arch)
    if not match:
        return f"'{name}' is not a relgraph model name; names look like relgraph_resnet34_c0.4_l2.0"
    family = match.group('family')
    if family not in FAMILIES:
        close = difflib.get_close_matches(family, list(FAMILIES), n=3, cutoff=0.3) or sorted(FAMILIES)
        return (f"unknown relgraph family '{family}' in '{name}'; choose one of {sorted(FAMILIES)}, "
                f"e.g. {', '.join(f'relgraph_{f}' for f in close)}")
    c_text, l_text = match.group('c'), match.group('l')
    if c_text is None:
        return f"'{name}' is malformed; valid names include {', '.join(suggest_names(family))}"
    try:
        c, l = float(c_text), float(l_text)
    except ValueError:
        return (f"malformed C/L in '{name}': expected numbers as in relgraph_{family}_c0.4_l2.0; "
                f"valid names include {', '.join(suggest_names(family))}")
    if not (math.isfinite(c) and math.isfinite(l)) or c < 0 or c > 1 or l < 1:
        return (f"'{name}' asks for C={c_text}, L={l_text}, but C must lie in [0, 1] and L be >= 1; "
                f"valid names include {', '.join(suggest_names(family))}")
    return (f"'{name}' is not a registered name form; write C with a decimal point, as in "
            f"{model_name(family, c, l)}; nearest valid names: {', '.join(suggest_names(family, c, l))}")


def install_name_errors() -> None:
    """Make ``timm.create_model`` explain unknown ``relgraph_*`` names instead of a bare 'Unknown model'.

    Only the error path changes: every successful call is passed through untouched.
    """
    import functools

    import timm
    import timm.models
    import timm.models._factory as factory

    original = factory.create_model
    if getattr(original, '_relgraph_explains', False):
        return

    @functools.wraps(original)
    def create_model(model_name, *args, **kwargs):
        try:
            return original(model_name, *args, **kwargs)
        except RuntimeError as err:
            if str(err).startswith('Unknown model') and 'relgraph' in str(model_name):
                raise RelgraphNameError(explain_name(str(model_name))) from err
            raise

    create_model._relgraph_explains = True
    for module in (factory, timm.models, timm):
        if getattr(module, 'create_model', None) is original:
            module.create_model = create_model


def paper_classifier(num_features: int, num_classes: int, pool_type: str, like, training: bool = True):
    """timm's global pooling + Linear head, initialised as the paper's (N(0, 0.01) weights, zero bias), on the
    device and dtype of the tensor ``like``. Returns ``(global_pool, fc)``."""
    from timm.layers import create_classifier

    global_pool, fc = create_classifier(num_features, num_classes, pool_type=pool_type, device=like.device,
                                        dtype=like.dtype)
    if isinstance(fc, nn.Linear):
        nn.init.normal_(fc.weight, std=0.01)
        nn.init.zeros_(fc.bias)
    global_pool.train(training)
    fc.train(training)
    return global_pool, fc


class RelGraphModel(nn.Module):
    """What every relational-graph family shares: its graph and timm's head and training API.

    A family sets ``classifier_name`` (the attribute of its Linear head), calls ``_init_graph`` first in its
    constructor and sets ``num_features``, ``global_pool`` and the head; ``reset_classifier`` rebuilds the last
    two with ``paper_classifier``."""

    classifier_name = 'fc'

    def _init_graph(self, graph: GraphSpec):
        """Record the graph spec and its description; returns the networkx graph the layers follow."""
        self.graph_spec = graph
        G = graph.build()
        self.graph_info = graph.describe(G)
        self.grad_checkpointing = False
        return G

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self, name_only: bool = False) -> Union[str, nn.Module]:
        return self.classifier_name if name_only else getattr(self, self.classifier_name)

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        self.global_pool, head = paper_classifier(self.num_features, num_classes, pool_type,
                                                  next(self.parameters()), self.training)
        setattr(self, self.classifier_name, head)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()

    @torch.jit.ignore
    def no_weight_decay(self):
        return set()  # the paper decays every parameter
