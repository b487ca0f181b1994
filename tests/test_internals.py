"""ginlight.internals: each reach into another library's private internals, exercised against the installed one,
so that an upgrade that moves a private name fails here, by name, rather than somewhere inside a run."""

from __future__ import annotations

import os

from lightning import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from ginlight import internals

# ---- Lightning (checked on 2.6) -----------------------------------------------------------------


def _quiet_trainer(**kwargs) -> Trainer:
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   **kwargs)


def _fitted(tmp_path, model: BoringModel | None = None) -> Trainer:
    trainer = _quiet_trainer(max_steps=2, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(model or BoringModel())
    return trainer


def test_lightning_sets_the_hook_name_attribute_on_the_module_around_each_hook(tmp_path):
    assigned: list[str] = []

    class Recording(BoringModel):
        def __setattr__(self, name, value):
            assigned.append(name)
            super().__setattr__(name, value)

    _fitted(tmp_path, Recording())
    # The System's __setattr__ fast path is for this attribute: dozens of assignments per step.
    assert assigned.count(internals.HOOK_NAME_ATTRIBUTE) > 10, sorted(set(assigned))


def test_ddp_spawn_and_ddp_fork_start_ranks_by_multiprocessing_and_ddp_by_rerunning_the_command():
    launchers = {strategy: _quiet_trainer(strategy=strategy, accelerator="cpu", devices=2).strategy.launcher
                 for strategy in ("ddp_spawn", "ddp_fork", "ddp")}
    assert {strategy: internals.is_multiprocessing_launcher(launcher) for strategy, launcher in launchers.items()} \
        == {"ddp_spawn": True, "ddp_fork": True, "ddp": False}
    # What ginlight.trainer.spawns_ranks reads beside it: only spawned ranks start without this process's memory.
    assert not launchers["ddp_spawn"].is_interactive_compatible and launchers["ddp_fork"].is_interactive_compatible


def test_a_model_checkpoint_saves_the_state_once_per_step(tmp_path):
    trainer = _fitted(tmp_path / "run")
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", filename="end")
    internals.save_unless_saved(checkpoint, trainer)
    saved = tmp_path / "checkpoints" / "end.ckpt"
    assert saved.is_file()
    saved.unlink()
    internals.save_unless_saved(checkpoint, trainer)  # saved at this step already: ModelCheckpoint's own skip test
    assert not saved.exists()


def test_seed_everything_asks_for_seeded_workers_through_its_environment_variable(monkeypatch):
    monkeypatch.delenv(internals.SEED_WORKERS_ENV, raising=False)  # restored as it was afterwards
    seed_everything(1, workers=True, verbose=False)
    assert os.environ.get(internals.SEED_WORKERS_ENV) == "1"
    seed_everything(1, workers=False, verbose=False)
    assert os.environ.get(internals.SEED_WORKERS_ENV) == "0"
