"""Finds every mistake in a parsed config before anything is built: ``ginlight-check``.

gin reports a wrong value only once the object that receives it is built, one
mistake per run and often in another library's words, and it ignores a binding
that nothing reaches (a misspelt scope, a configurable the config never calls).
This module reads what gin would call, and the signatures of what it calls,
without calling anything:

- every bound value against its parameter's annotation (builtins, ``Optional`` and
  ``Union``, ``Literal``, enums, sequences, tuples and dicts with their element
  types, ``Callable``, classes); a reference ``@X()`` by what ``X`` makes, ``@X``
  as the callable or class it is;
- bindings the run never reaches: a scope never entered, a configurable never
  called, following references from what ginlight itself calls (the roots);
- required parameters left unbound in each call the config makes.

An annotation that cannot be judged (a string or forward reference that does not
resolve, a type variable, a protocol) leaves its parameter unchecked: a false alarm
costs a user more than a mistake found at build time.
"""

from __future__ import annotations

import collections
import collections.abc
import difflib
import enum
import functools
import inspect
import os
import pathlib
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import gin

from ginlight import internals
from ginlight.gin import lookup, reading
from ginlight.gin.parsed import ParsedConfig
from ginlight.errors import ConfigError

__all__ = ["Problem", "problems", "raise_errors"]

# A verdict is True (fits), False (does not) or None (cannot be judged: stay silent).
Verdict = typing.Optional[bool]
_MAX_CALLS = 10_000  # a config whose references recurse through scopes is cut off here


@dataclass(frozen=True)
class Problem:
    """One mistake: ``unreached`` ones (a binding nothing uses) are warnings unless checking strictly."""

    message: str
    location: str | None
    hint: str | None = None
    unreached: bool = False

    def __str__(self) -> str:
        return str(ConfigError(self.message, self.location, self.hint))


def raise_errors(found: Sequence[Problem], strict: bool = False) -> list[Problem]:
    """Raises one :class:`ConfigError` listing every error among ``found`` (see :func:`problems`); returns the
    warnings. With ``strict``, unreached bindings are errors too."""
    errors = [p for p in found if strict or not p.unreached]
    if len(errors) == 1:
        raise ConfigError(errors[0].message, errors[0].location, errors[0].hint)
    if errors:
        raise ConfigError(f"{len(errors)} mistakes in the config, found before anything was built:\n"
                          + "\n".join("  " + str(e).replace("\n", "\n    ") for e in errors),
                          hint="Fix each at its line; `ginlight-check` with the same flags lists them again.")
    return list(found)


def problems(parsed: ParsedConfig, roots: Mapping[str, Sequence[str]]) -> list[Problem]:
    """Every problem of ``parsed``, the config gin holds now, in the order of its lines.

    ``roots`` are the configurables ginlight calls from its own code whatever the
    config references (the Experiment, the Trainer...), each with the parameters
    ginlight passes it: the reach of the config starts there.
    """
    statements = _binding_statements(parsed)
    found: list[Problem] = []
    wrong_references: set[int] = set()
    for (scope, selector), params in internals.parsed_bindings().items():
        if selector == "gin.macro":
            continue
        for param, value in params.items():
            statement = statements.get((scope, selector, param))
            problem = _type_problem(scope, selector, param, value, statement)
            if problem is not None:
                found.append(problem)
                wrong_references.update(id(ref) for ref in _references(_resolve_macros(value)))
    reach = _Reach(roots, wrong_references, statements)
    found += reach.required
    found += _unreached(reach, statements)
    order = {s.location: i for i, s in enumerate(parsed.statements)}
    return sorted(found, key=lambda p: order.get(p.location, len(order)))


def _binding_statements(parsed: ParsedConfig) -> dict[tuple[str, str, str], reading.Statement]:
    """The statement of ``parsed`` that made each binding gin holds, ``(scope, full selector, parameter)``: the
    last one."""
    found = {}
    for statement in parsed.statements:
        if statement.kind != "binding" or statement.param is None:
            continue
        try:
            configurable = internals.configurable(statement.selector)
        except ValueError:
            continue
        if configurable is not None:
            found[(statement.scope, configurable.selector, statement.param)] = statement
    return found


# ---- values against annotations ----

