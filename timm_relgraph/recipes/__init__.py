"""The paper's training recipes as timm ``train.py`` YAML configs, shipped with the package.

``recipe_path('mlp5_fashion_mnist')`` is the packaged file; a path to an existing file is returned as is, so
every ``--config`` accepts either a recipe name or a file. ``recipe_names()`` lists the recipes.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import List, Union

__all__ = ['RECIPES_DIR', 'recipe_names', 'recipe_path']

RECIPES_DIR = Path(__file__).resolve().parent


def recipe_names() -> List[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob('*.yaml'))


def recipe_path(name_or_path: Union[str, Path]) -> Path:
    """The YAML file of a packaged recipe (``mlp5_fashion_mnist`` or ``mlp5_fashion_mnist.yaml``), or the
    given path when it names an existing file. Raises FileNotFoundError naming the nearest recipes."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith('.yaml') else path.name
    packaged = RECIPES_DIR / f'{stem}.yaml'
    if packaged.is_file() and (path.parent == Path('.') or path.parent.name in ('configs', 'recipes')):
        return packaged
    close = difflib.get_close_matches(stem, recipe_names(), n=3, cutoff=0.5)
    raise FileNotFoundError(f'no config file {str(name_or_path)!r} and no packaged recipe {stem!r}'
                            + (f'; did you mean {", ".join(close)}?' if close else '')
                            + f' (recipes: {", ".join(recipe_names())})')
