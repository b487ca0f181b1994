"""Load time: ``ginlight.load_system(checkpoint)`` against building the model and reading its weights by hand.

    python -m benchmarks.load_system              # 30 repeats of each, alternating
    python -m benchmarks.load_system --quick      # 3 repeats: checks that it runs (tests/test_benchmarks.py)
    python -m benchmarks.load_system --profile    # also a cProfile of load_system, its 25 costliest calls

It trains a short run of ``configs/classifier.gin`` once (3 batches an epoch, one epoch), then times
in one warm process, side by side, (a) ``ginlight.load_system`` of its ``last.ckpt`` and (b) the
baseline a user would write without ginlight: ``ginlight.models.ConvNet`` built with the run's
arguments, ``torch.load(weights_only=True)`` of the checkpoint, ``load_state_dict`` of the model's
weights. (a) also checks the stored config against the trust policy, and builds the System around
the model: its criterion and metrics. The two take turns, so a change in the machine's load falls
on both; the ratio is of their medians. Each one's first call, which registers with gin and fills
the caches that later calls reuse, is shown apart and not counted in the medians.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import torch

import ginlight
from ginlight.models import ConvNet

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "classifier.gin"
SHORT = ["MAX_EPOCHS = 1", "Trainer.limit_train_batches = 3", "Trainer.limit_val_batches = 2",
         "Trainer.enable_progress_bar = False", "Trainer.enable_model_summary = False"]
MODEL_PREFIX = "model."


def baseline(checkpoint_path: Path) -> torch.nn.Module:
    """What a user writes to load the classifier's weights without ginlight."""
    model = ConvNet(out_features=10, channels=(32, 64))
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
    model.load_state_dict({key[len(MODEL_PREFIX):]: value for key, value in state.items()
                           if key.startswith(MODEL_PREFIX)})
    return model


def _timed(load, checkpoint_path: Path) -> tuple[float, torch.nn.Module]:
    start = time.perf_counter()
    loaded = load(checkpoint_path)
    return time.perf_counter() - start, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed loads of each kind")
    parser.add_argument("--quick", action="store_true", help="3 repeats: checks that the benchmark runs")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of load_system")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as root:
        run = ginlight.train([CONFIG], SHORT, root_dir=root)
        checkpoint_path = run.run_dir / "checkpoints" / "last.ckpt"
        loads = {"(a) ginlight.load_system": ginlight.load_system,
                 "(b) ConvNet + torch.load + load_state_dict": baseline}
        # The first call of each registers with gin, and fills caches, what later ones reuse: shown apart.
        first = {name: _timed(load, checkpoint_path)[0] for name, load in loads.items()}
        seconds: dict[str, list[float]] = {name: [] for name in loads}
        load_average = os.getloadavg()[0]
        for repeat in range(repeats):
            for name in (loads if repeat % 2 == 0 else reversed(list(loads))):
                taken, loaded = _timed(loads[name], checkpoint_path)
                seconds[name].append(taken)
        system, model = ginlight.load_system(checkpoint_path), baseline(checkpoint_path)
        same = all(torch.equal(a, b) for a, b in zip(system.model.state_dict().values(), model.state_dict().values()))
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(ginlight.load_system, checkpoint_path)
    print(f"ginlight: {ginlight.__file__}; {repeats} loads of each, alternating; "
          f"load average {load_average:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print("| load | median ms | min ms | max ms | first call ms |")
    print("| --- | --- | --- | --- | --- |")
    for name, measured in seconds.items():
        print(f"| {name} | {1000 * statistics.median(measured):.1f} | {1000 * min(measured):.1f} | "
              f"{1000 * max(measured):.1f} | {1000 * first[name]:.1f} |")
    medians = [statistics.median(measured) for measured in seconds.values()]
    print(f"ratio (a) / (b) of the medians: {medians[0] / medians[1]:.2f}")
    print(f"same weights: {'yes' if same else 'NO'}")
    if args.profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


if __name__ == "__main__":
    main()
