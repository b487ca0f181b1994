"""The GAN: adversarial training of an injected generator and discriminator.

Lightning's manual optimization runs the two updates of each step in order: the
discriminator learns to tell real images from generated ones, then the
generator learns to make the discriminator take its images for real
(the non-saturating loss of Goodfellow et al., 2014).
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterable

import gin
import torch
import torch.nn.functional as F
from lightning import LightningModule
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image
from torch import nn

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
# Upscale the sample grid in the PNG so that 8x8 digits are visible at a glance.
PNG_CELL_PIXELS = 40


@gin.configurable
class GAN(LightningModule):
    """A generative adversarial network.

    Args:
        generator: maps ``(n, generator.latent_dim)`` latents to images in [-1, 1].
        discriminator: maps images to one logit each.
        generator_optimizer: called with the generator's parameters, e.g. ``torch.optim.Adam``.
        discriminator_optimizer: called with the discriminator's parameters.
        num_samples: how many images the sample grid shows; they come from one
            fixed latent batch, so the grids of successive epochs are comparable.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        generator_optimizer: OptimizerFactory,
        discriminator_optimizer: OptimizerFactory,
        num_samples: int = 64,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        self.register_buffer("sample_latents", torch.randn(num_samples, generator.latent_dim))

    def configure_optimizers(self):
        return (
            self.generator_optimizer(self.generator.parameters()),
            self.discriminator_optimizer(self.discriminator.parameters()),
        )

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        generator_optimizer, discriminator_optimizer = self.optimizers()
        fake = self.generator(torch.randn(len(real), self.generator.latent_dim, device=self.device))

        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake.detach())
        discriminator_loss = (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        discriminator_optimizer.zero_grad()
        self.manual_backward(discriminator_loss)
        discriminator_optimizer.step()

        judged = self.discriminator(fake)
        generator_loss = F.binary_cross_entropy_with_logits(judged, torch.ones_like(judged))
        generator_optimizer.zero_grad()
        self.manual_backward(generator_loss)
        generator_optimizer.step()

        self.log_dict(
            {
                "train/generator_loss": generator_loss,
                "train/discriminator_loss": discriminator_loss,
                # The discriminator's mean belief that an image is real: near 0.5 on
                # both when the two players are balanced.
                "train/d_real": torch.sigmoid(real_logits).mean(),
                "train/d_fake": torch.sigmoid(fake_logits).mean(),
            },
            on_step=True, on_epoch=True, prog_bar=True,
        )

    def on_train_epoch_end(self) -> None:
        if not self.trainer.is_global_zero:
            return
        self.generator.eval()
        with torch.no_grad():
            samples = self.generator(self.sample_latents)
        self.generator.train()
        grid = image_grid((samples + 1) / 2)
        path = os.path.join(self.trainer.default_root_dir, "samples", f"epoch_{self.current_epoch:03d}.png")
        save_png(grid, path, scale=max(1, PNG_CELL_PIXELS // samples.shape[-1]))
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", grid, global_step=self.current_epoch)


def image_grid(images: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Tiles ``(n, c, h, w)`` images in [0, 1] into one ``(c, H, W)`` image, as square as possible."""
    n, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    blanks = images.new_zeros(rows * columns - n, channels, height, width)
    cells = F.pad(torch.cat([images.clamp(0, 1), blanks]), (padding,) * 4)
    cell_h, cell_w = height + 2 * padding, width + 2 * padding
    return (cells.view(rows, columns, channels, cell_h, cell_w)
            .permute(2, 0, 3, 1, 4)
            .reshape(channels, rows * cell_h, columns * cell_w))


def save_png(image: torch.Tensor, path: str, scale: int = 1) -> None:
    """Writes a ``(c, H, W)`` image in [0, 1] as a PNG, each pixel ``scale`` x ``scale``."""
    pixels = (image * 255).round().to(torch.uint8).cpu()
    pixels = pixels[0] if len(pixels) == 1 else pixels.permute(1, 2, 0)
    picture = Image.fromarray(pixels.numpy())
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    picture.save(path)
