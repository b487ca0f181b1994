"""ginlight.gin.config: parsing with one reading of the text, locations for what gin reports without one,
the composed input (config.gin), and the registration of what a config names."""

from __future__ import annotations

import re
from pathlib import Path

import gin
import pytest
from conftest import REPO

from ginlight import internals
from ginlight.gin import config, reading
from ginlight.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def clean_gin():
    yield
    gin.clear_config()


def test_an_object_named_by_its_import_path_in_an_included_file_is_registered_and_bound(tmp_path):
    write(tmp_path / "parts" / "numbers.gin", "fractions.Fraction.numerator = 3\n")
    top = write(tmp_path / "top.gin", "include 'parts/numbers.gin'\nfractions.Fraction.denominator = 4\n")
    config.parse([top])
    assert gin.query_parameter("fractions.Fraction.numerator") == 3
    assert config.is_bound("fractions.Fraction", "denominator")
    assert not config.is_bound("fractions.Fraction", "_normalize")
    assert config.query("fractions.Fraction", "_normalize", default="unbound") == "unbound"


def test_binding_location_reports_the_binding_gin_keeps_the_last_one(tmp_path):
    write(tmp_path / "base.gin", "fractions.Fraction.numerator = 1\n")
    top = write(tmp_path / "top.gin", "include 'base.gin'\n\n# override\nfractions.Fraction.numerator = 2\n")
    config.parse([top])
    assert config.binding_location("fractions.Fraction", "numerator") == f"{top}:4"
    assert config.binding_location("Fraction", "numerator") == f"{top}:4"  # the short name too
    config.parse([top], ["fractions.Fraction.numerator = 5"])
    assert config.binding_location("fractions.Fraction", "numerator") == "--gin_bindings"
    assert config.binding_location("fractions.Fraction", "denominator") is None


def test_located_puts_an_error_naming_a_binding_at_its_line(tmp_path):
    top = write(tmp_path / "top.gin", "fractions.Fraction.numerator = 1\nfractions.Fraction.denominator = 0\n")
    config.parse([top])
    error = config.located(ConfigError("the denominator is zero.", binding="fractions.Fraction.denominator"))
    assert error.location == f"{top}:2" and error.message == "the denominator is zero."
    already = ConfigError("elsewhere", location="x.gin:9", binding="fractions.Fraction.denominator")
    assert config.located(already).location == "x.gin:9"


def test_merged_input_inlines_each_include_after_its_line_then_the_bindings(tmp_path):
    write(tmp_path / "parts" / "inner.gin", "# inner\nfractions.Fraction.numerator = 1\n")
    write(tmp_path / "parts" / "outer.gin", "include 'inner.gin'\nfractions.Fraction.denominator = 2\n")
    top = write(tmp_path / "top.gin", "# top\ninclude 'parts/outer.gin'\n")
    config.parse([top], ["fractions.Fraction.numerator = 3"])
    assert config.merged_input([top], ["fractions.Fraction.numerator = 3"]) == (
        f"# ---- {top} ----\n"
        "# top\n"
        "# include 'parts/outer.gin'\n"
        f"# ---- {tmp_path / 'parts' / 'outer.gin'} ----\n"
        "# include 'inner.gin'\n"
        f"# ---- {tmp_path / 'parts' / 'inner.gin'} ----\n"
        "# inner\n"
        "fractions.Fraction.numerator = 1\n"
        "fractions.Fraction.denominator = 2\n"
        "\n"
        "# ---- --gin_bindings ----\n"
        "fractions.Fraction.numerator = 3\n"
    )


def test_an_include_never_resolves_against_the_folder_of_a_config_parsed_before(tmp_path):
    write(tmp_path / "a" / "shared.gin", "fractions.Fraction.numerator = 1\n")
    config.parse([write(tmp_path / "a" / "top.gin", "include 'shared.gin'\n")])
    other = write(tmp_path / "b" / "top.gin", "include 'shared.gin'\n")
    with pytest.raises(ConfigError, match="gin file 'shared.gin' not found") as caught:
        config.parse([other])
    assert caught.value.location == f"{other}:1"


def test_an_empty_file_is_refused_at_its_path(tmp_path):
    empty = write(tmp_path / "empty.gin", "# only a comment\n\n")
    with pytest.raises(ConfigError, match="is empty") as caught:
        config.parse([empty])
    assert caught.value.location == str(empty)


def test_an_unknown_parameter_is_located_with_its_statement_and_a_suggestion(tmp_path):
    top = write(tmp_path / "top.gin", "textwrap.indent.prefix = '> '\ntextwrap.indent.predicat = None\n")
    with pytest.raises(ConfigError) as caught:
        config.parse([top])
    assert caught.value.location == f"{top}:2"
    assert "'textwrap.indent' has no parameter 'predicat'" in caught.value.message
    assert "predicate" in (caught.value.hint or "")


