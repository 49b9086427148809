"""atomic_open: a written file is complete, and a failed write leaves the old content and no stray files."""
import os

import pytest

from timm_relgraph._io import atomic_open


def test_writes_whole_file_and_creates_parents(tmp_path):
    path = tmp_path / 'a' / 'b' / 'table.csv'
    with atomic_open(path) as f:
        f.write('x,y\n1,2\n')
    assert path.read_text() == 'x,y\n1,2\n'
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert os.listdir(path.parent) == ['table.csv']


def test_error_keeps_old_content(tmp_path):
    path = tmp_path / 'table.csv'
    path.write_text('old\n')
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write('half')
            raise RuntimeError('interrupted')
    assert path.read_text() == 'old\n'
    assert os.listdir(tmp_path) == ['table.csv']


def test_binary_mode_and_bad_mode(tmp_path):
    path = tmp_path / 'blob.bin'
    with atomic_open(path, 'wb') as f:
        f.write(b'\x00\x01')
    assert path.read_bytes() == b'\x00\x01'
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(path, 'a'):
            pass
