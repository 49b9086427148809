import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GRAPH2NN = REPO.parent / 'shared' / 'reference' / 'graph2nn'


@pytest.fixture(scope='session')
def graph2nn_dir() -> Path:
    """The authors' graph and connectome files; they must be present in CI, and may be absent elsewhere."""
    if not GRAPH2NN.is_dir():
        if os.environ.get('CI'):
            pytest.fail(f'{GRAPH2NN} is missing: CI must provide ../shared/reference/graph2nn')
        pytest.skip(f'{GRAPH2NN} is absent (outside CI)')
    return GRAPH2NN
