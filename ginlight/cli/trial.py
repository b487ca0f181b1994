"""``python -m ginlight.cli.trial``: one trial of a sweep, as ``ginlight-sweep`` starts it (not a user command).

It takes ``ginlight-train``'s flags for the config and the run directory, and
``--outcome``, the file in which the trial reports how it ended
(:mod:`ginlight.sweep.trial`). Its console shows what ``ginlight-train``'s would; the
sweep sends it to the trial's log, and reads the outcome file alone.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from absl import flags

from ginlight.cli import common
from ginlight.sweep import trial

common.define_gin_flags()
flags.DEFINE_string("root_dir", "runs", "Where the run's local tracker stores go: ROOT/<name>/...")
flags.DEFINE_string("run_dir", None, "The trial's run directory, new or empty.", required=True)
flags.DEFINE_string("outcome", None, "The file the trial's outcome is written to (JSON).", required=True)
FLAGS = flags.FLAGS
COMMAND = "trial"


def main(argv: Sequence[str]) -> int:
    """The exit status ``ginlight-train`` would give: 0 completed, 2 a configuration error, else 1."""
    common.quiet_third_party(FLAGS.verbose)
    outcome = trial.run(FLAGS.gin_file, FLAGS.gin_bindings, search_paths=FLAGS.gin_search_paths,
                        projects=FLAGS.project, root_dir=FLAGS.root_dir, run_dir=FLAGS.run_dir,
                        outcome_file=Path(FLAGS.outcome), argv=sys.argv)
    if outcome.error is not None:
        print(f"{COMMAND}: error: {outcome.error}", file=sys.stderr)
        return 2 if outcome.error.kind == "config" else 1
    print(f"{COMMAND}: {outcome.status}; run directory: {outcome.run_dir}")
    return 0 if outcome.status == "completed" else 1


if __name__ == "__main__":
    common.run(main, __doc__)