def _type_problem(scope: str, selector: str, param: str, value: Any,
                  statement: reading.Statement | None) -> Problem | None:
    configurable = internals.configurable(selector, exact=True)
    if configurable is None:
        return None
    hint = _parameter_hint(configurable.wrapped, param)
    if hint is _UNJUDGED:
        return None
    resolved = _resolve_macros(value)
    if _is_default(configurable.wrapped, param, resolved) or _judge(resolved, hint) is not False:
        return None
    name = statement.name if statement else (f"{scope}/{selector}" if scope else selector)
    written = statement.value if statement else value
    given = _given(written, resolved)
    expected = _describe(hint)
    suggestion = None
    if isinstance(resolved, gin.config.ConfigurableReference):
        ref = resolved.configurable.selector
        short = written.name if isinstance(written, reading.Reference) else ref
        if resolved.evaluate and _judge_callable(resolved, hint):
            return Problem(f"'{name}.{param}' is bound as an instance, `@{short}()`, but it takes {expected}.",
                           statement.location if statement else None,
                           f"Drop the parentheses: `{name}.{param} = @{short}`; it is called for you.")
        if not resolved.evaluate and inspect.isclass(resolved.configurable.wrapped):
            return Problem(f"'{name}.{param}' is bound to the class itself, `@{short}`, but it takes {expected}.",
                           statement.location if statement else None,
                           f"Add parentheses for an instance: `{name}.{param} = @{short}()`.")
    if isinstance(resolved, str):
        close = difflib.get_close_matches(resolved, _literal_strings(hint), n=1, cutoff=0.5)
        suggestion = f"Did you mean {close[0]!r}?" if close else None
    classes = [ref.name for ref in reading.references_in(written) if isinstance(ref, reading.Reference)
               and not ref.evaluate and inspect.isclass(_wrapped(ref.name))]
    if classes:
        suggestion = f"`@{classes[0]}` passes the class itself: write `@{classes[0]}()` for an instance."
    return Problem(f"'{name}.{param}' is bound to {given}, but it takes {expected}.",
                   statement.location if statement else None,
                   suggestion or "Bind a value of that type.")


def _is_default(wrapped: Any, param: str, value: Any) -> bool:
    """Whether ``value`` is the parameter's own default, which its library chose whatever its annotation
    says (an operative config binds every default)."""
    default = next((p.default for p in _parameters(wrapped) if p.name == param), inspect.Parameter.empty)
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # a comparison that is not a bool (arrays)
        return False


def _wrapped(name: str) -> Any:
    """The class or function the configurable ``name`` (maybe scoped) stands for; None when ambiguous."""
    try:
        configurable = internals.configurable(name.rpartition("/")[2])
    except ValueError:
        return None
    return configurable and configurable.wrapped


def _judge_callable(reference: Any, hint: Any) -> bool:
    """Whether ``hint`` takes the uncalled form of ``reference`` (``@X`` where ``@X()`` was written)."""
    return _judge(reference.configurable.wrapped, hint) is True  # the class or function itself: as @X passes it


_UNJUDGED = object()


def _construction(wrapped: Any) -> tuple[Any, bool]:
    """What gin calls for ``wrapped`` (a class's ``__init__`` or ``__new__``, as gin finds it), and whether
    ``wrapped`` is a class (whose construction function's first parameter is gin's to fill)."""
    if inspect.isclass(wrapped):
        return internals.construction_function(wrapped), True
    return wrapped, False


def _signature(wrapped: Any) -> inspect.Signature | None:
    """The signature gin binds ``wrapped`` by (annotations as written); None when it cannot be read. Read
    once per class or function: a config binds many parameters of each."""
    try:
        return _cached_signature(wrapped)
    except TypeError:  # not hashable
        return _read_signature(wrapped)


@functools.lru_cache(maxsize=4096)
def _cached_signature(wrapped: Any) -> inspect.Signature | None:
    return _read_signature(wrapped)


def _read_signature(wrapped: Any) -> inspect.Signature | None:
    target, is_class = _construction(wrapped)
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    parameters = list(signature.parameters.values())
    if is_class and parameters and parameters[0].kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD):
        signature = signature.replace(parameters=parameters[1:])  # self or cls: gin's to fill
    return signature


