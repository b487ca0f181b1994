"""Every mistake is caught early and explained once: a table of bad inputs.

Each case runs ``ginlight-train``'s entry point with a tiny config that has one
thing wrong, and checks the exit status, that the message names the cause (and
the gin file and line when the cause is in a gin file), that no traceback is
shown, and that no run directory is left behind for a configuration error.
The cases run in this process (the entry point is the same function the console
script calls), so the table stays fast; test_train_command.py covers the real
command in a subprocess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from absl import flags

import ginlight.experiment  # noqa: F401  (imported before any test captures stderr: see below)
from ginlight.cli import train as train_command

pytestmark = pytest.mark.slow

# Lightning and absl bind logging handlers to sys.stderr when first imported. Importing
# them here, at collection, binds them to pytest's session-long stream rather than to
# one test's captured stream, which is closed when that test ends.

TINY = """\
Experiment.system = @System()
System.model = @ginlight.models.MLP()
ginlight.models.MLP.in_features = 64
ginlight.models.MLP.out_features = 10
ginlight.models.MLP.hidden = (16,)
System.optimizer = @torch.optim.SGD
torch.optim.SGD.lr = 0.1
System.criterion = @torch.nn.CrossEntropyLoss()
System.dataloaders = {'train': @train/DataLoader(), 'val': @val/DataLoader()}
DataLoader.dataset = @ginlight.data.digits()
DataLoader.batch_size = 16
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
NEXT = len(TINY.splitlines()) + 1  # the line number of the first line a case appends


@dataclass
class Case:
    """``gin`` is appended to TINY (None: no gin file); ``says`` must all appear in the message."""

    id: str
    gin: str | None = ""
    args: list[str] = field(default_factory=list)
    status: int = 2
    says: list[str] = field(default_factory=list)
    line: int | None = None  # the gin file's line the message must point at
    files: dict[str, str] = field(default_factory=dict)  # extra files in the case's folder


