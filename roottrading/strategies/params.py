"""Typed strategy parameters with defaults and search ranges.

A `Param` is declared as a class attribute of a strategy and read as a plain attribute on an
instance (`self.fast` -> 12). The declaration doubles as the optimiser's search space
(`grid()`) and as the runtime validator: values set through the registry are checked against the
declared type and range before the strategy ever sees them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T", int, float, bool, str)


class ParamError(ValueError):
    """A parameter value that does not fit its declaration; the message names strategy and parameter."""


class Param(Generic[T]):
    """`Param(default, low, high, step)`; the type is the default's (int, float, bool or str).

    `choices` restricts str (or numeric) values to a set. For int, floats with an integral value
    are accepted (JSON/YAML often gives 12.0); anything else is rejected, never silently rounded.
    """

    def __init__(
        self,
        default: T,
        low: T | None = None,
        high: T | None = None,
        step: T | None = None,
        *,
        choices: tuple[T, ...] | None = None,
        doc: str = "",
    ) -> None:
        self.type: type = type(default)
        if self.type not in (int, float, bool, str):
            raise TypeError(f"Param default must be int, float, bool or str, got {type(default).__name__}")
        self.default: T = default
        self.low: T | None = low
        self.high: T | None = high
        self.step: T | None = step
        self.choices: tuple[T, ...] | None = choices
        self.doc = doc
        self.name = "?"
        self.owner = "?"
        self.validate(default)  # a declaration whose default is out of range is a bug in the strategy

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = getattr(owner, "name", "") or owner.__name__

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Param[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return obj._param_values[self.name]  # type: ignore[attr-defined]

    def __set__(self, obj: object, value: Any) -> None:
        raise AttributeError(f"set parameters with set_params({self.name}=...), which validates them")

    def validate(self, value: Any, owner: str | None = None) -> T:
        """The value coerced to the declared type, or ParamError with a message a user can act on."""
        where = f"{owner or self.owner}.{self.name}"
        v: Any
        if self.type is bool:
            if not isinstance(value, bool):
                raise ParamError(f"{where}: expected true/false, got {value!r}")
            v = value
        elif self.type is int:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
                raise ParamError(f"{where}: expected an integer, got {value!r}")
            v = int(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ParamError(f"{where}: expected a number, got {value!r}")
            v = float(value)
        else:
            if not isinstance(value, str):
                raise ParamError(f"{where}: expected a string, got {value!r}")
            v = value
        if self.choices is not None and v not in self.choices:
            raise ParamError(f"{where}: {v!r} is not one of {list(self.choices)}")
        if self.low is not None and v < self.low:
            raise ParamError(f"{where}: {v!r} is below the minimum {self.low!r}")
        if self.high is not None and v > self.high:
            raise ParamError(f"{where}: {v!r} is above the maximum {self.high!r}")
        return v

    def grid(self) -> list[T]:
        """Candidate values for a search: choices, both bools, or low..high by step."""
        if self.choices is not None:
            return list(self.choices)
        if self.type is bool:
            return [False, True]  # type: ignore[list-item]
        if self.low is None or self.high is None:
            return [self.default]
        high: Any = self.high  # a range is numeric (a str parameter searches its choices)
        step = self.step if self.step is not None else (1 if self.type is int else (high - self.low) / 10)
        out: list[Any] = []
        x: Any = self.low
        while x <= high + 1e-12:
            out.append(self.type(round(x, 10)) if self.type is float else x)
            x = x + step
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.type.__name__,
            "default": self.default,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "choices": list(self.choices) if self.choices else None,
            "doc": self.doc,
        }
