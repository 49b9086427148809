import os
import shutil
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


def prefill_hf_cache(folder: Path, cache: Path, repo_id: str) -> None:
    """Lay the files of ``folder`` out as a Hugging Face cache snapshot of ``repo_id`` (for HF_HUB_OFFLINE=1)."""
    commit = 'a' * 40
    repo = cache / ('models--' + repo_id.replace('/', '--'))
    snap = repo / 'snapshots' / commit
    snap.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text(commit)
