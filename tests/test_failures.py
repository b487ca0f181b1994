"""ginlight.gin.failures: gin's errors as :class:`ConfigError`, at their line, with what to do; an error that
names a binding located in the parse it came from."""

from __future__ import annotations

import gin
import pytest
from conftest import write

from ginlight.errors import ConfigError
from ginlight.gin import failures, parsing

pytestmark = pytest.mark.usefixtures("clean_gin")


def test_located_puts_an_error_naming_a_binding_at_its_line(tmp_path):
    top = write(tmp_path / "top.gin", "fractions.Fraction.numerator = 1\nfractions.Fraction.denominator = 0\n")
    parsed = parsing.parse([top])
    error = failures.located(ConfigError("the denominator is zero.", binding="fractions.Fraction.denominator"), parsed)
    assert error.location == f"{top}:2" and error.message == "the denominator is zero."
    already = ConfigError("elsewhere", location="x.gin:9", binding="fractions.Fraction.denominator")
    assert failures.located(already, parsed).location == "x.gin:9"


def test_an_unknown_parameter_is_located_with_its_statement_and_a_suggestion(tmp_path):
    top = write(tmp_path / "top.gin", "textwrap.indent.prefix = '> '\ntextwrap.indent.predicat = None\n")
    with pytest.raises(ConfigError) as caught:
        parsing.parse([top])
    assert caught.value.location == f"{top}:2"
    assert "'textwrap.indent' has no parameter 'predicat'" in caught.value.message
    assert "predicate" in (caught.value.hint or "")


def test_an_unknown_parameter_inside_an_included_block_is_located_at_its_own_line(tmp_path):
    write(tmp_path / "base.gin", "textwrap.indent:\n  prefix = '> '\n  # a comment\n  predicat = None\n")
    top = write(tmp_path / "top.gin", "include 'base.gin'\n")
    with pytest.raises(ConfigError) as caught:
        parsing.parse([top])
    assert caught.value.location == f"{tmp_path / 'base.gin'}:4"
    assert caught.value.message.endswith("In: `predicat = None`")  # the line, without gin's caret under it
    assert "predicate" in (caught.value.hint or "")


def test_under_dynamic_registration_a_misspelt_or_unimported_name_is_explained_at_its_line(tmp_path):
    head = "from __gin__ import dynamic_registration\nimport fractions as fr\n"
    misspelt = write(tmp_path / "misspelt.gin", head + "fr.Fractoin.numerator = 3\n")
    with pytest.raises(ConfigError) as caught:
        parsing.parse([misspelt])
    assert caught.value.location == f"{misspelt}:3"
    assert "'fractions' has no attribute 'Fractoin'" in caught.value.message
    assert "fractions.Fraction" in (caught.value.hint or "")
    unimported = write(tmp_path / "unimported.gin", head + "fractions.Fraction.numerator = 3\n")
    with pytest.raises(ConfigError) as caught:
        parsing.parse([unimported])
    assert caught.value.location == f"{unimported}:3" and "'fractions' is not a name an import" in caught.value.message


def test_a_component_built_without_a_required_argument_is_located_where_it_is_referenced(tmp_path):
    top = write(tmp_path / "top.gin",
                "fractions.Fraction.numerator = @textwrap.indent()\ntextwrap.indent.prefix = '> '\n")
    parsed = parsing.parse([top])
    with pytest.raises(TypeError) as caught:
        gin.get_configurable("fractions.Fraction")()
    error = failures.build_error(caught.value, parsed)
    assert (error.message, error.location) == ("'indent' needs a value for text and none is bound.", f"{top}:1")
    assert error.hint == "Bind it in a gin file, e.g. `indent.text = ...`."
    assert failures.build_error(ValueError("a bug in the user's code"), parsed) is None  # keeps its traceback


def test_a_module_gin_cannot_import_and_a_file_it_cannot_open_are_explained(tmp_path):
    imports = write(tmp_path / "imports.gin", "import ginlight_failures_no_such_module\n")
    with pytest.raises(ConfigError) as caught, failures.translate_errors(imports):
        gin.parse_config_file(str(imports))
    assert caught.value.location == f"{imports}:1"
    assert caught.value.message.startswith("cannot import module 'ginlight_failures_no_such_module'.")
    assert "--project" in caught.value.hint
    missing = tmp_path / "missing.gin"
    with pytest.raises(ConfigError) as caught, failures.translate_errors(None):
        gin.parse_config_file(str(missing))
    assert caught.value.message == f"Unable to open file: {missing}."  # without the folders gin searched
    assert "--gin_search_paths" in caught.value.hint
