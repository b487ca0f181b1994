"""Reruns a run and checks that it came out the same: final metrics and a hash of the final weights.

A reproduction compares, value by value and exactly (no tolerance: on the same
machine and versions, a ginlight run on the CPU is bit-identical when rerun), what
each run recorded in ``run.json`` when it ended:

- every final metric (what ``trainer.callback_metrics`` held at the end);
- ``weights_sha256``, the :func:`ginlight.checkpoint.weights_hash` of the System's ``state_dict`` at the end.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ginlight import rundir
from ginlight.errors import ConfigError, RunError
from ginlight.experiment import recorded_threads, train
from ginlight.rundir import Status

__all__ = ["compare", "reproduce", "Comparison", "REPORT"]

#: The file a reproduction writes into the rerun's directory.
REPORT = "reproduction.json"
WEIGHTS = "weights sha256"


@dataclass
class Row:
    """One compared value, as the original run and the rerun recorded it (None: not recorded)."""

    name: str
    original: Any
    rerun: Any

    @property
    def match(self) -> bool:
        if isinstance(self.original, float) and isinstance(self.rerun, float):
            return self.original == self.rerun or (math.isnan(self.original) and math.isnan(self.rerun))
        return self.original == self.rerun


@dataclass
class Comparison:
    """The values of two runs side by side, and what differs in what produced them.

    ``code`` and ``versions`` say why values may differ; they do not count
    towards :attr:`match`, which is about the results.
    """

    original: Path
    rerun: Path
    rows: list[Row] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    versions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        """Whether every value is equal."""
        return all(row.match for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": str(self.original),
            "rerun": str(self.rerun),
            "match": self.match,
            "values": [{"name": r.name, "original": r.original, "rerun": r.rerun, "match": r.match} for r in self.rows],
            "code_matches": not self.code,
            "code": self.code,
            "versions_match": not self.versions,
            "versions": {name: list(pair) for name, pair in self.versions.items()},
        }

    def report(self) -> str:
        """The comparison as a short table for a terminal."""
        cells = [("value", "original", "rerun", "")]
        for row in self.rows:
            cells.append((row.name, _show(row.name, row.original), _show(row.name, row.rerun),
                          "match" if row.match else "DIFFERS"))
        widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
        lines = [f"Reproduction of {self.original} by {self.rerun}:"]
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(cell, widths)) + "  " + cell[3] for cell in cells]
        differing = [row.name for row in self.rows if not row.match]
        if differing:
            lines.append(f"NOT reproduced: {len(differing)} of {len(self.rows)} values differ ({', '.join(differing)}).")
        else:
            lines.append(f"Reproduced exactly: all {len(self.rows)} values match.")
        lines.append("Code: the same." if not self.code else "Code differs: " + "; ".join(self.code) + ".")
        lines.append("Versions: the same." if not self.versions else "Versions differ: " + "; ".join(
            f"{name} {a} -> {b}" for name, (a, b) in self.versions.items()) + ".")
        return "\n".join(line.rstrip() for line in lines)


def _show(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == WEIGHTS:
        return value[:16]  # enough digits to tell hashes apart; reproduction.json has them all
    return repr(value)


def compare(original: str | os.PathLike, rerun: str | os.PathLike) -> Comparison:
    """Compares two finished runs: each final metric of either, then the weights hash; and their code and versions."""
    original, rerun = Path(original), Path(rerun)
    records = [_record(original), _record(rerun)]
    metrics = [record.metrics for record in records]
    rows = [Row(name, metrics[0].get(name), metrics[1].get(name)) for name in sorted({*metrics[0], *metrics[1]})]
    rows.append(Row(WEIGHTS, records[0].weights_sha256, records[1].weights_sha256))
    versions = [record.versions for record in records]
    differing = {name: (versions[0].get(name), versions[1].get(name)) for name in sorted({*versions[0], *versions[1]})
                 if versions[0].get(name) != versions[1].get(name)}
    return Comparison(original, rerun, rows, records[0].code_differences(records[1]), differing)


def _record(run_dir: Path) -> rundir.RunRecord:
    return _open(run_dir).read_record()


def _open(run_dir: Path) -> rundir.RunDir:
    return rundir.RunDir.open(run_dir, needs=(rundir.RECORD, rundir.OPERATIVE_CONFIG))


def reproduce(
    run: str | os.PathLike,
    gin_files: Sequence[str | os.PathLike] = (),
    bindings: Sequence[str] = (),
    *,
    search_paths: Sequence[str | os.PathLike] = (".",),
    projects: Sequence[str] = (),
    root_dir: str | os.PathLike = "runs",
    run_dir: str | os.PathLike | None = None,
    name: str | None = None,
    argv: Sequence[str] | None = None,
) -> Comparison:
    """Reruns the completed run ``run`` into a new run directory and compares the two.

    The rerun uses ``run``'s operative config, its stage, checkpoint and intra-op thread count, then
    ``gin_files`` and ``bindings`` on top (which is how a deliberate change is
    checked to matter). It runs that experiment on purpose, as running a script
    does: the configs it reads are not judged (:mod:`ginlight.gin.trust`). It goes to
    ``root_dir/<run's name>/`` unless ``run_dir`` or ``name`` say otherwise. The comparison is written to ``reproduction.json``
    in the new directory and returned. Raises :class:`RunError` when the rerun
    does not complete.
    """
    original = Path(run)
    recorded = _open(original)
    record = recorded.read_record()
    if record.status != Status.COMPLETED:
        raise ConfigError(f"run '{original}' is {record.status}; only a completed run can be reproduced.",
                          hint=f"Finish it first: ginlight-train --resume={original}")
    with recorded_threads(record, f"Reproducing {original}"):
        result = train(
            [recorded.operative_config.resolve(), *gin_files], bindings,
            search_paths=search_paths, projects=projects,
            stage=record.stage, ckpt_path=record.ckpt_path,
            root_dir=root_dir, run_dir=run_dir, name=name or original.resolve().parent.name, argv=argv, trust=True,
        )
    if not result.recorded:  # a DDP rank other than 0: rank 0 compares
        return Comparison(original, result.run_dir)
    if result.status != Status.COMPLETED:
        raise RunError(f"the rerun in {result.run_dir} was {result.status}; there is nothing to compare.")
    comparison = compare(original, result.run_dir)
    rundir.write_atomic(result.run_dir / REPORT, json.dumps(comparison.to_dict(), indent=2) + "\n")
    return comparison