CASES = [
    Case("syntax error", "Trainer.max_epochs = (3\n", says=["gin syntax error", "unclosed"], line=NEXT),
    Case("statement without a value", "Trainer.max_epochs\n", says=["gin syntax error"], line=NEXT),
    Case("unknown configurable", "torch.optim.Adamm.lr = 1\n",
         says=["unknown configurable 'torch.optim.Adamm'", "Did you mean 'torch.optim.Adam'"], line=NEXT),
    Case("misspelt parameter", "torch.optim.SGD.lrr = 1\n",
         says=["'torch.optim.SGD' has no parameter 'lrr'", "Did you mean 'lr'"], line=NEXT),
    Case("misspelt trainer flag", "Trainer.max_epoch = 2\n", says=["no parameter 'max_epoch'", "'max_epochs'"],
         line=NEXT),
    Case("unknown configurable in bindings", args=["--gin_bindings=Trainr.max_epochs=2"],
         says=["--gin_bindings", "unknown configurable 'Trainr'", "Did you mean"]),
    Case("misspelt module of a library", "System.model = @einops.layer.torch.Rearrange()\n",
         says=["'einops' has no attribute 'layer'", "Did you mean 'einops.layers'"], line=NEXT),
    Case("package that is not installed", "\nSystem.model = @timmz.create_model()\n",
         says=[f"case.gin:{NEXT + 1}: unknown configurable 'timmz.create_model': no module named 'timmz' is "
               "installed.",
               "pip install timmz"], line=NEXT + 1),
    Case("string where a number belongs", "torch.optim.SGD.lr = 'fast'\n",
         says=["'SGD.lr' is bound to the string 'fast'", "takes a number"], line=NEXT),
    Case("string where a number belongs, through a macro", "EPOCHS = 'three'\nTrainer.max_epochs = %EPOCHS\n",
         says=["'Trainer.max_epochs' is bound to the string 'three'"], line=NEXT + 1),
    Case("string where a boolean belongs", "Trainer.enable_checkpointing = 'yes'\n",
         says=["takes True or False"], line=NEXT),
    Case("undefined macro", "torch.optim.SGD.lr = %LR\n", says=["macro '%LR' is used but never defined"], line=NEXT),
    Case("missing gin.REQUIRED value", "System.model = @ginlight.models.ConvNet()\n",
         says=["'ConvNet' needs a value for out_features", "`ConvNet.out_features = ...`"], line=NEXT),
    Case("missing required argument", "System.model = @torch.nn.Linear()\n",
         says=["'Linear' needs a value for in_features, out_features"], line=NEXT),
    Case("include that does not exist", "include 'nothere.gin'\n", says=["nothere.gin"], line=NEXT),
    Case("import that does not exist", "import nothere_module\n", says=["cannot import module 'nothere_module'"],
         line=NEXT),
    Case("empty gin file", None, args=["--gin_file=empty.gin"], files={"empty.gin": "# nothing yet\n\n"},
         says=["is empty"]),
    Case("gin file not found", None, args=["--gin_file=missing.gin"], says=["'missing.gin' not found"]),
    Case("no gin file at all", None, says=["nothing to run"]),
    Case("unknown stage", args=["--stage=tset"], says=["unknown stage 'tset'", "fit, validate, test, predict"]),
    Case("unknown flag", args=["--gin_fil=x.gin"], says=["Unknown command line flag 'gin_fil'"]),
    Case("positional argument", args=["extra"], says=["unexpected arguments ['extra']"]),
    Case("missing checkpoint", args=["--stage=test", "--ckpt_path=nothere.ckpt"], says=["'nothere.ckpt' not found"]),
    Case("corrupt checkpoint", args=["--stage=validate", "--ckpt_path=corrupt.ckpt"],
         files={"corrupt.ckpt": "not a checkpoint"}, says=["corrupt.ckpt"]),
    Case("resume of a folder that is not a run", None, args=["--resume=notarun"], files={"notarun/x.txt": ""},
         says=["'notarun' is not a run directory"]),
    Case("project folder that does not exist", args=["--project=./nothere"], says=["--project=./nothere"]),
    Case("dict batch without the accessor's key",
         "ginlight.data.digits.as_dict = True\nSystem.adapters = {'train': {'batch': @BatchAdapter()}}\n"
         "BatchAdapter.input_accessor = 'img'\nBatchAdapter.target_accessor = 'label'\n",
         says=["BatchAdapter (train): input_accessor='img'", "keys ['id', 'image', 'label']"], line=NEXT + 2),
    Case("tuple batch index out of range",
         "System.adapters = {'train': {'batch': @BatchAdapter()}}\nBatchAdapter.input_accessor = 0\n"
         "BatchAdapter.target_accessor = 2\n",
         says=["target_accessor=2", "a list of 2 items"], line=NEXT + 2),
    Case("prediction and target shapes disagree in the criterion",
         "System.criterion = @torch.nn.BCEWithLogitsLoss()\n"
         "System.adapters = {'train': {'criterion': @CriterionAdapter()}}\n"
         "CriterionAdapter.target_transforms = [@torch.nn.functional.one_hot]\n"
         "torch.nn.functional.one_hot.num_classes = 12\n",
         says=["criterion BCEWithLogitsLoss failed", "train CriterionAdapter", "pred is a tensor of shape (16, 10)",
               "target is a tensor of shape (16, 12)"]),
    Case("metric that does not fit the predictions",
         "System.metrics = {'val': @torchmetrics.Accuracy()}\ntorchmetrics.Accuracy.task = 'multiclass'\n"
         "torchmetrics.Accuracy.num_classes = 3\n",
         says=["val metrics failed", "val MetricsAdapter", "pred is a tensor of shape (16, 10)"]),
    Case("model that does not fit the data", "ginlight.models.MLP.in_features = 63\n",
         says=["model failed on the first 'train' batch", "a tensor of shape (16, 64)"]),
    Case("dataloader missing for the stage", args=["--stage=test"],
         says=["--stage=test needs a 'test' dataloader", "it has: train, val"]),
    Case("optimizer bound as an instance", "System.optimizer = @torch.optim.SGD()\n",
         says=["bound as an instance", "Drop the parentheses"], line=NEXT),
    Case("criterion bound as a class", "System.criterion = @torch.nn.CrossEntropyLoss\n",
         says=["System.criterion is the class CrossEntropyLoss", "@CrossEntropyLoss()"], line=NEXT),
    Case("model bound as a class", "System.model = @ginlight.models.MLP\n",
         says=["'System.model' is bound to the class itself", "`System.model = @ginlight.models.MLP()`"], line=NEXT),
    Case("metric bound as a class", "System.metrics = {'val': @torchmetrics.Accuracy}\n",
         says=["'System.metrics' is bound to `{'val': @torchmetrics.Accuracy}`", "write `@torchmetrics.Accuracy()`"],
         line=NEXT),
    Case("unknown mode in metrics", "System.metrics = {'valid': @torchmetrics.Accuracy()}\n"
         "torchmetrics.Accuracy.task = 'multiclass'\ntorchmetrics.Accuracy.num_classes = 10\n",
         says=["unknown modes ['valid']"], line=NEXT),
    Case("seed that is not a number", "Experiment.seed = 'abc'\n",
         says=["'Experiment.seed' is bound to the string 'abc'"], line=NEXT),
    Case("run directory that cannot be created", args=["--root_dir=blocker/runs"], files={"blocker": "a file"},
         says=["cannot create the run directory"]),
    Case("loss that becomes NaN", "torch.optim.SGD.lr = 1e38\nTrainer.limit_train_batches = 20\n"
         "Trainer.log_every_n_steps = 1\n", status=1, says=["training loss is nan at step"]),
    Case("exception in user code", "System.model = @Exploding()\n", args=["--project=userland"],
         files={"userland/exploding.py": "import gin, torch\n\n@gin.configurable\nclass Exploding(torch.nn.Linear):\n"
                "    def __init__(self):\n        super().__init__(64, 10)\n\n    def forward(self, x):\n"
                "        raise RuntimeError('kaboom')\n"},
         says=["kaboom", "userland/exploding.py:9, in forward"]),
]


