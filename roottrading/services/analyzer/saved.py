"""The operator's strategy settings (enabled flags and parameters, for all symbols or one), kept across restarts.

Why: `PUT /api/analyzer/strategies/{name}` (the dashboard, `roottrading optimize --apply`, `roottrading tune`)
changes the running registry only; without this a restart silently went back to the defaults and the STRATEGIES
setting, trading parameters nobody chose any more. The state is one document in `safety_state` (key
`analyzer_strategies`), rewritten whole after each accepted change and replayed at start, before the first
candle. A strategy that is gone, or whose saved parameters its new version refuses, is skipped with a warning
(the rest still applies).

Shape: {"strategies": {name: {"enabled": bool | null, "params": {...},
                               "symbols": {SYMBOL: {"enabled": bool | null, "params": {...}}}}}}
"""

from __future__ import annotations

from typing import Any

KEY = "analyzer_strategies"


def record(
    doc: dict[str, Any], name: str, symbol: str | None, enabled: bool | None, params: dict[str, Any] | None
) -> None:
    """Fold one accepted change into the document (in place)."""
    entry = doc.setdefault("strategies", {}).setdefault(name, {"enabled": None, "params": {}, "symbols": {}})
    scope = entry if symbol is None else entry["symbols"].setdefault(symbol, {"enabled": None, "params": {}})
    if params:
        scope["params"].update(params)
    if enabled is not None:
        scope["enabled"] = enabled


def ops(doc: dict[str, Any]) -> list[tuple[str, str, str | None, dict[str, Any] | None]]:
    """The control operations that rebuild the state: all-symbol settings first, per-symbol ones after (they win)."""
    out: list[tuple[str, str, str | None, dict[str, Any] | None]] = []
    per_symbol: list[tuple[str, str, str | None, dict[str, Any] | None]] = []
    for name, entry in sorted(doc.get("strategies", {}).items()):
        for target, symbol, scope in [(out, None, entry)] + [
            (per_symbol, s, e) for s, e in sorted(entry.get("symbols", {}).items())
        ]:
            if scope.get("params"):
                target.append(("params", name, symbol, dict(scope["params"])))
            if scope.get("enabled") is not None:
                target.append(("enable" if scope["enabled"] else "disable", name, symbol, None))
    return out + per_symbol
