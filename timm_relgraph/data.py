"""Datasets for relational-graph training: Fashion-MNIST, CIFAR-10, ImageFolder and a tiny digits set.

``create_relgraph_dataset(name, root, split)`` returns a map-style dataset of ``(PIL image, int label)``
pairs with a settable ``transform`` attribute, so timm's ``create_loader`` can attach its transforms:

- ``fashion_mnist`` (``torch/fashion_mnist``): read from the IDX files of Debian's ``dataset-fashion-mnist``
  package (``/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz``), or from ``root`` if given.
- ``cifar10`` (``torch/cifar10``): torchvision's layout, ``<root>/cifar-10-batches-py/``; downloaded when
  ``download=True`` (``--dataset-download``) and online.
- ``imagefolder`` (also ``''``, timm's default): ``<root>/<split>/<class>/<image>``, via timm's ImageDataset.
- ``digits`` (``sklearn/digits``): scikit-learn's 8x8 digits (1797 images, 10 classes) held in memory, for
  tests; the last 297 images are the validation split.

To let timm's own ``train.py --dataset torch/fashion_mnist --data-dir ROOT`` read the Debian files, run
``python -m timm_relgraph.data torchvision-fashion-mnist ROOT`` once: it unpacks them into
``ROOT/FashionMNIST/raw/``, the layout torchvision expects.
"""
from __future__ import annotations

import gzip
import os
import struct
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset

__all__ = [
    'DatasetNotFoundError', 'FASHION_MNIST_DIR', 'FASHION_MNIST_CLASSES', 'ArrayImageDataset', 'read_idx',
    'fashion_mnist', 'cifar10', 'image_folder', 'digits', 'create_relgraph_dataset', 'dataset_names',
    'is_train_split', 'prepare_torchvision_fashion_mnist',
]

FASHION_MNIST_DIR = os.environ.get('TIMM_RELGRAPH_FASHION_MNIST', '/usr/share/datasets/fashion-mnist')
FASHION_MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
                         'Bag', 'Ankle boot')
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)

_TRAIN_SPLITS = {'train', 'training'}
_EVAL_SPLITS = {'val', 'valid', 'validation', 'eval', 'evaluation', 'test'}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not where it was looked for; the message says how to get it."""


def is_train_split(split: str) -> bool:
    split = (split or '').lower()
    if split in _TRAIN_SPLITS:
        return True
    if split in _EVAL_SPLITS:
        return False
    raise ValueError(f'unknown split {split!r}: use one of {sorted(_TRAIN_SPLITS | _EVAL_SPLITS)}')


class ArrayImageDataset(Dataset):
    """In-memory uint8 images ``[N, H, W]`` (grayscale) or ``[N, H, W, 3]`` with integer labels.

    Items are ``(PIL image, label)`` after ``transform`` (timm's loader sets it), or ``(uint8 tensor
    [C, H, W], label)`` when ``as_tensor=True`` and no transform is set.
    """

    def __init__(self, images: np.ndarray, targets: Sequence[int], classes: Sequence[str] = (),
                 transform: Optional[Callable] = None, target_transform: Optional[Callable] = None,
                 as_tensor: bool = False):
        if len(images) != len(targets):
            raise ValueError(f'{len(images)} images but {len(targets)} labels')
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self.targets = [int(t) for t in targets]
        self.classes = list(classes) or [str(i) for i in range(max(self.targets, default=-1) + 1)]
        self.transform = transform
        self.target_transform = target_transform
        self.as_tensor = as_tensor

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        array, target = self.images[index], self.targets[index]
        if self.as_tensor and self.transform is None:
            img = torch.from_numpy(array.copy())
            img = img.unsqueeze(0) if img.ndim == 2 else img.permute(2, 0, 1)
        else:
            img = Image.fromarray(array)  # uint8 HxW -> 'L', HxWx3 -> 'RGB'
            if self.transform is not None:
                img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array (uint8 data as used by MNIST-style sets)."""
    path = Path(path)
    opener = gzip.open if path.suffix == '.gz' else open
    with opener(path, 'rb') as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack('>HBB', data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f'{path} is not an unsigned-byte IDX file')
    shape = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f'{path}: header says {shape}, found {array.size} values (truncated file?)')
    return array.reshape(shape)


