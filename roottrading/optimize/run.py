"""A whole optimisation: per window, search on the training span, choose, verify on `replay`, score on the test
span; then the stitched out-of-sample result with the in-sample figures and the overfitting measure beside it.

Without `--walk-forward` there is one window whose training span is the whole period and no test span: the
result is then in-sample only (and says so), with the deflated Sharpe ratio as the guard against luck.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from roottrading.backtest.metrics import backtest_metrics, daily_values
from roottrading.backtest.model import BacktestResult, Trade
from roottrading.capital import metrics as cm
from roottrading.optimize import results, trials
from roottrading.optimize.scoring import deflated_sharpe_nv
from roottrading.optimize.study import (
    HEADLINE,
    Job,
    counted_trials,
    evaluate,
    open_study,
    prepare_window,
    recover,
    run_study,
)
from roottrading.optimize.walkforward import Window, stitch

SQRT_YEAR = math.sqrt(cm.DAYS_PER_YEAR)


@dataclass(frozen=True)
class Plan:
    job: Job  # the template: config period and study name are set per window
    windows: tuple[Window, ...]
    walk_forward: bool
    workers: int
    resume: bool
    verify: bool = True  # re-run each chosen candidate on `replay`
    client: Any = None  # a Dask client (`--cluster`): trials run as its tasks instead of local processes


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in HEADLINE}


def _parity(fast: BacktestResult, replay: BacktestResult) -> dict[str, Any]:
    fp, rp = Decimal(fast.metrics["net_pnl"]), Decimal(replay.metrics["net_pnl"])
    return {
        "fast_engine": fast.engine,
        "fast_trades": len(fast.trades),
        "replay_trades": len(replay.trades),
        "fast_net_pnl": fast.metrics["net_pnl"],
        "replay_net_pnl": replay.metrics["net_pnl"],
        "match": len(fast.trades) == len(replay.trades) and abs(fp - rp) <= Decimal("0.01"),
    }


def _window_job(plan: Plan, w: Window, start: int, end: int, suffix: str) -> Job:
    job = plan.job
    return replace(job, config=replace(job.config, start_ms=start, end_ms=end), study_name=f"{job.study_name}{suffix}")


def run_plan(plan: Plan, notice: Callable[[str], None], studies: dict[int, Any] | None = None) -> dict[str, Any]:
    """Run every window; return the `--json` document without the trials (trials.write_json streams them from
    `studies`, filled here with each window's study)."""
    studies = {} if studies is None else studies
    rows: list[dict[str, Any]] = []
    oos_curves: list[list[tuple[int, float]]] = []
    oos_trades: list[Trade] = []
    oos_candles: dict[str, list[Any]] = {}
    ran_total = 0
    recovered_total: list[int] = []
    balance = float(plan.job.config.balance)
    record: Any = None
    for w in plan.windows:
        suffix = f"/w{w.index}" if plan.walk_forward else ""
        job = _window_job(plan, w, w.train_start, w.train_end, suffix)
        study = open_study(job, resume=plan.resume)
        if record is None:  # after the first window's study: it refused an existing study without --resume
            record = results.record_study(study._storage, plan.job.study_name)
            results.write_plan(record, plan_json(plan))
        recovered = recover(study)
        recovered_total += recovered
        if recovered:
            notice(f"window {w.index}: re-queued {len(recovered)} trial(s) interrupted by the crash: {recovered}")
        before = counted_trials(study)
        ran = _run_window(job, plan) if before < job.n_trials else 0
        ran_total += ran
        study = open_study(job, resume=True, create=False)
        studies[w.index] = study
        counts = trials.state_counts(study)
        row: dict[str, Any] = {
            **w.as_json(),
            "study": job.study_name,
            "trials_run_now": ran,
            "counts": counts,
            "history": trials.history(study),
        }
        if not counts.get("COMPLETE"):
            row["best_params"] = None
            row["note"] = "no trial passed the constraints"
            notice(f"window {w.index}: no trial passed the constraints")
            results.write_window(record, row)
            rows.append(row)
            continue
        best = study.best_trial  # one SQL query (ORDER BY value LIMIT 1), not the trial list
        row["importance"] = _importance(study, counts["COMPLETE"])
        params = dict(best.params)
        train = prepare_window(job)
        is_run = evaluate(job, train, params)
        rets = cm.returns_from_equity(daily_values(is_run.equity, balance))
        n_sharpes, sharpe_var = trials.sharpe_stats(study, SQRT_YEAR)
        row.update(
            best_trial=best.number,
            best_value=best.value,
            best_params=params,
            in_sample=_headline(is_run.metrics),
            deflated_sharpe=deflated_sharpe_nv(rets, n_sharpes, sharpe_var),
        )
        if plan.walk_forward:
            test_job = _window_job(plan, w, w.test_start, w.test_end, suffix)
            test = prepare_window(test_job)
            oos = evaluate(test_job, test, params)
            row["out_of_sample_fast"] = _headline(oos.metrics)
            if plan.verify:
                rep = evaluate(test_job, test, params, engine="replay")
                row["parity"] = _parity(oos, rep)
                oos = rep  # the platform's own services decide what is reported
            row["out_of_sample"] = _headline(oos.metrics)
            oos_curves.append(oos.equity)
            oos_trades += oos.trades
            for s, cs in test.candles.items():
                oos_candles.setdefault(s, []).extend(cs)
        elif plan.verify:
            rep = evaluate(job, train, params, engine="replay")
            row["parity"] = _parity(is_run, rep)
        notice(_window_line(w, row, plan.walk_forward))
        results.write_window(record, row)
        rows.append(row)
    doc: dict[str, Any] = {
        "study": plan.job.study_name,
        "strategy": plan.job.config.strategies[0],
        "symbols": list(plan.job.config.symbols),
        "interval": plan.job.config.interval,
        "objective": plan.job.objective,
        "sampler": plan.job.sampler,
        "n_trials": plan.job.n_trials,
        "space": [d.as_json() for d in plan.job.dims],
        "constraints": {"min_trades": plan.job.min_trades, "max_drawdown": plan.job.max_drawdown},
        "walk_forward": plan.walk_forward,
        "trials_run_now": ran_total,
        "recovered_trials": recovered_total,
        "windows": rows,
    }
    chosen = [r for r in rows if r.get("best_params") is not None]
    dsr = [r["deflated_sharpe"] for r in chosen if r.get("deflated_sharpe") is not None]
    doc["deflated_sharpe_mean"] = sum(dsr) / len(dsr) if dsr else None
    if plan.walk_forward and oos_curves:
        equity = stitch(oos_curves, balance)
        first = plan.windows[0]
        cfg = replace(plan.job.config, start_ms=first.test_start, end_ms=plan.windows[-1].test_end)
        taker = _taker_fee(plan.job)
        oos_metrics = backtest_metrics(cfg, oos_trades, equity, oos_candles, taker_fee=taker)
        doc["out_of_sample"] = {"metrics": _headline(oos_metrics), "equity": equity}
        is_sh = [r["in_sample"]["sharpe"] for r in chosen if r["in_sample"].get("sharpe") is not None]
        doc["in_sample"] = {
            "mean_sharpe": sum(is_sh) / len(is_sh) if is_sh else None,
            "windows": [r["in_sample"] for r in chosen],
        }
        oos_sh = oos_metrics.get("sharpe")
        doc["walk_forward_efficiency"] = (
            oos_sh / doc["in_sample"]["mean_sharpe"]
            if oos_sh is not None and doc["in_sample"]["mean_sharpe"] not in (None, 0)
            else None
        )
    elif chosen:
        doc["best_params"] = chosen[0]["best_params"]
        doc["in_sample"] = chosen[0]["in_sample"]
        doc["note"] = "no --walk-forward: these figures are in-sample (the period the parameters were chosen on)"
    doc["chosen_params"] = results.chosen_params(doc)
    results.write_result(record, doc)
    return doc


def _run_window(job: Job, plan: Plan) -> int:
    if plan.client is None:
        return run_study(job, plan.workers)
    from roottrading.optimize.cluster import run_study_cluster

    return run_study_cluster(job, plan.client)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The study's question as the platform reads it back (results.py): what, where, how many."""
    job = plan.job
    return {
        "study": job.study_name,
        "strategy": job.config.strategies[0],
        "symbols": list(job.config.symbols),
        "interval": job.config.interval,
        "objective": job.objective,
        "sampler": job.sampler,
        "n_trials": job.n_trials,
        "walk_forward": plan.walk_forward,
        "windows": [w.as_json() for w in plan.windows],
        "space": [d.as_json() for d in job.dims],
    }


def _importance(study: Any, n_complete: int) -> dict[str, float] | None:
    """Which parameters moved the objective (Optuna's fANOVA); None with too few scored trials to say."""
    if n_complete < 4:
        return None
    import optuna

    try:
        return {k: round(v, 6) for k, v in optuna.importance.get_param_importances(study, normalize=True).items()}
    except (ValueError, RuntimeError):  # a single-valued space or identical values: nothing to apportion
        return None


def _taker_fee(job: Job) -> Decimal:
    from roottrading.backtest.overrides import parse_overrides

    return Decimal(str(parse_overrides(job.config.settings).sim_config().taker_fee))


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _window_line(w: Window, row: dict[str, Any], wf: bool) -> str:
    from roottrading.backtest.data import fmt_time

    text = (
        f"window {w.index} train {fmt_time(w.train_start)}..{fmt_time(w.train_end)}: best {row['best_params']} "
        f"in-sample sharpe {_fmt(row['in_sample'].get('sharpe'))} pnl {row['in_sample'].get('net_pnl')}"
    )
    if wf:
        text += (
            f" | test {fmt_time(w.test_start)}..{fmt_time(w.test_end)}: sharpe "
            f"{_fmt(row['out_of_sample'].get('sharpe'))} pnl {row['out_of_sample'].get('net_pnl')}"
        )
    if "parity" in row and not row["parity"]["match"]:
        text += f" | WARNING fast/replay differ: {row['parity']}"
    return text
