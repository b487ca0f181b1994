"""The names of Lightning's stages and of the System's modes, defined once.

A *stage* is what ``ginlight-train --stage`` runs (Lightning's ``Trainer.fit``,
``validate``, ``test``, ``predict``); a *mode* is the part of a System a stage uses
(its ``train``, ``val``, ``test`` and ``predict`` loaders and adapters).
"""

from __future__ import annotations

__all__ = ["STAGES", "MODES", "METRIC_MODES", "MODES_OF_STAGE"]

#: The stages, as ``Trainer`` methods.
STAGES = ("fit", "validate", "test", "predict")
#: The System's modes: keys of ``System.dataloaders`` and ``System.adapters``.
MODES = ("train", "val", "test", "predict")
#: The modes that compute metrics: keys of ``System.metrics``.
METRIC_MODES = ("train", "val", "test")
#: The modes each stage runs.
MODES_OF_STAGE = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}
