"""Parse time: a stack-only config, and one that names third-party objects by import path.

    python -m benchmarks.parse_time              # 10 fresh processes per config, alternating
    python -m benchmarks.parse_time --repeats=3

Each repeat starts a fresh interpreter, where nothing is registered yet. It imports
torch, Lightning and ginlight's runner first, as every run does before it parses, and that import is not
timed. Then it times ``ginlight.gin.parsing.parse`` of one config, and notes the packages
that the parse imported, those of which no module was imported before. The configs take turns, so a change in the machine's load
falls on both. Two configs are timed: ``configs/classifier.gin``, which names only the
stack (torch, torchmetrics, Lightning, ginlight), and the same config with an einops
layer, a transformers config and Lightning's demo model named by their paths. The first
must parse as fast as before names by import path existed. To time an older ginlight, run this
with that checkout first on the path (``PYTHONPATH=/path/to/old python -m benchmarks.parse_time
--stack_only``): the printed ``ginlight`` path shows which one was timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
BY_PATH = """\
include 'classifier.gin'
einops.layers.torch.Rearrange.pattern = 'b c h w -> b (c h w)'
transformers.BertConfig.hidden_size = 32
Experiment.datamodule = @lightning.pytorch.demos.boring_classes.BoringDataModule()
"""

CHILD = """\
import json, sys, time
import lightning, torch  # imported before every parse; not timed
import ginlight
import ginlight.experiment  # as in a run, which registers ginlight's own configurables; not timed
from ginlight.gin import parsing
before = {name.split('.')[0] for name in sys.modules}
start = time.perf_counter()
parsing.parse([sys.argv[1]], search_paths=[sys.argv[2]])
seconds = time.perf_counter() - start
imported = sorted({name.split('.')[0] for name in sys.modules} - before)
print(json.dumps({"seconds": seconds, "imported": imported, "ginlight": ginlight.__file__}))
"""


def parse_once(gin_file: Path) -> dict:
    """One fresh process's parse of ``gin_file``: seconds, packages it imported, ginlight's path."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(gin_file), str(CONFIGS)], capture_output=True,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if result.returncode != 0:
        raise RuntimeError(f"parsing {gin_file.name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="fresh processes per config")
    parser.add_argument("--stack_only", action="store_true",
                        help="time only the stack-only config (for a ginlight older than names by path)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        by_path = Path(folder) / "by_path.gin"
        by_path.write_text(BY_PATH)
        configs = {"stack only (configs/classifier.gin)": CONFIGS / "classifier.gin"}
        if not args.stack_only:
            configs["classifier.gin + einops, transformers, Lightning demos by path"] = by_path
        load = os.getloadavg()[0]
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):
            for name, gin_file in configs.items():
                runs[name].append(parse_once(gin_file))
    print(f"ginlight: {runs[next(iter(runs))][0]['ginlight']}; {args.repeats} fresh processes per config; "
          f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print("| config | median s | min s | max s | packages the parse imported |")
    print("| --- | --- | --- | --- | --- |")
    for name, measured in runs.items():
        seconds = [m["seconds"] for m in measured]
        imported = sorted({package for m in measured for package in m["imported"]})
        print(f"| {name} | {statistics.median(seconds):.3f} | {min(seconds):.3f} | {max(seconds):.3f} | "
              f"{', '.join(imported) or 'none'} |")


if __name__ == "__main__":
    main()
