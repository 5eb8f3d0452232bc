"""Find strategies (built-ins, a user folder, entry points) and manage them at runtime.

Loading never lets one broken strategy take the others down: a syntax error, an exception at
import, a bad declaration or default parameters that fail validation become a `LoadError` (returned
and logged) and that strategy is skipped.

`StrategyRegistry` holds the classes and one instance per (strategy, symbol), as the reference's
analyzer does, so parameters can differ per symbol. enable/disable/set_params apply at once, under
a lock, without restart; values are validated against the declared `Param`s first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import structlog

from roottrading.strategies.base import BaseStrategy
from roottrading.strategies.params import ParamError

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "roottrading.strategies"


@dataclass(frozen=True)
class LoadError:
    source: str  # file path, entry point "name = module:attr", or "builtin"
    error: str  # one line: exception type and message
    detail: str = ""  # traceback, for the logs and the dashboard


@dataclass
class LoadResult:
    strategies: dict[str, type[BaseStrategy]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)
    #: bias-check findings on user strategies (lookahead, history length): loaded anyway, but said loudly
    warnings: list[str] = field(default_factory=list)


def _error(source: str, exc: BaseException) -> LoadError:
    err = LoadError(
        source, f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    log.error("strategy_load_failed", source=source, error=err.error)
    return err


def check_strategy_class(cls: type[BaseStrategy]) -> None:
    """Raise ValueError/ParamError unless `cls` is usable: a name, generate(), valid defaults."""
    if not isinstance(cls.name, str) or not cls.name.strip():
        raise ValueError(f"{cls.__qualname__} has no `name` class attribute")
    if not cls.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"strategy name {cls.name!r} must be letters, digits, '_' or '-'")
    if cls.generate is BaseStrategy.generate and cls.signals is BaseStrategy.signals:
        raise ValueError(f"{cls.name}: implement generate(bars)")
    if cls.can_short:
        from roottrading.strategies.outputs import SPOT_ONLY

        raise ValueError(f"{cls.name} declares can_short = True: {SPOT_ONLY}")
    if cls.informative:
        from roottrading.strategies.informative import normalise

        normalise(cls.informative)  # raises with what is wrong
        if not isinstance(cls.informative_window, int) or cls.informative_window < 1:
            raise ValueError(f"{cls.name}: informative_window must be a positive int")
    from roottrading.strategies.callbacks import check_callbacks

    check_callbacks(cls)
    inst = cls()  # defaults must pass their own validation and check_params
    inst.check_params(inst.params)
    w = inst.warmup
    if not isinstance(w, int) or w < 0:
        raise ValueError(f"{cls.name}: warmup must be a non-negative int, got {w!r}")


def strategy_classes(module: ModuleType) -> list[type[BaseStrategy]]:
    """Concrete BaseStrategy subclasses *defined* in `module` (imported ones are not re-registered)."""
    return [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseStrategy)
        and obj is not BaseStrategy
        and obj.__module__ == module.__name__
        and not obj.__name__.startswith("_")
        and bool(getattr(obj, "name", ""))
    ]


def _add(result: LoadResult, cls: type[BaseStrategy], origin: str) -> None:
    try:
        check_strategy_class(cls)
    except (ValueError, TypeError, ParamError) as exc:
        result.errors.append(_error(origin, exc))
        return
    if cls.name in result.strategies and result.strategies[cls.name] is not cls:
        result.errors.append(
            _error(
                origin,
                ValueError(f"duplicate strategy name {cls.name!r} (already loaded from {result.origins[cls.name]})"),
            )
        )
        return
    result.strategies[cls.name] = cls
    result.origins[cls.name] = origin


def import_file(path: Path) -> ModuleType:
    """Import one user file under a unique module name (path hash), so edits can be reloaded."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"roottrading_user_strategies.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _bias_check(result: LoadResult, cls: type[BaseStrategy], origin: str) -> None:
    """Run the light bias check (roottrading/backtest/bias.py) on a freshly loaded user strategy. Findings are
    warnings: the strategy still loads. A strategy that raises on the bundled candles is a warning too, not a
    load error: the analyzer isolates a strategy that raises at run time (counted, shown, the others go on),
    and refusing it here would hide that from the dashboard."""
    from roottrading.backtest.bias import load_time_check

    try:
        found = load_time_check(cls)
    except Exception as exc:  # noqa: BLE001 - user code: any exception on real candles is reported, never fatal
        found = [f"bias check {cls.name}: not checked, it raised on bundled candles: {type(exc).__name__}: {exc}"]
    for line in found:
        log.warning("strategy_bias", strategy=cls.name, source=origin, finding=line)
    result.warnings.extend(found)


