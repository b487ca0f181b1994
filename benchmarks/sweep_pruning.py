"""Pruning's speed-up: the same seeded TPE sweep with and without ``--pruner=halving``, taking turns.

    python -m benchmarks.sweep_pruning              # 12 trials a sweep, 2 repeats of each
    python -m benchmarks.sweep_pruning --repeats=3  # 3 of each

A sweep is 12 TPE trials of the digits classifier (``configs/classifier.gin``: every
batch of every epoch, the ConvNet widened to (64, 128) channels, 30 epochs; ``--trials``,
``--epochs``) over ``torch.optim.AdamW.lr = loguniform(1e-5, 1)``: about half the
learning rates crawl (below 1e-4) or diverge (above 0.1). A trial trains for tens of
seconds on two cores; it forks from the sweep's warm worker, so it pays no start-up of its
own. Each sweep runs in a fresh directory on two workers.

The comparison keeps everything but the pruner the same: the space, the trial count, and
the sampler's seed (repeat ``r`` seeds both of its sweeps with ``r``, so their first 10
trials, TPE's random start-up, try the same learning rates). ``ginlight-sweep`` has no
seed flag, so the sweep runs through :data:`SEEDED_SWEEP`, which gives Optuna's
TPESampler the seed and then runs ``ginlight.cli.sweep`` as it is. The pruner is what a
user would pick for a TPE sweep of a dozen trials: Optuna's SuccessiveHalvingPruner with
``min_resource = 1`` bound in gin (its default, ``auto``, judges no trial before one
has completed), and its default ``reduction_factor`` of 4: a trial goes on past epochs 2,
5 and 17 only while it is in the best quarter of the trials that got there.

A sweep's wall time is its command's, start to exit, so its start-up counts, as it does
for a user. Reported per setting: wall time, trials per hour, the best
``val/accuracy`` of each sweep, how many trials were pruned, and the epochs trained in
all. The target is at least 2x less wall time with pruning, for the same best objective.
The machine's load average is printed before and after each sweep.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.sweep_throughput import load

REPO = Path(__file__).resolve().parents[1]
TRIAL = ["ginlight.models.ConvNet.channels = (64, 128)", "Trainer.enable_progress_bar=False",
         "Trainer.enable_model_summary=False"]
SPACE = "torch.optim.AdamW.lr=loguniform(1e-5, 1.0)"
PRUNING = ["--pruner=halving", "--gin_bindings=optuna.pruners.SuccessiveHalvingPruner.min_resource = 1"]
#: Runs ``ginlight-sweep`` (its flags from the command line) with Optuna's TPESampler seeded by SAMPLER_SEED.
SEEDED_SWEEP = '''
import os

import optuna

from ginlight.cli import sweep


class SeededTPESampler(optuna.samplers.TPESampler):
    def __init__(self, **kwargs):
        super().__init__(seed=int(os.environ["SAMPLER_SEED"]), **kwargs)


optuna.samplers.TPESampler = SeededTPESampler
sweep.run()
'''


@dataclass
class Sweep:
    seconds: float
    best: float  # the best val/accuracy of a completed trial
    pruned: int  # trials pruned
    epochs: int  # epochs trained by all trials


def sweep(root: Path, pruned: bool, trials: int, epochs: int, seed: int) -> Sweep:
    """Runs one sweep in ``root`` and reads its sweep.csv."""
    command = [sys.executable, "-c", SEEDED_SWEEP, f"--gin_file={REPO / 'configs' / 'classifier.gin'}",
               *(f"--gin_bindings={b}" for b in [f"MAX_EPOCHS={epochs}", *TRIAL]), f"--sweep={SPACE}", "--mode=tpe",
               f"--trials={trials}", "--objective=val/accuracy", "--direction=max", "--workers=2",
               f"--root_dir={root}", *(PRUNING if pruned else [])]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True,
                            env={**os.environ, "SAMPLER_SEED": str(seed)})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"the sweep failed:\n{result.stdout}{result.stderr}")
    (folder,) = root.glob("classifier/sweep-*")
    with open(folder / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return Sweep(seconds=seconds,
                 best=max(float(row["objective"]) for row in rows if row["status"] == "completed"),
                 pruned=sum(row["status"] == "pruned" for row in rows),
                 epochs=sum(int(row["stopped_at"].split()[1]) for row in rows if row["stopped_at"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per setting, taking turns")
    parser.add_argument("--trials", type=int, default=12, help="trials a sweep")
    parser.add_argument("--epochs", type=int, default=30, help="epochs a trial that is not pruned trains")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average (1, 5, 15 min) before: {load()}", flush=True)
    runs: dict[bool, list[Sweep]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="ginlight-pruning-bench-") as scratch:
        for repeat in range(args.repeats):
            for pruned in (False, True) if repeat % 2 == 0 else (True, False):
                root = Path(scratch) / f"{repeat}-{'pruned' if pruned else 'full'}"
                root.mkdir()
                run = sweep(root, pruned, args.trials, args.epochs, seed=repeat)
                runs[pruned].append(run)
                print(f"  seed {repeat}, {'halving pruner' if pruned else 'no pruning'}: {run.seconds:.0f} s, "
                      f"best val/accuracy {run.best:.4f}, {run.pruned} of {args.trials} pruned, "
                      f"{run.epochs} epochs trained; load {load()}", flush=True)
    print()
    print(f"| sweep ({args.trials} trials of up to {args.epochs} epochs) | wall time (s) per sweep | mean | "
          "trials/hour | best val/accuracy per sweep | pruned trials | epochs trained |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for pruned, label in ((False, "no pruning"), (True, "`--pruner=halving`, `min_resource = 1`")):
        seconds = statistics.mean(run.seconds for run in runs[pruned])
        cells = [", ".join(f"{run.seconds:.0f}" for run in runs[pruned]), f"{seconds:.0f}",
                 f"{args.trials * 3600 / seconds:.0f}", ", ".join(f"{run.best:.3f}" for run in runs[pruned]),
                 ", ".join(str(run.pruned) for run in runs[pruned]), ", ".join(str(run.epochs) for run in runs[pruned])]
        print(f"| {label} | {' | '.join(cells)} |")
    speedup = statistics.mean(r.seconds for r in runs[False]) / statistics.mean(r.seconds for r in runs[True])
    print(f"\nwall time without / with pruning: {speedup:.2f}x (target: at least 2x)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
