"""What every ginlight command shares: gin flags, flag parsing, and error reporting.

This module imports neither torch nor Lightning, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import traceback
from typing import Callable, Iterator, Sequence

from absl import app, flags

from ginlight.errors import ConfigError, user_frame
from ginlight.rundir import quiet_third_party  # noqa: F401  the commands' call: common.quiet_third_party

FLAGS = flags.FLAGS


@contextlib.contextmanager
def importing_the_stack() -> Iterator[None]:
    """Where a command imports torch, Lightning and torchmetrics (never at the top, so ``--help`` is fast).

    Those imports allocate hundreds of thousands of objects that live as long as the process, and the
    cyclic garbage collector, started by allocation counts, walks them again and again while they load:
    0.7 s of a 4.4 s import on this project's machine (docs/performance.md). So nothing is collected while
    they load, and then they are frozen (``gc.freeze``) out of every later collection's walk, a run's
    included. The price: the few thousand objects in reference cycles that the imports dropped stay in
    memory, since collecting them first would cost 0.3 s. A process that has the stack already (a test
    calling a command in-process) is left as it is.
    """
    if "lightning.pytorch" in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def define_gin_flags() -> None:
    """The flags every command that reads gin files takes (defined once: commands share a process in tests)."""
    if "gin_file" in FLAGS:
        return
    flags.DEFINE_multi_string("gin_file", [], "A .gin file; repeat to compose several, in order.")
    flags.DEFINE_multi_string("gin_bindings", [], "A binding such as 'Trainer.max_epochs=3'; applied after the files.")
    define_search_paths_flag()
    flags.DEFINE_multi_string("project", [], "A folder or module to import so its @gin.configurable code registers.")
    flags.DEFINE_boolean("verbose", False, "Show tracebacks with errors.")


def define_search_paths_flag() -> None:
    """``--gin_search_paths``, the one include rule of every command that reads gin files: a relative path
    resolves under these folders (the current directory by default), then beside the files read so far
    (:func:`ginlight.gin.reading.include_folders`)."""
    flags.DEFINE_multi_string("gin_search_paths", ["."], "Folders where --gin_file and `include` paths resolve "
                              "first; then the folders of the files read so far.")


def run(
    main: Callable[[Sequence[str]], int],
    usage: str,
    optional_value_flags: Sequence[str] = (),
    argv: Sequence[str] | None = None,
    takes_arguments: bool = False,
) -> None:
    """Runs ``main`` under absl; a bad flag exits with status 2 and one message.

    ``--help`` prints ``usage`` and the flags of ginlight's modules. Flags in
    ``optional_value_flags`` may be given without a value (``--list_configurables``),
    which then means ``*``. A command that ``takes_arguments`` gets what is not a flag;
    another exits with status 2 on it (a flag's value split off by a stray space).
    """

    def parse(argv: list[str]) -> list[str]:
        if any(arg in ("-h", "--help", "-?", "--helpshort") for arg in argv[1:]):
            # Every module's flags but absl's own (those are listed by --helpfull).
            modules = [m for m in FLAGS.flags_by_module_dict() if not m.startswith("absl.")]
            print(usage.strip() + "\n\n" + "\n\n".join(FLAGS.module_help(m) for m in sorted(modules)))
            sys.exit(0)
        argv = [f"{arg}=*" if arg in {f"--{name}" for name in optional_value_flags} else arg for arg in argv]
        command = os.path.basename(argv[0])
        try:
            left = FLAGS(argv)
        except flags.Error as exc:
            print(f"{command}: error: {exc}\nSee `{command} --help` for the flags.", file=sys.stderr)
            sys.exit(2)
        if len(left) > 1 and not takes_arguments:
            print(f"{command}: error: unexpected arguments {left[1:]}; flags take the form --name=value.",
                  file=sys.stderr)
            sys.exit(2)
        return left

    app.run(main, argv=list(argv) if argv is not None else None, flags_parser=parse)


def report(exc: BaseException, command: str, verbose: bool) -> int:
    """Prints ``exc`` for a user and returns the exit status: 2 for configuration, 1 otherwise."""
    if verbose:
        traceback.print_exception(exc)
    message = str(exc)
    if not isinstance(exc, ConfigError) and exc.__cause__ is not None:
        message += user_frame(exc.__cause__)
    hint = "" if verbose else "\n(Run with --verbose for the traceback.)"
    print(f"{command}: error: {message}{hint}", file=sys.stderr)
    return 2 if isinstance(exc, ConfigError) else 1
