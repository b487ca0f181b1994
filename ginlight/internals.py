"""Every reach into another library's private internals, in one place.

gin-config, Lightning and the trackers' loggers have no public route to what the
functions below do. Each one names the private attribute it uses and the versions
it was checked on; ``tests/test_internals.py`` exercises each against the installed
library, so an upgrade that moves one fails there, loudly, and not somewhere inside
a run. Nothing else in ginlight touches another library's underscored names.
"""

from __future__ import annotations

# ---- gin-config (checked on 0.5.0) -------------------------------------------------------------

# ---- Lightning (checked on 2.6) -----------------------------------------------------------------

# ---- trackers' loggers (checked on Lightning 2.6, mlflow 3, wandb 0.31) ------------------------
