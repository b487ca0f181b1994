"""Kills training runs at random instants, resumes each after every kill, and checks they end as the uninterrupted run.

    python -m benchmarks.kill_loop --kills=30   # docs/reproducibility.md's figure (about 10 minutes)
    python -m benchmarks.kill_loop --kills=3    # what tests/test_preemption.py runs

First one uninterrupted run of the classifier, with an MLP large enough (about 50 MB of
checkpoint) that a save takes a while. Then a run is started and killed with SIGKILL,
SIGTERM or SIGINT, drawn at random: for half the kills at a random instant between its
start and the uninterrupted run's duration, for the other half while its next checkpoint
is being written (its ``*.partial`` file exists). It is ``--resume``d after each kill,
again and again; a run that ends before its kill is compared and the next one starts fresh. The run
directories are on the disk, TMPDIR on a tmpfs (``/dev/shm``): another filesystem, as a
cluster's node-local /tmp is. After each kill:

- every checkpoint in the run's ``checkpoints/`` can be read (``ginlight.checkpoint.read_checkpoint``);
- TMPDIR is empty;
- the kills that found a checkpoint being written are counted, and the ``*.partial`` files found
  (SIGKILL leaves one; the next start removes it).

Each finished run is compared with the uninterrupted one as a whole (``tests/outcomes.py``:
files, every checkpoint tensor by tensor, config, ``run.json``). The differences allowed are
the two docs/reproducibility.md describes: the final epoch's training metrics when a signal
stopped the run inside that epoch, and a metric logged before a resumption and not since
(missing, never different). A finished run must hold no ``*.partial`` file. It exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # tests/outcomes.py: two run directories compared as a whole
from outcomes import differences  # noqa: E402

from ginlight import rundir  # noqa: E402
from ginlight.checkpoint import PARTIAL_SUFFIX, read_checkpoint  # noqa: E402
from ginlight.errors import ConfigError  # noqa: E402

COMMAND = Path(sys.executable).parent / "ginlight-train"
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
EPOCHS, BATCHES = 4, 20
SETTINGS = [
    f"MAX_EPOCHS={EPOCHS}", f"Trainer.limit_train_batches={BATCHES}", "Trainer.limit_val_batches=2",
    "BATCH_SIZE=8", "Trainer.enable_progress_bar=False",
    # About 4.3 million parameters: 17 MB of weights, 50 MB of checkpoint with AdamW's two moments.
    "System.model = @ginlight.models.MLP()", "ginlight.models.MLP.in_features = 64",
    "ginlight.models.MLP.out_features = %NUM_CLASSES", "ginlight.models.MLP.hidden = (2048, 2048)",
]
#: The difference allowed when a signal stopped a run inside its final epoch (docs/reproducibility.md).
FINAL_EPOCH_TRAIN_METRICS = "run.json['metrics']['train/"
#: The difference allowed for a metric logged before a resumption and not since (docs/reproducibility.md).
NO_METRICS = "run.json['metrics']: key "


def train_args(root: Path) -> list[str]:
    return [f"--gin_file={REPO / 'configs' / 'classifier.gin'}", f"--root_dir={root}",
            *(f"--gin_bindings={value}" for value in SETTINGS)]


def start(args: list[str], tmpdir: Path, log: Path) -> subprocess.Popen:
    """``ginlight-train args`` from the folder of ``log`` (outside any repository: no git record to differ)."""
    return subprocess.Popen(
        [str(COMMAND), *args], stdout=open(log, "a"), stderr=subprocess.STDOUT, cwd=log.parent,
        env={**os.environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell may ignore it
    )


def check_after_kill(run: Path | None, tmpdir: Path) -> dict[str, list[str]]:
    """What a kill left that it should not have: unreadable checkpoints, files in TMPDIR; and its partial files."""
    found: dict[str, list[str]] = {"unreadable": [], "in_tmpdir": sorted(p.name for p in tmpdir.iterdir()),
                                   "partial": []}
    if run is not None:
        for path in sorted((run / rundir.CHECKPOINTS).glob("*.ckpt")):
            try:
                read_checkpoint(path)
            except ConfigError as exc:
                found["unreadable"].append(f"{path.name}: {exc.message}")
        found["partial"] = sorted(p.name for p in (run / rundir.CHECKPOINTS).glob(f".*{PARTIAL_SUFFIX}"))
    return found


def saving(root: Path) -> bool:
    """Whether a checkpoint of the run under ``root`` is being written: its ``*.partial`` file exists."""
    return any(root.glob(f"*/*/{rundir.CHECKPOINTS}/.*{PARTIAL_SUFFIX}"))


def wait_for_a_save(process: subprocess.Popen, root: Path) -> bool:
    """Waits until a checkpoint is being written or the process ends; whether one is."""
    while process.poll() is None:
        if saving(root):
            return True
        time.sleep(0.002)
    return False


def wait_a_while(process: subprocess.Popen, root: Path, rng: random.Random, duration: float) -> bool:
    """Waits a random time up to ``duration`` or until the process ends; whether a checkpoint is being written."""
    try:
        process.wait(timeout=rng.uniform(0, duration))
    except subprocess.TimeoutExpired:
        pass
    return process.poll() is None and saving(root)


def stopped_in_final_epoch(run: Path) -> bool:
    """Whether the run's last.ckpt was saved inside its final epoch (where a signal stopped it)."""
    last = run / rundir.CHECKPOINTS / "last.ckpt"
    if not last.is_file():
        return False
    checkpoint = read_checkpoint(last)
    return checkpoint["epoch"] == EPOCHS - 1 and checkpoint["global_step"] % BATCHES != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=None, help="for the instants and signals; random by default")
    parser.add_argument("--work_dir", type=Path, default=None, help="for the runs, on the disk (default: a new one "
                                                                      "in the system's temporary folder)")
    parser.add_argument("--tmpdir_root", type=Path, default=Path("/dev/shm"), help="TMPDIR goes in a new folder here")
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="kill-loop-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix="kill-loop-tmpdir-", dir=options.tmpdir_root))
    log = work / "console.txt"
    print(f"kill loop: {options.kills} kills, seed {seed}; runs in {work}, TMPDIR {tmpdir} "
          f"({'another' if os.stat(work).st_dev != os.stat(tmpdir).st_dev else 'the same'} filesystem)", flush=True)

    began = time.monotonic()
    reference_process = start(train_args(work / "reference"), tmpdir, log)
    if reference_process.wait() != 0:
        print(f"the uninterrupted run failed; see {log}")
        return 1
    duration = time.monotonic() - began
    (reference,) = (p.parent for p in (work / "reference").glob("*/*/run.json"))

    summary = {"seed": seed, "kills": 0, "by_signal": {s.name: 0 for s in SIGNALS},
               "during_a_save": {s.name: 0 for s in SIGNALS}, "partial_files_seen_after_kills": 0,
               "before_the_run_was_recorded": 0, "runs": 0, "runs_as_uninterrupted": 0,
               "runs_missing_metrics_logged_before_a_resumption": 0, "unreadable": [],
               "left_in_tmpdir": [], "differences": [], "uninterrupted_run_s": round(duration, 1)}
    index, run, final_epoch_stop = 0, None, False

    def finish(run: Path) -> None:
        summary["runs"] += 1
        found = differences(reference, run, ignore_record=["resumptions"])
        if final_epoch_stop:
            found = [line for line in found if not line.startswith(FINAL_EPOCH_TRAIN_METRICS)]
        missing = [line for line in found if line.startswith(NO_METRICS)]
        if missing:  # logged before a resumption, and not since: not carried over (docs/reproducibility.md)
            summary["runs_missing_metrics_logged_before_a_resumption"] += 1
            found = [line for line in found if line not in missing]
        found += [f"a partial file left: {path.name}" for path in (run / rundir.CHECKPOINTS).glob(f".*{PARTIAL_SUFFIX}")]
        summary["runs_as_uninterrupted"] += not found
        summary["differences"] += [f"{run.name}: {line}" for line in found[:20]]

    while summary["kills"] < options.kills:
        if run is None:
            index += 1
            root, final_epoch_stop = work / f"killed-{index}", False
            process = start(train_args(root), tmpdir, log)
        else:
            process = start([f"--resume={run}"], tmpdir, log)
        signum = rng.choice(SIGNALS)
        # Half the kills at a random instant, half while the next checkpoint is being written.
        in_save = wait_for_a_save(process, root) if rng.random() < 0.5 else wait_a_while(process, root, rng, duration)
        if process.poll() is None:
            process.send_signal(signum)
            process.wait()
            summary["kills"] += 1
            summary["by_signal"][signum.name] += 1
            summary["during_a_save"][signum.name] += in_save
            runs = sorted(p.parent for p in root.glob("*/*/run.json"))
            run = runs[0] if runs else None
            left = check_after_kill(run, tmpdir)
            summary["unreadable"] += left["unreadable"]
            summary["left_in_tmpdir"] += left["in_tmpdir"]
            summary["partial_files_seen_after_kills"] += len(left["partial"])
            for name in left["in_tmpdir"]:
                (tmpdir / name).unlink()
            if run is None or not (run / rundir.OPERATIVE_CONFIG).is_file():
                summary["before_the_run_was_recorded"] += 1  # nothing to resume: the next run starts fresh
                run = None
            elif signum != signal.SIGKILL:
                final_epoch_stop |= stopped_in_final_epoch(run)
            print(f"kill {summary['kills']}: {signum.name}{' during a save' if in_save else ''}, "
                  f"{len(left['unreadable'])} unreadable, {len(left['in_tmpdir'])} in TMPDIR", flush=True)
            continue
        if process.returncode != 0:
            print(f"a run failed (exit status {process.returncode}); see {log}")
            return 1
        finish(run if run is not None else next(p.parent for p in root.glob("*/*/run.json")))
        run = None
    if run is not None:  # the last kill's run, resumed to its end
        if start([f"--resume={run}"], tmpdir, log).wait() != 0:
            print(f"the last resumption failed; see {log}")
            return 1
        finish(run)
    summary["left_in_tmpdir"] += sorted(p.name for p in tmpdir.iterdir())
    if not summary["left_in_tmpdir"]:
        tmpdir.rmdir()
    print(json.dumps(summary, indent=1))
    ok = (summary["runs_as_uninterrupted"] == summary["runs"] and not summary["unreadable"]
          and not summary["left_in_tmpdir"])
    print("every run ended as the uninterrupted run" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
