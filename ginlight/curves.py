"""One metric's curves across runs: read from their TensorBoard events with TensorBoard's reader, drawn in one PNG.

Curves are labelled by the bindings in which the runs differ (:class:`ginlight.runs.Listing`).
matplotlib (in the ``examples`` and ``sweep`` extras) is imported only to draw,
so that the rest of ginlight does not need it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing import event_accumulator

from ginlight.errors import ConfigError
from ginlight.runs import Listing, Run

__all__ = ["Curve", "read_curve", "curves", "plot"]

_EVENTS = "events.out.tfevents.*"


@dataclass
class Curve:
    """``metric`` of one run, by step."""

    run: Run
    label: str
    steps: list[int]
    values: list[float]


def read_curve(run_dir: Path, metric: str) -> tuple[list[int], list[float]] | None:
    """``(steps, values)`` of the scalar ``metric`` logged under ``run_dir``, in step order; None if never logged.

    Every folder of event files under ``run_dir`` is read (a resumed run adds a
    file; a logger bound in gin may write elsewhere in the run directory). Where
    a step was logged twice, as the steps after its last checkpoint are by a
    resumed run, the later value counts.
    """
    events = []
    for folder in sorted({path.parent for path in run_dir.rglob(_EVENTS)}):
        accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
        accumulator.Reload()
        if metric in accumulator.Tags()["scalars"]:
            events += accumulator.Scalars(metric)
    if not events:
        return None
    by_step = {event.step: event.value for event in sorted(events, key=lambda event: event.wall_time)}
    steps = sorted(by_step)
    return steps, [by_step[step] for step in steps]


def curves(listing: Listing, metric: str) -> list[Curve]:
    """The curve of ``metric`` of each run in ``listing`` that logged it, labelled by its differing bindings."""
    found = []
    for run in listing.runs:
        curve = read_curve(run.run_dir, metric)
        if curve is not None:
            found.append(Curve(run, listing.label(run), *curve))
    return found


def plot(found: list[Curve], metric: str, path: str | os.PathLike) -> Any:
    """Draws ``found`` over each other into the PNG ``path`` (written atomically); returns the matplotlib Figure."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend
    except ImportError:
        raise ConfigError("--plot needs matplotlib, which is not installed.",
                          hint="pip install 'ginlight[examples]' (or just matplotlib).") from None
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    for curve in found:
        axes.plot(curve.steps, curve.values, label=curve.label, marker="o" if len(curve.steps) < 20 else None)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric}, {len(found)} run{'s' if len(found) != 1 else ''}")
    axes.legend(fontsize="small")
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    figure.savefig(partial, format="png", dpi=100)
    os.replace(partial, path)
    return figure