def test_an_unknown_parameter_inside_an_included_block_is_located_at_its_own_line(tmp_path):
    write(tmp_path / "base.gin", "textwrap.indent:\n  prefix = '> '\n  # a comment\n  predicat = None\n")
    top = write(tmp_path / "top.gin", "include 'base.gin'\n")
    with pytest.raises(ConfigError) as caught:
        config.parse([top])
    assert caught.value.location == f"{tmp_path / 'base.gin'}:4"
    assert caught.value.message.endswith("In: `predicat = None`")  # the line, without gin's caret under it
    assert "predicate" in (caught.value.hint or "")


def test_under_dynamic_registration_a_binding_written_through_an_alias_is_located(tmp_path):
    # ginlight.experiment.Experiment is registered with gin as ginlight.Experiment: a name the text never writes.
    top = write(tmp_path / "top.gin", "from __gin__ import dynamic_registration\nimport ginlight.experiment as exp\n"
                                      "exp.Experiment:\n  seed = 3\nexp.Experiment.debug = True\n")
    config.parse([top])
    assert config.binding_location("ginlight.Experiment", "seed") == f"{top}:4"
    assert config.binding_location("ginlight.Experiment", "debug") == f"{top}:5"
    described = config.describe()
    assert "ginlight.Experiment.seed = 3" in described and f"# {top}:4" in described
    config.parse([top], ["ginlight.Experiment.seed = 7"])  # a binding names it as a file without the import does
    assert config.query("ginlight.Experiment", "seed") == 7
    assert config.binding_location("ginlight.Experiment", "seed") == "--gin_bindings"


def test_the_operative_config_of_a_dynamic_registration_config_parses_again(tmp_path, monkeypatch):
    # gin requires `from __gin__ import dynamic_registration` before any import: the user's modules that
    # ginlight imports for a rerun must not come first.
    write(tmp_path / "lab" / "ginread_dynamic_lab" / "__init__.py", "")
    write(tmp_path / "lab" / "ginread_dynamic_lab" / "tool.py", "def make(size=1):\n    return size\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lab"))
    top = write(tmp_path / "top.gin", "from __gin__ import dynamic_registration\n"
                                      "from ginread_dynamic_lab import tool\ntool.make.size = 5\n")
    config.parse([top])
    ((_, selector),) = internals.parsed_bindings()
    assert gin.get_configurable(selector)() == 5
    written = write(tmp_path / "operative.gin", config.operative_config())
    assert f"{config.PATH_DIRECTIVE}{tmp_path / 'lab'}" in written.read_text()
    imports = [s.value for s in reading.read([written]) if s.kind == "import"]
    assert imports[0] == reading.DYNAMIC_REGISTRATION and "from ginread_dynamic_lab import tool" in imports
    config.parse([written])
    assert gin.get_configurable(selector)() == 5


def test_under_dynamic_registration_a_misspelt_or_unimported_name_is_explained_at_its_line(tmp_path):
    head = "from __gin__ import dynamic_registration\nimport fractions as fr\n"
    misspelt = write(tmp_path / "misspelt.gin", head + "fr.Fractoin.numerator = 3\n")
    with pytest.raises(ConfigError) as caught:
        config.parse([misspelt])
    assert caught.value.location == f"{misspelt}:3"
    assert "'fractions' has no attribute 'Fractoin'" in caught.value.message
    assert "fractions.Fraction" in (caught.value.hint or "")
    unimported = write(tmp_path / "unimported.gin", head + "fractions.Fraction.numerator = 3\n")
    with pytest.raises(ConfigError) as caught:
        config.parse([unimported])
    assert caught.value.location == f"{unimported}:3" and "'fractions' is not a name an import" in caught.value.message


def test_the_readme_examples_of_block_syntax_and_dynamic_registration_parse_as_it_says(tmp_path):
    blocks = re.findall(r"```\w*\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith("torch.optim.AdamW:\n")]
    (dynamic,) = [b for b in blocks if b.startswith("from __gin__ import dynamic_registration\n")]
    block_file = write(tmp_path / "block.gin", block)
    config.parse([block_file])
    assert config.query("torch.optim.AdamW", "weight_decay") == 0.01
    assert config.binding_location("torch.optim.AdamW", "weight_decay") == f"{block_file}:3"
    dynamic_file = write(tmp_path / "dynamic.gin", dynamic)
    config.parse([dynamic_file], ["torch.optim.AdamW.lr=1e-3"])  # the README's --gin_bindings
    assert config.query("torch.optim.AdamW", "lr") == 1e-3
    assert config.binding_location("ginlight.System", "optimizer") == f"{dynamic_file}:7"
