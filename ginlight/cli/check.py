"""``ginlight-check``: every mistake in a config, found before anything runs.

    ginlight-check --gin_file=configs/classifier.gin --strict

It parses the config as ``ginlight-train`` does (the same flags and include rule)
and builds nothing: each bound value is checked against its parameter's annotation,
each reference by what it makes, required parameters for a value, and each binding
for whether anything the run builds reaches it. Exit status 2 when it finds an
error; bindings nothing reaches are warnings, errors with ``--strict``.
"""

from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from ginlight.gin import parsing
from ginlight.cli import common

common.define_gin_flags()
flags.DEFINE_boolean("strict", False, "Bindings that nothing the run builds reaches are errors, not warnings.")
FLAGS = flags.FLAGS
COMMAND = "ginlight-check"


def main(argv: Sequence[str]) -> int:
    try:
        with common.importing_the_stack():  # which registers ginlight's own configurables, which the config may name
            from ginlight.experiment import config_problems

        parsed = parsing.load(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths, FLAGS.project)
        found = config_problems(parsed)
    except Exception as exc:
        return common.report(exc, COMMAND, FLAGS.verbose)
    errors = [p for p in found if FLAGS.strict or not p.unreached]
    for problem in found:
        print(f"{COMMAND}: {'error' if problem in errors else 'warning'}: {problem}", file=sys.stderr)
    warnings = len(found) - len(errors)
    print(f"{COMMAND}: {len(errors)} error(s), {warnings} warning(s) in {', '.join(FLAGS.gin_file) or 'the bindings'}.")
    return 2 if errors else 0


def run(argv: Sequence[str] | None = None) -> None:
    """The console script; ``argv`` defaults to ``sys.argv``."""
    common.run(main, __doc__, argv=argv)


if __name__ == "__main__":
    run()
