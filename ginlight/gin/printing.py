"""``--print_config``: every parameter of every configurable a parsed config reaches, with its value and
where that value comes from (the line that binds it, the signature's default, or ginlight's default)."""

from __future__ import annotations

import inspect

import gin

from ginlight import internals
from ginlight.gin import lookup, registry
from ginlight.gin.parsed import ParsedConfig


def describe(parsed: ParsedConfig, implicit: dict[str, dict[str, str]] | None = None) -> str:
    """The config as ``--print_config`` shows it, building nothing: ``parsed``, which gin holds now.

    Every parameter of every configurable the config binds or references, and of
    those in ``implicit`` (what ginlight builds whatever the config says, such as
    the Trainer), one line each: the bound value and where it was bound
    (``file:line`` or ``--gin_bindings``), or the signature's default. ``implicit``
    also gives, per parameter, the value ginlight passes where nothing is bound.
    """
    implicit = implicit or {}
    registry.register_named(implicit)
    blocks = {("", internals.configurable(name).selector) for name in implicit}
    blocks |= {key for key in internals.parsed_bindings() if key[1] != "gin.macro"}
    for reference in gin.config.iterate_references(internals.parsed_bindings()):
        if reference.configurable.wrapped is not gin.config.macro:
            scope = reference.scoped_selector.rpartition("/")[0]
            blocks.add((scope, reference.configurable.selector))
    rows: list[tuple[str, str]] = []
    macros = [s for s in parsed.statements if s.kind == "binding" and s.param is None]
    if macros:
        rows.append(("# Macros", ""))
        last = {s.selector: s for s in macros}
        rows += [(f"{name} = {last[name].value!r}", last[name].location) for name in sorted(last)]
    for scope, selector in sorted(blocks, key=lambda key: (key[1], key[0])):
        name = f"{scope}/{selector}" if scope else selector
        bound = internals.parsed_bindings().get((scope, selector), {})
        passed = next((values for key, values in implicit.items()
                       if internals.configurable(key).selector == selector), {}) if not scope else {}
        rows.append((f"# {name}", ""))
        signature = lookup.signature_parameters(selector)
        parameters = list(bound) if scope else [*signature, *bound]
        for param in dict.fromkeys(parameters):
            if param in bound:
                statement = parsed.binding_statement(name, param)
                value = repr(statement.value) if statement else repr(bound[param])
                rows.append((f"{name}.{param} = {value}", statement.location if statement else "bound"))
            elif param in passed:
                rows.append((f"{name}.{param} = {passed[param]}", "ginlight's default"))
            else:
                default = signature[param]
                if default is inspect.Parameter.empty or default is gin.REQUIRED:
                    rows.append((f"{name}.{param} = REQUIRED", "required, and not bound"))
                else:
                    rows.append((f"{name}.{param} = {default!r}", "default"))
    width = min(max(len(text) for text, origin in rows if origin), 80)
    lines = ["# Every parameter of every configurable this config reaches. After each value: where it",
             "# was bound (file:line or --gin_bindings), `default` (the signature's) or `ginlight's default`."]
    for text, origin in rows:
        if not origin:
            lines += ["", text]
        else:
            lines.append(f"{text.ljust(width)}  # {origin}")
    return "\n".join(lines) + "\n"
