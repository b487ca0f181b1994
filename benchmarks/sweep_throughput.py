"""Sweep throughput: trials per minute with one worker and with two, measured side by side.

    python -m benchmarks.sweep_throughput              # 4 trials per setting, twice each (a few minutes)
    python -m benchmarks.sweep_throughput --repeats=1  # once each

The same 4-trial grid (the digits classifier, one short epoch per trial) runs with
``--workers=1`` and ``--workers=2``, alternating, each sweep in a fresh directory. A
sweep's time is its trials' span in the study (first trial created to last trial
finished), so the sweep process's own start-up is left out; each trial's time includes
its ``ginlight-train`` process starting, which is most of a small trial and as CPU-bound
as the training. The speed-up per worker is (trials/min with N workers) / (trials/min
with 1) / N; on a machine with N free cores the goal is at least 0.8.

The machine's load average is printed before and after: other processes on the cores
lower the speed-up, so read the figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
TRIAL = ["MAX_EPOCHS=1", "Trainer.limit_train_batches=20", "Trainer.limit_val_batches=2",
         "Trainer.enable_progress_bar=False", "Trainer.enable_model_summary=False"]
GRID = "torch.optim.AdamW.lr=[1e-3, 2e-3, 3e-3, 4e-3]"


def sweep_minutes(workers: int, root: Path) -> float:
    """Runs the 4-trial sweep with ``workers``; returns its trials' span in minutes."""
    command = [sys.executable, "-m", "ginlight.cli.sweep", f"--gin_file={REPO / 'configs' / 'classifier.gin'}",
               *(f"--gin_bindings={b}" for b in TRIAL), f"--sweep={GRID}", f"--workers={workers}",
               f"--root_dir={root}"]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the sweep failed:\n{result.stdout}{result.stderr}")
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
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per setting, alternating")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average (1, 5, 15 min) before: {load()}", flush=True)
    minutes: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="ginlight-sweep-bench-") as scratch:
        for repeat in range(args.repeats):
            for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
                root = Path(scratch) / f"{repeat}-{workers}"
                root.mkdir()
                minutes[workers].append(sweep_minutes(workers, root))
                print(f"  workers={workers}: 4 trials in {60 * minutes[workers][-1]:.1f} s "
                      f"({4 / minutes[workers][-1]:.2f} trials/min); load {load()}", flush=True)
    rate = {workers: 4 * len(spans) / sum(spans) for workers, spans in minutes.items()}
    speedup = rate[2] / rate[1]
    print(f"workers=1: {rate[1]:.2f} trials/min; workers=2: {rate[2]:.2f} trials/min")
    print(f"speed-up with 2 workers: {speedup:.2f}, {speedup / 2:.2f} per worker (goal: at least 0.8)")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
