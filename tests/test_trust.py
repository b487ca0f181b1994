"""A checkpoint from someone else runs no code the user did not choose: load_system and the trust policy, in process.

The checkpoints are real: a stack-only run and a project run, trained once per module.
Fresh processes (sys.modules, the commands) are in test_trust_commands.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gin
import pytest
import torch
from conftest import CONFIGS, SHORT
from planted import PAYLOAD_MODULES, attacks, edited_run_dir, payload_folder, plant, write_project

import ginlight
from ginlight.gin import registry, trust
from ginlight.checkpoint import weights_hash

@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The run directories of a stack-only run and of a project run (``trustlab``)."""
    root = tmp_path_factory.mktemp("trust")
    stack = ginlight.train([CONFIGS / "classifier.gin"], [*SHORT, "MAX_EPOCHS=1"], root_dir=root / "runs")
    lab = write_project(root / "lab")
    project = ginlight.train([lab / "line.gin"], SHORT, projects=[str(lab / "trustlab")], root_dir=root / "runs")
    (lab / "dataset-built").unlink()
    return {"stack": stack.run_dir, "project": project.run_dir}


@pytest.fixture
def caller_config():
    """A config of the caller's own, parsed before the load: it must be there, unchanged, afterwards."""
    ginlight.register_all()
    gin.clear_config()
    gin.parse_config(["ginlight.Experiment.seed = 123", "torch.optim.SGD.lr = 0.5"])
    yield gin.config_str()
    gin.clear_config()


def test_a_stack_only_checkpoint_loads_with_no_trust_and_leaves_the_caller_as_it_was(runs, caller_config):
    last = runs["stack"] / "checkpoints" / "last.ckpt"
    path, random_state = list(sys.path), torch.random.get_rng_state()
    system = ginlight.load_system(last)
    assert weights_hash(system.state_dict()) == weights_hash(torch.load(last, weights_only=True)["state_dict"])
    assert system.dataloaders == {}
    assert system.eval()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert gin.config_str() == caller_config and gin.query_parameter("ginlight.Experiment.seed") == 123
    assert sys.path == path and torch.equal(torch.random.get_rng_state(), random_state)


def test_a_project_checkpoint_is_refused_naming_the_project_and_loads_when_trusted(runs, caller_config):
    last = runs["project"] / "checkpoints" / "last.ckpt"
    with pytest.raises(ginlight.ConfigError) as refused:
        ginlight.load_system(last)
    message = str(refused.value)
    assert message.startswith(f"the config stored in {last}: ")
    assert "`import trustlab.models` imports a module that is not trusted; trust 'trustlab'" in message
    assert "ginlight.load_system(path, trust=['trustlab'])" in message

    path = list(sys.path)
    system = ginlight.load_system(last, trust=["trustlab"])
    assert type(system.model).__name__ == "TwoLayerNet" and system.model.net[0].out_features == 12
    assert weights_hash(system.state_dict()) == weights_hash(torch.load(last, weights_only=True)["state_dict"])
    assert not (runs["project"].parents[2] / "lab" / "dataset-built").exists()  # no dataset was built
    assert gin.config_str() == caller_config and sys.path == path


@pytest.mark.parametrize("base", ["stack", "project"])
@pytest.mark.parametrize("attack", [a.name for a in attacks(Path("m"), Path("f"))])
def test_each_planted_attack_is_refused_before_anything_runs(base, attack, runs, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    folder = payload_folder(tmp_path / "payload", marker)
    monkeypatch.syspath_prepend(str(folder / "register"))  # so that a payload import would succeed, if tried
    (planted,) = [a for a in attacks(marker, folder) if a.name == attack]
    checkpoint = tmp_path / "planted.ckpt"
    first = plant(runs[base] / "checkpoints" / "last.ckpt", planted.lines, checkpoint)
    trusted = ["trustlab"] if base == "project" else []  # trusting the project allows nothing else
    with pytest.raises(ginlight.ConfigError) as refused:
        ginlight.load_system(checkpoint, trust=trusted)
    message = str(refused.value)
    assert f"line {first + planted.line - 1}: `{planted.culprit}`" in message, message
    assert "trust" in message and "Nothing outside the modules you trust has been imported or run." in message
    assert not marker.exists()
    assert not set(PAYLOAD_MODULES) & set(sys.modules)


def test_a_name_is_judged_by_the_object_it_resolves_to(runs, tmp_path):
    checkpoint = tmp_path / "planted.ckpt"
    first = plant(runs["stack"] / "checkpoints" / "last.ckpt",
                  "ginlight.Experiment.system = @logging.os.system()\n"
                  "System.model = @torch.utils.cpp_extension.load()\n"
                  "System.criterion = @torch.hub.load()\n"
                  "System.inferer = @ginlight.gin.registry.registered.os.system", checkpoint)
    with pytest.raises(ginlight.ConfigError) as refused:
        ginlight.load_system(checkpoint)
    message = str(refused.value)
    assert f"line {first}: `logging.os.system` is posix.system, which is neither ginlight's" in message
    assert "trust 'posix'" in message
    assert (f"line {first + 1}: `torch.utils.cpp_extension.load` naming it would import torch.utils.cpp_extension"
            in message) or "torch.utils.cpp_extension" in sys.modules
    assert f"line {first + 2}: `torch.hub.load` is neither ginlight's" in message
    assert "trust 'torch.hub'" in message  # a module inside the stack, not the whole of torch
    assert (f"line {first + 3}: `ginlight.gin.registry.registered.os.system` reaches through "
            "ginlight.gin.registry._Namespace instance" in message)


def test_an_edited_run_directory_is_refused(runs, tmp_path):
    marker = tmp_path / "marker"
    (planted,) = [a for a in attacks(marker, tmp_path) if a.name == "os.system"]
    run_dir = edited_run_dir(runs["stack"], planted.lines, tmp_path / "edited")
    with pytest.raises(ginlight.ConfigError, match="`os.system` is posix.system"):
        ginlight.load_system(run_dir)
    assert not marker.exists()


def test_every_family_of_the_stack_is_judged_in_or_out():
    modules = {module for module, _, _ in registry.components()}
    unjudged = [m for m in modules if not any(m == key or m.startswith(key + ".") for key in trust.FAMILIES)]
    assert not unjudged
    stack = {"torch", "torch.nn", "torch.optim", "torchmetrics", "lightning.pytorch.callbacks"}
    assert stack <= trust.allowed_modules()
    assert not {"torch.hub", "torch.serialization", "torch.utils.cpp_extension"} & trust.allowed_modules()


def test_trust_names_modules(runs):
    with pytest.raises(ginlight.ConfigError, match="trust names modules"):
        ginlight.load_system(runs["project"], trust=["../lab"])
