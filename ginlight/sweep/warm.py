"""Warm workers: each trial's process is forked from a server that has already imported the stack.

Starting Python and importing torch, Lightning, torchmetrics and ginlight takes
seconds, most of a short trial. So the sweep starts trials through
``multiprocessing``'s forkserver, a server that holds those modules, imports the config's
own (its preload), has started no thread, CUDA or data loading, and forks a fresh process
per trial. ``ginlight-sweep`` makes that server a fork of itself (:func:`start_server`) once
it has imported the stack, before its check, its study and its threads: the stack is
imported once per sweep, not once more by a fresh interpreter. A library caller of
:func:`ginlight.sweep.run_sweep` gets ``multiprocessing``'s own server, a fresh
interpreter that preloads this module.

A trial is still a process of its own, as ``python -m ginlight.cli.trial`` is: its
own gin state, seed, run directory and outcome file; its own session (a terminal's
Ctrl-C reaches the sweep, which stops trials in order); its console output in its
log, file descriptors 1 and 2 included, so output from C code lands there too; and
a crash or a kill ends it alone. The sweep waits for it and signals it as it would
a process it started itself (:class:`Forked`).
"""

from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Iterable, Mapping

# The server preloads this module: with ginlight's runner (torch, Lightning), what else a run imports as it
# starts: torchmetrics, TensorBoard's writer (the default logger), Optuna and its storage's SQLAlchemy and Alembic
# (a pruned trial reports to its study; the sweep opens that study anyway).
import optuna  # noqa: F401
import torch
import torch.utils.tensorboard  # noqa: F401
import torchmetrics  # noqa: F401

from ginlight import internals, rundir
from ginlight.gin import registry
from ginlight.sweep.trial import TrialSpec, report

for _module in internals.OPTUNA_STORAGE_MODULES:
    importlib.import_module(_module)

__all__ = ["WarmStart", "Forked", "start_server"]


def start_server(modules: Iterable[str]) -> None:
    """Starts the warm server as a fork of this process, which has imported this module and so the stack; the
    server then imports ``modules`` (the config's own). Call it before starting any thread.

    Before the fork, the catalog of the stack's components is built (each trial's parse reads it) and
    every object is moved out of the garbage collector's sight (``gc.freeze``): a trial's collections
    then neither walk nor write to the pages of the hundreds of thousands of objects it inherits.
    """
    running = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if running:
        raise RuntimeError(f"the warm server must be forked before any thread starts; running: {running}")
    registry.components()
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    internals.fork_forkserver(modules, _as_a_fresh_server)


def _as_a_fresh_server() -> None:
    """In the forked server: what a fresh one has. Its console is /dev/null: it outlives the sweep by the
    seconds Python takes to exit, and must not hold open a pipe that reads the sweep's output (trials write to
    their logs). The sweep's own signal handlers are not a trial's."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


class Forked:
    """A trial's process, forked by the server; waited for and signalled like a ``subprocess.Popen``.

    The server reports a process's exit status once, on its sentinel, and starting a
    process polls the others (``multiprocessing``'s clean-up): ``lock``, which the
    starts hold too, keeps two threads from both reading one status.
    """

    def __init__(self, process: multiprocessing.process.BaseProcess, lock: threading.Lock):
        self.process = process
        self.lock = lock

    def wait(self) -> int:
        """Its exit status, or minus the signal that ended it."""
        multiprocessing.connection.wait([self.process.sentinel])
        with self.lock:
            self.process.join()
        return self.process.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)


class WarmStart:
    """Starts trials as forks of one warm server, which preloads this module and ``modules`` (the config's).

    The server starts with the first trial, unless it runs already: ``ginlight-sweep``
    starts it as it starts, with the same modules, so that it imports them while the
    sweep imports its own.
    """

    def __init__(self, modules: Iterable[str] = ()):
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload([__name__, *modules])
        self.lock = threading.Lock()

    def __call__(self, spec: TrialSpec, log: Path, env: Mapping[str, str]) -> Forked:
        """Starts the trial ``spec``, its console output in ``log``, its environment ``env``."""
        process = self.context.Process(target=_run, args=(spec, log, dict(env)), name=spec.run_dir.name)
        with self.lock:
            process.start()
        return Forked(process, self.lock)


def _run(spec: TrialSpec, log: Path, env: dict[str, str]) -> None:
    """A trial's process: what ``python -m ginlight.cli.trial`` does, in a fork of the warm server."""
    os.setsid()
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.environ.clear()
    os.environ.update(env)
    # The server's OpenMP runtime read the sweep's environment; each trial takes its own share of the cores.
    if env.get("OMP_NUM_THREADS", "").isdigit():
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    rundir.quiet_third_party(verbose=False)
    # The command line as `python -m ginlight.cli.trial` sees it, for the run's record and Lightning.
    command = spec.command()
    sys.argv = [importlib.util.find_spec(command[2]).origin, *command[3:]]
    try:
        status = report(spec.run(sys.argv))
    finally:
        # multiprocessing ends the fork with os._exit, past the exit hooks that a process of its own runs (W&B
        # finishes its run in one): they run here, as they would in `python -m ginlight.cli.trial`.
        internals.run_exit_hooks()
    sys.exit(status)
