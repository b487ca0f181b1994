"""ginlight-check: each kind of mistake found before anything is built, at its line, and no false alarm.

The checks run in this process, through the command's entry point (the function
the console script calls) or :func:`ginlight.experiment.config_problems` on a parsed config;
test_check_command.py runs the real commands in subprocesses.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import gin
import pytest
from absl import flags

from benchmarks import check_time
from conftest import CONFIGS, REPO, SHIPPED
from ginlight import sweep
from ginlight.gin import check, parsing
from ginlight.cli import check as check_command
from ginlight.cli import train as train_command
from ginlight.errors import ConfigError
from ginlight.experiment import config_problems
from ginlight.slurm import SlurmLauncher

# A config that trains (the README's minimal one, short); each test appends its mistake.
BASE = """\
Experiment.system = @System()
System.model = @ginlight.models.MLP()
ginlight.models.MLP.in_features = 64
ginlight.models.MLP.out_features = 10
ginlight.models.MLP.hidden = (16,)
System.criterion = @torch.nn.CrossEntropyLoss()
System.optimizer = @torch.optim.AdamW
torch.optim.AdamW.lr = 1e-3
System.metrics = {'val': @torchmetrics.Accuracy()}
torchmetrics.Accuracy.task = 'multiclass'
torchmetrics.Accuracy.num_classes = 10
System.dataloaders = {'train': @train/DataLoader(), 'val': @val/DataLoader()}
DataLoader.dataset = @ginlight.data.digits()
DataLoader.batch_size = 32
ginlight.data.digits.flatten = True
train/ginlight.data.digits.split = 'train'
val/ginlight.data.digits.split = 'val'
Trainer.max_epochs = 1
Trainer.limit_train_batches = 2
Trainer.limit_val_batches = 1
Trainer.enable_progress_bar = False
Trainer.enable_model_summary = False
Trainer.logger = False
"""
NEXT = len(BASE.splitlines()) + 1  # the line of the first line a test appends


@pytest.fixture
def parsed(tmp_path):
    """``parsed(text)``: the problems of BASE followed by ``text``, as parsed from ``tmp_path/case.gin``."""

    def parse(text: str, base: str = BASE) -> list[check.Problem]:
        (tmp_path / "case.gin").write_text(base + textwrap.dedent(text))
        return config_problems(parsing.parse([tmp_path / "case.gin"]))

    yield parse
    gin.clear_config()


def run_check(args: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """Runs the ``ginlight-check`` entry point in ``cwd``: (exit status, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    flags.FLAGS.unparse_flags()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        check_command.run(["ginlight-check", *args])
    captured = capsys.readouterr()
    return exit.value.code, captured.out, captured.err


def only(problems: list[check.Problem]) -> check.Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_the_base_config_has_no_problem(parsed):
    assert parsed("") == []


def test_a_scope_typo_is_a_warning_at_its_line_with_the_scope_it_may_mean(parsed):
    problem = only(parsed("trian/ginlight.data.digits.seed = 3\n"))
    assert problem.unreached and problem.location.endswith(f"case.gin:{NEXT}")
    assert "'trian/ginlight.data.digits.seed' is bound in scope 'trian'" in problem.message
    assert problem.hint == "Did you mean 'train/'?"


def test_an_int_where_a_sequence_is_annotated_is_an_error(parsed):
    problem = only(parsed("ginlight.models.MLP.hidden = 64\n"))
    assert not problem.unreached and problem.location.endswith(f"case.gin:{NEXT}")
    assert problem.message == ("'ginlight.models.MLP.hidden' is bound to the int 64, but it takes Sequence[int].")


def test_a_literal_outside_its_choices_names_the_choices_and_the_closest(parsed):
    problem = only(parsed("torchmetrics.Accuracy.task = 'multi-class'\n"))
    assert problem.location.endswith(f"case.gin:{NEXT}")
    assert "'torchmetrics.Accuracy.task' is bound to the string 'multi-class'" in problem.message
    assert "one of 'binary', 'multiclass', 'multilabel'" in problem.message
    assert problem.hint == "Did you mean 'multiclass'?"


def test_lightning_precision_outside_its_literals(parsed):
    problem = only(parsed("Trainer.precision = 'bf17'\n"))
    assert problem.location.endswith(f"case.gin:{NEXT}")
    assert "'Trainer.precision' is bound to the string 'bf17'" in problem.message and "'bf16-mixed'" in problem.message
    assert problem.hint == "Did you mean 'bf16'?"


def test_a_float_batch_size_through_a_macro(parsed):
    problem = only(parsed("BATCH = 32.0\nDataLoader.batch_size = %BATCH\n"))
    assert problem.location.endswith(f"case.gin:{NEXT + 1}")
    assert problem.message == "'DataLoader.batch_size' is bound to %BATCH, the float 32.0, but it takes int or None."


def test_a_binding_for_a_configurable_never_called_is_a_warning(parsed):
    problem = only(parsed("System.model = @ginlight.models.ConvNet()\nginlight.models.ConvNet.out_features = 10\n",
                          base=BASE.replace("ginlight.data.digits.flatten = True\n", "")
                          .replace("ginlight.models.MLP.hidden = (16,)\n", "")
                          .replace("ginlight.models.MLP.out_features = 10\n", "")))
    assert problem.unreached and problem.location.endswith("case.gin:3")  # MLP.in_features
    assert "nothing the config builds calls 'MLP'" in problem.message


def test_a_required_parameter_left_unbound_is_an_error_at_the_reference(parsed):
    problem = only(parsed("System.criterion = @torch.nn.Bilinear()\ntorch.nn.Bilinear.in1_features = 2\n"))
    assert problem.location.endswith(f"case.gin:{NEXT}")
    assert problem.message == "'Bilinear' needs a value for in2_features, out_features and none is bound."
    assert "`Bilinear.in2_features = ...`" in problem.hint


def test_a_required_parameter_is_checked_in_the_scope_of_each_call(parsed):
    problems = parsed("", base=BASE.replace("DataLoader.dataset = @ginlight.data.digits()\n",
                                            "train/DataLoader.dataset = @ginlight.data.digits()\n"))
    problem = only([p for p in problems if not p.unreached])
    assert problem.message == "'val/DataLoader' needs a value for dataset and none is bound."
    assert problem.location.endswith("case.gin:12")  # System.dataloaders, where @val/DataLoader() is written
    (unused,) = [p for p in problems if p.unreached]  # and val/digits.split, which nothing reaches now
    assert unused.message.endswith("'digits' is only called in 'train': gin ignores the binding.")


def test_references_are_judged_by_what_they_make_and_uncalled_ones_as_callables(parsed):
    problems = parsed("System.model = @ginlight.models.MLP\n"
                      "System.optimizer = @torch.optim.SGD()\n"
                      "System.dataloaders = {'train': @ginlight.data.digits(), 'val': @val/DataLoader()}\n")
    messages = [p.message for p in problems if not p.unreached]
    assert messages == [
        "'System.model' is bound to the class itself, `@ginlight.models.MLP`, but it takes Module.",
        "'System.optimizer' is bound as an instance, `@torch.optim.SGD()`, but it takes "
        "Callable[..., Optimizer] or None.",
        "'System.dataloaders' is bound to `{'train': @ginlight.data.digits(), 'val': @val/DataLoader()}`, "
        "but it takes Mapping[str, DataLoader] or None.",
    ]
    assert [p.location.rsplit(":", 1)[1] for p in problems if not p.unreached] == [str(NEXT), str(NEXT + 1),
                                                                                 str(NEXT + 2)]


def test_a_class_its_library_takes_against_its_own_annotation_is_no_error(parsed):
    assert parsed("Trainer.logger = @LitLogger()\n", base=BASE.replace("Trainer.logger = False\n", "")) == []


def test_a_function_that_returns_what_an_object_does_is_not_judged_by_it(parsed):
    """torch.compile returns a ``Callable``, which the ``Module`` it compiled is: docs/performance.md's binding."""
    assert parsed("System.model = @compiled/torch.compile()\n"
                  "compiled/torch.compile.model = @ginlight.models.MLP()\n") == []


def test_what_ginlight_binds_for_a_logger_counts_as_bound(parsed):
    """A CSV logger bound without its required save_dir writes into the run directory (ginlight.trackers)."""
    assert parsed("Trainer.logger = [@CSVLogger(), @TensorBoardLogger()]\n",
                  base=BASE.replace("Trainer.logger = False\n", "")) == []


def test_element_types_of_tuples_and_dicts_are_checked(parsed):
    problems = parsed("ginlight.data.digits.fractions = (0.1, 'a')\n"
                      "System.param_groups = {'encoder': 3}\n"
                      "ginlight.models.MLP.hidden = [16, 32]\n")  # a list for a sequence: fine
    assert [p.message.split(",")[0] for p in problems] == [
        "'ginlight.data.digits.fractions' is bound to `(0.1", "'System.param_groups' is bound to `{'encoder': 3}`"]


def test_several_mistakes_are_all_reported_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "case.gin").write_text(BASE + "ginlight.models.MLP.hidden = 64\nTrainer.precision = 'bf17'\n"
                                       "DataLoader.batch_size = 32.0\ntrian/ginlight.data.digits.seed = 3\n")
    status, out, err = run_check(["--gin_file=case.gin"], tmp_path, capsys, monkeypatch)
    assert status == 2, err
    assert [line.split(": ")[1:3] for line in err.splitlines() if line.startswith("ginlight-check: ")] == [
        ["error", f"case.gin:{NEXT}"], ["error", f"case.gin:{NEXT + 1}"], ["error", f"case.gin:{NEXT + 2}"],
        ["warning", f"case.gin:{NEXT + 3}"]]
    assert out == "ginlight-check: 3 error(s), 1 warning(s) in case.gin.\n"


