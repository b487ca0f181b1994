"""Pruning's speed-up: the same TPE sweep with and without ``--pruner=halving``, taking turns.

    python -m benchmarks.sweep_pruning              # 16 trials a sweep, 2 repeats of each
    python -m benchmarks.sweep_pruning --repeats=1  # once each

The sweep is 16 TPE trials of the digits classifier (64 epochs of 10 batches, so that a trial's
training outweighs its process start-up, as in a real sweep; ``--trials``, ``--epochs``) over
``torch.optim.AdamW.lr = loguniform(1e-5, 1)``: about half the learning rates crawl
(below 1e-4) or diverge (above 0.1). The two settings alternate, each sweep in a
fresh directory on two workers. The pruner is Optuna's SuccessiveHalvingPruner,
``min_resource = 1`` bound in gin (its default waits for a first trial to complete
before judging any): a trial goes on past epochs 1, 4 and 16 only while it is in
the best quarter of the trials that got there. A sweep's wall
time is its command's, start to exit, so each trial's process start-up counts, as
it does for a user. Reported per setting: wall time, trials per hour, and the best
``val/accuracy`` of each sweep (the search is random, so the best varies from sweep
to sweep: read it against that spread).

The target is at least 2x less wall time with pruning, for the same best objective.
The machine's load average is printed before and after.
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
from pathlib import Path

from benchmarks.sweep_throughput import load

REPO = Path(__file__).resolve().parents[1]
TRIAL = ["Trainer.limit_train_batches=10", "Trainer.limit_val_batches=4",
         "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]
SPACE = "torch.optim.AdamW.lr=loguniform(1e-5, 1.0)"
PRUNING = ["--pruner=halving", "--gin_bindings=optuna.pruners.SuccessiveHalvingPruner.min_resource = 1"]


def sweep(root: Path, pruned: bool, trials: int, epochs: int) -> tuple[float, float, int]:
    """Runs the sweep; returns its wall time in seconds, its best val/accuracy and how many trials were pruned."""
    command = [sys.executable, "-m", "ginlight.cli.sweep", f"--gin_file={REPO / 'configs' / 'classifier.gin'}",
               *(f"--gin_bindings={b}" for b in [f"MAX_EPOCHS={epochs}", *TRIAL]), f"--sweep={SPACE}", "--mode=tpe",
               f"--trials={trials}",
               "--objective=val/accuracy", "--direction=max", "--workers=2", f"--root_dir={root}",
               *(PRUNING if pruned else [])]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"the sweep failed:\n{result.stdout}{result.stderr}")
    (folder,) = root.glob("classifier/sweep-*")
    with open(folder / "sweep.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = max(float(row["objective"]) for row in rows if row["status"] == "completed")
    return seconds, best, sum(row["status"] == "pruned" for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per setting, taking turns")
    parser.add_argument("--trials", type=int, default=16, help="trials a sweep")
    parser.add_argument("--epochs", type=int, default=64, help="epochs of 10 batches a trial that is not pruned trains")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average (1, 5, 15 min) before: {load()}", flush=True)
    runs: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="ginlight-pruning-bench-") as scratch:
        for repeat in range(args.repeats):
            for pruned in (False, True) if repeat % 2 == 0 else (True, False):
                root = Path(scratch) / f"{repeat}-{'pruned' if pruned else 'full'}"
                root.mkdir()
                runs[pruned].append(sweep(root, pruned, args.trials, args.epochs))
                seconds, best, count = runs[pruned][-1]
                print(f"  {'halving pruner' if pruned else 'no pruning'}: {seconds:.0f} s, best val/accuracy "
                      f"{best:.4f}, {count} of {args.trials} pruned; load {load()}", flush=True)
    print()
    print("| sweep | wall time (s), mean | trials/hour | best val/accuracy per sweep | pruned trials |")
    print("| --- | --- | --- | --- | --- |")
    for pruned, label in ((False, "no pruning"), (True, "`--pruner=halving`")):
        seconds = statistics.mean(run[0] for run in runs[pruned])
        bests = ", ".join(f"{run[1]:.3f}" for run in runs[pruned])
        counts = ", ".join(str(run[2]) for run in runs[pruned])
        print(f"| {label} | {seconds:.0f} | {args.trials * 3600 / seconds:.0f} | {bests} | {counts} |")
    speedup = statistics.mean(r[0] for r in runs[False]) / statistics.mean(r[0] for r in runs[True])
    print(f"\nwall time without / with pruning: {speedup:.2f}x (target: at least 2x)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
