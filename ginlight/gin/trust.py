"""What a config that the user did not choose may name: the one trust policy for configs from elsewhere.

A gin config is code: it imports modules and calls whatever it names. A config the
user passes as a gin file on this command is theirs to run, as a script is. A
config that ginlight reads from somewhere else (the one stored in a checkpoint, for
:func:`ginlight.load_system` and ``--ckpt_path``) may come from anyone, and
``torch.load(weights_only=True)`` does not stop it: it is plain text. So before gin
parses such a config, :func:`check` reads it as text and judges every name it uses:
each ``import``, each configurable it binds, each reference (``@X``, ``@X()``,
macros' values included), each ``# ginlight-register:`` line and each
``# ginlight-path:`` folder.

A name is judged by the object it resolves to, by that object's real module and
qualified name, never by its spelling: ``logging.os.system`` and ``torch.os.system``
are ``posix.system``. Resolving imports nothing outside what is allowed: it walks
modules already imported, imports only the stack's catalogued modules and the
user's trusted ones, and reads module namespaces directly, so no module's lazy
``__getattr__`` runs. Allowed are:

- ginlight's own configurables;
- the stack's catalogued components (:data:`FAMILIES`, drawn from what
  :mod:`ginlight.gin.registry` discovers), each family in or out for the reason given;
- what the user trusts by name: ``trust=["my_lab"]`` allows modules ``my_lab`` and
  ``my_lab.*``, objects whose real module is one of them, and a ``# ginlight-path:``
  folder that holds ``my_lab``.

Anything else is refused with :class:`ConfigError` before anything is imported,
called or written, naming every untrusted name, its line, and the argument that
would trust it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ginlight import internals
from ginlight.gin import operative, reading, registry
from ginlight.errors import ConfigError
from ginlight.gin.project import add_to_path

__all__ = ["FAMILIES", "check", "allowed_modules"]

#: The stack's families as :mod:`ginlight.gin.registry` discovers them, by the module it finds them in: whether a
#: config from elsewhere may name them (True, False, or the names allowed), and why. A family not listed is out.
#: Not in any family, and so out: ``torch.load`` (unpickles, so with ``weights_only=False`` it runs code),
#: ``torch.save`` (writes over any file it is given), ``torch.hub.*`` (downloads a repository and runs its
#: ``hubconf.py``), ``torch.utils.cpp_extension.*`` (compiles and loads native code). None of them builds a model.
FAMILIES: dict[str, tuple[bool | frozenset[str], str]] = {
    "torch.nn": (True, "models, layers and losses: modules that compute on tensors and touch no file"),
    "torch.nn.functional": (True, "tensor functions for adapters' transforms and losses"),
    "torch.nn.init": (True, "weight initialisers: they fill tensors in place"),
    "torch.optim": (True, "optimizers: they update parameters in memory"),
    "torch.optim.lr_scheduler": (True, "schedulers: they change an optimizer's learning rate"),
    "torch.utils.data": (True, "datasets, loaders and samplers: they draw from what they are given (a callable "
                               "given to them, such as a collate_fn, is a name judged here too)"),
    "torchmetrics": (True, "metrics: they compute on tensors"),
    "lightning": (True, "the Trainer and seed_everything: they run what the config builds, itself judged here"),
    "lightning.pytorch.callbacks": (True, "Lightning's callbacks: they act on the run, and write only checkpoints "
                                          "and reports of it"),
    "lightning.pytorch.profilers": (True, "profilers: they time the run and write a report of it"),
    "lightning.pytorch.loggers": (frozenset({"TensorBoardLogger", "CSVLogger"}),
                                  "loggers that write local files are in; MLflow's, W&B's, Comet's and LitLogger "
                                  "send the run (its config, files and metrics) to a service that the config "
                                  "would choose, so they are out"),
    "torch": (True, "out-of-place tensor functions (torch.sigmoid) and torch.compile; registry.py takes no other "
                    "function from torch's namespace"),
}
#: The packages of ginlight's stack: trusting one whole (``trust=["torch"]``) would allow all of it, so a
#: refusal suggests trusting the one module of it that is asked for instead.
_STACK = ("torch", "torchmetrics", "lightning", "ginlight", "gin")
_MISSING = object()


def _family(module: str) -> str | None:
    """The :data:`FAMILIES` key ``module`` falls under: the longest that is it or a package above it."""
    keys = [key for key in FAMILIES if module == key or module.startswith(key + ".")]
    return max(keys, key=len) if keys else None


@functools.cache
def _catalogue() -> dict[int, str]:
    """``{id(object): name}`` of the stack's components a config from elsewhere may name."""
    allowed = {}
    for module, name, obj in registry.components():
        family = _family(module)
        verdict = FAMILIES[family][0] if family else False
        if verdict is True or (isinstance(verdict, frozenset) and name in verdict):
            allowed[id(obj)] = f"{module}.{name}"
    return allowed


@functools.cache
def allowed_modules() -> frozenset[str]:
    """The stack's modules that a config from elsewhere may import: those of the allowed families, and their
    packages."""
    modules = set()
    for module, name, obj in registry.components():
        if id(obj) in _catalogue():
            parts = module.split(".")
            modules.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return frozenset(modules)