def _find_idx(root: Path, stem: str) -> Optional[Path]:
    for candidate in (root / f'{stem}.gz', root / stem, root / 'FashionMNIST' / 'raw' / stem,
                      root / 'FashionMNIST' / 'raw' / f'{stem}.gz'):
        if candidate.is_file():
            return candidate
    return None


def fashion_mnist(root: Optional[str] = None, split: str = 'train', transform=None, **kwargs) -> ArrayImageDataset:
    """Fashion-MNIST (60k train / 10k test, 1x28x28) from IDX files; ``root`` defaults to the Debian path."""
    folder = Path(root or FASHION_MNIST_DIR)
    part = 'train' if is_train_split(split) else 'test'
    paths = [_find_idx(folder, stem) for stem in FASHION_MNIST_FILES[part]]
    if None in paths:
        missing = [f'{stem}.gz' for stem, p in zip(FASHION_MNIST_FILES[part], paths) if p is None]
        hint = ("install Debian's package: 'sudo apt-get install dataset-fashion-mnist' (or 'make data')"
                if root is None else
                f'put the four Fashion-MNIST *-idx?-ubyte(.gz) files in {folder}, or drop the data dir to use '
                f"{FASHION_MNIST_DIR} from the apt package 'dataset-fashion-mnist'")
        raise DatasetNotFoundError(f'Fashion-MNIST {part} split not found: missing {", ".join(missing)} in '
                                   f'{folder}; {hint}')
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    return ArrayImageDataset(images, labels, FASHION_MNIST_CLASSES, transform=transform, **kwargs)


def cifar10(root: Optional[str] = None, split: str = 'train', transform=None, download: bool = False, **kwargs):
    """CIFAR-10 in torchvision's layout (``<root>/cifar-10-batches-py/``), downloaded if ``download``."""
    from torchvision.datasets import CIFAR10
    if not root:
        raise DatasetNotFoundError('CIFAR-10 needs a data folder: pass --data-dir DIR (containing '
                                   'cifar-10-batches-py/, torchvision layout), add --dataset-download to fetch it')
    folder = Path(root)
    if not download and not (folder / 'cifar-10-batches-py').is_dir():
        raise DatasetNotFoundError(
            f'CIFAR-10 not found in {folder}: expected {folder}/cifar-10-batches-py/ (data_batch_1..5, test_batch, '
            f'batches.meta; the torchvision layout, e.g. the extracted cifar-10-python.tar.gz); pass '
            f'--dataset-download (dataset_download: true) to download it when online')
    try:
        return CIFAR10(str(folder), train=is_train_split(split), transform=transform, download=download)
    except RuntimeError as err:
        raise DatasetNotFoundError(f'CIFAR-10 in {folder} could not be read or downloaded ({err}); place the '
                                   f'torchvision layout {folder}/cifar-10-batches-py/ there') from None


def image_folder(root: Optional[str] = None, split: str = 'train', transform=None, class_map: str = '',
                 input_img_mode: str = 'RGB', **kwargs):
    """ImageNet-style folder ``<root>/<split>/<class>/<image>`` (timm's split search: train, val, validation)."""
    from timm.data import create_dataset
    if not root or not Path(root).is_dir():
        raise DatasetNotFoundError(
            f'image folder {root!r} not found: pass --data-dir DIR laid out as DIR/train/<class>/*.jpg and '
            f'DIR/val/<class>/*.jpg (ImageNet style)')
    try:
        ds = create_dataset('', root=root, split=split, is_training=is_train_split(split), class_map=class_map,
                            input_img_mode=input_img_mode)
    except Exception as err:  # timm raises RuntimeError/AssertionError/FileNotFoundError for empty folders
        raise DatasetNotFoundError(
            f'no images for split {split!r} under {root} ({err}); expected {root}/{split}/<class>/<image> '
            f'(or images directly in {root}/<class>/)') from None
    if len(ds) == 0:
        raise DatasetNotFoundError(f'{root} holds no images for split {split!r}; expected {root}/{split}/<class>/*')
    ds.transform = transform
    return ds


