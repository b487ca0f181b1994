"""``ginlight-runs`` over many runs: the time to list 1,000 synthetic run directories.

    python -m benchmarks.runs_listing              # 1,000 runs, 5 repeats of each command
    python -m benchmarks.runs_listing --runs=100 --repeats=1

Each synthetic run holds what ``ginlight-train`` leaves for ``ginlight-runs`` to
read: a ``run.json`` with the fields ``ginlight-train`` writes, seven final
metrics and a status (completed, failed, interrupted, running or pruned), and an
operative config as gin writes one, 200 bindings of 25 configurables (as many as
the digits classifier's), two of which vary between runs (a learning rate and a
batch size); plus ``checkpoints/`` and ``tensorboard/`` folders, which a listing
does not enter. A command's time is its whole run, from launching the installed
``ginlight-runs`` to its exit, interpreter start-up and imports included; the
target is under 2 s. The listing's imports are checked too: no torch, no Lightning.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = Path(sys.executable).parent / "ginlight-runs"
TARGET_S = 2.0
CONFIGURABLES = 25
PARAMETERS = 8
STATUSES = ["completed"] * 6 + ["failed", "interrupted", "running", "pruned"]
METRICS = ["lr-AdamW", "train/accuracy", "train/loss", "train/loss_step", "val/accuracy", "val/f1score", "val/loss"]
# Value kinds an operative config holds, cycled through the parameters.
VALUES = ["None", "True", "0.0001", "(32, 64)", "'mean'", "@torch.nn.GELU", "-100", "%BATCH_SIZE"]


def operative_config(run_dir: Path, lr: float, batch_size: int) -> str:
    """An operative config in gin's layout: header, macros, then each configurable's bindings."""
    lines = [f"# Operative config of {run_dir}, seed 0.",
             f"# Rerun with: ginlight-train --gin_file={run_dir / 'operative_config.gin'}",
             "# Macros:", "# " + "=" * 78, f"BATCH_SIZE = {batch_size}", f"LR = {lr}", ""]
    for index in range(CONFIGURABLES):
        name = f"train/Component{index}" if index % 5 == 0 else f"Component{index}"
        lines += [f"# Parameters for {name}:", "# " + "=" * 78]
        lines += [f"{name}.parameter_{j} = {VALUES[(index + j) % len(VALUES)]}" for j in range(PARAMETERS - 1)]
        lines += [f"{name}.wiring = \\", "    {'train': @train/DataLoader(),", "     'val': @val/DataLoader()}", ""]
    return "\n".join(lines)


def make_runs(root: Path, count: int) -> None:
    """``count`` run directories under ``root/synthetic/``, differing in LR and BATCH_SIZE."""
    rng = random.Random(0)
    for index in range(count):
        run_dir = root / "synthetic" / f"20240101-{index // 60:04d}{index % 60:02d}"
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "tensorboard").mkdir()
        lr, batch_size = [1e-3, 3e-3, 1e-2, 3e-2][index % 4], [16, 32, 64][index % 3]
        (run_dir / "operative_config.gin").write_text(operative_config(run_dir, lr, batch_size))
        status = STATUSES[index % len(STATUSES)]
        record = {
            "argv": ["ginlight-train", "--gin_file=configs/classifier.gin", f"--gin_bindings=LR={lr}"],
            "cwd": str(root), "start_time": f"2024-01-01T10:{index // 60 % 60:02d}:{index % 60:02d}+00:00",
            "end_time": None if status == "running" else f"2024-01-01T11:{index // 60 % 60:02d}:{index % 60:02d}+00:00",
            "status": status, "error": "RunError: boom" if status == "failed" else None, "seed": 0,
            "hostname": "bench", "versions": {"python": "3.11", "torch": "2.13.0", "ginlight": "0.1.0"},
            "metrics": {name: rng.random() for name in METRICS}, "best_checkpoint": None, "stage": "fit",
            "ckpt_path": None, "weights_sha256": f"{index:064x}", "tags": ["baseline"] if index % 2 else [],
            "notes": None,
        }
        (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")


def time_command(args: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds, and CPU seconds (user + system), of each of ``repeats`` runs of ``ginlight-runs args``.

    On a busy machine the wall time grows with the load; the CPU time much less.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run([str(COMMAND), *args], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if result.returncode != 0:
            sys.exit(f"ginlight-runs {' '.join(args)} failed:\n{result.stderr}")
    return walls, cpus


def imported_heavy_modules(root: Path) -> list[str]:
    """The torch and Lightning modules a listing of ``root`` imports (none, if all is well)."""
    script = ("import json, sys\nfrom ginlight.cli import runs\n"
              f"try:\n    runs.run(['ginlight-runs', {str(root)!r}])\nexcept SystemExit:\n    pass\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning'))))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ginlight-runs-bench-") as folder:
        root = Path(folder)
        make_runs(root, args.runs)
        commands = [[str(root)], [str(root), "--format=json"],
                    [str(root), "--sort=-val/accuracy", "--filter=status=completed", "--tags=baseline"]]
        print(f"ginlight-runs over {args.runs} synthetic runs, {args.repeats} repeats each (seconds, whole command); "
              f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
        print("| command | wall median | wall min | wall max | CPU median |")
        print("| --- | --- | --- | --- | --- |")
        medians = []
        for command in commands:
            walls, cpus = time_command(command, args.repeats)
            medians.append(statistics.median(walls))
            shown = " ".join(["ROOT", *command[1:]])
            print(f"| `ginlight-runs {shown}` | {medians[-1]:.2f} | {min(walls):.2f} | {max(walls):.2f} | "
                  f"{statistics.median(cpus):.2f} |")
        heavy = imported_heavy_modules(root)
    verdict = "met" if max(medians) < TARGET_S else "NOT met"
    print(f"\nload average after: {os.getloadavg()[0]:.2f}; slowest wall median {max(medians):.2f} s; "
          f"target < {TARGET_S:.0f} s: {verdict}")
    print(f"torch or Lightning imported by the listing: {', '.join(heavy[:5]) if heavy else 'none'}")


if __name__ == "__main__":
    main()