def run_command(args: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    """Runs the ``ginlight-train`` entry point in ``cwd``; returns (exit status, stderr)."""
    monkeypatch.chdir(cwd)
    flags.FLAGS.unparse_flags()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        train_command.run(["ginlight-train", *args])
    return exit.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path, capsys, monkeypatch):
    for name, text in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    resuming = any(arg.startswith("--resume") for arg in case.args)  # a resumed run keeps its own directory
    args = [*([] if resuming else ["--root_dir=runs"]), *case.args]
    if case.gin is not None:
        (tmp_path / "case.gin").write_text(TINY + case.gin)
        args.insert(0, "--gin_file=case.gin")
    status, err = run_command(args, tmp_path, capsys, monkeypatch)
    assert err.count("ginlight-train: error: ") == 1, err  # explained once
    message = err.split("ginlight-train: error: ", 1)[1]
    assert status == case.status, err
    for fragment in case.says:
        assert fragment in message, err
    if case.line is not None:
        assert f"case.gin:{case.line}:" in message, err
    assert "Traceback" not in err
    if case.status == 2:
        assert not list(tmp_path.glob("runs/*/*/run.json")), "a configuration error left a run directory"
    else:
        (run_dir,) = [p.parent for p in tmp_path.glob("runs/*/*/run.json")]
        record = (run_dir / "run.json").read_text()
        assert '"status": "failed"' in record


def test_verbose_shows_the_traceback(tmp_path, capsys, monkeypatch):
    (tmp_path / "case.gin").write_text(TINY + "torch.optim.SGD.lrr = 1\n")
    status, err = run_command(["--gin_file=case.gin", "--verbose"], tmp_path, capsys, monkeypatch)
    assert status == 2
    assert "Traceback" in err


def test_the_table_holds_at_least_30_distinct_cases():
    assert len({case.id for case in CASES}) == len(CASES) >= 30
