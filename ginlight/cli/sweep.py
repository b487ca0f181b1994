"""``ginlight-sweep``: many ginlight runs from one config, searched by Optuna.

    ginlight-sweep --gin_file=configs/classifier.gin \\
        --sweep='torch.optim.AdamW.lr=[1e-3, 1e-2]' --sweep='BATCH_SIZE=[16, 32]' \\
        --objective=val/accuracy --direction=max --workers=2

Running the same command again continues the sweep; see docs/sweeps.md.
"""

from __future__ import annotations

import signal
import sys
from typing import Sequence

from absl import flags

from ginlight.gin import parsing
from ginlight.cli import common
from ginlight.rundir import Status

common.define_gin_flags()
flags.DEFINE_multi_string("sweep", [], "A swept binding: 'configurable.parameter=[v1, v2, ...]' in gin syntax, or "
                          "a distribution: loguniform(a, b), uniform(a, b), int(lo, hi), choice(v1, ...).")
flags.DEFINE_string("sweep_file", None, "A file of --sweep lines, one per line; '#' starts a comment line.")
flags.DEFINE_enum("mode", "grid", ["grid", "random", "tpe"],  # ginlight.sweep.SAMPLERS, which imports Optuna
                  "grid: every combination of the listed values; random or tpe: --trials samples.")
flags.DEFINE_integer("trials", None, "How many trials random and tpe search run.", lower_bound=1)
flags.DEFINE_string("objective", None, "The final metric to optimize, e.g. val/accuracy (default val/loss, min).")
flags.DEFINE_enum("direction", None, ["max", "min"], "Whether a higher or a lower objective is better.")
flags.DEFINE_enum("pruner", "none", ["none", "median", "halving", "hyperband"],
                  "Stop trials whose objective falls behind at a validation: Optuna's MedianPruner, "
                  "SuccessiveHalvingPruner or HyperbandPruner, with the config's bindings of it as settings.")
flags.DEFINE_boolean("retry_failed", False, "Continuing a sweep, rerun its failed trials, each under a new number.")
flags.DEFINE_integer("workers", 1, "Trials run at once: processes on this machine, or with --launcher=slurm "
                     "SLURM jobs queued or running at once.", lower_bound=1)
flags.DEFINE_enum("launcher", "local", ["local", "slurm"],
                  "local: each trial is a process here; slurm: each trial is an sbatch job (see docs/clusters.md).")
flags.DEFINE_string("slurm_partition", None, "--launcher=slurm: the partition of the trials' jobs.")
flags.DEFINE_string("slurm_time", None, "--launcher=slurm: each trial job's time limit (sbatch --time, e.g. 2:00:00).")
flags.DEFINE_integer("slurm_cpus_per_trial", 1, "--launcher=slurm: CPUs of each trial job.", lower_bound=1)
flags.DEFINE_integer("slurm_gpus_per_trial", 0, "--launcher=slurm: GPUs of each trial job.", lower_bound=0)
flags.DEFINE_string("storage", None, "The study's database URL, e.g. postgresql://user:pw@host/db, shared by "
                    "workers on several machines (default: an SQLite file in the sweep directory).")
flags.DEFINE_string("study", None, "The study's name (default: <name>-<hash of the sweep's definition>).")
flags.DEFINE_string("root_dir", "runs", "Where sweep directories are created: ROOT/<name>/sweep-<timestamp>.")
flags.DEFINE_string("name", None, "The sweep's name (default: the first gin file's stem).")
FLAGS = flags.FLAGS
COMMAND = "ginlight-sweep"


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    # A scheduler's SIGTERM or a closed terminal stop the sweep like Ctrl-C: running trials are requeued.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        with common.importing_the_stack():  # and Optuna
            from ginlight import sweep
            from ginlight.sweep import warm

        if FLAGS.launcher == "local":  # trials fork from a fork of this process, which has imported the stack
            warm.start_server(parsing.own_modules(FLAGS.gin_file, FLAGS.gin_search_paths, FLAGS.project))

        space = sweep.load_search_space(FLAGS.sweep, FLAGS.sweep_file)
        launcher = None
        if FLAGS.launcher == "slurm":
            from ginlight.slurm import SlurmLauncher  # imports Lightning: kept out of --help

            launcher = SlurmLauncher(FLAGS.slurm_partition, FLAGS.slurm_time, FLAGS.slurm_cpus_per_trial,
                                     FLAGS.slurm_gpus_per_trial)
        result = sweep.run_sweep(
            FLAGS.gin_file, FLAGS.gin_bindings, space,
            mode=FLAGS.mode, trials=FLAGS.trials, objective=FLAGS.objective, direction=FLAGS.direction,
            workers=FLAGS.workers, storage=FLAGS.storage, study=FLAGS.study,
            search_paths=FLAGS.gin_search_paths, projects=FLAGS.project,
            root_dir=FLAGS.root_dir, name=FLAGS.name, pruner=FLAGS.pruner, retry_failed=FLAGS.retry_failed,
            launcher=launcher, argv=sys.argv,
        )
    except KeyboardInterrupt:
        print(f"{COMMAND}: interrupted; run the same command again to continue the sweep.", file=sys.stderr)
        return 130
    except Exception as exc:
        return common.report(exc, COMMAND, FLAGS.verbose)
    completed, pruned, failed = result.count(Status.COMPLETED), result.count(Status.PRUNED), result.count(Status.FAILED)
    best = result.best
    best_text = f"; best {best.name}: {result.objective} = {best.objective:.6g}" if best else ""
    pruned_text = f", {pruned} pruned" if pruned else ""
    print(f"{COMMAND}: {completed} of {result.budget} trials completed{pruned_text}, {failed} failed{best_text}; "
          f"results in {result.sweep_dir}")
    return 0 if completed else 1


def run() -> None:
    """The console script."""
    common.run(main, __doc__)


if __name__ == "__main__":
    run()
