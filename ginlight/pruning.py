"""Optuna pruning from inside a sweep's trial: the objective reported at each validation, the run stopped when pruned.

A sweep's trial is a ``ginlight-train`` process. The sweep tells it which Optuna
trial it is through its environment (:mod:`ginlight.runcontext`: the storage URL, the
study, the trial's number, the objective and the pruner), not through gin: its
operative config then reruns outside the sweep as an ordinary run, with no study to
report to, and the storage's password stays out of ``run.json``.

The pruner runs in the trial's process, since Optuna's ``Trial.should_prune`` asks
the study's pruner there (:class:`ginlight.callbacks.TrialReporter`). Its settings are the gin bindings of the Optuna pruner
(``optuna.pruners.MedianPruner.n_startup_trials = 2``), read by the sweep and passed on.

Optuna is the ``sweep`` extra: it is imported only where a trial is run or a pruner made.
"""

from __future__ import annotations

import json
from typing import Any

import gin
from lightning import Callback

from ginlight.callbacks.trial_reporter import TrialReporter
from ginlight.errors import ConfigError

__all__ = ["PRUNERS", "pruner_spec", "make_pruner", "trial_callbacks"]

#: ``--pruner`` names and the Optuna pruners they stand for.
PRUNERS = {"none": "NopPruner", "median": "MedianPruner", "halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner"}


def pruner_spec(name: str) -> dict[str, Any]:
    """The pruner ``--pruner=name`` chooses, with its gin-bound settings: ``{"class", "settings"}``.

    Call it after the config is parsed; raises :class:`ConfigError` for settings
    the pruner does not take.
    """
    if name not in PRUNERS:
        raise ConfigError(f"unknown pruner '{name}'; the pruners are {', '.join(PRUNERS)}.")
    selector = f"optuna.pruners.{PRUNERS[name]}"
    try:
        settings = gin.get_bindings(selector)
    except ValueError:  # nothing bound: gin does not know the configurable
        settings = {}
    spec = {"class": PRUNERS[name], "settings": settings}
    try:
        json.dumps(settings)
        make_pruner(spec)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the bindings of {selector} cannot make a pruner: {exc}",
                          hint=f"Bind numbers, strings or booleans to {selector}'s parameters.") from None
    return spec


def make_pruner(spec: dict[str, Any]):
    """The Optuna pruner of a :func:`pruner_spec`."""
    import optuna  # the sweep extra

    return getattr(optuna.pruners, spec["class"])(**spec["settings"])


def trial_callbacks(trial: dict[str, Any] | None) -> list[Callback]:
    """A :class:`TrialReporter` for the sweep's ``trial`` (:attr:`ginlight.runcontext.RunContext.trial`) the run
    reports to, or none outside a sweep."""
    if trial is None:
        return []
    import optuna  # the sweep extra: present wherever a sweep runs trials

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = {"connect_args": {"timeout": 60}} if trial["storage"].startswith("sqlite") else {}
    # The sweep created the study's tables and checked their schema: the trial does neither again (0.5 s).
    storage = optuna.storages.RDBStorage(trial["storage"], engine_kwargs=engine, skip_compatibility_check=True,
                                         skip_table_creation=True)
    # The sweep's worker samples the trial's values; this process only reports and asks the pruner.
    study = optuna.load_study(study_name=trial["study"], storage=storage, pruner=make_pruner(trial["pruner"]),
                              sampler=optuna.samplers.RandomSampler())
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(trial["study"]),
                                                               trial["number"])
    return [TrialReporter(optuna.trial.Trial(study, trial_id), trial["objective"])]