def _within(module: str, prefixes: Sequence[str]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _may_import(module: str, trusted: Sequence[str]) -> bool:
    return module in allowed_modules() or _within(module, ("ginlight", *trusted))


def _real_module(obj: Any) -> str:
    """The module that ``obj`` really comes from, whatever path named it: an instance's is its class's (read from the
    class, so that no ``__getattr__`` of the instance runs)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    owner = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    return getattr(owner, "__module__", None) or "?"


def _real_name(obj: Any) -> str:
    """``module.qualname`` of what ``obj`` really is; ``module.Class instance`` for an instance."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return f"{_real_module(obj)}.{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', '?')}"
    return f"{_real_module(obj)}.{type(obj).__qualname__} instance"


def _ginlight_own(obj: Any) -> bool:
    """A configurable that ginlight's code registers itself (not one of its functions registered by path)."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj)) or not _within(_real_module(obj), ("ginlight",)):
        return False
    selector = internals.registered_name(obj)
    return selector is not None and not registry.registered_by_name([selector])


def _allowed(obj: Any, trusted: Sequence[str]) -> bool:
    return id(obj) in _catalogue() or _ginlight_own(obj) or _within(_real_module(obj), trusted)


@dataclass(frozen=True)
class _Blocked:
    """Resolving the name would import ``module``, which is neither the stack's nor trusted; or, with ``through``,
    read an attribute of an object that is not a module or a class (which could run its code)."""

    module: str
    through: bool = False


_UNKNOWN = object()  # a name that names nothing: gin reports it, and nothing runs


def _resolve(path: str, trusted: Sequence[str]) -> Any:
    """The object a dotted ``path`` names, a :class:`_Blocked`, or ``_UNKNOWN``; imports only what may be imported.

    A trusted module is read as Python reads it (``getattr``, so lazy packages work);
    any other module by its namespace alone.
    """
    parts = path.split(".")
    obj = sys.modules.get(parts[0])
    if obj is None:
        if not _may_import(parts[0], trusted):
            return _Blocked(parts[0])
        obj = _import(parts[0])
        if obj is None:
            return _UNKNOWN
    for part in parts[1:]:
        if isinstance(obj, types.ModuleType):
            found = getattr(obj, part, _MISSING) if _within(obj.__name__, trusted) else vars(obj).get(part, _MISSING)
            if found is _MISSING:
                submodule = f"{obj.__name__}.{part}"
                if submodule in sys.modules:
                    found = sys.modules[submodule]
                elif hasattr(obj, "__path__") and importlib.util.find_spec(submodule) is not None:
                    if not _may_import(submodule, trusted):
                        return _Blocked(submodule)
                    found = _import(submodule)
            if found is _MISSING or found is None:
                return _UNKNOWN
        elif inspect.isclass(obj):  # a class method, as `@transformers.BertConfig.from_dict()`
            static = inspect.getattr_static(obj, part, _MISSING)
            if static is _MISSING:
                return _UNKNOWN
            if not isinstance(static, (classmethod, staticmethod, types.FunctionType, type)):  # reading runs code
                return _Blocked(_real_name(obj), through=True)
            found = getattr(obj, part)
        else:  # an instance: reading its attributes could run its code (ginlight.gin.registry.registered registers)
            return _Blocked(_real_name(obj), through=True)
        obj = found
    return obj


def _import(module: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


@dataclass
class _Finding:
    """One untrusted use: what is written, where, why it is refused, and what to trust to allow it."""

    written: str
    line: int
    why: str
    trust: str | None


def check(gin_file: Path, trusted: Sequence[str], *, chosen: Sequence[str] = (), origin: str,
          spell: Callable[[list[str]], str]) -> None:
    """Refuses ``gin_file``, a config from elsewhere, unless every name it uses is allowed or ``trusted``.

    ``chosen`` are modules the user chose to import on this command anyway
    (``--project``): trusted too. ``origin`` says where the config came from (it
    stands for the file in the message), ``spell`` gives the argument that trusts
    the names it is given. Before judging the names a config's own modules
    define, the allowed imports and folders are put in place, as parsing would.
    """
    trusted = [*_validated(trusted), *chosen]
    text = gin_file.read_text()
    statements = reading.read([gin_file])
    findings: list[_Finding] = []
    imports = [s for s in statements if s.kind == "import"]
    for statement in imports:
        if not _may_import(statement.selector, trusted):
            findings.append(_Finding(statement.text, statement.line, "imports a module that is not trusted",
                                     _suggestion(statement.selector)))
    for statement in statements:
        if statement.kind == "include":
            findings.append(_Finding(statement.text, statement.line,
                                     "reads another file (configs that ginlight stores include none)", None))
    folders = _directives(text, operative.PATH_DIRECTIVE)
    roots = {name.split(".")[0] for name in trusted}
    for line, folder in folders:  # a folder that is not there holds nothing: it shadows no module
        if Path(folder).is_dir() and not any(_holds(folder, root) for root in roots):
            held = sorted({s.selector.split(".")[0] for s in imports if _holds(folder, s.selector.split(".")[0])})
            findings.append(_Finding(
                f"{operative.PATH_DIRECTIVE}{folder}", line,
                "puts a folder first on sys.path" + (f" that holds {', '.join(held)}" if held else
                                                     ", and it holds none of the modules the config imports "
                                                     "(delete the line)"), held[0] if held else None))
    imported = not findings
    if imported:  # the config's own modules, once trusted, register what they define
        for _, folder in folders:
            add_to_path(folder)
        for statement in imports:
            try:
                _import(statement.selector)
            except Exception:  # noqa: BLE001  gin imports it again as it parses, and reports the failure at its line
                continue
    uses = [(s.selector, s.line) for s in statements if s.kind == "binding" and s.param is not None]
    uses += [(ref.name, s.line) for s in statements if s.kind == "binding"
             for ref in reading.references_in(s.value) if isinstance(ref, reading.Reference)]
    uses += [(path, line) for line, path in _directives(text, registry.REGISTER_DIRECTIVE)]
    names = {name.rsplit("/", 1)[-1]: line for name, line in sorted(uses, key=lambda use: -use[1])}  # first line
    registry.register_named(names)
    unknown = []
    for name, line in sorted(names.items(), key=lambda item: item[1]):
        findings += _judge(name, line, trusted, unknown)
    if findings:
        # A name no module defines is gin's to report, unless the modules that may define it were refused.
        raise _refusal(sorted(findings, key=lambda finding: finding.line), [] if imported else unknown, origin, spell)


def _judge(name: str, line: int, trusted: Sequence[str], unknown: list[str]) -> list[_Finding]:
    """The findings for one configurable ``name`` (scope removed): every object gin could take it for."""
    matches = internals.selectors_matching(name)
    objects = [internals.configurable(selector, exact=True).wrapped for selector in matches]
    if not objects and "." in name:
        resolved = _resolve(name, trusted)
        if isinstance(resolved, _Blocked) and resolved.through:
            return [_Finding(name, line, f"reaches through {resolved.module}, whose attribute could run code when "
                             "read", None)]
        if isinstance(resolved, _Blocked):
            return [_Finding(name, line, f"naming it would import {resolved.module}, which is not trusted",
                             _suggestion(resolved.module))]
        objects = [] if resolved is _UNKNOWN else [resolved]
    if not objects:
        unknown.append(name)
    findings = []
    for obj in objects:
        if not _allowed(obj, trusted):
            real = _real_name(obj)
            what = "is" if real == name else f"is {real}, which is"
            findings.append(_Finding(name, line, f"{what} neither ginlight's nor among the stack's components "
                                     "that ginlight trusts", _suggestion(real.rsplit(".", 1)[0] if "." in real
                                                                         else real)))
    return findings


def _suggestion(module: str) -> str:
    """What to trust to allow ``module``: its top-level package, or the module itself inside the stack."""
    top = module.split(".")[0]
    return module if top in _STACK else top


def _holds(folder: str, module: str) -> bool:
    """Whether ``folder`` holds the top-level module or package ``module`` (read from the disk, not imported)."""
    return (Path(folder) / module).is_dir() or (Path(folder) / f"{module}.py").is_file()


def _directives(text: str, directive: str) -> list[tuple[int, str]]:
    """``(line, value)`` of each ``directive`` comment line in ``text``, found as :mod:`ginlight.gin.parsing` does."""
    return [(number, line[len(directive):].strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.startswith(directive)]


_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _validated(trusted: Sequence[str]) -> list[str]:
    if isinstance(trusted, str):
        raise ConfigError(f"trust is a list of module names, got the string {trusted!r}.",
                          hint=f"Pass trust=[{trusted!r}].")
    bad = [name for name in trusted if not _DOTTED.match(name)]
    if bad:
        raise ConfigError(f"trust names modules, such as 'my_lab' or 'my_lab.models'; got {', '.join(map(repr, bad))}.",
                          hint="Name the package whose code the config may run.")
    return list(trusted)


def _refusal(findings: list[_Finding], unknown: list[str], origin: str,
             spell: Callable[[list[str]], str]) -> ConfigError:
    count = f"{len(findings)} {'line' if len(findings) == 1 else 'lines'}"
    lines = [f"{count} of this config name code that ginlight runs only when you trust it:"]
    for finding in findings:
        trust = f"; trust '{finding.trust}' to allow it" if finding.trust else ""
        lines.append(f"  line {finding.line}: `{finding.written}` {finding.why}{trust}.")
    if unknown:
        lines.append(f"  Not known until the modules above are imported: {', '.join(sorted(unknown))}.")
    names = list(dict.fromkeys(f.trust for f in findings if f.trust))
    done = "Nothing outside the modules you trust has been imported or run."
    hint = (f"{done} If you trust whoever wrote it as you would trust a script from them, pass {spell(names)}."
            if names else f"{done} Remove those lines.")
    return ConfigError("\n".join(lines), location=origin, hint=hint)
