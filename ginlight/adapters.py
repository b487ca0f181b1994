"""Adapters route data between the batch, the model, the criterion, metrics and logs.

They let one :class:`ginlight.System` serve any task: a batch may be a tuple, a
list or a dict; a criterion may want ``(pred, target)``, ``(target, pred)`` or
keywords; a metric may want probabilities instead of logits. The semantics and
names follow Lighter's adapters.

A mistake (a key the batch lacks, an index past its end) raises
:class:`AdapterError` naming the adapter, the mode and what was found, not a bare
``KeyError``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gin

__all__ = [
    "AdapterError",
    "BatchAdapter",
    "CriterionAdapter",
    "MetricsAdapter",
    "LoggingAdapter",
]

Accessor = int | str | Callable[[Any], Any] | None
Transforms = Callable[[Any], Any] | Sequence[Callable[[Any], Any]] | None


class AdapterError(ValueError):
    """An adapter does not fit the data it was given; ``binding`` names the parameter at fault, if one is."""

    def __init__(self, message: str, binding: str | None = None):
        super().__init__(message)
        self.binding = binding


def _check_accessor(owner: str, name: str, accessor: Accessor) -> None:
    if accessor is not None and not isinstance(accessor, (int, str)) and not callable(accessor):
        raise AdapterError(
            f"{owner}: {name} must be an int (tuple/list index), a str (dict key) or a callable, "
            f"got {accessor!r}."
        )


def _describe(batch: Any) -> str:
    if isinstance(batch, dict):
        return f"a dict with keys {sorted(batch)}"
    if isinstance(batch, (list, tuple)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return f"a {type(batch).__name__}"


def _as_list(transforms: Transforms) -> list[Callable[[Any], Any]]:
    if transforms is None:
        return []
    if callable(transforms):
        return [transforms]
    transforms = list(transforms)
    for transform in transforms:
        if not callable(transform):
            raise AdapterError(f"transforms must be callables, got {transform!r}.")
    return transforms


def _apply(transforms: list[Callable[[Any], Any]], value: Any) -> Any:
    for transform in transforms:
        value = transform(value)
    return value


@gin.configurable(module="ginlight.adapters")
class BatchAdapter:
    """Splits a batch into ``input``, ``target`` and ``identifier``.

    Args:
        input_accessor: int (index into a tuple/list batch), str (key into a dict
            batch) or callable ``batch -> input``.
        target_accessor: the same for the target; None when there is none.
        identifier_accessor: the same for sample identifiers (file names, ids).
    """

    def __init__(
        self,
        input_accessor: Accessor = 0,
        target_accessor: Accessor = None,
        identifier_accessor: Accessor = None,
    ):
        for name, accessor in (
            ("input_accessor", input_accessor),
            ("target_accessor", target_accessor),
            ("identifier_accessor", identifier_accessor),
        ):
            _check_accessor("BatchAdapter", name, accessor)
        self.input_accessor = input_accessor
        self.target_accessor = target_accessor
        self.identifier_accessor = identifier_accessor
        self.mode = "?"  # set by the System, for error messages

    def __call__(self, batch: Any) -> tuple[Any, Any, Any]:
        return (
            self._access(batch, self.input_accessor, "input_accessor"),
            self._access(batch, self.target_accessor, "target_accessor"),
            self._access(batch, self.identifier_accessor, "identifier_accessor"),
        )

    def _access(self, batch: Any, accessor: Accessor, name: str) -> Any:
        if accessor is None:
            return None
        if callable(accessor):
            return accessor(batch)
        try:
            if isinstance(accessor, str) and not isinstance(batch, dict):
                raise TypeError
            return batch[accessor]
        except (KeyError, IndexError, TypeError):
            raise AdapterError(
                f"BatchAdapter ({self.mode}): {name}={accessor!r} does not fit the batch, "
                f"which is {_describe(batch)}. Bind BatchAdapter.{name} to one of those.",
                binding=f"BatchAdapter.{name}",
            ) from None

    def __repr__(self) -> str:
        return (
            f"BatchAdapter(input_accessor={self.input_accessor!r}, "
            f"target_accessor={self.target_accessor!r}, "
            f"identifier_accessor={self.identifier_accessor!r})"
        )


class _ArgumentsAdapter:
    """Transforms ``input``, ``target`` and ``pred`` and passes them to a function.

    An int argument is a position, a str a keyword. With every argument None the
    call is ``fn(pred, target)`` (``fn(pred)`` without a target), which is what
    torch losses and torchmetrics metrics take.
    """

    def __init__(
        self,
        input_argument: int | str | None = None,
        target_argument: int | str | None = None,
        pred_argument: int | str | None = None,
        input_transforms: Transforms = None,
        target_transforms: Transforms = None,
        pred_transforms: Transforms = None,
    ):
        arguments = {"input": input_argument, "target": target_argument, "pred": pred_argument}
        for name, argument in arguments.items():
            if argument is not None and not isinstance(argument, (int, str)):
                raise AdapterError(
                    f"{type(self).__name__}: {name}_argument must be an int (position) or a str "
                    f"(keyword), got {argument!r}."
                )
        positions = [a for a in arguments.values() if isinstance(a, int)]
        if len(set(positions)) != len(positions):
            raise AdapterError(f"{type(self).__name__}: two arguments share a position: {arguments}.")
        if positions and sorted(positions) != list(range(len(positions))):
            raise AdapterError(
                f"{type(self).__name__}: positions must be 0, 1, ... without gaps, got {sorted(positions)}."
            )
        self.arguments = arguments
        self.transforms = {
            "input": _as_list(input_transforms),
            "target": _as_list(target_transforms),
            "pred": _as_list(pred_transforms),
        }
        self._default = all(a is None for a in arguments.values())

    def transform(self, input: Any, target: Any, pred: Any) -> dict[str, Any]:
        values = {"input": input, "target": target, "pred": pred}
        return {k: _apply(self.transforms[k], v) if self.transforms[k] else v for k, v in values.items()}

    def __call__(self, fn: Callable[..., Any], input: Any, target: Any, pred: Any) -> Any:
        values = self.transform(input, target, pred)
        if self._default:
            return fn(values["pred"]) if target is None else fn(values["pred"], values["target"])
        args: list[Any] = [None] * sum(isinstance(a, int) for a in self.arguments.values())
        kwargs: dict[str, Any] = {}
        for name, argument in self.arguments.items():
            if isinstance(argument, int):
                args[argument] = values[name]
            elif isinstance(argument, str):
                kwargs[argument] = values[name]
        return fn(*args, **kwargs)


@gin.configurable(module="ginlight.adapters")
class CriterionAdapter(_ArgumentsAdapter):
    """Calls the criterion with the arguments it expects (see :class:`_ArgumentsAdapter`)."""


@gin.configurable(module="ginlight.adapters")
class MetricsAdapter(_ArgumentsAdapter):
    """Updates metrics with the arguments they expect (see :class:`_ArgumentsAdapter`)."""


@gin.configurable(module="ginlight.adapters")
class LoggingAdapter:
    """Transforms ``input``, ``target`` and ``pred`` before they are logged or written.

    Args:
        input_transforms, target_transforms, pred_transforms: a callable or a list
            of them, applied in order (for example ``@torch.argmax`` to turn logits
            into class labels).
    """

    def __init__(
        self,
        input_transforms: Transforms = None,
        target_transforms: Transforms = None,
        pred_transforms: Transforms = None,
    ):
        self.transforms = {
            "input": _as_list(input_transforms),
            "target": _as_list(target_transforms),
            "pred": _as_list(pred_transforms),
        }

    def __call__(self, input: Any, target: Any, pred: Any) -> dict[str, Any]:
        values = {"input": input, "target": target, "pred": pred}
        return {k: _apply(self.transforms[k], v) for k, v in values.items()}