def load_folder(folder: Path, result: LoadResult | None = None, *, check_bias: bool = True) -> LoadResult:
    """Every `*.py` in `folder` (not recursive, `_`-prefixed files skipped), sorted by name. `check_bias`: run
    the lookahead / history-length check on each loaded strategy (warnings in `result.warnings`)."""
    result = result or LoadResult()
    folder = Path(folder)
    if not folder.is_dir():
        result.errors.append(_error(str(folder), FileNotFoundError(f"strategies folder {folder} does not exist")))
        return result
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            module = import_file(path)
        except Exception as exc:  # noqa: BLE001 - user code: any exception at import is reported, never fatal
            result.errors.append(_error(str(path), exc))
            continue
        except SystemExit as exc:
            result.errors.append(_error(str(path), RuntimeError(f"SystemExit({exc.code}) at import")))
            continue
        classes = strategy_classes(module)
        if not classes:
            log.warning("strategy_file_without_strategy", path=str(path))
        for cls in classes:
            _add(result, cls, str(path))
            if check_bias and result.strategies.get(cls.name) is cls:
                _bias_check(result, cls, str(path))
    return result


def load_entry_points(result: LoadResult | None = None, group: str = ENTRY_POINT_GROUP) -> LoadResult:
    """Strategies published by installed packages: an entry point naming a class or a module."""
    result = result or LoadResult()
    for ep in entry_points(group=group):
        source = f"{ep.name} = {ep.value}"
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - third-party code: a broken plugin is reported, never fatal
            result.errors.append(_error(source, exc))
            continue
        if isinstance(obj, ModuleType):
            for cls in strategy_classes(obj):
                _add(result, cls, source)
        elif inspect.isclass(obj) and issubclass(obj, BaseStrategy):
            _add(result, obj, source)
        else:
            result.errors.append(_error(source, TypeError(f"{ep.value} is not a BaseStrategy subclass or module")))
    return result


def load_strategies(
    user_dir: Path | str | None = None,
    *,
    builtins: bool = True,
    use_entry_points: bool = True,
    check_bias: bool = True,
) -> LoadResult:
    """Built-ins first, then entry points, then the user folder. A later duplicate name is an error."""
    result = LoadResult()
    if builtins:
        from roottrading.strategies.builtin import BUILTIN_STRATEGIES

        for cls in BUILTIN_STRATEGIES.values():
            _add(result, cls, "builtin")
    if use_entry_points:
        load_entry_points(result)
    if user_dir is not None:
        load_folder(Path(user_dir), result, check_bias=check_bias)
    log.info("strategies_loaded", count=len(result.strategies), errors=len(result.errors))
    return result


