"""Datasets (timm_relgraph.data) and the script launcher (timm_relgraph.run)."""
import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from timm_relgraph import data as rgdata
from timm_relgraph.data import DatasetNotFoundError, create_relgraph_dataset

DEBIAN_FMNIST = Path(rgdata.FASHION_MNIST_DIR) / 't10k-labels-idx1-ubyte.gz'


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack('>HBB', 0, 0x08, array.ndim) + struct.pack(f'>{array.ndim}I', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fmnist(tmp_path):
    """A 12-image (train) / 6-image (test) Fashion-MNIST in IDX .gz files."""
    rng = np.random.RandomState(0)
    for prefix, n in (('train', 12), ('t10k', 6)):
        _write_idx(tmp_path / f'{prefix}-images-idx3-ubyte.gz', rng.randint(0, 256, (n, 28, 28)))
        _write_idx(tmp_path / f'{prefix}-labels-idx1-ubyte.gz', np.arange(n) % 10)
    return tmp_path


def test_idx_reader_and_fashion_mnist_from_folder(fake_fmnist):
    images = rgdata.read_idx(fake_fmnist / 'train-images-idx3-ubyte.gz')
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    train = create_relgraph_dataset('fashion_mnist', root=str(fake_fmnist), split='train')
    val = create_relgraph_dataset('torch/fashion_mnist', root=str(fake_fmnist), split='validation')
    assert (len(train), len(val)) == (12, 6)
    img, label = train[3]
    assert isinstance(img, Image.Image) and img.mode == 'L' and img.size == (28, 28) and label == 3
    assert np.array_equal(np.asarray(img), images[3])
    assert train.classes[9] == 'Ankle boot'
    tensor_ds = rgdata.fashion_mnist(root=str(fake_fmnist), as_tensor=True)
    x, _ = tensor_ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.uint8
    small = create_relgraph_dataset('fashion_mnist', root=str(fake_fmnist), num_samples=5)
    assert len(small) == 5 and small.targets == [0, 1, 2, 3, 4]
    small.transform = lambda im: 'T'  # timm's loader assigns .transform on whatever it gets
    assert small[0][0] == 'T'


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / 'bad-idx3-ubyte.gz'
    with gzip.open(path, 'wb') as f:
        f.write(struct.pack('>HBB3I', 0, 8, 3, 10, 28, 28) + b'\0' * 100)
    with pytest.raises(ValueError, match='truncated'):
        rgdata.read_idx(path)


@pytest.mark.skipif(not DEBIAN_FMNIST.exists(), reason="needs apt package dataset-fashion-mnist ('make data')")
def test_fashion_mnist_debian_package():
    val = create_relgraph_dataset('fashion_mnist', split='test')
    assert len(val) == 10000 and val[0][0].size == (28, 28)
    assert sorted(set(val.targets)) == list(range(10))


def test_missing_datasets_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match='dataset-fashion-mnist'):
        create_relgraph_dataset('fashion_mnist', root=str(tmp_path / 'none'))
    monkeypatch.setattr(rgdata, 'FASHION_MNIST_DIR', str(tmp_path / 'not-installed'))
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        create_relgraph_dataset('fashion_mnist')
    with pytest.raises(DatasetNotFoundError, match=r'cifar-10-batches-py.*--dataset-download'):
        create_relgraph_dataset('cifar10', root=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=r'train/<class>'):
        create_relgraph_dataset('', root=str(tmp_path / 'no-imagenet'))
    (tmp_path / 'empty' / 'train').mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError):
        create_relgraph_dataset('imagefolder', root=str(tmp_path / 'empty'), split='train')
    with pytest.raises(ValueError, match='did you mean fashion_mnist'):
        create_relgraph_dataset('fashon_mnist')


def test_image_folder(tmp_path):
    for split in ('train', 'val'):
        for cls in ('cat', 'dog'):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(folder / f'{i}.png')
    train = create_relgraph_dataset('', root=str(tmp_path), split='train')
    val = create_relgraph_dataset('imagefolder', root=str(tmp_path), split='validation')  # finds val/
    assert (len(train), len(val)) == (6, 6)
    img, label = train[5]
    assert img.mode == 'RGB' and label == 1


def test_digits():
    pytest.importorskip('sklearn')
    train, val = rgdata.digits(split='train'), rgdata.digits(split='val')
    assert (len(train), len(val)) == (1500, 297)
    img, label = train[0]
    assert img.size == (8, 8) and img.mode == 'L' and 0 <= label < 10
    assert np.asarray(img).max() > 200  # 0..16 rescaled to 0..255


def test_torchvision_layout_for_timm_train_py(fake_fmnist, tmp_path):
    from timm.data import create_dataset
    root = tmp_path / 'tv'
    assert rgdata.main(['torchvision-fashion-mnist', str(root), '--source', str(fake_fmnist)]) == 0
    ds = create_dataset('torch/fashion_mnist', root=str(root), split='validation')
    assert len(ds) == 6 and ds[1][1] == 1


def test_launcher_runs_script_with_models_registered(tmp_path, capsys):
    from timm_relgraph import run
    script = tmp_path / 'probe.py'
    script.write_text(
        'import sys, timm\n'
        'if __name__ == "__main__":\n'
        '    print("argv", sys.argv[1:], "models", len(timm.list_models("relgraph_mlp5*")) > 0)\n'
        '    sys.exit(int(sys.argv[1]))\n')
    assert run.main([str(script), '0', '--x']) == 0
    assert "argv ['0', '--x'] models True" in capsys.readouterr().out
    assert run.main([str(script), '3']) == 3
    assert run.main([str(tmp_path / 'missing.py')]) == 2
    assert 'no such script' in capsys.readouterr().err


def test_launcher_subprocess(tmp_path):
    import subprocess
    script = tmp_path / 'probe.py'
    script.write_text('import sys, timm\nprint(__name__, sys.argv, timm.is_model("relgraph_mlp5"))\n')
    out = subprocess.run([sys.executable, '-m', 'timm_relgraph.run', str(script), 'a'], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == f"__main__ ['{script}', 'a'] True"
