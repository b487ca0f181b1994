"""What the commands share (ginlight/cli/common.py): how they import the stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow  # each check is a fresh interpreter that imports Lightning

_GC_STATE = "json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count()})"


def _fresh_process(code: str) -> list[dict]:
    """Runs ``code`` in a fresh interpreter; each line it prints is a JSON object."""
    prelude = "import gc, json, sys\nfrom ginlight.cli import common\n"
    result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_stack_loads_without_collections_and_is_frozen_out_of_later_ones():
    during, after = _fresh_process(f"""
        with common.importing_the_stack():
            import lightning.pytorch
            print({_GC_STATE})
        print({_GC_STATE})
        """)
    assert during == {"enabled": False, "frozen": 0}
    assert after["enabled"]
    assert after["frozen"] > 100_000  # torch's and Lightning's objects, out of every later collection's walk


def test_a_failed_import_leaves_the_collector_on():
    (after,) = _fresh_process(f"""
        try:
            with common.importing_the_stack():
                import lightning.pytorch
                raise ImportError("a user's module that does not import")
        except ImportError:
            print({_GC_STATE})
        """)
    assert after["enabled"]


def test_a_process_that_has_the_stack_already_is_left_as_it_is():
    (after,) = _fresh_process(f"""
        import lightning.pytorch
        with common.importing_the_stack():
            import ginlight.experiment
        print({_GC_STATE})
        """)
    assert after == {"enabled": True, "frozen": 0}
