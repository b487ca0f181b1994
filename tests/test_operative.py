"""ginlight.gin.operative: the operative config ginlight writes, runnable again on its own."""

from __future__ import annotations

import gin
import pytest
from conftest import write

from ginlight import internals
from ginlight.gin import operative, parsing, reading

pytestmark = pytest.mark.usefixtures("clean_gin")


def test_the_operative_config_of_a_dynamic_registration_config_parses_again(tmp_path, monkeypatch):
    # gin requires `from __gin__ import dynamic_registration` before any import: the user's modules that
    # ginlight imports for a rerun must not come first.
    write(tmp_path / "lab" / "ginread_dynamic_lab" / "__init__.py", "")
    write(tmp_path / "lab" / "ginread_dynamic_lab" / "tool.py", "def make(size=1):\n    return size\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lab"))
    top = write(tmp_path / "top.gin", "from __gin__ import dynamic_registration\n"
                                      "from ginread_dynamic_lab import tool\ntool.make.size = 5\n")
    parsing.parse([top])
    ((_, selector),) = internals.parsed_bindings()
    assert gin.get_configurable(selector)() == 5
    written = write(tmp_path / "operative.gin", operative.operative_config())
    assert f"{operative.PATH_DIRECTIVE}{tmp_path / 'lab'}" in written.read_text()
    imports = [s.value for s in reading.read([written]) if s.kind == "import"]
    assert imports[0] == reading.DYNAMIC_REGISTRATION and "from ginread_dynamic_lab import tool" in imports
    parsing.parse([written])
    assert gin.get_configurable(selector)() == 5
