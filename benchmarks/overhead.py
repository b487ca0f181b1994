"""What ginlight costs: seconds per epoch against a raw PyTorch loop and Lightning, and start-up.

    python -m benchmarks.overhead           # the tables (about 15 minutes; docs/performance.md's took 20 repeats)
    python -m benchmarks.overhead --quick   # one short repeat: checks that it runs

Every variant trains the same network on the same data from the same seed for the same
number of steps, on one thread:

    (a) a raw PyTorch loop;
    (b) a plain LightningModule logging the loss (step and epoch) and accuracy with
        ``self.log``, with the Trainer's defaults (progress bar, logger, checkpointing);
    (c) ``ginlight.train`` with ginlight's shipped defaults: loss and accuracy logged,
        progress bar, TensorBoard logger, checkpoints;
    (d) (c) with the progress bar and the logger off;
    (e) Lightning with ``barebones=True``, the floor of any loop the Trainer runs.

Two workloads: a tiny MLP, whose cost is per-step bookkeeping, and a small CNN whose step
is compute-bound. The variants run side by side in one process, each in a thread of its
own, taking turns: a turn is 5 batches of the MLP, one of the CNN (see :class:`Turns`).
An epoch is timed on its variant's own clock, which runs only during its turns, from the
moment its loader starts iterating to the moment the next epoch's does, so epoch-end work
(metric compute, logging, checkpointing) counts; the first epoch of each run is a warm-up.
Ratios are to (a) taking turns in the same run, which is what survives a busy machine.

Start-up: wall time of ``ginlight-train --help``, ``--print_config`` and
``--list_configurables`` (which must build nothing), and the time from launch to the
first training step of ``ginlight-train`` against the equivalent plain Lightning script.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import itertools
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import gin
import lightning
import torch
from lightning import LightningModule, Trainer, seed_everything
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from ginlight.models import MLP, ConvNet

NUM_CLASSES = 10
LR = 1e-3
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
BENCHMARKS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Workload:
    """A network, the shape of its inputs, how many steps make an epoch, and how many a turn."""

    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    steps: int
    batch_size: int = 32
    batches_per_turn: int = 1


WORKLOADS = {
    # Overhead-bound: a step of raw PyTorch takes a millisecond or two; a turn is 5 steps (turns of
    # a whole epoch, 45 steps, gave the targets' intervals up to four times as wide).
    "mlp": Workload(lambda: MLP(64, NUM_CLASSES, hidden=(128,)), (64,), steps=45, batches_per_turn=5),
    # Compute-bound: convolutions over batches of 128 28x28 images dominate each step (with batches
    # of 32, Lightning's own per-step work, barebones=True, was still 6% of a step on a slow CPU).
    # A turn is a step, about 0.1 s.
    "cnn": Workload(lambda: ConvNet(1, NUM_CLASSES, channels=(32, 64)), (1, 28, 28), steps=8, batch_size=128),
}

# ginlight's side: the same network, loader, optimizer, loss and metric as the other variants.
GIN_CONFIG = """
ginlight.Experiment.system = @ginlight.System()
ginlight.System.model = @benchmarks.overhead.network()
benchmarks.overhead.network.workload = %WORKLOAD
ginlight.System.dataloaders = {'train': @benchmarks.overhead.loader()}
benchmarks.overhead.loader.workload = %WORKLOAD
ginlight.System.criterion = @torch.nn.CrossEntropyLoss()
ginlight.System.optimizer = @torch.optim.AdamW
torch.optim.AdamW.lr = %LR
ginlight.System.metrics = {'train': @torchmetrics.Accuracy()}
torchmetrics.Accuracy.task = 'multiclass'
torchmetrics.Accuracy.num_classes = %NUM_CLASSES
lightning.Trainer.accelerator = 'cpu'
lightning.Trainer.max_epochs = %EPOCHS
"""
QUIET_BINDINGS = ["lightning.Trainer.enable_progress_bar = False", "lightning.Trainer.logger = False"]


class FirstStep(nn.Module):
    """Wraps a network; at its first training forward, writes the wall-clock time and the CPU
    seconds its process has used so far to a file."""

    def __init__(self, net: nn.Module, path: str):
        super().__init__()
        self.net = net
        self.path = path
        self.stamped = False

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.stamped and torch.is_grad_enabled():
            Path(self.path).write_text(f"{time.time()!r} {time.process_time()!r}")
            self.stamped = True
        return self.net(input)


@gin.configurable(module="benchmarks.overhead")
def network(workload: str = gin.REQUIRED, first_step_file: str | None = None) -> nn.Module:
    """The workload's network; with ``first_step_file``, it notes being built and its first step."""
    net = WORKLOADS[workload].build()
    if first_step_file is None:
        return net
    Path(first_step_file + ".built").touch()
    return FirstStep(net, first_step_file)


@functools.cache
def _dataset(workload: str) -> TensorDataset:
    spec = WORKLOADS[workload]
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(spec.steps * spec.batch_size, *spec.input_shape, generator=generator)
    teacher = torch.randn(inputs[0].numel(), NUM_CLASSES, generator=generator)
    return TensorDataset(inputs, (inputs.flatten(1) @ teacher).argmax(1))  # learnable labels


#: (wall-clock seconds, CPU seconds): when something happened, or how long it took.
Clock = tuple[float, float]


class Turns:
    """Runs variants in threads of their own that take turns, and keeps each one's clock.

    This machine's speed drifts by tens of percent within seconds, in CPU seconds as
    much as in wall seconds (another tenant on the same core, ...): variants run one
    after another see different machines, and a 5% difference drowns. Variants that
    take turns every hundredth or tenth of a second see the same machine. Only the variant
    holding the turn runs; each variant's clock runs only while it holds the turn, and it
    runs with torch's process-wide flags as it set them (Lightning and ginlight turn on
    deterministic algorithms for the whole process, which costs a CNN's step about 5%).
    Outside :meth:`run`, a thread's clock is the process's and passing the turn does nothing.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._order: list[str] = []  # the variants still running, in the order they take turns
        self._holder: str | None = None
        self._own = threading.local()  # the calling variant's name, and its clock at its turn's start

    def run(self, jobs: dict[str, Callable[[], Any]]) -> None:
        """Runs the jobs, one thread each, taking turns in the order given until all return."""
        self._order, self._holder = list(jobs), next(iter(jobs))
        errors: list[BaseException] = []
        initial_flags = _torch_flags()

        def take_part(name: str, job: Callable[[], Any]) -> None:
            torch.set_num_threads(1)
            self._own.name, self._own.spent, self._own.flags = name, (0.0, 0.0), initial_flags
            self._wait()
            try:
                job()
            except BaseException as exc:
                errors.append(exc)
            finally:
                with self._changed:
                    position = self._order.index(name)
                    self._order.remove(name)
                    self._holder = self._order[position % len(self._order)] if self._order else None
                    self._changed.notify_all()

        threads = [threading.Thread(target=take_part, args=item, name=f"variant {item[0]}") for item in jobs.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def clock(self) -> Clock:
        """The calling variant's own time: wall and CPU seconds spent in its turns so far."""
        if not hasattr(self._own, "name"):
            return time.perf_counter(), time.process_time()
        (wall, cpu), (wall_start, cpu_start) = self._own.spent, self._own.started
        return wall + time.perf_counter() - wall_start, cpu + time.thread_time() - cpu_start

    def pass_turn(self) -> None:
        """Lets the other variants take their turns; returns when it is the caller's again."""
        if not hasattr(self._own, "name"):
            return
        self._own.spent, self._own.flags = self.clock(), _torch_flags()
        with self._changed:
            self._holder = self._order[(self._order.index(self._own.name) + 1) % len(self._order)]
            self._changed.notify_all()
        self._wait()

    def _wait(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._holder == self._own.name)
        _set_torch_flags(self._own.flags)
        self._own.started = time.perf_counter(), time.thread_time()


#: Whether deterministic algorithms are on, only warn, and fill new tensors: torch's process-wide flags.
TorchFlags = tuple[bool, bool, bool]


def _torch_flags() -> TorchFlags:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory)


def _set_torch_flags(flags: TorchFlags) -> None:
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    torch.utils.deterministic.fill_uninitialized_memory = flags[2]


TURNS = Turns()


