"""``ginlight-diff A B``: what differs between two runs, operative configs or gin files.

    ginlight-diff runs/classifier/20240101-120000 runs/classifier/20240101-130000
    ginlight-diff configs/classifier.gin configs/classifier_steps.gin --format=json

Bindings added (+), removed (-) and changed (~), grouped by configurable, with
macros resolved where a binding uses one; for two runs, also their final metrics.
Includes resolve as in every command: under --gin_search_paths (default: the
current directory), then beside the files read so far.
"""

from __future__ import annotations

import json
import sys
from typing import Sequence

from absl import flags

from ginlight import diff
from ginlight.cli import common

common.define_search_paths_flag()
flags.DEFINE_enum("format", "text", ["text", "json"], "text for a terminal, json for tools.")
flags.DEFINE_boolean("verbose", False, "Show tracebacks with errors.")
FLAGS = flags.FLAGS
COMMAND = "ginlight-diff"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3:
        print(f"{COMMAND}: error: expected two runs or gin files, A and B; got {len(argv) - 1}.\n"
              f"Usage: {COMMAND} A B [--format=json]", file=sys.stderr)
        return 2
    try:
        a, b = (diff.read_config(path, FLAGS.gin_search_paths) for path in argv[1:])
    except Exception as exc:
        return common.report(exc, COMMAND, FLAGS.verbose)
    print(json.dumps(diff.to_json(a, b), indent=2) if FLAGS.format == "json" else diff.to_text(a, b))
    return 0


def run() -> None:
    """The console script."""
    common.run(main, __doc__, takes_arguments=True)


if __name__ == "__main__":
    run()
