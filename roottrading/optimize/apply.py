"""Write chosen parameters into the running platform through its API, after showing what changes.

Why through the API and not the database: the analyzer applies a change to its live registry (and to its worker
processes) without a restart, validates it with the strategy's own rules (HTTP 422 on refusal), and saves it
so a restart keeps it (services/analyzer/saved.py). The same calls serve `optimize --apply`, `tune` and the
dashboard's Apply button.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


class ApplyError(Exception):
    """The platform refused or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class Change:
    strategy: str
    symbol: str
    param: str
    old: Any
    new: Any

    def as_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "symbol": self.symbol, "param": self.param, "old": self.old, "new": self.new}


def platform_token(settings: Any) -> str:
    """API_TOKEN, or the token a local platform generated in DATA_DIR/api_token (as `roottrading status`)."""
    token: str = settings.api_token.get_secret_value()
    path = Path(settings.data_dir) / "api_token"
    if not token and path.is_file():
        token = path.read_text().strip()
    return token


class Platform:
    """The running platform's analyzer routes. `client` is any httpx.Client (a transport for tests)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, base_url: str, token: str, timeout: float = 10) -> Platform:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(httpx.Client(base_url=base_url, headers=headers, timeout=timeout))

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApplyError(f"platform not reachable at {self.client.base_url}: {exc}") from None
        if r.status_code == 401:
            raise ApplyError("refused (401): set API_TOKEN or API_TOKEN_FILE to the platform's token")
        if r.status_code >= 400:
            raise ApplyError(f"{method} {path} refused ({r.status_code}): {r.text[:500]}")
        return r.json()

    def strategies(self, symbol: str | None = None) -> dict[str, dict[str, Any]]:
        params = {"symbol": symbol} if symbol else {}
        return {s["name"]: s for s in self._call("GET", "/api/analyzer/strategies", params=params)}

    def update(
        self, strategy: str, symbol: str | None, *, params: dict[str, Any] | None = None, enabled: bool | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"symbol": symbol}
        if params:
            body["params"] = params
        if enabled is not None:
            body["enabled"] = enabled
        result: dict[str, Any] = self._call("PUT", f"/api/analyzer/strategies/{strategy}", json=body)
        return result


def current_params(desc: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in desc.get("params", {}).items()}


def diff(platform: Platform, strategy: str, symbols: list[str], params: dict[str, Any]) -> list[Change]:
    """What applying `params` to `strategy` on each symbol would change (unchanged values left out)."""
    out = []
    for symbol in symbols:
        desc = platform.strategies(symbol).get(strategy)
        if desc is None:
            raise ApplyError(f"the platform has no strategy {strategy!r}")
        now = current_params(desc)
        for k, v in sorted(params.items()):
            if now.get(k) != v:
                out.append(Change(strategy, symbol, k, now.get(k), v))
    return out


def apply(platform: Platform, strategy: str, symbols: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    """Set `params` for each symbol (per-symbol settings: the same strategy may be tuned differently elsewhere)."""
    return [platform.update(strategy, symbol, params=params) for symbol in symbols]


def format_diff(changes: list[Change]) -> str:
    if not changes:
        return "no change: the platform already runs these parameters"
    return "\n".join(f"  {c.strategy} {c.symbol} {c.param}: {c.old!r} -> {c.new!r}" for c in changes)
