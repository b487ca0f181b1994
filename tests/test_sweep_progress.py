"""The sweep's progress (ginlight/sweep/progress.py): the results after each trial, the plot only now and then."""

from __future__ import annotations

import csv

import optuna
import pytest

from ginlight.sweep import load_search_space
from ginlight.sweep.progress import PLOT_EVERY_S, Progress
from ginlight.sweep.reports import CSV, PLOT, SweepResult, trial_rows


@pytest.fixture
def finished(tmp_path, capsys):
    """A study with one completed trial, and the sweep's Progress over it."""
    (lr,) = space = load_search_space(["torch.optim.AdamW.lr = [0.001, 0.002]"])
    study = optuna.create_study(direction="maximize")

    def complete(choice: str, value: float) -> optuna.trial.FrozenTrial:
        study.add_trial(optuna.trial.create_trial(
            params={lr.key: choice}, distributions={lr.key: optuna.distributions.CategoricalDistribution(lr.choices)},
            value=value, user_attrs={"metrics": {"val/accuracy": value}, "duration_s": 1.0}))
        return study.get_trials()[-1]

    progress = Progress(lambda rows: SweepResult(tmp_path, "study", 2, "val/accuracy", "maximize", rows),
                        space, "grid", "none")
    return progress, study, complete


def test_each_trial_rewrites_the_tables_but_a_short_sweep_is_not_plotted_before_its_end(finished, tmp_path, capsys):
    progress, study, complete = finished
    progress(study, complete("0.001", 0.5))
    assert "[1/2] trial-000 completed" in capsys.readouterr().out
    assert [row["trial"] for row in csv.DictReader((tmp_path / CSV).open())] == ["0"]
    assert not (tmp_path / PLOT).exists()

    progress.write(trial_rows(study, progress.space))  # the sweep's end
    assert (tmp_path / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_trial_that_ends_a_plot_interval_after_the_last_drawing_redraws_it(finished, tmp_path):
    progress, study, complete = finished
    progress(study, complete("0.001", 0.5))
    progress.plotted_at -= PLOT_EVERY_S  # as if the sweep had run that long since
    progress(study, complete("0.002", 0.75))
    assert (tmp_path / PLOT).exists()
    drawn = (tmp_path / PLOT).stat().st_mtime_ns

    progress(study, complete("0.002", 0.8))  # right after a drawing
    assert (tmp_path / PLOT).stat().st_mtime_ns == drawn
    assert len(list(csv.DictReader((tmp_path / CSV).open()))) == 3
