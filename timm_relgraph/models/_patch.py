"""What this package changes in timm at import, and why nothing else could deliver it.

timm knows a model by its registered entrypoint and its registered pretrained tags. Relational-graph names
are an open grammar instead (``relgraph_resnet34_c0.4_l2.0``: any reachable C and L), which timm's registry
cannot list. These functions are therefore taught the grammar; for every other name they are untouched:

* ``timm.create_model`` raises a bare ``RuntimeError('Unknown model (...)')`` for an unregistered
  architecture before any code of ours runs, so a typo (``relgraph_resnt34``) would get no hint. The wrapper
  only changes that error into a :class:`~timm_relgraph.names.RelgraphNameError` naming the problem and the
  nearest valid names; successful calls pass through.
* ``timm.is_model`` ignores the tag, so it would call ``relgraph_mlp5_c0.9_l9.0`` a model although no graph
  can build it; for a relgraph name with a tag it now answers whether the name parses and resolves.
* a malformed ``config.json`` behind ``local-dir:`` / ``hf-hub:`` surfaces from timm as a raw
  ``JSONDecodeError`` / ``TypeError``; it becomes a :class:`ConfigError` (a ``ValueError``) naming the source.
* ``timm.models.get_pretrained_cfg`` only knows registered tags, so it raised for the README's own
  ``relgraph_resnet34_c0.4_l2.0``; for a valid relgraph name it now returns the family's cfg with that tag.
"""
import functools
import json

__all__ = ['install_name_errors', 'resolves', 'ConfigError']

SOURCES = ('local-dir:', 'hf-hub:', 'hf_hub:')


class ConfigError(ValueError):
    """A model folder's or Hub repo's config.json that cannot describe a model."""


def resolves(name: str) -> bool:
    """Whether a full relgraph model name parses and a graph for it exists."""
    from ..names import RelgraphNameError, parse_name
    from ._builder import graph_for

    try:
        graph_for(parse_name(name))
    except (RelgraphNameError, ValueError):
        return False
    return True


def _wrap(module_attr_pairs, original, wrapper):
    wrapper._relgraph_patched = True
    for module in module_attr_pairs:
        if getattr(module, original.__name__, None) is original:
            setattr(module, original.__name__, wrapper)


def install_name_errors() -> None:
    import timm
    import timm.models
    import timm.models._factory as factory
    import timm.models._registry as registry

    from ..names import PREFIX, RelgraphNameError, quote, split_tag
    from ._builder import explain_name

    modules = (factory, registry, timm.models, timm)
    create = factory.create_model
    if not getattr(create, '_relgraph_patched', False):
        @functools.wraps(create)
        def create_model(model_name, *args, **kwargs):
            try:
                return create(model_name, *args, **kwargs)
            except RuntimeError as err:
                if str(err).startswith('Unknown model') and 'relgraph' in str(model_name):
                    raise RelgraphNameError(explain_name(str(model_name))) from err
                raise
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError, KeyError, IndexError,
                    AssertionError, OverflowError) as err:
                if not str(model_name).startswith(SOURCES):
                    raise
                # timm reads config.json of a Hub folder / repo and passes its fields on unchecked
                raise ConfigError(f'{quote(str(model_name))}: its config.json is malformed or edited '
                                  f'({type(err).__name__}: {str(err)[:200]})') from err
        _wrap(modules, create, create_model)

    is_model = registry.is_model
    if not getattr(is_model, '_relgraph_patched', False):
        @functools.wraps(is_model)
        def is_model_(model_name):
            name = str(model_name)
            if name.startswith(PREFIX) and split_tag(name)[1] and is_model(name):
                return resolves(name)
            return is_model(model_name)
        is_model_.__name__ = 'is_model'
        _wrap((registry, timm.models, timm), is_model, is_model_)

    get_cfg = registry.get_pretrained_cfg
    if not getattr(get_cfg, '_relgraph_patched', False):
        @functools.wraps(get_cfg)
        def get_pretrained_cfg(model_name, *args, **kwargs):
            try:
                return get_cfg(model_name, *args, **kwargs)
            except RuntimeError:
                name = str(model_name)
                arch, tag = split_tag(name)
                if not (name.startswith(PREFIX) and tag and resolves(name)):
                    raise
                cfg = get_cfg(arch, *args, **kwargs)
                cfg.tag = tag
                return cfg
        get_pretrained_cfg.__name__ = 'get_pretrained_cfg'
        _wrap((registry, timm.models), get_cfg, get_pretrained_cfg)
