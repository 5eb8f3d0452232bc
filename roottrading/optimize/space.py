"""The search space: the strategy's own `Param` ranges, narrowed (or extended) with `--space KEY=LO:HI[:STEP]`.

Why from the declarations: a strategy's `Param(default, low, high, step)` is already the validator the live
platform applies, so any point of this space is a value the running strategy would accept. The stop and
take-profit distances (`sl_atr`, `tp_atr`) are searched by default; `trailing_pct` and `ride_or_react` only
when named with `--space`, because the fast engine does not model them (every such trial runs on `replay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_EXCLUDED = ("trailing_pct", "ride_or_react")


class SpaceError(ValueError):
    """A `--space` that does not fit the strategy; the message names the key."""


@dataclass(frozen=True)
class Dim:
    """One searched parameter: numeric range (with optional step) or a set of choices."""

    name: str
    kind: str  # "int", "float" or "choice"
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1))  # type: ignore[arg-type]
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step)  # type: ignore[arg-type]

    def grid(self) -> list[Any]:
        """The values a grid search visits (a float without a step: 11 points)."""
        if self.kind == "choice":
            return list(self.choices)
        low, high = self.low, self.high
        assert low is not None and high is not None
        if self.kind == "int":
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        step = self.step if self.step else (float(high) - float(low)) / 10
        n = round((float(high) - float(low)) / step) if step else 0
        return [round(float(low) + i * step, 10) for i in range(n + 1)]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "choices": list(self.choices) or None,
        }


def _number(text: str, typ: type, key: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        raise SpaceError(f"--space {key}: {text!r} is not a number") from None
    if typ is int:
        if value != int(value):
            raise SpaceError(f"--space {key}: {text!r} is not an integer (the parameter is)")
        return int(value)
    return value


def _override(spec: Any, key: str, text: str) -> Dim:
    if spec.type in (bool, str) or "," in text:
        raw = [t.strip() for t in text.split(",") if t.strip()]
        if spec.type is bool:
            vals: list[Any] = []
            for t in raw:
                if t.lower() not in ("true", "false"):
                    raise SpaceError(f"--space {key}: expected true,false; got {t!r}")
                vals.append(t.lower() == "true")
        elif spec.type is str:
            vals = raw
        else:
            vals = [_number(t, spec.type, key) for t in raw]
        if not vals:
            raise SpaceError(f"--space {key}: no values")
        for v in vals:
            spec.validate(v)
        return Dim(key, "choice", choices=tuple(dict.fromkeys(vals)))
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise SpaceError(f"--space {key}={text}: expected LO:HI or LO:HI:STEP (or a,b,c)")
    lo, hi = _number(parts[0], spec.type, key), _number(parts[1], spec.type, key)
    step = _number(parts[2], spec.type, key) if len(parts) == 3 else None
    if lo > hi:
        raise SpaceError(f"--space {key}: LO {lo} is above HI {hi}")
    if step is not None and step <= 0:
        raise SpaceError(f"--space {key}: STEP must be > 0")
    spec.validate(lo)
    spec.validate(hi)
    if lo == hi:
        return Dim(key, "choice", choices=(lo,))
    return Dim(key, "int" if spec.type is int else "float", lo, hi, step)


def build_space(specs: dict[str, Any], overrides: list[str]) -> list[Dim]:
    """Dims for every ranged parameter of the strategy (`specs`: name -> Param), then `--space` applied.
    A parameter the user pins with `--space KEY=V:V` is searched at that single value."""
    dims: dict[str, Dim] = {}
    for name, p in specs.items():
        if name in DEFAULT_EXCLUDED:
            continue
        if p.choices:
            dims[name] = Dim(name, "choice", choices=tuple(p.choices))
        elif p.type in (int, float) and p.low is not None and p.high is not None:
            dims[name] = Dim(name, "int" if p.type is int else "float", p.low, p.high, p.step)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpaceError(f"--space {item!r}: expected KEY=LO:HI[:STEP]")
        if key not in specs:
            raise SpaceError(f"--space {key}: not a parameter of the strategy; known: {', '.join(sorted(specs))}")
        try:
            dims[key] = _override(specs[key], key, text.strip())
        except ValueError as exc:  # ParamError from the declaration's own validator
            if isinstance(exc, SpaceError):
                raise
            raise SpaceError(f"--space {key}: {exc}") from None
    return list(dims.values())