class StrategyRegistry:
    """Runtime state of the strategies: which run for which symbol, with which parameters.

    Defaults apply to every symbol; per-symbol overrides (enabled flag, parameters) win.
    Instances are created lazily and replaced (not mutated) when parameters change, so a worker
    holding an instance keeps a consistent one.
    """

    def __init__(self, classes: dict[str, type[BaseStrategy]], enabled: Iterable[str] | None = None) -> None:
        self._classes = dict(classes)
        self._lock = threading.RLock()
        self._enabled: dict[str, bool] = {n: (enabled is None or n in set(enabled)) for n in self._classes}
        self._enabled_sym: dict[tuple[str, str], bool] = {}
        self._params: dict[str, dict[str, Any]] = {n: {} for n in self._classes}
        self._params_sym: dict[tuple[str, str], dict[str, Any]] = {}
        self._instances: dict[tuple[str, str | None], BaseStrategy] = {}

    @classmethod
    def from_load_result(cls, result: LoadResult, enabled: Iterable[str] | None = None) -> StrategyRegistry:
        return cls(result.strategies, enabled)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def strategy_class(self, name: str) -> type[BaseStrategy]:
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(f"unknown strategy {name!r}; known: {', '.join(sorted(self._classes))}") from None

    def enable(self, name: str, symbol: str | None = None) -> None:
        self._set_enabled(name, symbol, True)

    def disable(self, name: str, symbol: str | None = None) -> None:
        self._set_enabled(name, symbol, False)

    def _set_enabled(self, name: str, symbol: str | None, flag: bool) -> None:
        self.strategy_class(name)
        with self._lock:
            if symbol is None:
                self._enabled[name] = flag
            else:
                self._enabled_sym[(name, symbol)] = flag
        log.info("strategy_enabled" if flag else "strategy_disabled", strategy=name, symbol=symbol)

    def is_enabled(self, name: str, symbol: str | None = None) -> bool:
        self.strategy_class(name)
        with self._lock:
            if symbol is not None and (name, symbol) in self._enabled_sym:
                return self._enabled_sym[(name, symbol)]
            return self._enabled[name]

    def set_params(self, name: str, params: dict[str, Any], symbol: str | None = None) -> dict[str, Any]:
        """Validate and apply; returns the effective parameters. ParamError (nothing changed) on bad values."""
        cls = self.strategy_class(name)
        with self._lock:
            base = dict(self._params[name])
            sym = dict(self._params_sym.get((name, symbol), {})) if symbol else {}
            if symbol is None:
                base.update(params)
            else:
                sym.update(params)
            probe = cls(**{**base, **sym})  # raises ParamError before anything is stored
            if symbol is None:
                self._params[name] = base
                # every instance of this strategy is rebuilt; per-symbol overrides still win
                for key in [k for k in self._instances if k[0] == name]:
                    del self._instances[key]
            else:
                self._params_sym[(name, symbol)] = sym
                self._instances.pop((name, symbol), None)
        log.info("strategy_params_set", strategy=name, symbol=symbol, params=params)
        return probe.params

    def reset_params(self, name: str, symbol: str | None = None) -> None:
        self.strategy_class(name)
        with self._lock:
            if symbol is None:
                self._params[name] = {}
                for key in [k for k in self._instances if k[0] == name]:
                    del self._instances[key]
            else:
                self._params_sym.pop((name, symbol), None)
                self._instances.pop((name, symbol), None)

    def get(self, name: str, symbol: str | None = None) -> BaseStrategy:
        """The instance for (strategy, symbol) with its effective parameters."""
        cls = self.strategy_class(name)
        key = (name, symbol)
        with self._lock:
            inst = self._instances.get(key)
            if inst is None:
                merged = {**self._params[name], **(self._params_sym.get((name, symbol), {}) if symbol else {})}
                inst = cls(**merged)
                self._instances[key] = inst
            return inst

    def active(self, symbol: str) -> list[BaseStrategy]:
        """Enabled strategy instances for `symbol`, sorted by name (what the analyzer runs)."""
        return [self.get(n, symbol) for n in self.names() if self.is_enabled(n, symbol)]

    def max_warmup(self, symbol: str | None = None) -> int:
        """Candles to backfill so every enabled strategy is warm."""
        items = self.active(symbol) if symbol else [self.get(n) for n in self.names()]
        return max((s.warmup for s in items), default=0)

    def add(self, cls: type[BaseStrategy]) -> None:
        """Register (or replace, e.g. after a reload) a strategy class at runtime."""
        check_strategy_class(cls)
        with self._lock:
            self._classes[cls.name] = cls
            self._enabled.setdefault(cls.name, True)
            self._params.setdefault(cls.name, {})
            for key in [k for k in self._instances if k[0] == cls.name]:
                del self._instances[key]

    def describe(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """JSON-able state for REST/dashboard: description, enabled flag and effective parameters."""
        return [{**self.get(n, symbol).describe(), "enabled": self.is_enabled(n, symbol)} for n in self.names()]
