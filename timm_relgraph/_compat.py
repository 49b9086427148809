"""Optional dependencies, imported only by the code that needs them, with the install line that provides them.

The core install (``pip install timm-relgraph``) trains, sweeps and analyses; figures need matplotlib, from the
``plots`` extra (also part of ``dev``).
"""

__all__ = ['PLOTS_EXTRA', 'MissingExtraError', 'pyplot']

PLOTS_EXTRA = "pip install 'timm-relgraph[plots]'"


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def pyplot(what: str = 'plotting'):
    """``matplotlib.pyplot`` on the non-interactive Agg backend; :class:`MissingExtraError` (an ``ImportError``)
    naming the ``plots`` extra when matplotlib is not installed. ``what``: the figure, for the message."""
    try:
        import matplotlib
    except ImportError as err:
        raise MissingExtraError(f'{what}: matplotlib is not installed ({PLOTS_EXTRA})', name='matplotlib') from err
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt
