"""Sweep throughput: what a sweep of short trials costs against one run, and trials per minute per worker.

    python -m benchmarks.sweep_throughput              # every table, 2 repeats each (about 10 minutes)
    python -m benchmarks.sweep_throughput --repeats=3  # 3 repeats each
    python -m benchmarks.sweep_throughput --quick      # one short repeat of the first two: checks that it runs

1. A sweep against one run. The README's minimal config (``my.gin``), cut to a short run
   (1 epoch, 2 training batches, 1 validation batch), runs once as ``ginlight-train`` and
   once as an 8-trial grid ``ginlight-sweep --workers=2``, taking turns, each in a fresh
   directory; each time is its command's wall time, start to exit, start-up included. A
   standalone short run is almost all start-up, so the ratio says how much of it a sweep
   pays per trial: trials fork from a warm worker (``ginlight.sweep.warm``), so the goal is
   at most 2.0x. (``--quick``: a 2-trial grid.)
2. Launch to first step: ``ginlight-train`` against the equivalent plain Lightning script
   (:func:`benchmarks.overhead.first_step_times`); the goal is no slower.
3. Trials per minute with one worker and with two (not in ``--quick``): the same 4-trial
   grid (the digits classifier, one short epoch per trial) with ``--workers=1`` and
   ``--workers=2``, taking turns. A sweep's time is its trials' span in the study (first
   trial created to last trial finished), so the sweep process's own start-up is left
   out. The speed-up per worker is (trials/min with N workers) / (trials/min with 1) / N;
   on a machine with N free cores the goal is at least 0.8.

Every ratio is of measurements taken side by side in one run of the benchmark, which is
what survives a machine that others load. The load average is printed before and after:
other processes on the cores lower the speed-up, so read the figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks.overhead import first_step_times

REPO = Path(__file__).resolve().parents[1]
TRIAL = ["MAX_EPOCHS=1", "Trainer.limit_train_batches=20", "Trainer.limit_val_batches=2",
         "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]
GRID = "torch.optim.AdamW.lr=[1e-3, 2e-3, 3e-3, 4e-3]"
#: The short run of the README's minimal config.
SHORT = ["Trainer.max_epochs=1", "Trainer.limit_train_batches=2", "Trainer.limit_val_batches=1",
         "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]
#: The 8-trial grid of short runs, and the quick mode's 2-trial one.
SHORT_GRID = ["--sweep=torch.optim.AdamW.lr=[1e-3, 2e-3, 3e-3, 4e-3]", "--sweep=DataLoader.batch_size=[16, 32]"]
QUICK_GRID = ["--sweep=torch.optim.AdamW.lr=[1e-3, 2e-3]"]


def minimal_config() -> str:
    """The README's minimal config, the block that starts with ``# my.gin``."""
    text = (REPO / "README.md").read_text()
    start = text.index("# my.gin")
    return text[start:text.index("```", start)]


