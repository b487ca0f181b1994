"""Lost trials: a trial whose worker died is found, failed and run again.

Fault tolerance is Optuna's own mechanism: while a trial runs, its worker records
a heartbeat in the storage every :data:`~ginlight.sweep.study.HEARTBEAT_S`
seconds. A RUNNING trial whose heartbeat is older than
:data:`~ginlight.sweep.study.GRACE_S` belonged to a worker that died; the next
worker to look fails it and ``RetryHeartbeatStaleTrialCallback`` enqueues a copy
with the same parameters (:mod:`~ginlight.sweep.reruns`), which the next free worker runs.
"""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState

from ginlight.sweep.reruns import Reruns
from ginlight.sweep.study import GRACE_S, STARTED

__all__ = ["LostTrials"]


class LostTrials:
    """Marks the trials this worker starts as alive, and finds the trials whose worker died."""

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage, reruns: Reruns):
        self.study = study
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.reruns = reruns
        self.lock = threading.Lock()  # guards silent_since, which every worker thread updates
        self.silent_since: dict[int, float] = {}  # RUNNING trials not yet marked started, since when seen

    def started(self, trial: optuna.Trial) -> None:
        """Records the trial's first heartbeat now (Optuna's heartbeat thread records its first in the
        background), then marks the trial (:data:`STARTED`)."""
        self.storage.record_heartbeat(self.trial_id(trial.number))
        trial.set_user_attr(STARTED, trial.number)

    def find(self) -> None:
        """Fails each RUNNING trial whose worker died, and queues its rerun."""
        optuna.storages.fail_stale_trials(self.study)  # Optuna's: a heartbeat grown old
        self._fail_silent_trials()

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def _fail_silent_trials(self) -> None:
        """Fails, and queues a rerun of, each RUNNING trial that stayed unmarked for :data:`GRACE_S`.

        Optuna declares a trial dead only when its heartbeat gets old, so a trial whose
        worker died before recording the first one would run forever. A worker marks its
        trial (:meth:`started`) once it has recorded that heartbeat itself; a trial left
        unmarked that long belongs to a dead worker. The silence is timed by this
        worker's own clock, so the clocks of other machines do not matter.
        """
        now = time.monotonic()
        unmarked = {t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                    if t.user_attrs.get(STARTED) != t.number}
        with self.lock:
            self.silent_since = {number: self.silent_since.get(number, now) for number in unmarked}
            dead = [number for number, since in self.silent_since.items() if now - since > GRACE_S]
        for number in dead:
            try:
                if not self.storage.set_trial_state_values(self.trial_id(number), TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first, and queued its rerun
            self.reruns.requeue(number)