def test_strict_makes_an_unreached_binding_an_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "case.gin").write_text(BASE + "trian/ginlight.data.digits.seed = 3\n")
    status, _, err = run_check(["--gin_file=case.gin"], tmp_path, capsys, monkeypatch)
    assert status == 0 and f"ginlight-check: warning: case.gin:{NEXT}: " in err, err
    status, _, err = run_check(["--gin_file=case.gin", "--strict"], tmp_path, capsys, monkeypatch)
    assert status == 2 and f"ginlight-check: error: case.gin:{NEXT}: " in err and "Did you mean 'train/'?" in err


def test_ginlight_train_reports_every_error_before_a_run_directory_exists(tmp_path, capsys, monkeypatch):
    (tmp_path / "case.gin").write_text(BASE + "ginlight.models.MLP.hidden = 64\nTrainer.precision = 'bf17'\n")
    monkeypatch.chdir(tmp_path)
    flags.FLAGS.unparse_flags()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        train_command.run(["ginlight-train", "--gin_file=case.gin", "--root_dir=runs"])
    err = capsys.readouterr().err
    assert exit.value.code == 2, err
    assert err.count("ginlight-train: error: ") == 1 and "2 mistakes in the config" in err
    assert f"case.gin:{NEXT}: 'ginlight.models.MLP.hidden'" in err
    assert f"case.gin:{NEXT + 1}: 'Trainer.precision'" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("launcher", [None, SlurmLauncher()], ids=["local", "slurm"])
