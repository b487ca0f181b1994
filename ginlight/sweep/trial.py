"""A sweep's trial, in a process of its own: ``python -m ginlight.sweep.trial --outcome=FILE ...``.

The sweep starts it (:func:`ginlight.sweep.launch.trial_command`) on this machine
or as a SLURM job, with ``ginlight-train``'s flags for the config and the run
directory. It trains through the library (:func:`ginlight.experiment.train`), its
console (the sweep's ``logs/trial-NNN.log``) showing what the run prints, and writes
how the trial ended into ``FILE`` (:class:`~ginlight.sweep.outcome.Outcome`): that
file, not the console, is what the sweep reads. A process killed before it could
write the file leaves none.

One process per trial: gin's global state never leaks between trials. Under DDP
Lightning starts the other ranks with the same command; rank 0 writes the outcome.
This module is only ever run, never imported by the package.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Sequence

from ginlight import experiment, rundir
from ginlight.cli.common import quiet_third_party  # the trial's log shows what ginlight-train's console would
from ginlight.errors import ConfigError, RunError
from ginlight.sweep.outcome import Outcome, TrialError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ginlight.sweep.trial", description=__doc__.splitlines()[0])
    for name in ("gin_file", "gin_bindings", "gin_search_paths", "project"):
        parser.add_argument(f"--{name}", action="append", default=[])
    parser.add_argument("--root_dir", required=True)
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--outcome", required=True, type=Path)
    return parser


def main(argv: Sequence[str]) -> int:
    """Runs the trial that ``argv`` describes; returns the exit status ``ginlight-train`` would."""
    args = _parser().parse_args(argv[1:])
    quiet_third_party(verbose=False)
    try:
        result = experiment.train(args.gin_file, args.gin_bindings, search_paths=args.gin_search_paths,
                                  projects=args.project, root_dir=args.root_dir, run_dir=args.run_dir, argv=argv)
    except ConfigError as exc:
        print(f"trial: error: {exc}", file=sys.stderr)
        Outcome("failed", error=TrialError("config", exc.message, exc.location, exc.hint)).write(args.outcome)
        return 2
    except Exception as exc:  # noqa: BLE001 - any failure is the trial's outcome
        if isinstance(exc, RunError):  # ginlight's report of a failed run, as its run.json has it
            message = str(exc)
        else:  # a failure ginlight did not foresee: its traceback helps
            traceback.print_exc()
            message = f"{type(exc).__name__}: {exc}"
        print(f"trial: error: {message}", file=sys.stderr)
        run = rundir.RunDir(args.run_dir)
        Outcome("failed", str(run.path) if run.recognises(run.path) else None, _final_metrics(run),
                TrialError("run", message)).write(args.outcome)
        return 1
    if result.recorded:  # rank 0's: the other ranks of a multi-process run share its run
        print(f"trial: {result.status}; run directory: {result.run_dir}")
        Outcome(result.status, str(result.run_dir), result.metrics).write(args.outcome)
    return 0 if result.status == "completed" else 1


def _final_metrics(run: rundir.RunDir) -> dict[str, float]:
    """The metrics a failed run recorded, if it got as far as its record."""
    try:
        return run.read_record().get("metrics", {})
    except ConfigError:  # no record, or one cut short
        return {}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
