"""The model-name grammar: one parser for ``relgraph_<family>[_c<C>_l<L>]`` names.

    relgraph_resnet34              the family on the paper's best graph
    relgraph_resnet34_c0.4_l2.0    the family on the catalogue graph nearest to C = 0.4, L = 2.0
    relgraph_resnet34_c1.0_l1.0    the complete graph: the plain network

Names are ASCII; C is ``0``, ``1`` or a decimal in [0, 1] and L a decimal >= 1. timm splits a name at its first
'.', so every family registers the entrypoints ``relgraph_<family>_c0`` and ``relgraph_<family>_c1`` and
receives the rest of C and L as the pretrained tag; :func:`join_tag` puts the name back together.
Parsing is one anchored regular expression on a length-bounded string (linear time), and every message
quotes at most :data:`MAX_QUOTED` characters of the name.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from .paper import FAMILIES

__all__ = ['RelgraphNameError', 'RelgraphName', 'parse_name', 'format_name', 'join_tag', 'split_tag',
           'family_of', 'family_prefix', 'quote', 'MAX_NAME_LENGTH', 'PREFIX']

PREFIX = 'relgraph_'
MAX_NAME_LENGTH = 96
MAX_QUOTED = 60

_FAMILY = '|'.join(sorted((re.escape(f) for f in FAMILIES), key=len, reverse=True))
_NAME_RE = re.compile(
    rf'relgraph_(?P<family>{_FAMILY})(?:_c(?P<c>[01](?:\.\d{{1,6}})?)_l(?P<l>\d{{1,2}}(?:\.\d{{1,6}})?))?',
    re.ASCII)
# The loose shape of a C-L name, used only to explain what is wrong with one that does not parse.
_LOOSE_RE = re.compile(r'relgraph_(?P<family>[A-Za-z0-9_]*?)(?:_c(?P<c>[^_]*)_l(?P<l>[^_]*))?', re.ASCII)


class RelgraphNameError(ValueError, RuntimeError):
    """A relational-graph model name or graph request that cannot be built (with suggestions)."""


@dataclass(frozen=True)
class RelgraphName:
    """A parsed name: the family and the requested C and L (both None for the family's best graph)."""
    family: str
    c: Optional[float] = None
    l: Optional[float] = None

    @property
    def is_best(self) -> bool:
        return self.c is None

    @property
    def is_complete(self) -> bool:
        return self.c == 1.0 and self.l == 1.0

    @property
    def entrypoint(self) -> str:
        """The timm entrypoint this name is created through."""
        if self.c is None:
            return f'{PREFIX}{self.family}'
        return f'{PREFIX}{self.family}_c{int(math.floor(self.c))}'


def quote(text: str) -> str:
    """``text`` for an error message: repr'd and cut to a bounded length."""
    text = str(text)
    if len(text) > MAX_QUOTED:
        return repr(text[:MAX_QUOTED]) + f'... ({len(text)} characters)'
    return repr(text)


def format_name(family: str, c: Optional[float] = None, l: Optional[float] = None) -> str:
    """The canonical name: C and L rounded to 2 decimals (which resolve back within the catalogue's tolerance)."""
    if family not in FAMILIES:
        raise RelgraphNameError(f'unknown relgraph family {quote(family)}; choose one of {sorted(FAMILIES)}')
    if c is None and l is None:
        return f'{PREFIX}{family}'
    if c >= 1.0:
        return f'{PREFIX}{family}_c1.0_l1.0'
    return f'{PREFIX}{family}_c{c:.2f}_l{l:.2f}'


def join_tag(entrypoint: str, tag: Optional[str]) -> str:
    return f'{entrypoint}.{tag}' if tag else entrypoint


def split_tag(name: str) -> Tuple[str, str]:
    arch, _, tag = name.partition('.')
    return arch, tag


def _suggest_family(text: str) -> List[str]:
    return [f'{PREFIX}{f}' for f in (difflib.get_close_matches(text[:40], list(FAMILIES), n=3, cutoff=0.3)
                                     or sorted(FAMILIES))]


def _explain(name: str) -> str:
    shown = quote(name)
    if not name.startswith(PREFIX):
        return f'{shown} is not a relgraph model name; names look like relgraph_resnet34_c0.4_l2.0'
    loose = _LOOSE_RE.fullmatch(name)
    if loose is None or loose.group('family') not in FAMILIES:
        family = loose.group('family') if loose is not None else name[len(PREFIX):].split('.')[0]
        if family in FAMILIES:
            return (f'{shown} is malformed: after relgraph_{family} expected nothing or _c<C>_l<L>, as in '
                    f'relgraph_{family}_c0.4_l2.0')
        return (f'unknown relgraph family {quote(family)} in {shown}; choose one of {sorted(FAMILIES)}, '
                f'e.g. {", ".join(_suggest_family(family))}')
    family = loose.group('family')
    c_text, l_text = loose.group('c'), loose.group('l')
    c, l = _number(c_text), _number(l_text)
    if c is None or l is None:
        return (f'malformed C/L in {shown}: expected ASCII decimals as in relgraph_{family}_c0.4_l2.0 '
                f'(C in [0, 1], L >= 1)')
    if not (0.0 <= c <= 1.0) or l < 1.0:
        return (f'{shown} asks for C={c_text}, L={l_text}, but C must lie in [0, 1] and L be >= 1, as in '
                f'relgraph_{family}_c0.4_l2.0')
    return f'{shown} is not in the name form relgraph_{family}_c<C>_l<L>; write it as {format_name(family, c, l)}'


def _number(text: Optional[str]) -> Optional[float]:
    if text is None or not re.fullmatch(r'\d{1,3}(?:\.\d{1,12})?', text, re.ASCII):
        return None
    return float(text)


def parse_name(name: str) -> RelgraphName:
    """Parse a full model name (``relgraph_resnet34_c0.4_l2.0``; an ``hf-hub:``/``timm/`` source is not a name).

    Raises :class:`RelgraphNameError` naming the problem for anything else, including non-ASCII digits,
    whitespace, names longer than :data:`MAX_NAME_LENGTH` and C outside [0, 1] or L below 1. Whether a graph
    near the requested (C, L) exists is the catalogue's question, not the grammar's.
    """
    if not isinstance(name, str):
        raise RelgraphNameError(f'a model name must be a string, got {type(name).__name__}')
    if len(name) > MAX_NAME_LENGTH:
        raise RelgraphNameError(f'model name too long ({len(name)} characters, at most {MAX_NAME_LENGTH}): '
                                f'{quote(name)}; names look like relgraph_resnet34_c0.4_l2.0')
    match = _NAME_RE.fullmatch(name)
    if match is None:
        raise RelgraphNameError(_explain(name))
    family = match.group('family')
    if match.group('c') is None:
        return RelgraphName(family)
    c, l = float(match.group('c')), float(match.group('l'))
    if c > 1.0 or l < 1.0:
        raise RelgraphNameError(f'{quote(name)} asks for C={match.group("c")}, L={match.group("l")}, but C must '
                                f'lie in [0, 1] and L be >= 1, as in relgraph_{family}_c0.4_l2.0')
    if c == 1.0 and l != 1.0:
        raise RelgraphNameError(f'{quote(name)}: C = 1 is only the complete graph, whose L is 1; '
                                f'use relgraph_{family}_c1.0_l1.0')
    return RelgraphName(family, c, l)


def family_prefix(name: str) -> Optional[str]:
    """The family a name or entrypoint (``relgraph_mlp5_c0``) belongs to, by its prefix; None if none."""
    rest = str(name)[len(PREFIX):] if str(name).startswith(PREFIX) else ''
    for family in sorted(FAMILIES, key=len, reverse=True):
        if rest == family or rest.startswith(family + '_') or rest.startswith(family + '.'):
            return family
    return None


def family_of(names: Iterable[str]) -> Optional[str]:
    """The one family shared by ``names`` (unparseable names are ignored), or None."""
    families = set()
    for name in names:
        try:
            families.add(parse_name(name).family)
        except RelgraphNameError:
            continue
    return families.pop() if len(families) == 1 else None
