"""``ginlight-train``: run one experiment from gin files.

    ginlight-train --gin_file=configs/gan.gin --gin_bindings='Trainer.max_epochs=3'
"""

from __future__ import annotations

import fnmatch
import inspect
import sys
from typing import Sequence

from absl import flags

from ginlight import internals  # gin and the registry, not torch: --help stays fast
from ginlight.gin import parsing, printing, registry
from ginlight.cli import common
from ginlight.errors import ConfigError
from ginlight.rundir import Status

common.define_gin_flags()
flags.DEFINE_string("root_dir", "runs", "Where run directories are created: ROOT/<name>/<timestamp>.")
flags.DEFINE_string("run_dir", None, "An explicit, new or empty, run directory.")
flags.DEFINE_string("name", None, "The run's name (default: the first gin file's stem).")
flags.DEFINE_string("stage", "fit", "fit, validate, test or predict.")
flags.DEFINE_string("ckpt_path", None, "A checkpoint to start the stage from.")
flags.DEFINE_string("reproduce", None,
                    "Rerun the run directory RUN with its operative config into a new run directory, then compare "
                    "final metrics and weights with RUN's; exit 3 if they differ. --gin_file and --gin_bindings "
                    "apply on top of RUN's config.")
flags.DEFINE_string("resume", None,
                    "Continue the interrupted or killed run RUN in its own directory, from checkpoints/last.ckpt.")
flags.DEFINE_list("tags", [], "Tags for the run, comma-separated (--tags=baseline,aug): recorded in run.json and "
                            "TensorBoard; ginlight-runs --tags lists the runs that have them.")
flags.DEFINE_string("notes", None, "A note on the run, recorded in run.json and TensorBoard.")
flags.DEFINE_multi_string("trust", [], "A module whose code the config stored in --ckpt_path may run (--trust=my_lab "
                                       "allows my_lab and my_lab.*); repeat for several. See docs/security.md.")
flags.DEFINE_boolean("print_config", False, "Print the merged config and exit.")
flags.DEFINE_string("list_configurables", None,
                    "List every registered configurable with its parameters and defaults, "
                    "those matching the optional glob PATTERN only (--list_configurables=*optim*).")
FLAGS = flags.FLAGS
COMMAND = "ginlight-train"


def main(argv: Sequence[str]) -> int:
    try:
        if FLAGS.list_configurables is not None:
            return _list_configurables(FLAGS.list_configurables)
        if FLAGS.print_config:
            return _print_config()
        if FLAGS.reproduce is not None:
            return _reproduce()
        with common.importing_the_stack():
            from ginlight.experiment import resume, train

        common.quiet_third_party(FLAGS.verbose)
        if FLAGS.resume is not None:
            _refuse_with("resume", ["gin_file", "gin_bindings", "project", "stage", "ckpt_path", "root_dir",
                                    "run_dir", "name", "tags", "notes", "trust"],
                        "it continues the run in its own directory with its own config")
            result = resume(FLAGS.resume, argv=sys.argv)
        else:
            result = train(
                FLAGS.gin_file, FLAGS.gin_bindings,
                search_paths=FLAGS.gin_search_paths, projects=FLAGS.project,
                stage=FLAGS.stage, ckpt_path=FLAGS.ckpt_path,
                root_dir=FLAGS.root_dir, run_dir=FLAGS.run_dir, name=FLAGS.name, argv=sys.argv,
                tags=FLAGS.tags, notes=FLAGS.notes, trust=FLAGS.trust,
            )
    except Exception as exc:
        return common.report(exc, COMMAND, FLAGS.verbose)
    if result.recorded:  # once per run, not once per rank
        print(f"{COMMAND}: {result.status}; run directory: {result.run_dir}")
    if result.status == Status.INTERRUPTED:
        print(f"Resume it with: {COMMAND} --resume={result.run_dir}")
    return 0 if result.status == Status.COMPLETED else 1


def _reproduce() -> int:
    """Exit status 0 when the rerun matches, 3 when it does not."""
    with common.importing_the_stack():
        from ginlight.reproduce import reproduce

    _refuse_with("reproduce", ["resume", "stage", "ckpt_path"], "the rerun takes the run's stage and checkpoint")
    _refuse_with("reproduce", ["tags", "notes"], "tag the rerun afterwards with ginlight-runs --set_tags")
    _refuse_with("reproduce", ["trust"], "rerunning your own run runs its configs on purpose")
    common.quiet_third_party(FLAGS.verbose)
    comparison = reproduce(
        FLAGS.reproduce, FLAGS.gin_file, FLAGS.gin_bindings,
        search_paths=FLAGS.gin_search_paths, projects=FLAGS.project,
        root_dir=FLAGS.root_dir, run_dir=FLAGS.run_dir, name=FLAGS.name, argv=sys.argv,
    )
    print(comparison.report())
    return 0 if comparison.match else 3


def _refuse_with(flag: str, others: Sequence[str], reason: str) -> None:
    """A ConfigError when any of ``others`` was given along with ``--flag``."""
    given = [f"--{name}" for name in others if FLAGS[name].present]
    if given:
        raise ConfigError(f"--{flag} cannot be combined with {', '.join(given)}: {reason}.",
                          hint=f"Leave out {', '.join(given)}.")


def _print_config() -> int:
    with common.importing_the_stack():  # which registers ginlight's own configurables, which the config may name
        from ginlight.experiment import implicit_defaults

    parsed = parsing.load(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths, FLAGS.project)
    print(printing.describe(parsed, implicit_defaults()), end="")
    return 0


def _list_configurables(pattern: str) -> int:
    # The config's imports and --project register their configurables, as for training.
    with common.importing_the_stack():
        from ginlight.experiment import register_all

    parsing.load(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths, FLAGS.project)
    register_all()  # ginlight's own configurables and the stack's
    registry.register_modules_matching(pattern)  # einops.layers.*: what einops.layers offers
    names = sorted(internals.selectors())
    matched = [n for n in names if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n.lower(), pattern.lower())]
    for name in matched:
        print(f"{name}{_signature(internals.configurable(name, exact=True).wrapped)}")
    if not matched:
        print(f"no configurable matches '{pattern}'", file=sys.stderr)
    return 0


def _signature(wrapped) -> str:
    try:
        target = wrapped.__init__ if inspect.isclass(wrapped) else wrapped
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return "(...)"
    # Annotations would bury the names and defaults a user is looking for.
    shown = [str(p.replace(annotation=inspect.Parameter.empty)) for p in parameters if p.name != "self"]
    return f"({', '.join(shown)})"


def run(argv: Sequence[str] | None = None) -> None:
    """The console script; ``argv`` defaults to ``sys.argv``."""
    common.run(main, __doc__, optional_value_flags=["list_configurables"], argv=argv)


if __name__ == "__main__":
    run()
