"""The one change this package makes to timm at import: ``timm.create_model`` explains bad relgraph names.

Why a patch: timm raises a bare ``RuntimeError('Unknown model (...)')`` for an unregistered architecture before
any code of ours runs, so a typo such as ``relgraph_resnt34`` would get no hint. The wrapper only changes that
error path (into a :class:`~timm_relgraph.names.RelgraphNameError` naming the problem and the nearest valid
names); every other call, successful or failing, passes through untouched. Names that do reach our
entrypoints are checked there and need no patch.
"""
import functools

__all__ = ['install_name_errors']


def install_name_errors() -> None:
    import timm
    import timm.models
    import timm.models._factory as factory

    from ._builder import explain_name
    from ..names import RelgraphNameError

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