class TimedLoader(DataLoader):
    """A DataLoader that notes when each epoch starts iterating, on its variant's clock, and
    passes the turn every ``batches_per_turn`` batches."""

    def __init__(self, *args: Any, batches_per_turn: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batches_per_turn = batches_per_turn
        self.epoch_starts: list[Clock] = []

    def __iter__(self) -> Any:
        self.epoch_starts.append(TURNS.clock())
        batches = super().__iter__()
        for index in itertools.count():
            if index % self.batches_per_turn == 0:
                TURNS.pass_turn()
            try:
                batch = next(batches)
            except StopIteration:
                return
            yield batch


_loaders: dict[int, TimedLoader] = {}  # each thread's latest loader, so a run's timings can be read after it


@gin.configurable(module="benchmarks.overhead")
def loader(workload: str = gin.REQUIRED) -> TimedLoader:
    """The workload's shuffled training loader."""
    spec = WORKLOADS[workload]
    built = TimedLoader(_dataset(workload), batch_size=spec.batch_size, shuffle=True,
                        batches_per_turn=spec.batches_per_turn)
    _loaders[threading.get_ident()] = built
    return built


class _Classifier(LightningModule):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.criterion = nn.CrossEntropyLoss()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.net.parameters(), lr=LR)


class LoggingModule(_Classifier):
    """What a Lightning user writes: the loss on step and epoch, accuracy per epoch, via self.log."""

    def __init__(self, net: nn.Module):
        super().__init__(net)
        self.accuracy = MulticlassAccuracy(num_classes=NUM_CLASSES)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        input, target = batch
        logits = self.net(input)
        loss = self.criterion(logits, target)
        self.accuracy.update(logits, target)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/accuracy", self.accuracy, on_step=False, on_epoch=True)
        return loss


class BareModule(_Classifier):
    """The loss and nothing else, for ``Trainer(barebones=True)``."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        input, target = batch
        return self.criterion(self.net(input), target)


# -- the variants: each trains `epochs` epochs and returns its loader's epoch start times ----


def run_raw(workload: str, epochs: int, root: Path) -> list[Clock]:
    torch.manual_seed(0)
    net = network(workload)
    data = loader(workload)
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    net.train()
    for _ in range(epochs):
        for input, target in data:
            optimizer.zero_grad()
            criterion(net(input), target).backward()
            optimizer.step()
    return data.epoch_starts


def run_lightning(workload: str, epochs: int, root: Path) -> list[Clock]:
    seed_everything(0, verbose=False)
    trainer = Trainer(max_epochs=epochs, accelerator="cpu", default_root_dir=str(root))
    data = loader(workload)
    trainer.fit(LoggingModule(network(workload)), data)
    return data.epoch_starts


def run_barebones(workload: str, epochs: int, root: Path) -> list[Clock]:
    seed_everything(0, verbose=False)
    trainer = Trainer(max_epochs=epochs, accelerator="cpu", barebones=True, default_root_dir=str(root))
    data = loader(workload)
    trainer.fit(BareModule(network(workload)), data)
    return data.epoch_starts


def _run_ginlight(workload: str, epochs: int, root: Path, bindings: list[str]) -> list[Clock]:
    import ginlight

    ginlight.train([_gin_file(root)], [*_macros(workload, epochs), *bindings], root_dir=root, name=workload,
                   argv=["benchmarks/overhead.py"])
    return _loaders[threading.get_ident()].epoch_starts


def run_ginlight(workload: str, epochs: int, root: Path) -> list[Clock]:
    return _run_ginlight(workload, epochs, root, [])


def run_ginlight_quiet(workload: str, epochs: int, root: Path) -> list[Clock]:
    return _run_ginlight(workload, epochs, root, QUIET_BINDINGS)


def _gin_file(folder: Path) -> Path:
    path = folder / "overhead.gin"
    if not path.exists():
        path.write_text(GIN_CONFIG)
    return path


def _macros(workload: str, epochs: int) -> list[str]:
    return [f"WORKLOAD = '{workload}'", f"EPOCHS = {epochs}", f"LR = {LR}", f"NUM_CLASSES = {NUM_CLASSES}"]


VARIANTS: dict[str, tuple[str, Callable[[str, int, Path], list[Clock]]]] = {
    "a": ("raw PyTorch loop", run_raw),
    "b": ("Lightning, self.log, defaults", run_lightning),
    "c": ("ginlight, shipped defaults", run_ginlight),
    "d": ("ginlight, no progress bar/logger", run_ginlight_quiet),
    "e": ("Lightning barebones=True", run_barebones),
}


@contextlib.contextmanager
def _isolated_run():
    """Silences a run's console output and restores the global state Lightning and ginlight change."""
    flags = _torch_flags()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
            contextlib.redirect_stderr(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            _set_torch_flags(flags)
            torch.set_num_threads(1)


# The variants that take turns in one run, ginlight's last: its run swaps the console for its
# log file while it lasts, so it starts once the others' progress bars have taken the console.
# Two runs of ginlight would share gin's config and that swap: (d) takes turns apart, with the
# references (a) and (e) again.
GROUPS = (("a", "b", "e", "c"), ("a", "e", "d"))

#: Per workload, per group (as in GROUPS), each variant's (wall, CPU) seconds of each measured epoch.
Times = dict[str, list[dict[str, list[Clock]]]]


def epoch_times(repeats: int, measured_epochs: int, workdir: Path, workloads: Sequence[str] = tuple(WORKLOADS)) -> Times:
    """(wall, CPU) seconds of each measured epoch, per workload, group and variant."""
    times: Times = {w: [{v: [] for v in group} for group in GROUPS] for w in workloads}
    for workload, repeat in itertools.product(workloads, range(repeats)):
        for number, (group, group_times) in enumerate(zip(GROUPS, times[workload])):
            starts: dict[str, list[Clock]] = {}

            def measure(variant: str) -> None:
                root = workdir / f"{workload}-{repeat}-{number}{variant}"
                root.mkdir()
                # warm-up epoch, measured epochs, and one more whose start ends the last measured one
                starts[variant] = VARIANTS[variant][1](workload, measured_epochs + 2, root)

            # Odd repeats reverse who follows whom, ginlight still starting last.
            order = group[:-1][::-1] + group[-1:] if repeat % 2 else group
            with _isolated_run():
                TURNS.run({variant: functools.partial(measure, variant) for variant in order})
            for variant, clocks in starts.items():
                # ginlight's check of the wiring before training draws a batch too: epochs are the last starts
                clocks = clocks[-(measured_epochs + 2):]
                group_times[variant] += [(b[0] - a[0], b[1] - a[1]) for a, b in zip(clocks[1:], clocks[2:])]
    return times


# -- start-up ---------------------------------------------------------------------------

#: ginlight-train reaches its first training step no later than the plain Lightning script (issue 29).
FIRST_STEP_TARGET = 1.0


def _train_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "ginlight.cli.train", *flags]


