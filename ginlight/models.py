"""Small networks for the bundled datasets and for trying configurations out."""

from __future__ import annotations

from typing import Sequence

import gin
from torch import nn

__all__ = ["MLP", "ConvNet"]


@gin.configurable(module="ginlight.models")
class MLP(nn.Sequential):
    """Linear layers with an activation between them; flattens its input first.

    Args:
        in_features: size of one flattened input.
        hidden: sizes of the hidden layers.
        out_features: size of the output.
        activation: a module class such as ``@torch.nn.GELU``.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        in_features: int = gin.REQUIRED,
        out_features: int = gin.REQUIRED,
        hidden: Sequence[int] = (128,),
        activation: type[nn.Module] = nn.ReLU,
        dropout: float = 0.0,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        sizes = [in_features, *hidden]
        for size_in, size_out in zip(sizes, sizes[1:]):
            layers += [nn.Linear(size_in, size_out), activation()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], out_features))
        super().__init__(*layers)


@gin.configurable(module="ginlight.models")
class ConvNet(nn.Sequential):
    """3x3 convolutions, each followed by an activation and 2x2 max pooling, then a linear head.

    Args:
        in_channels: channels of the input images.
        out_features: number of outputs (classes).
        channels: output channels of each convolution block.
        activation: a module class such as ``@torch.nn.ReLU``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_features: int = gin.REQUIRED,
        channels: Sequence[int] = (16, 32),
        activation: type[nn.Module] = nn.ReLU,
    ):
        layers: list[nn.Module] = []
        for size_in, size_out in zip([in_channels, *channels], channels):
            layers += [nn.Conv2d(size_in, size_out, 3, padding=1), activation(), nn.MaxPool2d(2, ceil_mode=True)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], out_features)]
        super().__init__(*layers)