def test_a_swept_value_is_checked_before_any_trial_is_started_or_submitted(launcher, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "case.gin").write_text(BASE)
    space = sweep.load_search_space(["DataLoader.batch_size=[16, 32.0]"], None)
    with pytest.raises(ConfigError) as error:
        sweep.run_sweep(["case.gin"], [], space, root_dir=tmp_path / "runs", launcher=launcher)
    assert "'DataLoader.batch_size' is bound to the float 32.0, but it takes int or None." in error.value.message
    assert "sweeping `DataLoader.batch_size = 32.0`" in error.value.message
    assert not (tmp_path / "runs").exists()  # where a trial's run, and a job's log, would be


@pytest.mark.parametrize("files", [[p] for p in SHIPPED] + [[CONFIGS / "classifier.gin", p]
                                                             for p in sorted((CONFIGS / "debug").glob("*.gin"))],
                         ids=lambda files: "+".join(Path(f).name for f in files))
def test_no_false_alarm_on_a_shipped_config(files, monkeypatch):
    monkeypatch.chdir(CONFIGS.parent)
    try:
        assert config_problems(parsing.load(files, search_paths=["."])) == []
    finally:
        gin.clear_config()


THIRD_PARTY = """\
import {module}
Experiment.system = @System()
System.model = @transformers.BertForSequenceClassification()
transformers.BertForSequenceClassification.config = @transformers.BertConfig()
transformers.BertConfig.vocab_size = 17
transformers.BertConfig.hidden_size = 32
transformers.BertConfig.id2label = {{0: '0', 1: '1'}}
transformers.BertConfig.hidden_act = 'gelu'
System.criterion = @torch.nn.CrossEntropyLoss()
System.optimizer = @torch.optim.AdamW
CriterionAdapter.pred_transforms = [@einops.layers.torch.Rearrange(), @{module}.Deferred()]
System.adapters = {{'train': {{'criterion': @CriterionAdapter()}}}}
einops.layers.torch.Rearrange.pattern = 'b c -> c b'
{module}.Deferred.size = 3
{module}.Deferred.shape = (1, 2)
{module}.Deferred.source = 'anything'
{module}.Deferred.item = 'a'
{module}.Deferred.sized = [1]
{module}.Deferred.model = @einops.layers.torch.Rearrange()
System.dataloaders = {{'train': @DataLoader()}}
DataLoader.dataset = @ginlight.data.digits()
"""
# Annotations a checker cannot judge: postponed ones naming what is not importable at run time, a
# forward reference, a type variable, a protocol; and **kwargs, which gin cannot bind anyway.
DEFERRED = '''\
from __future__ import annotations

from typing import TYPE_CHECKING, Generic, Protocol, Sized, TypeVar

import gin
import torch

if TYPE_CHECKING:
    from somewhere_else import Shape

T = TypeVar("T")


class Source(Protocol):
    def read(self) -> bytes: ...


@gin.configurable
class Deferred(Generic[T], torch.nn.Module):
    def __init__(self, size: "Undefined", shape: Shape, source: Source, item: T, sized: Sized,
                 model: "torch.nn.Module", **options: int):
        super().__init__()

    def forward(self, x):
        return x
'''