def _wall(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _to_first_step(command: list[str], stamp: Path, cwd: Path) -> Clock:
    """(wall, CPU) seconds from launching ``command`` to its first training step. ``benchmarks`` is importable
    in it, as it is in the plain script, which runs from this folder."""
    path = os.pathsep.join([str(BENCHMARKS_DIR.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    launched = time.time()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": path})
    wall, cpu = map(float, stamp.read_text().split())
    return wall - launched, cpu


def startup_times(repeats: int, workdir: Path) -> dict[str, Any]:
    """Wall times of the commands, whether the config-only ones built anything, time to first step."""
    gin_file = _gin_file(workdir)
    config_flags = [f"--gin_file={gin_file}", f"--project={BENCHMARKS_DIR}",
                    *(f"--gin_bindings={b}" for b in _macros("mlp", 1))]
    runs = workdir / "startup-runs"
    stamp = workdir / "first-step"
    built = Path(f"{stamp}.built")
    stamp_binding = f"--gin_bindings=benchmarks.overhead.network.first_step_file = '{stamp}'"
    results: dict[str, Any] = {"--help": [], "--print_config": [], "--list_configurables": []}
    config_only = {"--print_config": ["--print_config"], "--list_configurables": ["--list_configurables"]}
    for _ in range(repeats):
        results["--help"].append(_wall(_train_command("--help"), workdir))
        for name, flags in config_only.items():
            results[name].append(_wall(_train_command(*config_flags, stamp_binding, f"--root_dir={runs}", *flags),
                                       workdir))
    results["built nothing"] = not built.exists() and not runs.exists()
    results["first step"] = first_step_times(repeats, workdir)
    return results


def first_step_times(repeats: int, workdir: Path) -> dict[str, list[Clock]]:
    """(wall, CPU) seconds from launch to the first training step of ``ginlight-train`` and of the plain
    Lightning script, taking turns. ``ginlight-train`` imports this module as its project, as the plain script
    imports it, not the whole ``benchmarks`` package (the sweep benchmark's Optuna among it)."""
    config_flags = [f"--gin_file={_gin_file(workdir)}", "--project=benchmarks.overhead",
                    *(f"--gin_bindings={b}" for b in _macros("mlp", 1))]
    stamp = workdir / "first-step"
    first_step = {
        "plain Lightning script": [sys.executable, str(Path(__file__).resolve()), "--lightning_script",
                                   str(stamp), str(workdir / "lightning-runs")],
        "ginlight-train": _train_command(*config_flags, f"--gin_bindings=benchmarks.overhead.network.first_step_file"
                                         f" = '{stamp}'", f"--root_dir={workdir / 'first-step-runs'}"),
    }
    times: dict[str, list[Clock]] = {name: [] for name in first_step}
    for repeat in range(repeats):
        for name in sorted(first_step, reverse=bool(repeat % 2)):
            times[name].append(_to_first_step(first_step[name], stamp, workdir))
    return times


def lightning_script(first_step_file: str, root: str) -> None:
    """The plain Lightning equivalent of ``ginlight-train`` on the benchmark's config, for one epoch."""
    seed_everything(0)
    trainer = Trainer(max_epochs=1, accelerator="cpu", default_root_dir=root)
    trainer.fit(LoggingModule(network("mlp", first_step_file)), loader("mlp"))


# -- the report ---------------------------------------------------------------------------


def report(times: Times, startup: dict[str, Any], repeats: int, load: tuple[float, float]) -> str:
    """The tables: per-epoch medians and their ratios, the targets, then start-up.

    Each variant's ratios are to (a) and (e) in the group it took turns with (the first that holds it).
    """
    lines = [
        f"torch {torch.__version__}, lightning {lightning.__version__}, python {platform.python_version()}, "
        f"{torch.get_num_threads()} thread, {os.cpu_count()} CPUs, {repeats} repeats; "
        f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end",
        "",
        "| model | variant | s/epoch | x (a) | x (e) | CPU s/epoch | CPU x (a) | CPU x (e) | epochs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, groups in times.items():
        for variant in VARIANTS:
            group = _group_of(groups, variant)
            wall, cpu = (_median(group[variant], clock) for clock in (0, 1))
            ratios = [_ratio(group, variant, against, clock) for clock in (0, 1) for against in ("a", "e")]
            lines.append(
                f"| {workload} | ({variant}) {VARIANTS[variant][0]} | {wall:.4f} | {ratios[0]:.2f} | {ratios[1]:.2f} | "
                f"{cpu:.4f} | {ratios[2]:.2f} | {ratios[3]:.2f} | {len(group[variant])} |")
    targets = [  # (workload, variant, against, at most)
        ("mlp", "c", "a", 2.5), ("mlp", "c", "e", 1.3), ("mlp", "c", "b", 0.75),
        ("cnn", "c", "a", 1.05), ("cnn", "c", "b", 1.0),
    ]
    lines += ["", "| target | wall | CPU | wall, repeats' median ratio: interval | settled |",
              "| --- | ---: | ---: | ---: | --- |"]
    for workload, variant, against, limit in (t for t in targets if t[0] in times):
        group = _group_of(times[workload], variant)
        ratios = [_ratio(group, variant, against, clock) for clock in (0, 1)]
        interval, settled = _settled(_repeat_ratios(group, variant, against, repeats), limit)
        lines.append(f"| {workload} ({variant}) <= {limit:.2f} x ({against}) | "
                     + " | ".join(f"{r:.2f} {'ok' if r <= limit else 'MISSED'}" for r in ratios)
                     + f" | {interval} | {settled} |")
    first = {name: statistics.median(w for w, _ in t) for name, t in startup["first step"].items()}
    first_cpu = {name: statistics.median(c for _, c in t) for name, t in startup["first step"].items()}
    first_ratio = first["ginlight-train"] / first["plain Lightning script"]
    first_cpu_ratio = first_cpu["ginlight-train"] / first_cpu["plain Lightning script"]
    help_seconds = statistics.median(startup["--help"])
    launches = zip(startup["first step"]["ginlight-train"], startup["first step"]["plain Lightning script"])
    first_interval, first_settled = _settled([ginlight[0] / plain[0] for ginlight, plain in launches],
                                             FIRST_STEP_TARGET)
    lines += [
        "",
        "| start-up (median) | wall s | CPU s |",
        "| --- | ---: | ---: |",
        *(f"| `ginlight-train {flag}` | {statistics.median(startup[flag]):.2f} | |"
          for flag in ("--help", "--print_config", "--list_configurables")),
        *(f"| launch to first training step: {name} | {first[name]:.2f} | {first_cpu[name]:.2f} |" for name in first),
        f"| ratio ginlight-train / plain Lightning | {first_ratio:.2f} | {first_cpu_ratio:.2f} |",
        "",
        f"`--help` under 1 s: {'ok' if help_seconds < 1 else 'MISSED'} ({help_seconds:.2f} s); "
        f"launch to first step, ginlight-train / plain Lightning <= {FIRST_STEP_TARGET}: wall "
        f"{'ok' if first_ratio <= FIRST_STEP_TARGET else 'MISSED'}, "
        f"CPU {'ok' if first_cpu_ratio <= FIRST_STEP_TARGET else 'MISSED'}, "
        f"wall, repeats' median ratio {first_interval}, settled: {first_settled}; "
        f"--print_config and --list_configurables built nothing: {'yes' if startup['built nothing'] else 'NO'}",
    ]
    return "\n".join(lines)


def _group_of(groups: list[dict[str, list[Clock]]], variant: str) -> dict[str, list[Clock]]:
    return next(group for group in groups if variant in group)


def _median(epochs: list[Clock], clock: int) -> float:
    """The median of the epochs' wall (``clock`` 0) or CPU (1) seconds."""
    return statistics.median(epoch[clock] for epoch in epochs)


def _ratio(group: dict[str, list[Clock]], variant: str, against: str, clock: int = 0) -> float:
    """``variant``'s median epoch over ``against``'s, in wall (``clock`` 0) or CPU (1) seconds."""
    return _median(group[variant], clock) / _median(group[against], clock)


def _settled(repeat_ratios: list[float], limit: float) -> tuple[str, str]:
    """The repeats' median ratio's interval, and whether it settles ``ratio <= limit``: met, missed or no."""
    low, high, confidence = _median_interval(repeat_ratios)
    settled = "no" if confidence < 0.95 else "met" if high <= limit else "missed" if low > limit else "no"
    return f"{low:.2f}-{high:.2f} ({confidence:.0%})", settled


def _median_interval(values: list[float]) -> tuple[float, float, float]:
    """The narrowest interval between order statistics of ``values`` that holds their
    distribution's median with at least 95% confidence, and that confidence.

    Distribution-free: it assumes only that the values are independent, as repeats are
    (each builds its own runs). With fewer than six values no such interval exists; then
    it is their range, with the confidence that has.
    """
    ordered, n = sorted(values), len(values)
    # the median lies outside [ordered[k], ordered[n-1-k]] when at most k values fall on one side
    outside = [2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n for k in range(n // 2)]
    k = max([k for k, p in enumerate(outside) if p <= 0.05], default=0)
    return ordered[k], ordered[n - 1 - k], 1 - outside[k] if outside else 0.0


def _repeat_ratios(group: dict[str, list[Clock]], variant: str, against: str, repeats: int) -> list[float]:
    """The ratio of median wall seconds per epoch within each repeat: how far the machine's
    noise moves a ratio measured side by side."""
    per_repeat = len(group[variant]) // repeats
    return [_ratio({name: epochs[r * per_repeat:(r + 1) * per_repeat] for name, epochs in group.items()},
                   variant, against) for r in range(repeats)]


def _keep_freed_memory() -> None:
    """Has glibc's malloc keep the memory of freed tensors instead of returning it to the system.

    By default the CNN's activations (13 MB a layer) are mapped afresh at each step in some
    runs and not in others, depending on the heap's history: 3,000-9,000 page faults a step,
    6-13% of it. Kept, no step faults a page. (Other C libraries: nothing to do.)
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)  # the largest glibc takes: served from the heap below it
    libc.mallopt(M_TRIM_THRESHOLD, 2**30)  # the heap shrinks only past 1 GiB free at its top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat of one measured epoch: checks that it runs")
    parser.add_argument("--repeats", type=int, default=10,
                        help="runs of each variant (default 10; 6 or more for a 95%% interval)")
    parser.add_argument("--epochs", type=int, default=4, help="measured epochs per run (default 4)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append",
                        help="measure only this workload (repeatable; default: all)")
    parser.add_argument("--lightning_script", nargs=2, metavar=("FIRST_STEP_FILE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lightning_script:
        lightning_script(*args.lightning_script)
        return
    repeats, epochs = (1, 1) if args.quick else (args.repeats, args.epochs)
    torch.set_num_threads(1)
    _keep_freed_memory()
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # per-run banners, not the epochs' cost
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ginlight-overhead-") as folder:
        workdir = Path(folder)
        times = epoch_times(repeats, epochs, workdir, args.workload or tuple(WORKLOADS))
        startup = startup_times(1 if args.quick else repeats, workdir)
    print(report(times, startup, repeats, (load_at_start, os.getloadavg()[0])))


if __name__ == "__main__":
    main()
