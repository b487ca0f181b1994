"""``python -m ginlight.cli.trial``: one trial of a sweep as a SLURM job of ``ginlight-sweep`` (not a user command).

It takes ``ginlight-train``'s flags for the config and the run directory, and
``--outcome``, the file in which the trial reports a failure its ``run.json`` cannot record
(:mod:`ginlight.sweep.trial`). Its console shows what ``ginlight-train``'s would; the
sweep sends it to the trial's log, and learns how the trial ended from its run directory and
that file alone. (A sweep's trials on
this machine run the same :class:`~ginlight.sweep.trial.TrialSpec` in a warm worker's fork,
:mod:`ginlight.sweep.warm`.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from absl import flags

from ginlight.cli import common

with common.importing_the_stack():
    from ginlight.sweep import trial

common.define_gin_flags()
flags.DEFINE_string("root_dir", "runs", "Where the run's local tracker stores go: ROOT/<name>/...")
flags.DEFINE_string("run_dir", None, "The trial's run directory, new or empty.", required=True)
flags.DEFINE_string("outcome", None, "The file a failure that the run's run.json cannot record is written to (JSON).", required=True)
FLAGS = flags.FLAGS


def main(argv: Sequence[str]) -> int:
    """The exit status ``ginlight-train`` would give (:func:`ginlight.sweep.trial.report`)."""
    common.quiet_third_party(FLAGS.verbose)
    spec = trial.TrialSpec(tuple(FLAGS.gin_file), tuple(FLAGS.gin_bindings), tuple(FLAGS.gin_search_paths),
                           tuple(FLAGS.project), FLAGS.root_dir, Path(FLAGS.run_dir), Path(FLAGS.outcome))
    return trial.report(spec.run(sys.argv))


if __name__ == "__main__":
    common.run(main, __doc__)
