"""configs/gan.gin end to end: user code wired by macros and scopes, run by ginlight-train."""

from __future__ import annotations

import inspect
import sys

import gin
import pytest
import torch
from conftest import CONFIGS, REPO, bindings, ginlight_train, read_record, run_dirs
from outcomes import assert_same_outcome
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import ginlight
from examples.gan import DigitsDataModule
from examples.gan.gan import image_grid

pytestmark = pytest.mark.slow

EPOCHS = 2
# A few steps: enough to produce every artifact, not to learn digits.
GAN_SHORT = [f"MAX_EPOCHS={EPOCHS}", "Trainer.limit_train_batches=3", "Trainer.enable_progress_bar=False"]
# The README's command, shortened; LR_G overridden on the command line like a user would.
LR_G = 2e-3


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    """One short run of the shipped GAN config from the repository root, as the README shows it (the
    installed command: `examples` is importable because ginlight puts the working directory on sys.path)."""
    root = tmp_path_factory.mktemp("runs")
    result = ginlight_train("--gin_file=configs/gan.gin", f"--root_dir={root}",
                            *bindings(*GAN_SHORT, f"LR_G={LR_G}"), cwd=REPO)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(root)
    return run_dir


def test_gan_run_completes_with_both_losses_and_discriminator_outputs(gan_run):
    record = read_record(gan_run)
    assert record["status"] == "completed"
    for name in ("generator_loss", "discriminator_loss", "d_real", "d_fake"):
        assert f"train/{name}_epoch" in record["metrics"]
    assert 0 < record["metrics"]["train/d_real_epoch"] < 1
    assert (gan_run / "checkpoints" / "last.ckpt").is_file()


def test_each_epoch_writes_a_sample_grid_png(gan_run):
    pngs = sorted(p.name for p in (gan_run / "samples").iterdir())
    assert pngs == [f"epoch_{epoch:03d}.png" for epoch in range(EPOCHS)]
    picture = Image.open(gan_run / "samples" / pngs[-1])
    assert picture.mode == "L" and picture.width == picture.height  # 64 samples: an 8x8 grid
    pixels = torch.tensor(list(picture.tobytes()), dtype=torch.float32)
    assert pixels.std() > 0  # generated images, not a blank page


def test_samples_and_metrics_go_to_tensorboard(gan_run):
    events = EventAccumulator(str(gan_run / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert [image.step for image in events.Images("samples")] == list(range(EPOCHS))
    assert {"train/generator_loss_epoch", "train/discriminator_loss_epoch", "train/d_real_epoch",
            "train/d_fake_epoch"} <= set(events.Tags()["scalars"])


def test_operative_config_shows_both_scoped_optimizers_in_full_the_macros_and_the_import(gan_run):
    text = (gan_run / "operative_config.gin").read_text()
    adam_parameters = [p for p in inspect.signature(torch.optim.Adam).parameters if p != "params"]
    for scope in ("generator", "discriminator"):
        for parameter in adam_parameters:
            assert f"\n{scope}/Adam.{parameter} = " in text, f"{scope}/Adam.{parameter} missing"
    assert "generator/Adam.lr = %LR_G" in text and "discriminator/Adam.lr = %LR_D" in text
    assert "generator/Adam.betas = (0.5, 0.999)" in text and "discriminator/Adam.betas = (0.5, 0.999)" in text
    assert "GAN.generator_optimizer = @generator/torch.optim.Adam" in text
    assert f"LR_G = {LR_G}" in text  # the command-line override of the macro
    for macro in ("LATENT_DIM = 32", "IMAGE_SIZE = 8", "BATCH_SIZE = 32", "LR_D = 0.0005"):
        assert f"\n{macro}\n" in text
    assert "\nimport examples.gan\n" in text


def test_each_scope_reaches_its_optimizer(gan_run):
    checkpoint = torch.load(gan_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    generator, discriminator = (state["param_groups"][0] for state in checkpoint["optimizer_states"])
    assert generator["lr"] == LR_G  # overridden on the command line
    assert discriminator["lr"] == 5e-4  # LR_D from the file
    assert generator["betas"] == discriminator["betas"] == (0.5, 0.999)  # the unscoped binding reaches both


def test_operative_config_reruns_from_another_directory_with_identical_metrics(gan_run, tmp_path):
    # tmp_path is outside the repository: `examples` is importable only through the
    # `# ginlight-path:` line the operative config carries.
    result = ginlight_train(f"--gin_file={gan_run / 'operative_config.gin'}", f"--root_dir={tmp_path / 'runs'}",
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (rerun,) = run_dirs(tmp_path / "runs")
    # run.json's git (and code.patch, its uncommitted changes) are of the work tree a run was started in:
    # the original's is the repository, the rerun has none.
    assert_same_outcome(gan_run, rerun, only_in_a=["code.patch"], ignore_record=["git"])


@pytest.fixture
def fresh_gin():
    """The classes below are configurables: bindings left by an earlier test would reach them."""
    gin.clear_config()
    yield
    gin.clear_config()


def test_image_grid_tiles_samples_row_by_row_and_pads_a_short_last_row():
    images = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1) / 4
    grid = image_grid(images, padding=1)
    assert grid.shape == (1, 2 * 3, 3 * 3)  # 5 images: 3 columns, 2 rows of 3x3 cells
    centres = grid[0, 1::3, 1::3]
    assert torch.equal(centres, torch.tensor([[0.0, 0.25, 0.5], [0.75, 1.0, 0.0]]))


def test_mnist_without_torchvision_is_a_config_error_naming_what_to_install(fresh_gin, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match="needs torchvision"):
        DigitsDataModule(source="mnist")
    monkeypatch.chdir(REPO)
    with pytest.raises(ginlight.ConfigError, match="needs torchvision") as error:
        ginlight.train([CONFIGS / "gan.gin"], ["DigitsDataModule.source = 'mnist'"], root_dir=tmp_path)
    assert "source = 'sklearn'" in str(error.value)
    assert not any(tmp_path.iterdir())  # no run directory for a configuration error


def test_digits_are_served_in_the_generators_range_at_the_configured_size(fresh_gin):
    data = DigitsDataModule(image_size=12, batch_size=16)
    data.setup("fit")
    (batch,) = next(iter(data.train_dataloader()))
    assert batch.shape == (16, 1, 12, 12)
    assert batch.min() >= -1 and batch.max() <= 1
