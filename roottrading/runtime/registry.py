"""Where each service's class lives. Imported lazily so that `service trader` loads only what it needs."""

from __future__ import annotations

import importlib

from roottrading.runtime.service import Service

SERVICES: dict[str, str] = {
    "logger": "roottrading.services.logger.service:LoggerService",
    "scheduler": "roottrading.services.scheduler.service:SchedulerService",
    "replay": "roottrading.services.replay.service:ReplayService",
    "gateway": "roottrading.services.gateway.service:GatewayService",
    "market": "roottrading.services.market.service:MarketService",
    "analyzer": "roottrading.services.analyzer.service:AnalyzerService",
    "risk": "roottrading.services.risk.service:RiskService",
    "coordinator": "roottrading.services.coordinator.service:CoordinatorService",
    "trader": "roottrading.services.trader.service:TraderService",
    "portfolio": "roottrading.services.portfolio.service:PortfolioService",
    "pnl": "roottrading.services.pnl.service:PnlService",
    "stream": "roottrading.services.stream.service:StreamService",
    "dispatcher": "roottrading.services.dispatcher.service:DispatcherService",
    "backtest": "roottrading.services.backtest.service:BacktestService",
    "universe": "roottrading.services.universe.service:UniverseService",
    "notify": "roottrading.notify.service:NotifyService",
    "telegram": "roottrading.telegram.service:TelegramService",
}

# Order matters at start-up: consumers of a topic start before its producers (market data last).
# `replay` is not started by default (backtests and tests name it; unlisted names start last): the gateway
# is the market-data source of `up` and `demo`.
DEFAULT_ORDER = [
    "logger",
    "notify",
    "telegram",
    "stream",
    "portfolio",
    "pnl",
    "trader",
    "risk",
    "coordinator",
    "analyzer",
    "scheduler",
    "market",
    "backtest",
    "universe",
    "gateway",
]


def load_service(name: str) -> type[Service]:
    try:
        path = SERVICES[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}") from None
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)