def _parameters(wrapped: Any) -> list[inspect.Parameter]:
    """The parameters gin can bind by name; none when the signature cannot be read (builtins)."""
    signature = _signature(wrapped)
    parameters = signature.parameters.values() if signature is not None else ()
    return [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _parameter_hint(wrapped: Any, param: str) -> Any:
    """The annotation of ``wrapped``'s parameter ``param``, resolved (``X = None`` reads as ``Optional[X]``);
    :data:`_UNJUDGED` when there is none or it does not resolve."""
    parameter = next((p for p in _parameters(wrapped) if p.name == param), None)
    if parameter is None:
        return _UNJUDGED
    hint = _resolved(_construction(wrapped)[0], parameter.annotation)
    if hint is _UNJUDGED or parameter.default is not None:
        return hint
    return typing.Optional[hint]


def _resolved(target: Any, annotation: Any) -> Any:
    """``annotation`` as an object: a string (``from __future__ import annotations``) evaluated where
    ``target`` was defined, as ``typing.get_type_hints`` would, for this one annotation only (the others
    may name what is not importable at run time); :data:`_UNJUDGED` when it does not resolve."""
    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return _UNJUDGED
    if not isinstance(annotation, str):
        return annotation
    namespace = getattr(inspect.unwrap(target), "__globals__", None) if callable(target) else None
    try:
        return eval(annotation, dict(namespace or {}))
    except Exception:
        return _UNJUDGED


def _return_hint(target: Any) -> Any:
    try:
        return _resolved(target, inspect.signature(target).return_annotation)
    except (TypeError, ValueError):
        return _UNJUDGED


def _resolve_macros(value: Any) -> Any:
    """``value`` with every ``%MACRO`` in it, in containers too, replaced by what it stands for."""
    value = lookup.resolve_macro(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_resolve_macros(item) for item in value)
    if isinstance(value, dict):
        return {_resolve_macros(key): _resolve_macros(item) for key, item in value.items()}
    return value


def _references(value: Any) -> Iterator[Any]:
    """The references (``@X``, ``@X()``) in a value whose macros are resolved."""
    return reading.instances_in(value, (gin.config.ConfigurableReference,))


def _any(verdicts: Iterable[Verdict]) -> Verdict:
    verdicts = list(verdicts)
    return True if True in verdicts else None if None in verdicts else False


def _all(verdicts: Iterable[Verdict]) -> Verdict:
    verdicts = list(verdicts)
    return False if False in verdicts else None if None in verdicts else True


def _unjudgeable(hint: Any) -> bool:
    return (isinstance(hint, (str, typing.ForwardRef, typing.TypeVar, typing.ParamSpec))
            or (inspect.isclass(hint) and internals.is_protocol(hint)))


def _judge(value: Any, hint: Any) -> Verdict:
    """Whether ``value``, as gin parsed it (references included), fits ``hint``."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    while hasattr(hint, "__supertype__"):  # NewType
        hint = hint.__supertype__
    if hint is typing.Any or hint is object:
        return True
    if _unjudgeable(hint) or value is gin.REQUIRED:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _any(_judge(value, arm) for arm in typing.get_args(hint))
    if isinstance(value, gin.config.ConfigurableReference):
        wrapped = value.configurable.wrapped
        return _judge_made(wrapped, hint) if value.evaluate else _judge_object(wrapped, hint)
    return _judge_object(value, hint)


def _judge_object(obj: Any, hint: Any) -> Verdict:
    """Whether the object ``obj`` (a literal, or the class or function an uncalled ``@X`` passes) fits
    ``hint``, a hint that is not a union."""
    if hint is None or hint is type(None):
        return obj is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return any(obj == choice and type(obj) is type(choice) for choice in args)
    if hint in (type, typing.Type) or origin is type:
        if inspect.isclass(obj):
            return _judge_subclass(obj, args[0]) if args else True
        return None if callable(obj) else False  # a function may make the class
    if hint in (typing.Callable, collections.abc.Callable) or origin is collections.abc.Callable:
        return callable(obj)
    if origin is None:
        return _judge_instance(obj, hint) if inspect.isclass(hint) else None
    if not inspect.isclass(origin):
        return None
    if origin is tuple:
        if not isinstance(obj, (list, tuple)):
            return False
        if not args or args == ((),):
            return not args or not obj
        if args[-1] is Ellipsis:
            return _all(_judge(item, args[0]) for item in obj)
        return len(obj) == len(args) and _all(_judge(item, arg) for item, arg in zip(obj, args))
    if issubclass(origin, collections.abc.Mapping):
        if not isinstance(obj, collections.abc.Mapping):
            return False
        if len(args) != 2:
            return True
        return _all([*(_judge(key, args[0]) for key in obj), *(_judge(item, args[1]) for item in obj.values())])
    if issubclass(origin, collections.abc.Iterable):
        if not isinstance(obj, (list, tuple, set, frozenset, origin)):
            return False
        return _all(_judge(item, args[0]) for item in obj) if len(args) == 1 else True
    return _judge_instance(obj, origin)


def _judge_instance(obj: Any, cls: type) -> Verdict:
    """``isinstance``, with what libraries accept by convention: ints where floats belong, a list or tuple
    where either does, strings where paths do, an enum's values or names where the enum does."""
    if internals.is_protocol(cls):
        return None
    if cls is float:
        return isinstance(obj, (int, float))
    if cls is complex:
        return isinstance(obj, (int, float, complex))
    if cls in (list, tuple) and isinstance(obj, (list, tuple)):  # as for list[T] and tuple[T, ...]
        return True
    if issubclass(cls, (pathlib.PurePath, os.PathLike)) and isinstance(obj, str):
        return True
    if issubclass(cls, enum.Enum) and not isinstance(obj, cls):
        names = [str(m.name).lower() for m in cls] + [str(m.value).lower() for m in cls]
        return isinstance(obj, (str, int)) and str(obj).lower() in names
    try:
        return isinstance(obj, cls) or _accepted_instead(type(obj), cls)
    except TypeError:
        return None


def _accepted_instead(cls: type, hint: type) -> bool:
    """Whether ``hint``'s library takes ``cls`` although its annotation names ``hint``
    (:data:`ginlight.internals.ACCEPTED_FOR_ANNOTATION`)."""
    accepted = internals.ACCEPTED_FOR_ANNOTATION.get(f"{hint.__module__}.{hint.__qualname__}")
    return accepted is not None and any(f"{k.__module__}.{k.__qualname__}" == accepted for k in cls.__mro__)


def _judge_subclass(cls: type, hint: Any) -> Verdict:
    """Whether the class ``cls`` fits ``type[hint]``."""
    if hint is typing.Any or hint is object:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _any(_judge_subclass(cls, arm) for arm in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    if not inspect.isclass(hint) or _unjudgeable(hint):
        return None
    try:
        return issubclass(cls, hint)
    except TypeError:
        return None


def _made(wrapped: Any) -> tuple[list[type], bool] | None:
    """The classes of what ``@X()`` makes, and whether exactly (a class without ``__new__`` of its own
    makes instances of itself; a function or ``__new__`` only promises its return annotation); None when
    unknown."""
    target, is_class = _construction(wrapped)
    if is_class and target.__name__ != "__new__":
        return [wrapped], True
    returns = _return_hint(target)
    returns = typing.get_origin(returns) or returns
    known = inspect.isclass(returns) and not _unjudgeable(returns) and not _structural(returns)
    if is_class:
        return [wrapped, *([returns] if known else [])], False
    return ([returns], False) if known else None


def _structural(cls: type) -> bool:
    """Whether ``cls`` says what an object does rather than what it is (a union, ``Callable``, ``Iterable``,
    any abstract class): an object of any class may be one, so a return annotation of it tells nothing of
    the class made (``torch.compile`` returns a ``Callable``, which may be a ``Module``)."""
    return cls is types.UnionType or cls.__module__ in ("collections.abc", "typing") or inspect.isabstract(cls)


def _judge_made(wrapped: Any, hint: Any) -> Verdict:
    """Whether what ``@X()`` makes (``X`` is ``wrapped``) fits ``hint``, a hint that is not a union."""
    made = _made(wrapped)
    if made is None:
        return None
    classes, exact = made
    return _any(_judge_class(cls, hint, exact) for cls in classes)


def _judge_class(cls: type, hint: Any, exact: bool) -> Verdict:
    """Whether an instance of ``cls`` (with ``exact``; else an instance of ``cls`` or of a subclass) fits ``hint``."""
    if hint is None or hint is type(None):
        return cls is type(None) if exact else None
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return None
    if hint in (type, typing.Type) or origin is type:
        return issubclass(cls, type) or (None if not exact else False)
    if hint in (typing.Callable, collections.abc.Callable) or origin is collections.abc.Callable:
        return True if any("__call__" in vars(k) for k in cls.__mro__) else (False if exact else None)
    target = origin or hint
    if not inspect.isclass(target) or _unjudgeable(target):
        return None
    if target is float and issubclass(cls, int):
        return True
    try:
        if issubclass(cls, target) or _accepted_instead(cls, target):
            return True
        if exact:
            return False
        # a promised supertype may be the hint's class; an ABC's hook may accept what it promises
        hooked = any("__subclasshook__" in vars(k) for k in target.__mro__[:-1])
        return None if issubclass(target, cls) or hooked else False
    except TypeError:
        return None


# ---- wording ----

def _describe(hint: Any) -> str:
    """``hint`` as a user reads it: ``Sequence[int]``, ``one of 'a', 'b'``, ``int or None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        arms = typing.get_args(hint)
        literals = [a for arm in arms if typing.get_origin(arm) is typing.Literal for a in typing.get_args(arm)]
        parts = [_describe(arm) for arm in arms if typing.get_origin(arm) is not typing.Literal
                 and arm is not type(None)]
        if literals:
            parts.insert(0, _describe(typing.Literal[tuple(literals)]))
        if type(None) in arms:
            parts.append("None")
        return " or ".join(parts)
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return "None"
    if inspect.isclass(hint) and not typing.get_args(hint):
        return hint.__qualname__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_]\w*)", "", repr(hint))


def _given(written: Any, resolved: Any) -> str:
    """The value as written, with what a macro stands for, and the type of a plain value."""
    if isinstance(written, reading.Macro):
        return f"%{written.name}, {_given(resolved, resolved)}"
    kinds = {bool: "", type(None): "", str: "the string ", int: "the int ", float: "the float "}
    if type(resolved) in kinds:
        return f"{kinds[type(resolved)]}{written!r}"
    return f"`{written!r}`"


def _literal_strings(hint: Any) -> list[str]:
    """The strings a ``Literal`` in ``hint`` allows, for "did you mean"."""
    if typing.get_origin(hint) is typing.Literal:
        return [choice for choice in typing.get_args(hint) if isinstance(choice, str)]
    return [choice for arm in typing.get_args(hint) for choice in _literal_strings(arm)]


# ---- what the config reaches ----

class _Reach:
    """Follows what gin would call, from the roots through every reference, with the scopes each call runs in.

    A binding ``a/b/X.p`` applies to a call of ``X`` whose scope starts with ``a/b``
    (gin's rule); ``@s/X()`` calls ``X`` in the caller's scope with ``s`` added. An
    uncalled ``@s/X`` is called later by the code it is passed to, in that code's
    scope, which may be the caller's or none: both count as reached.
    """

    def __init__(self, roots: Mapping[str, Sequence[str]], wrong_references: set[int],
                 statements: Mapping[tuple[str, str, str], reading.Statement]):
        self.used: set[tuple[str, str, str]] = set()
        self.entered: set[str] = set()
        self.called: dict[str, set[str]] = {}
        self.required: list[Problem] = []
        self._wrong = wrong_references
        self._statements = statements
        self._seen: set[tuple[tuple[str, ...], str, bool]] = set()
        # (scope, configurable, evaluated, parameters its caller passes, whether and where to check what it
        # needs: the binding that references it)
        queue: collections.deque[tuple[tuple[str, ...], Any, bool, Sequence[str], tuple[str | None] | None]]
        queue = collections.deque()
        for name, passed in roots.items():
            try:
                configurable = internals.configurable(name)
            except ValueError:
                configurable = None
            if configurable is not None:
                queue.append(((), configurable, True, passed, (None,)))
        while queue and len(self._seen) < _MAX_CALLS:  # in the order the config writes its references
            queue += self._call(*queue.popleft())

    def _call(self, scope: tuple[str, ...], configurable: Any, evaluate: bool, passed: Sequence[str],
              required_at: tuple[str | None] | None) -> list:
        selector = configurable.selector
        key = (scope, selector, evaluate)
        if key in self._seen:
            return []
        self._seen.add(key)
        self.called.setdefault(selector, set()).add("/".join(scope))
        bound: dict[str, tuple[str, Any]] = {}
        for depth in range(len(scope) + 1):
            partial = "/".join(scope[:depth])
            self.entered.add(partial)
            for param, value in internals.parsed_bindings().get((partial, selector), {}).items():
                self.used.add((partial, selector, param))
                bound[param] = (partial, value)
        if required_at is not None:
            self._check_required(scope, configurable, set(bound) | set(passed), required_at[0])
        calls = []
        for param, (partial, value) in bound.items():
            statement = self._statements.get((partial, selector, param))
            where = (statement.location if statement else None,)
            for reference in _references(_resolve_macros(value)):
                scopes = tuple(reference.scoped_selector.split("/")[:-1])
                # a reference whose type is already wrong is reported as that, not for what it needs
                checked = where if reference.evaluate and id(reference) not in self._wrong else None
                calls.append((scope + scopes, reference.configurable, reference.evaluate, (), checked))
                if not reference.evaluate:
                    calls.append((scopes, reference.configurable, False, (), None))
        return calls

    def _check_required(self, scope: tuple[str, ...], configurable: Any, bound: set[str],
                        location: str | None) -> None:
        missing = [p.name for p in _parameters(configurable.wrapped)
                   if (p.default is inspect.Parameter.empty or p.default is gin.REQUIRED) and p.name not in bound]
        if not missing:
            return
        name = "/".join([*scope, internals.shortest_selector(configurable.selector)])
        self.required.append(Problem(
            f"'{name}' needs a value for {', '.join(missing)} and none is bound.", location,
            "Bind it in a gin file, e.g. " + "; ".join(f"`{name}.{p} = ...`" for p in missing) + "."))


def _unreached(reach: _Reach, statements: Mapping[tuple[str, str, str], reading.Statement]) -> list[Problem]:
    """A warning for each binding that no call of the config reaches."""
    found = []
    scopes = sorted(s for s in reach.entered if s)
    for (scope, selector), params in internals.parsed_bindings().items():
        if selector == "gin.macro":
            continue
        configurable = internals.configurable(selector, exact=True)
        for param in params:
            if (scope, selector, param) in reach.used:
                continue
            statement = statements.get((scope, selector, param))
            location = statement.location if statement else None
            short = internals.shortest_selector(selector)
            name = f"{statement.name if statement else short}.{param}"
            if scope and scope not in reach.entered:
                close = difflib.get_close_matches(scope, scopes, n=1, cutoff=0.6)
                found.append(Problem(
                    f"'{name}' is bound in scope '{scope}', which nothing the config builds enters: "
                    "gin ignores the binding.", location,
                    f"Did you mean '{close[0]}/'?" if close else
                    f"The scopes the config enters are: {', '.join(scopes) or 'none'}.", unreached=True))
            elif _may_be_called_by_code(configurable):
                continue  # the user's code may call it, in scopes no reference enters
            elif selector in reach.called:
                where = ", ".join(sorted(f"'{s}'" if s else "no scope" for s in reach.called[selector]))
                found.append(Problem(
                    f"'{name}' is bound in scope '{scope}', but '{short}' is only called in {where}: "
                    "gin ignores the binding.", location,
                    f"Bind it in the scope where it is called, or reference `@{scope}/{short}()`.", unreached=True))
            else:
                found.append(Problem(
                    f"'{name}' is bound, but nothing the config builds calls '{short}': gin ignores the binding.",
                    location, f"Reference it (`@{short}()`, or `@{short}` for a callable) where it belongs, "
                              "or remove the binding.", unreached=True))
    return found


def _may_be_called_by_code(configurable: Any) -> bool:
    """Whether code outside ginlight may call ``configurable`` itself, with its bindings: a function or class
    decorated with ``@gin.configurable`` in a user's module. What ginlight registers for the stack or by
    import path is called only through references, and ginlight's own code calls only the roots."""
    module = getattr(configurable.wrapper, "__module__", None) or ""
    return module.split(".")[0] != "ginlight"
