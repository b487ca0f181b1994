"""A GAN on handwritten digits, written as ordinary PyTorch Lightning code.

Nothing here knows about ginlight: the classes are only decorated with
``@gin.configurable``, and ``configs/gan.gin`` wires them. Importing the package
registers all of them (``import examples.gan`` in a gin file).
"""

from examples.gan.data import DigitsDataModule
from examples.gan.models import Discriminator, Generator
from examples.gan.gan import GAN

__all__ = ["DigitsDataModule", "Discriminator", "Generator", "GAN"]
