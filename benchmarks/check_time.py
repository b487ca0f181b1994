"""What checking a config costs, beside parsing it and beside ``--print_config``, on the shipped configs.

    python -m benchmarks.check_time              # 10 repeats per config
    python -m benchmarks.check_time --repeats=1  # quick: what the test runs

One process: torch, Lightning and ginlight's runner are imported first, as every run does,
and not timed. For each shipped config it times, in turns so that a change in the
machine's load falls on all three, ``ginlight.gin.parsing.load`` (the parse every command
does), then on that parse ``ginlight.gin.printing.describe`` (what ``--print_config`` adds) and
``ginlight.experiment.config_problems`` (what ``ginlight-check`` and the start of ``ginlight-train``
add). The first round is the cold one (signatures and annotations read for the first
time); the medians are of the rounds after it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

import gin

from ginlight.gin import parsing, printing
from ginlight.experiment import config_problems, implicit_defaults

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def shipped() -> list[Path]:
    """The configs whose header names their own ``ginlight-train`` command."""
    return sorted(path for path in CONFIGS.glob("*.gin")
                  if re.search(rf"ginlight-train --gin_file=configs/{re.escape(path.name)}\b", path.read_text()))


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(gin_file: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds of each step for ``gin_file``, one per round; the first round is the cold one."""
    times: dict[str, list[float]] = {"parse": [], "print_config": [], "check": []}
    for _ in range(repeats + 1):
        parsed = []
        times["parse"].append(_timed(lambda: parsed.append(parsing.load([gin_file], search_paths=[CONFIGS]))))
        times["print_config"].append(_timed(lambda: printing.describe(parsed[0], implicit_defaults())))
        found = []
        times["check"].append(_timed(lambda: found.extend(config_problems(parsed[0]))))
        if found:
            raise RuntimeError(f"{gin_file.name} has problems:\n" + "\n".join(map(str, found)))
    gin.clear_config()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="warm rounds per config, after the cold one")
    args = parser.parse_args()
    os.chdir(REPO)
    load = os.getloadavg()[0]
    results = {path.name: measure(path, args.repeats) for path in shipped()}
    print(f"{args.repeats} warm rounds per config; load average {load:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end")
    print("| config | parse ms | --print_config ms | check ms | check, cold ms | check / parse |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, times in results.items():
        warm = {step: statistics.median(values[1:]) * 1000 for step, values in times.items()}
        print(f"| {name} | {warm['parse']:.1f} | {warm['print_config']:.1f} | {warm['check']:.1f} | "
              f"{times['check'][0] * 1000:.1f} | {warm['check'] / warm['parse']:.2f} |")


if __name__ == "__main__":
    main()
