"""Research: backtests on history with the replay (the real services) and fast (compiled) engines.

Modules (imported where used: the engines pull in the whole platform, the model does not):
  model.py      BacktestConfig, Trade, BacktestResult, EngineUnavailable: the contract shared by every engine
  data.py       history sources (store, bundled, Parquet folder, Binance kline files) and the data-quality gate
  overrides.py  `--set KEY=VALUE` validated into the objects the services are built from
  replay.py     engine `replay`: run_replay(config, candles, *, progress, overrides) -> BacktestResult
  runner.py     prepare (load + gate) -> run_engine (fast, else replay with `fallback`) -> store
  metrics.py    the run's metrics (capital/metrics.py) and buy-and-hold
  store.py      backtest_runs / backtest_trades / backtest_equity
  report.py     terminal summary and the self-contained HTML report
  cli.py        `roottrading backtest`
  bias.py       lookahead and history-length checks (`roottrading check-strategy`, at load, before a run)
  drift.py      the store vs a replay backtest, trade by trade (`roottrading compare`)
"""