def test_no_false_alarm_on_third_party_classes_and_unjudgeable_annotations(parsed, tmp_path, monkeypatch):
    module = f"deferred_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(DEFERRED)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert parsed("", base=THIRD_PARTY.format(module=module)) == []


def test_the_readme_s_check_command_passes(capsys, monkeypatch):
    command = "ginlight-check --gin_file=configs/classifier.gin --strict"
    assert f"    {command}\n" in (REPO / "README.md").read_text()
    status, out, err = run_check(command.split()[1:], REPO, capsys, monkeypatch)
    assert status == 0 and err == "", err
    assert out == "ginlight-check: 0 error(s), 0 warning(s) in configs/classifier.gin.\n"


def test_the_check_time_benchmark_prints_a_row_per_shipped_config(capsys, monkeypatch):
    """docs/performance.md: `python -m benchmarks.check_time` (speed itself is not asserted here)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr("sys.argv", ["check_time", "--repeats=1"])
    check_time.main()
    rows = [row.split(" | ")[0].lstrip("| ") for row in capsys.readouterr().out.splitlines() if row.startswith("| ")]
    assert rows[2:] == [path.name for path in SHIPPED]


ANNOTATED = '''\
from __future__ import annotations

import enum
from pathlib import Path
from typing import Callable, Literal, Mapping, Optional, Sequence, Union

import gin
import torch


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


def make_module() -> torch.nn.Module:
    return torch.nn.Identity()


def make_anything():
    return 1


@gin.configurable
def annotated(count: int = 1, ratio: float = 0.5, names: Sequence[str] = (), pair: tuple[int, str] = (1, "a"),
              sizes: Mapping[str, list[int]] = None, mode: Mode = Mode.FAST, kind: Union[int, Literal["auto"]] = 1,
              path: Path = Path("."), act: type[torch.nn.Module] = torch.nn.ReLU, fn: Callable[[int], int] = abs,
              module: Optional[torch.nn.Module] = None, untyped=None, **rest: int):
    return count
'''


@pytest.mark.parametrize("binding, says", [
    ("count = 1.5", "bound to the float 1.5, but it takes int"),
    ("count = True", None),  # a bool is an int
    ("ratio = 2", None),  # an int where a float belongs
    ("names = 'abc'", None),  # a string is a sequence of strings
    ("names = ['a', 2]", "bound to `['a', 2]`, but it takes Sequence[str]"),
    ("pair = (1, 'a', 3)", "bound to `(1, 'a', 3)`, but it takes tuple[int, str]"),
    ("pair = [2, 'b']", None),
    ("sizes = {'a': [1, 2.5]}", "bound to `{'a': [1, 2.5]}`, but it takes Mapping[str, list[int]] or None"),
    ("sizes = {1: [1]}", "bound to `{1: [1]}`, but it takes Mapping[str, list[int]] or None"),
    ("mode = 'slow'", None),  # an enum's value
    ("mode = 'SLOW'", None),  # its name
    ("mode = 'medium'", "bound to the string 'medium', but it takes Mode"),
    ("kind = 'auto'", None),
    ("kind = 'manual'", "bound to the string 'manual', but it takes one of 'auto' or int"),
    ("path = '/tmp'", None),  # a string where a path belongs
    ("act = @torch.nn.GELU", None),
    ("act = @torch.nn.Linear()", "bound as an instance, `@torch.nn.Linear()`, but it takes type[Module]"),
    ("act = @{module}.make_module", None),  # a function may make the class
    ("fn = 3", "bound to the int 3, but it takes Callable[[int], int]"),
    ("fn = @{module}.make_anything", None),
    ("module = @{module}.make_module()", None),
    ("module = @{module}.make_anything()", None),  # no return annotation: cannot be judged
    ("module = @torch.optim.SGD", "bound to the class itself, `@torch.optim.SGD`, but it takes Module or None"),
    ("untyped = 'anything'", None),
])
def test_values_are_judged_against_their_annotations(binding, says, parsed, tmp_path, monkeypatch):
    module = f"annotated_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(ANNOTATED)
    monkeypatch.syspath_prepend(str(tmp_path))
    binding = binding.replace("{module}", module)
    problems = [p for p in parsed(f"import {module}\nSystem.model = @torch.nn.Linear()\n"
                                  f"torch.nn.Linear.in_features = 1\ntorch.nn.Linear.out_features = 1\n"
                                  f"System.criterion = @{module}.annotated\n"
                                  f"{module}.annotated.{binding}\n") if not p.unreached]
    if says is None:
        assert problems == []
    else:
        assert only(problems).message == f"'{module}.annotated.{binding.split(' = ')[0]}' is {says}."
        assert problems[0].location.endswith(f"case.gin:{NEXT + 5}")
