"""The generator and the discriminator: multilayer perceptrons over whole images.

Digit images are small, so fully connected networks train in seconds on a CPU
and need no architecture arithmetic tied to the image size.
"""

from __future__ import annotations

from typing import Sequence

import gin
import torch
from torch import nn


def _mlp(sizes: Sequence[int]) -> list[nn.Module]:
    """Linear layers between consecutive ``sizes``, each followed by a LeakyReLU."""
    layers: list[nn.Module] = []
    for inputs, outputs in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(inputs, outputs), nn.LeakyReLU(0.2)]
    return layers


@gin.configurable
class Generator(nn.Module):
    """Maps latent vectors to ``channels x image_size x image_size`` images in [-1, 1].

    Args:
        latent_dim: the size of the latent vectors it takes.
        image_size: the height and width of the images it makes.
        channels: image channels (1 for grey digits).
        hidden: the widths of the hidden layers.
    """

    def __init__(self, latent_dim: int, image_size: int, channels: int = 1, hidden: Sequence[int] = (128, 256)):
        super().__init__()
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        self.net = nn.Sequential(
            *_mlp([latent_dim, *hidden]),
            nn.Linear(hidden[-1] if hidden else latent_dim, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents).view(len(latents), *self.image_shape)


@gin.configurable
class Discriminator(nn.Module):
    """Scores images: one logit each, high for images it takes for real ones.

    Args:
        image_size: the height and width of the images it scores.
        channels: image channels.
        hidden: the widths of the hidden layers.
    """

    def __init__(self, image_size: int, channels: int = 1, hidden: Sequence[int] = (256, 128)):
        super().__init__()
        inputs = channels * image_size * image_size
        self.net = nn.Sequential(
            nn.Flatten(),
            *_mlp([inputs, *hidden]),
            nn.Linear(hidden[-1] if hidden else inputs, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images).squeeze(1)
