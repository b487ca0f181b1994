"""ginlight: deep-learning experiments from gin configuration, run by Lightning.

``import ginlight`` is cheap: the public names below load torch and Lightning on
first use, so that ``ginlight-train --help`` answers at once. The stack's
components register with gin as a config names them (:mod:`ginlight.gin.registry`);
``ginlight.register_all()`` registers every one, for code that calls gin itself.

Imports point one way, down the layers that docs/architecture.md lists, the one list of them
(``tests/test_architecture.py`` reads it there and checks every import against it).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "System": "ginlight.system",
    "Experiment": "ginlight.experiment",
    "RunResult": "ginlight.experiment",
    "train": "ginlight.experiment",
    "load_system": "ginlight.experiment",
    "ConfigError": "ginlight.errors",
    "RunError": "ginlight.errors",
    "register_all": "ginlight.experiment",
    "adapters": "ginlight.adapters",
    "callbacks": "ginlight.callbacks",
    "data": "ginlight.data",
    "trust": "ginlight.gin.trust",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'ginlight' has no attribute '{name}'")
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__.rpartition(".")[2] == name else getattr(module, name)
    globals()[name] = value
    return value
