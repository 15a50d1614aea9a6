"""Data that works offline: embedded real digits, generated sets, opt-in benchmarks.

- Real and bundled: :func:`load_digits` (scikit-learn's 1,797 handwritten digits) and
  :func:`sample_image` (photographs shipped with scikit-image).
- Generated with a fixed seed: :func:`translated_digits`, :func:`synthetic_segmentation`.
- Opt-in benchmarks read from a local folder: :func:`load_mnist`,
  :func:`load_fashion_mnist`, :func:`load_cifar10`; fetch them once with
  ``python -m d2lcnn.data download NAME`` (:mod:`d2lcnn.data.download`).
- Helpers: splitting, normalization, PCA and PCA/ZCA whitening (:mod:`d2lcnn.data.whitening`),
  NumPy augmentation; torch ``Dataset``/``DataLoader``
  helpers (:class:`ArrayDataset`, :func:`make_loader`) and torch augmentation
  (:mod:`d2lcnn.data.transforms`).

Importing this package does not import torch: :class:`ArrayDataset` and :func:`make_loader`
are loaded on first use, so the download command starts quickly.
"""

from d2lcnn.data.augment import random_crop, random_flip, random_translate
from d2lcnn.data.benchmarks import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    load_cifar10,
    load_fashion_mnist,
    load_mnist,
    read_cifar10_batch,
    read_idx,
)
from d2lcnn.data.digits import load_digits, translated_digits
from d2lcnn.data.download import DownloadError, data_root, download, locate_data_root
from d2lcnn.data.images import SAMPLE_IMAGES, sample_image, sample_image_path
from d2lcnn.data.preprocess import Splits, channel_stats, normalize, train_val_test_split
from d2lcnn.data.registry import DATASETS, LoadedDataset, load_dataset
from d2lcnn.data.synthetic import SEGMENTATION_CLASSES, synthetic_segmentation
from d2lcnn.data.whitening import PCA, fit_pca, pca_reconstruct, pca_transform, zca_whiten

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "PCA",
    "SAMPLE_IMAGES",
    "SEGMENTATION_CLASSES",
    "ArrayDataset",
    "DownloadError",
    "LoadedDataset",
    "Splits",
    "channel_stats",
    "data_root",
    "download",
    "fit_pca",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "locate_data_root",
    "make_loader",
    "normalize",
    "pca_reconstruct",
    "pca_transform",
    "random_crop",
    "random_flip",
    "random_translate",
    "read_cifar10_batch",
    "read_idx",
    "sample_image",
    "sample_image_path",
    "synthetic_segmentation",
    "train_val_test_split",
    "translated_digits",
    "zca_whiten",
]

_TORCH_NAMES = {"ArrayDataset", "make_loader"}  # live in d2lcnn.data.loaders (imports torch)


def __getattr__(name):
    # PEP 562: load the torch-based helpers only when they are first used.
    if name in _TORCH_NAMES:
        from d2lcnn.data import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module 'd2lcnn.data' has no attribute {name!r}")
