"""Planted configs: real ginlight checkpoints whose stored config someone has edited to run their code.

Each attack appends a few lines to the stored config of a real checkpoint. Run as
gin would run it, each line creates ``marker`` (a shell command, a pickle loaded
with ``weights_only=False``, a file written, or a module's import-time code), so
a test that finds no marker after a refused load shows that nothing ran.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

#: Modules of the payload, importable where the tests put their folder: their import writes the marker.
PAYLOAD_MODULES = ("payload_path", "payload_register")
PAYLOAD_CODE = "from pathlib import Path\nPath({marker!r}).write_text('ran')\n\ndef run():\n    pass\n"


@dataclass(frozen=True)
class Attack:
    """Lines to plant; the name a refusal must quote (``culprit``); the line of the config it is on, counted from
    the first planted line (1)."""

    name: str
    lines: str
    culprit: str
    line: int = 1


class _Pickled:
    """Runs a shell command when unpickled (``torch.load(weights_only=False)``)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def attacks(marker: Path, folder: Path) -> list[Attack]:
    """The attacks on ``marker``; ``folder`` holds the payload modules and the pickle (:func:`payload_folder`)."""
    return [
        Attack("os.system", f"ginlight.Experiment.system = @os.system()\nos.system.command = 'touch {marker}'",
               "os.system"),
        Attack("subprocess.run",
               f"ginlight.Experiment.system = @subprocess.run()\nsubprocess.run.args = ['touch', '{marker}']",
               "subprocess.run"),
        Attack("torch.load", f"System.model = @torch.load()\ntorch.load.f = '{folder / 'payload.pt'}'\n"
                             "torch.load.weights_only = False", "torch.load"),
        Attack("torch.save", f"System.model = @torch.save()\ntorch.save.obj = 'x'\ntorch.save.f = '{marker}'",
               "torch.save"),
        Attack("macro", f"PAYLOAD = @os.system()\nginlight.Experiment.system = %PAYLOAD\n"
                        f"os.system.command = 'touch {marker}'", "os.system"),
        Attack("logging.os.system", f"ginlight.Experiment.system = @logging.os.system()\n"
                                    f"logging.os.system.command = 'touch {marker}'", "logging.os.system"),
        Attack("torch.os.system", f"ginlight.Experiment.system = @torch.os.system()\n"
                                  f"torch.os.system.command = 'touch {marker}'", "torch.os.system"),
        Attack("path folder", f"# ginlight-path: {folder / 'path'}\nimport payload_path", "import payload_path", 2),
        Attack("register line", "# ginlight-register: payload_register.run", "payload_register.run"),
    ]


def payload_folder(folder: Path, marker: Path) -> Path:
    """Writes the payload into ``folder``: ``path/payload_path.py`` (reached by a ``# ginlight-path:`` line),
    ``register/payload_register.py`` (for ``sys.path``: the test puts it there) and ``payload.pt``."""
    for sub, module in (("path", "payload_path"), ("register", "payload_register")):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / f"{module}.py").write_text(PAYLOAD_CODE.format(marker=str(marker)))
    torch.save(_Pickled(f"touch {marker}"), folder / "payload.pt")
    return folder


def plant(checkpoint: Path, lines: str, target: Path) -> int:
    """Writes ``checkpoint`` with ``lines`` appended to its stored config to ``target``; returns the number of the
    first planted line in that config."""
    state = torch.load(checkpoint, weights_only=True)
    text = state["ginlight"]["operative_config"].rstrip("\n") + "\n"
    state["ginlight"]["operative_config"] = text + lines + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return text.count("\n") + 1


def edited_run_dir(run_dir: Path, lines: str, target: Path) -> Path:
    """A copy of ``run_dir`` whose checkpoints' configs and operative config have ``lines`` appended."""
    shutil.copytree(run_dir, target)
    for checkpoint in (target / "checkpoints").glob("*.ckpt"):
        plant(checkpoint, lines, checkpoint)
    operative = target / "operative_config.gin"
    operative.write_text(operative.read_text() + lines + "\n")
    return target


MODELS = '''
import gin
from torch import nn


@gin.configurable
class TwoLayerNet(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)
'''
DATA = '''
from pathlib import Path

import gin
import torch
from torch.utils.data import TensorDataset

@gin.configurable
def noisy_line(n: int = 64, seed: int = 0, built: str = "") -> TensorDataset:
    """``built``: a file written whenever a dataset is built (loading a model must build none)."""
    if built:
        Path(built).write_text("built")
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=generator)
    return TensorDataset(x, 2 * x)
'''
CONFIG = """
import trustlab.models
import trustlab.data

Experiment.system = @System()
System.model = @TwoLayerNet()
TwoLayerNet.hidden = 12
System.criterion = @torch.nn.MSELoss()
System.optimizer = @torch.optim.Adam
System.dataloaders = {'train': @train/DataLoader(), 'val': @val/DataLoader(), 'test': @val/DataLoader()}
DataLoader.dataset = @noisy_line()
DataLoader.batch_size = 16
val/noisy_line.seed = 1
noisy_line.built = '{built}'
Trainer.max_epochs = 1
"""


def write_project(folder: Path) -> Path:
    """The project ``trustlab`` (a model, and a dataset that leaves ``dataset-built`` in ``folder`` when built)
    and its config."""
    (folder / "trustlab").mkdir(parents=True)
    (folder / "trustlab" / "__init__.py").write_text("")
    (folder / "trustlab" / "models.py").write_text(MODELS)
    (folder / "trustlab" / "data.py").write_text(DATA)
    (folder / "line.gin").write_text(CONFIG.replace("{built}", str(folder / "dataset-built")))
    return folder
