"""The callbacks ginlight adds to runs, or that users bind from gin: one per module, as Lightning's.

gin knows :class:`PredictionWriter` as ``ginlight.callbacks.PredictionWriter``.
"""

from __future__ import annotations

from ginlight.callbacks.last_checkpoint import LastCheckpoint
from ginlight.callbacks.non_finite_loss_check import NonFiniteLossCheck
from ginlight.callbacks.operative_config_writer import OperativeConfigWriter
from ginlight.callbacks.prediction_writer import PredictionWriter
from ginlight.callbacks.random_state_in_checkpoint import RandomStateInCheckpoint
from ginlight.callbacks.trial_reporter import TrialReporter

__all__ = ["LastCheckpoint", "NonFiniteLossCheck", "OperativeConfigWriter", "PredictionWriter",
           "RandomStateInCheckpoint", "TrialReporter"]
