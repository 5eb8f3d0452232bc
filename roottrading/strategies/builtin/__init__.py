"""The built-in strategies (the reference project's list). `BUILTIN_STRATEGIES` maps name -> class."""

from roottrading.strategies.base import BaseStrategy
from roottrading.strategies.builtin import levels, oscillators, patterns, trend

BUILTIN_STRATEGIES: dict[str, type[BaseStrategy]] = {
    cls.name: cls for mod in (trend, oscillators, levels, patterns) for cls in mod.STRATEGIES
}

__all__ = ["BUILTIN_STRATEGIES"]
