"""Datasets bundled with scikit-learn, so that examples and tests run offline.

``digits`` (1,797 8x8 images of handwritten digits) and ``diabetes`` (442
patients, 10 features, a disease-progression target) ship inside scikit-learn,
which the ``examples`` extra installs. Splits are deterministic: the same seed
gives the same samples in train, val and test on every machine.
"""

from __future__ import annotations

from typing import Any

import gin
import torch
from torch.utils.data import Dataset, TensorDataset

__all__ = ["digits", "diabetes", "DictDataset"]

SPLITS = ("train", "val", "test")


def _sklearn_datasets() -> Any:
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(
            "ginlight.data needs scikit-learn, which ships the bundled datasets. "
            "Install it with: pip install 'ginlight[examples]'"
        ) from None
    return datasets


def _split_indices(n: int, split: str, fractions: tuple[float, float], seed: int) -> torch.Tensor:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = int(n * fractions[0]), int(n * fractions[1])
    bounds = {"train": (n_val + n_test, n), "val": (0, n_val), "test": (n_val, n_val + n_test)}
    start, stop = bounds[split]
    return order[start:stop]


class DictDataset(Dataset):
    """Serves the samples of tensors as dicts (``{"image": ..., "label": ..., "id": ...}``)."""

    def __init__(self, **tensors: torch.Tensor):
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"DictDataset tensors differ in length: { {k: len(t) for k, t in tensors.items()} }.")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: tensor[index] for key, tensor in self.tensors.items()}


@gin.configurable(module="ginlight.data")
def digits(
    split: str = "train",
    as_dict: bool = False,
    flatten: bool = False,
    fractions: tuple[float, float] = (0.15, 0.15),
    seed: int = 0,
) -> Dataset:
    """scikit-learn's digits, scaled to [0, 1], split into train, val and test.

    Args:
        split: ``train``, ``val`` or ``test``.
        as_dict: serve ``{"image", "label", "id"}`` dicts instead of ``(image, label)``.
        flatten: images as 64-vectors instead of 1x8x8.
        fractions: the shares of val and test; train gets the rest.
        seed: fixes the split, independently of the experiment's seed.
    """
    bunch = _sklearn_datasets().load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32) / 16.0
    images = images.reshape(len(images), -1) if flatten else images.unsqueeze(1)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    index = _split_indices(len(images), split, fractions, seed)
    if as_dict:
        return DictDataset(image=images[index], label=labels[index], id=index)
    return TensorDataset(images[index], labels[index])


@gin.configurable(module="ginlight.data")
def diabetes(
    split: str = "train",
    fractions: tuple[float, float] = (0.15, 0.15),
    seed: int = 0,
) -> Dataset:
    """scikit-learn's diabetes regression set, target standardised, as ``(features, target)``.

    The target (disease progression) is standardised with the whole set's mean and
    standard deviation so that MSE values read on a unit scale; features come
    already scaled by scikit-learn.
    """
    bunch = _sklearn_datasets().load_diabetes()
    features = torch.tensor(bunch.data, dtype=torch.float32)
    target = torch.tensor(bunch.target, dtype=torch.float32)
    target = ((target - target.mean()) / target.std()).unsqueeze(1)
    index = _split_indices(len(features), split, fractions, seed)
    return TensorDataset(features[index], target[index])
