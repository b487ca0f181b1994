"""ginlight.gin.parsing: parsing with one reading of the text, the checks gin leaves until a value is used,
and the :class:`~ginlight.gin.parsed.ParsedConfig` a parse returns: its files, statements and locations."""

from __future__ import annotations

import re

import gin
import pytest
from conftest import REPO, write

from ginlight.errors import ConfigError
from ginlight.gin import failures, lookup, parsing, printing

pytestmark = pytest.mark.usefixtures("clean_gin")


def test_an_object_named_by_its_import_path_in_an_included_file_is_registered_and_bound(tmp_path):
    write(tmp_path / "parts" / "numbers.gin", "fractions.Fraction.numerator = 3\n")
    top = write(tmp_path / "top.gin", "include 'parts/numbers.gin'\nfractions.Fraction.denominator = 4\n")
    parsing.parse([top])
    assert gin.query_parameter("fractions.Fraction.numerator") == 3
    assert lookup.is_bound("fractions.Fraction", "denominator")
    assert not lookup.is_bound("fractions.Fraction", "_normalize")
    assert lookup.query("fractions.Fraction", "_normalize", default="unbound") == "unbound"


def test_binding_location_reports_the_binding_gin_keeps_the_last_one(tmp_path):
    write(tmp_path / "base.gin", "fractions.Fraction.numerator = 1\n")
    top = write(tmp_path / "top.gin", "include 'base.gin'\n\n# override\nfractions.Fraction.numerator = 2\n")
    parsed = parsing.parse([top])
    assert parsed.binding_location("fractions.Fraction", "numerator") == f"{top}:4"
    assert parsed.binding_location("Fraction", "numerator") == f"{top}:4"  # the short name too
    parsed = parsing.parse([top], ["fractions.Fraction.numerator = 5"])
    assert parsed.binding_location("fractions.Fraction", "numerator") == "--gin_bindings"
    assert parsed.binding_location("fractions.Fraction", "denominator") is None


def test_an_include_never_resolves_against_the_folder_of_a_config_parsed_before(tmp_path):
    write(tmp_path / "a" / "shared.gin", "fractions.Fraction.numerator = 1\n")
    parsing.parse([write(tmp_path / "a" / "top.gin", "include 'shared.gin'\n")])
    other = write(tmp_path / "b" / "top.gin", "include 'shared.gin'\n")
    with pytest.raises(ConfigError, match="gin file 'shared.gin' not found") as caught:
        parsing.parse([other])
    assert caught.value.location == f"{other}:1"


def test_an_empty_file_is_refused_at_its_path(tmp_path):
    empty = write(tmp_path / "empty.gin", "# only a comment\n\n")
    with pytest.raises(ConfigError, match="is empty") as caught:
        parsing.parse([empty])
    assert caught.value.location == str(empty)


def test_under_dynamic_registration_a_binding_written_through_an_alias_is_located(tmp_path):
    # ginlight.experiment.Experiment is registered with gin as ginlight.Experiment: a name the text never writes.
    top = write(tmp_path / "top.gin", "from __gin__ import dynamic_registration\nimport ginlight.experiment as exp\n"
                                      "exp.Experiment:\n  seed = 3\nexp.Experiment.debug = True\n")
    parsed = parsing.parse([top])
    assert parsed.binding_location("ginlight.Experiment", "seed") == f"{top}:4"
    assert parsed.binding_location("ginlight.Experiment", "debug") == f"{top}:5"
    described = printing.describe(parsed)
    assert "ginlight.Experiment.seed = 3" in described and f"# {top}:4" in described
    # A binding names it as a file without the import does.
    parsed = parsing.parse([top], ["ginlight.Experiment.seed = 7"])
    assert lookup.query("ginlight.Experiment", "seed") == 7
    assert parsed.binding_location("ginlight.Experiment", "seed") == "--gin_bindings"


def test_the_readme_examples_of_block_syntax_and_dynamic_registration_parse_as_it_says(tmp_path):
    blocks = re.findall(r"```\w*\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith("torch.optim.AdamW:\n")]
    (dynamic,) = [b for b in blocks if b.startswith("from __gin__ import dynamic_registration\n")]
    block_file = write(tmp_path / "block.gin", block)
    parsed = parsing.parse([block_file])
    assert lookup.query("torch.optim.AdamW", "weight_decay") == 0.01
    assert parsed.binding_location("torch.optim.AdamW", "weight_decay") == f"{block_file}:3"
    dynamic_file = write(tmp_path / "dynamic.gin", dynamic)
    parsed = parsing.parse([dynamic_file], ["torch.optim.AdamW.lr=1e-3"])  # the README's --gin_bindings
    assert lookup.query("torch.optim.AdamW", "lr") == 1e-3
    assert parsed.binding_location("ginlight.System", "optimizer") == f"{dynamic_file}:7"


def test_a_parse_is_an_object_that_keeps_its_own_locations_after_another_config_is_parsed(tmp_path):
    first = write(tmp_path / "first.gin", "# first\nfractions.Fraction.numerator = 1\n")
    second = write(tmp_path / "second.gin", "fractions.Fraction.numerator = 2\n")
    parsed = parsing.parse([first], ["fractions.Fraction.denominator = 3"])
    assert parsed.files == (first,) and parsed.bindings == ("fractions.Fraction.denominator = 3",)
    assert [(s.name, s.param, s.location) for s in parsed.statements] == [
        ("fractions.Fraction", "numerator", f"{first}:2"), ("fractions.Fraction", "denominator", "--gin_bindings")]
    later = parsing.parse([second])
    assert gin.query_parameter("fractions.Fraction.numerator") == 2
    # An error of the first config is located in the first config, whatever was parsed since.
    error = failures.located(ConfigError("not a fraction.", binding="fractions.Fraction.numerator"), parsed)
    assert error.location == f"{first}:2"
    assert later.binding_location("fractions.Fraction", "numerator") == f"{second}:1"
    assert later.binding_location("fractions.Fraction", "denominator") is None


def test_an_undefined_macro_and_a_string_for_a_number_fail_at_their_lines(tmp_path):
    macro = write(tmp_path / "macro.gin", "fractions.Fraction.numerator = 1\nfractions.Fraction.denominator = %DENOM\n")
    with pytest.raises(ConfigError, match="macro '%DENOM' is used but never defined") as caught:
        parsing.parse([macro])
    assert caught.value.location == f"{macro}:2"
    quoted = write(tmp_path / "quoted.gin", "textwrap.TextWrapper.width = '40'\n")
    with pytest.raises(ConfigError, match="bound to the string '40', but it takes a number") as caught:
        parsing.parse([quoted])
    assert caught.value.location == f"{quoted}:1"
