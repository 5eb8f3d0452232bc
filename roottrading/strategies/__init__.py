"""Strategy API (BaseStrategy, Param, SignalFrame), built-ins, regime helper and loader/registry."""

from roottrading.strategies.base import Bars, BaseStrategy, Entries, SignalFrame, grade
from roottrading.strategies.params import Param, ParamError

__all__ = ["Bars", "BaseStrategy", "Entries", "Param", "ParamError", "SignalFrame", "grade"]
