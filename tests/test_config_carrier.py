"""ginlight.config_carrier.GinConfigCarrier: gin's configuration carried into processes that start with none."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gin
import pytest
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import DataLoader

from ginlight.gin import parsing
from ginlight.config_carrier import GinConfigCarrier

# What a spawned process does with a carrier: unpickle it (as ddp_spawn and DataLoader workers do), then call
# what the configuration binds.
ARRIVE = """
import pickle, sys
import gin
pickle.loads(sys.stdin.buffer.read())
print(gin.query_parameter("ginlight.models.MLP.hidden"), gin.get_configurable("usermod.scaled")())
"""
USER_MODULE = "import gin\n\n\n@gin.configurable\ndef scaled(value=1, factor=1):\n    return value * factor\n"


@pytest.fixture
def fresh_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.mark.slow
def test_a_process_with_no_config_gets_the_carried_one_and_imports_from_the_carried_paths(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "usermod.py").write_text(USER_MODULE)
    carrier = GinConfigCarrier([str(tmp_path / "project")], text=(
        "import usermod\nginlight.models.MLP.hidden = (7,)\nusermod.scaled.value = 3\nusermod.scaled.factor = 5\n"))
    # From another directory, with nothing on sys.path but what the carrier brings.
    result = subprocess.run([sys.executable, "-c", ARRIVE], input=pickle.dumps(carrier), cwd=tmp_path,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout.decode().split() == ["(7,)", "15"]


def test_by_default_it_carries_the_current_config(fresh_gin):
    parsing.parse(bindings=["ginlight.models.MLP.hidden = (7,)"])
    carried = GinConfigCarrier([]).text
    gin.clear_config()
    gin.parse_config(carried)
    assert gin.query_parameter("ginlight.models.MLP.hidden") == (7,)


def test_a_process_that_has_a_config_keeps_its_own(fresh_gin):
    parsing.parse(bindings=["ginlight.models.MLP.hidden = (7,)"])
    carrier = GinConfigCarrier([], text="ginlight.models.MLP.hidden = (99,)\n")
    pickle.loads(pickle.dumps(carrier))
    assert gin.query_parameter("ginlight.models.MLP.hidden") == (7,)
    gin.clear_config()
    carrier.restore()
    assert gin.query_parameter("ginlight.models.MLP.hidden") == (99,)


def test_workers_restore_first_then_run_the_loaders_own_init(fresh_gin):
    calls = []
    loader = DataLoader(list(range(4)), num_workers=2, worker_init_fn=calls.append)
    GinConfigCarrier([], text="").wrap_workers(loader)
    carrier = loader.worker_init_fn
    assert isinstance(carrier, GinConfigCarrier) and carrier.worker_init_fn == calls.append
    carrier(1)
    assert calls == [1]
    GinConfigCarrier([], text="").wrap_workers(loader)
    assert loader.worker_init_fn is carrier  # wrapped once, however often it is asked


def test_a_loader_without_workers_is_left_as_it_is(fresh_gin):
    loader = DataLoader(list(range(4)))
    GinConfigCarrier([], text="").wrap_workers(loader)
    assert loader.worker_init_fn is None


@pytest.mark.parametrize("seed_workers", ["1", None], ids=["seed_everything(workers=True)", "not asked"])
def test_without_an_init_of_their_own_workers_get_lightnings_seeding_when_asked(fresh_gin, monkeypatch, seed_workers):
    """Lightning seeds workers only where a loader has no worker_init_fn; the carrier takes its place."""
    loader = DataLoader(list(range(4)), num_workers=1)
    GinConfigCarrier([], text="").wrap_workers(loader)
    if seed_workers:
        monkeypatch.setenv("PL_SEED_WORKERS", seed_workers)
    else:
        monkeypatch.delenv("PL_SEED_WORKERS", raising=False)

    def draw_after(init) -> torch.Tensor:
        torch.manual_seed(7)
        init(0)
        return torch.rand(3)

    lightnings, untouched = draw_after(pl_worker_init_function), draw_after(lambda worker_id: None)
    assert not torch.equal(lightnings, untouched)
    assert torch.equal(draw_after(loader.worker_init_fn), lightnings if seed_workers else untouched)


@pytest.mark.slow
def test_a_config_under_dynamic_registration_is_carried_with_its_imports(tmp_path, fresh_gin, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "dynmod.py").write_text("def scaled(value=1, factor=1):\n    return value * factor\n")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    gin_file = tmp_path / "dynamic.gin"
    gin_file.write_text("from __gin__ import dynamic_registration\nimport dynmod as d\nd.scaled:\n  value = 3\n"
                        "  factor = 5\n")
    parsing.parse([gin_file])
    carrier = GinConfigCarrier([str(tmp_path / "project")])
    arrive = "import pickle, sys\nimport gin\npickle.loads(sys.stdin.buffer.read())\n" \
             "print(gin.get_configurable('dynmod.scaled')())\n"
    result = subprocess.run([sys.executable, "-c", arrive], input=pickle.dumps(carrier), cwd=tmp_path,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout.decode().split() == ["15"]
