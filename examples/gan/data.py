"""Handwritten digits for the GAN, as images in [-1, 1] (the generator's tanh range).

``source='sklearn'`` serves scikit-learn's bundled 8x8 digits (1,797 images,
offline); ``source='mnist'`` serves MNIST's 60,000 28x28 training images through
torchvision, from a copy already on disk.
"""

from __future__ import annotations

import gin
import torch
import torch.nn.functional as F
from lightning import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset

SOURCES = ("sklearn", "mnist")


@gin.configurable
class DigitsDataModule(LightningDataModule):
    """Unlabelled digit images, resized to ``image_size`` when the source differs.

    Args:
        image_size: the height and width served.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        source: ``'sklearn'`` or ``'mnist'``.
        data_dir: where torchvision finds MNIST (``data_dir/MNIST/raw``); unused for sklearn.
    """

    def __init__(
        self,
        image_size: int = 8,
        batch_size: int = 64,
        num_workers: int = 0,
        source: str = "sklearn",
        data_dir: str = "data",
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}.")
        if source == "mnist":
            _mnist_class()  # fail before training starts, not at setup
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.source = source
        self.data_dir = data_dir
        self.dataset: TensorDataset | None = None

    def setup(self, stage: str) -> None:
        images = _mnist(self.data_dir) if self.source == "mnist" else _sklearn_digits()
        images = images.unsqueeze(1)
        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode="bilinear", antialias=True, align_corners=False)
        self.dataset = TensorDataset(images * 2 - 1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)


def _sklearn_digits() -> torch.Tensor:
    """scikit-learn's digits as ``(n, 8, 8)`` floats in [0, 1]."""
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().images, dtype=torch.float32) / 16.0


def _mnist(data_dir: str) -> torch.Tensor:
    """MNIST's training images as ``(n, 28, 28)`` floats in [0, 1]."""
    try:
        dataset = _mnist_class()(data_dir, train=True, download=False)
    except RuntimeError as exc:  # torchvision's "Dataset not found"
        raise FileNotFoundError(
            f"MNIST not found under '{data_dir}' ({exc}). Download it once with "
            f"`python -c \"import torchvision; torchvision.datasets.MNIST('{data_dir}', download=True)\"`, "
            "or bind DigitsDataModule.data_dir to where it is."
        ) from None
    return dataset.data.float() / 255.0


def _mnist_class():
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise ImportError(
            "DigitsDataModule.source = 'mnist' needs torchvision, which is not installed. "
            "Install the torchvision build that matches your torch, "
            "or use source = 'sklearn' (the bundled 8x8 digits)."
        ) from None
    return MNIST
