"""Which trials of a sweep run again, and which must not run (ginlight.sweep.reruns), on real Optuna studies in
memory: in-process, no trial started."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from ginlight.sweep.reruns import Reruns, takes_a_slot
from ginlight.sweep.space import parse_parameter

SPACE = [parse_parameter("BATCH_SIZE = [8, 16]")]


def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))


def started(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    SPACE[0].suggest(trial)
    return trial


def test_a_trial_beyond_the_budget_is_skipped_and_takes_no_slot():
    sweep = study()
    first, second = started(sweep), started(sweep)
    reruns = Reruns(sweep, SPACE, budget=1)
    assert reruns.skip(first.number) is None
    assert reruns.skip(second.number) == "the sweep already has its 1 trials"
    second.set_user_attr("skipped", reruns.skip(second.number))
    assert [takes_a_slot(t) for t in sweep.get_trials()] == [True, False]


def test_a_lost_trial_rerun_twice_runs_once_with_its_values():
    sweep = study()
    lost = started(sweep)
    sweep.tell(lost, state=TrialState.FAIL)  # as a worker that found it dead does
    reruns = Reruns(sweep, SPACE, budget=2)
    reruns.requeue(lost.number)
    reruns.requeue(lost.number)  # two workers that both found it
    waiting = sweep.get_trials(states=(TrialState.WAITING,))
    assert [t.params for t in waiting] == [sweep.trials[lost.number].params] * 2
    assert [t.system_attrs["failed_trial"] for t in waiting] == [lost.number] * 2
    first, second = (started(sweep) for _ in waiting)
    assert first.params == sweep.trials[lost.number].params  # the rerun draws the lost trial's values
    assert reruns.skip(first.number) is None
    assert reruns.skip(second.number) == "trial-001 already reruns trial-000"
    assert not any(takes_a_slot(t) for t in sweep.get_trials()[1:])  # reruns fill no new slot


def test_retry_failed_queues_each_failed_trial_once_more():
    sweep = study()
    failed, completed = started(sweep), started(sweep)
    sweep.tell(failed, state=TrialState.FAIL)
    sweep.tell(completed, 0.5)
    reruns = Reruns(sweep, SPACE, budget=2)
    assert reruns.retry_failed() == 1
    (waiting,) = sweep.get_trials(states=(TrialState.WAITING,))
    assert waiting.params == sweep.trials[failed.number].params
    assert waiting.system_attrs["retry_history"] == [failed.number]
