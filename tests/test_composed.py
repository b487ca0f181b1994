"""ginlight.gin.composed: the input as composed (a run's config.gin), which a parse carries."""

from __future__ import annotations

import pytest
from conftest import write

from ginlight.gin import composed, parsing

pytestmark = pytest.mark.usefixtures("clean_gin")


def test_merged_input_inlines_each_include_after_its_line_then_the_bindings(tmp_path):
    write(tmp_path / "parts" / "inner.gin", "# inner\nfractions.Fraction.numerator = 1\n")
    write(tmp_path / "parts" / "outer.gin", "include 'inner.gin'\nfractions.Fraction.denominator = 2\n")
    top = write(tmp_path / "top.gin", "# top\ninclude 'parts/outer.gin'\n")
    parsed = parsing.parse([top], ["fractions.Fraction.numerator = 3"])
    merged = composed.merged_input([top], ["fractions.Fraction.numerator = 3"], parsed.statements)
    assert parsed.merged_input == merged == (
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
