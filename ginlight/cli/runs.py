"""``ginlight-runs``: many runs in one table, with the bindings in which they differ.

    ginlight-runs                                          # every run under runs/
    ginlight-runs runs/classifier --sort=-val/accuracy --filter=status=completed
    ginlight-runs runs --tags=baseline --format=csv
    ginlight-runs runs --plot=val/accuracy                 # val_accuracy.png, one curve per run
    ginlight-runs --set_tags=runs/classifier/20240101-120000 baseline aug

Arguments are folders of run directories, searched through, or run directories
(default: runs). Each row shows a run's name, start, duration, status and stage,
its bindings that differ from the other runs' (found in their operative configs)
and its final metrics. A run that cannot be read in full is listed with a warning.
"""

from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from ginlight import runs
from ginlight.cli import common
from ginlight.errors import ConfigError
from ginlight.rundir import Status

flags.DEFINE_string("sort", None, "Order by a metric, a binding or a field (name, start_time, duration_s, status, "
                                  "stage), ascending; -KEY for descending: --sort=-val/accuracy.")
flags.DEFINE_multi_string("filter", [], "KEY=GLOB: only the runs whose name, status, stage or binding (LR, AdamW.lr) "
                                        "matches the glob; repeat to require several.")
flags.DEFINE_list("tags", [], "Only the runs with every one of these tags: --tags=baseline,aug.")
flags.DEFINE_enum("format", "table", runs.FORMATS, "table or markdown for people, csv or json for tools.")
flags.DEFINE_string("plot", None, "Also draw this metric's curves, read from the listed runs' TensorBoard events, "
                                  "into one PNG: --plot=val/accuracy.")
flags.DEFINE_string("plot_file", None, "Where --plot writes its PNG (default: METRIC.png, '/' as '_', in the working "
                                       "directory).")
flags.DEFINE_string("set_tags", None, "Replace the tags of the run directory RUN with the arguments instead of "
                                      "listing: --set_tags=RUN baseline aug (no arguments clears them).")
flags.DEFINE_boolean("verbose", False, "Show tracebacks with errors.")
FLAGS = flags.FLAGS
COMMAND = "ginlight-runs"
DEFAULT_ROOT = "runs"


def main(argv: Sequence[str]) -> int:
    try:
        if FLAGS.set_tags is not None:
            return _set_tags(argv[1:])
        listed = runs.select(runs.read_runs(argv[1:] or [DEFAULT_ROOT]), FLAGS.filter, FLAGS.tags)
        listing = runs.Listing.of(listed)
        if FLAGS.sort:
            listing.sort(FLAGS.sort)
        for run in listing.runs:
            _warn(run)
        print(listing.render(FLAGS.format))
        if not listing.runs:
            print(f"{COMMAND}: no runs{' match' if FLAGS.filter or FLAGS.tags else ''}.", file=sys.stderr)
        if FLAGS.plot:
            _plot(listing, FLAGS.plot)
    except Exception as exc:
        return common.report(exc, COMMAND, FLAGS.verbose)
    return 0


def _warn(run: runs.Run) -> None:
    for warning in run.warnings:
        print(f"{COMMAND}: warning: {run.run_dir}: {warning}", file=sys.stderr)


def _plot(listing: runs.Listing, metric: str) -> None:
    # TensorBoard's reader and numpy load for plots only: a listing alone stays fast.
    from ginlight import curves

    found = curves.curves(listing, metric)
    drawn = {id(curve.run) for curve in found}
    for run in listing.runs:
        if id(run) not in drawn:
            print(f"{COMMAND}: warning: {run.run_dir}: logged no '{metric}' to TensorBoard; it has no curve",
                  file=sys.stderr)
    if not found:
        raise ConfigError(f"--plot: none of the listed runs logged '{metric}' to TensorBoard.",
                          hint="Pass a metric of the table's columns, such as val/loss.")
    path = FLAGS.plot_file or metric.replace("/", "_") + ".png"
    curves.plot(found, metric, path)
    print(f"{COMMAND}: {len(found)} curve{'s' if len(found) != 1 else ''} of {metric} in {path}", file=sys.stderr)


def _set_tags(arguments: Sequence[str]) -> int:
    """``--set_tags=RUN TAG ...``: tags may also be given comma-separated, as ``--tags`` takes them."""
    tags = [tag.strip() for argument in arguments for tag in argument.split(",") if tag.strip()]
    run = runs.set_tags(FLAGS.set_tags, tags)
    if run.status == Status.RUNNING:
        print(f"{COMMAND}: warning: {run.run_dir} is recorded as running; if its process is alive, it rewrites "
              f"run.json when it ends, without these tags. Set them again then.", file=sys.stderr)
    print(f"{COMMAND}: tags of {run.run_dir}: {', '.join(run.tags) or '(none)'}")
    return 0


def run(argv: Sequence[str] | None = None) -> None:
    """The console script; ``argv`` defaults to ``sys.argv``."""
    common.run(main, __doc__, argv=argv, takes_arguments=True)


if __name__ == "__main__":
    run()