def _wall(command: list[str], cwd: Path) -> float:
    """Runs ``command`` in ``cwd``; its wall time in seconds, or exits with its output if it failed."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} failed:\n{result.stdout}{result.stderr}")
    return seconds


def sweep_against_run(repeats: int, grid: list[str], scratch: Path) -> dict[str, list[float]]:
    """Wall seconds of the standalone short run and of the sweep of ``grid``, taking turns."""
    (scratch / "my.gin").write_text(minimal_config())
    flags = ["--gin_file=my.gin", *(f"--gin_bindings={b}" for b in SHORT)]
    commands = {"one run (ginlight-train)": [sys.executable, "-m", "ginlight.cli.train", *flags],
                "sweep (ginlight-sweep --workers=2)": [sys.executable, "-m", "ginlight.cli.sweep", *flags, *grid,
                                                       "--workers=2"]}
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):
        for name in sorted(commands, reverse=bool(repeat % 2)):
            root = scratch / f"runs-{repeat}-{len(seconds[name])}-{name.split()[0]}"
            seconds[name].append(_wall([*commands[name], f"--root_dir={root}"], scratch))
            print(f"  {name}: {seconds[name][-1]:.1f} s; load {load()}", flush=True)
    return seconds


def sweep_minutes(workers: int, root: Path) -> float:
    """Runs the 4-trial sweep with ``workers``; returns its trials' span in minutes."""
    command = [sys.executable, "-m", "ginlight.cli.sweep", f"--gin_file={REPO / 'configs' / 'classifier.gin'}",
               *(f"--gin_bindings={b}" for b in TRIAL), f"--sweep={GRID}", f"--workers={workers}",
               f"--root_dir={root}"]
    _wall(command, root)
    (folder,) = root.glob("classifier/sweep-*")
    study = optuna.load_study(study_name=json.loads((folder / "sweep.json").read_text())["study"],
                              storage=f"sqlite:///{folder / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return span.total_seconds() / 60


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each setting, taking turns")
    parser.add_argument("--quick", action="store_true", help="one repeat, a 2-trial sweep, no workers' speed-up")
    args = parser.parse_args()
    repeats, grid = (1, QUICK_GRID) if args.quick else (args.repeats, SHORT_GRID)
    trials = 2 if args.quick else 8
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average (1, 5, 15 min) before: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ginlight-sweep-bench-") as folder:
        scratch = Path(folder)
        seconds = sweep_against_run(repeats, grid, scratch)
        first = first_step_times(repeats, scratch)
        minutes: dict[int, list[float]] = {1: [], 2: []}
        for repeat in range(0 if args.quick else repeats):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                root = scratch / f"speedup-{repeat}-{workers}"
                root.mkdir()
                minutes[workers].append(sweep_minutes(workers, root))
                print(f"  workers={workers}: 4 trials in {60 * minutes[workers][-1]:.1f} s "
                      f"({4 / minutes[workers][-1]:.2f} trials/min); load {load()}", flush=True)

    mean = {name: statistics.mean(values) for name, values in seconds.items()}
    run, sweep = mean.values()
    ratio = sweep / run
    print(f"\n| {trials}-trial sweep of short runs against one | wall s per repeat | mean |")
    print("| --- | --- | ---: |")
    for name, values in seconds.items():
        print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {mean[name]:.1f} |")
    print(f"| ratio sweep / one run | {', '.join(f'{s / r:.2f}' for r, s in zip(*seconds.values()))} "
          f"| {ratio:.2f} |")
    print(f"\n{trials}-trial sweep / one run: {ratio:.2f}x (goal: at most 2.0x for 8 trials)")

    # Wall and CPU seconds; on a machine others load, the CPU seconds are what the load leaves alone.
    medians = {name: [statistics.median(clock[i] for clock in clocks) for i in (0, 1)] for name, clocks in first.items()}
    print("\n| launch to first training step (median) | wall s per repeat | wall s | CPU s |\n| --- | --- | ---: | ---: |")
    for name, (wall, cpu) in medians.items():
        print(f"| {name} | {', '.join(f'{w:.2f}' for w, _ in first[name])} | {wall:.2f} | {cpu:.2f} |")
    ratios = [g / p for g, p in zip(medians["ginlight-train"], medians["plain Lightning script"])]
    print(f"| ratio ginlight-train / plain Lightning | | {ratios[0]:.2f} | {ratios[1]:.2f} |")
    print(f"\nlaunch to first step, ginlight-train / plain Lightning: {ratios[0]:.2f} wall, {ratios[1]:.2f} CPU "
          "(goal: at most 1.0)")

    if minutes[1]:
        rate = {workers: 4 * len(spans) / sum(spans) for workers, spans in minutes.items()}
        speedup = rate[2] / rate[1]
        print(f"\nworkers=1: {rate[1]:.2f} trials/min; workers=2: {rate[2]:.2f} trials/min")
        print(f"speed-up with 2 workers: {speedup:.2f}, {speedup / 2:.2f} per worker (goal: at least 0.8)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