def digits(root: Optional[str] = None, split: str = 'train', transform=None, **kwargs) -> ArrayImageDataset:
    """scikit-learn's 8x8 digits as 1x8x8 uint8 images; the first 1500 train, the last 297 validate."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetNotFoundError("the digits dataset needs scikit-learn: pip install -e '.[dev]'") from None
    data = load_digits()
    images = np.clip(np.round(data.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    sl = slice(0, 1500) if is_train_split(split) else slice(1500, None)
    return ArrayImageDataset(images[sl], data.target[sl], [str(i) for i in range(10)], transform=transform,
                             **kwargs)


_FACTORIES = {
    'fashion_mnist': fashion_mnist,
    'cifar10': cifar10,
    'imagefolder': image_folder,
    'digits': digits,
}
_ALIASES = {
    'fashion-mnist': 'fashion_mnist', 'fashionmnist': 'fashion_mnist', 'torch/fashion_mnist': 'fashion_mnist',
    'cifar-10': 'cifar10', 'torch/cifar10': 'cifar10', '': 'imagefolder', 'folder': 'imagefolder',
    'image_folder': 'imagefolder', 'sklearn/digits': 'digits',
}


def dataset_names() -> List[str]:
    return sorted(_FACTORIES) + sorted(k for k in _ALIASES if k)


def create_relgraph_dataset(name: str, root: Optional[str] = None, split: str = 'train', transform=None,
                            download: bool = False, num_samples: Optional[int] = None, **kwargs):
    """A dataset by name (see module doc); ``num_samples`` keeps only the first N samples (tiny runs)."""
    key = _ALIASES.get((name or '').lower(), (name or '').lower())
    if key not in _FACTORIES:
        import difflib
        close = difflib.get_close_matches(key, dataset_names(), n=3)
        raise ValueError(f'unknown dataset {name!r}' + (f'; did you mean {", ".join(close)}?' if close else '')
                         + f' (known: {", ".join(dataset_names())})')
    kw = dict(kwargs)
    if key == 'cifar10':
        kw['download'] = download
    ds = _FACTORIES[key](root=root, split=split, transform=transform, **kw)
    if num_samples is not None and num_samples < len(ds):
        ds = _TransformSubset(ds, range(int(num_samples)))
    return ds


class _TransformSubset(Subset):
    """A Subset whose ``transform`` reads and writes the parent's (timm's loader assigns it)."""

    @property
    def transform(self):
        return self.dataset.transform

    @transform.setter
    def transform(self, value):
        self.dataset.transform = value

    @property
    def targets(self):
        parent = getattr(self.dataset, 'targets', None)
        return None if parent is None else [parent[i] for i in self.indices]


def prepare_torchvision_fashion_mnist(root: str, source: Optional[str] = None) -> Path:
    """Unpack the IDX files into ``<root>/FashionMNIST/raw/`` so torchvision (and timm's
    ``--dataset torch/fashion_mnist --data-dir <root>``) find them without downloading."""
    src = Path(source or FASHION_MNIST_DIR)
    raw = Path(root) / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    for stems in FASHION_MNIST_FILES.values():
        for stem in stems:
            found = _find_idx(src, stem)
            if found is None:
                raise DatasetNotFoundError(f"{src}/{stem}.gz is missing: 'sudo apt-get install dataset-fashion-mnist'")
            target = raw / stem
            if not target.exists():
                opener = gzip.open if found.suffix == '.gz' else open
                with opener(found, 'rb') as fin, open(target, 'wb') as fout:
                    fout.write(fin.read())
    return raw


def main(argv: Optional[List[str]] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog='python -m timm_relgraph.data', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('torchvision-fashion-mnist', help='unpack the Debian Fashion-MNIST files for torchvision')
    p.add_argument('root')
    p.add_argument('--source', default=None, help=f'folder with the IDX files (default {FASHION_MNIST_DIR})')
    args = parser.parse_args(argv)
    try:
        raw = prepare_torchvision_fashion_mnist(args.root, args.source)
    except DatasetNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{raw}: ready; use --dataset torch/fashion_mnist --data-dir {args.root}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
