"""Resume bookkeeping without a backtest: what a crash leaves RUNNING is re-queued once, with its parameters."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import optuna
import pytest

from roottrading.backtest.model import BacktestConfig
from roottrading.optimize.space import Dim
from roottrading.optimize.study import (
    Job,
    StudyExists,
    counted_trials,
    make_storage,
    open_study,
    platform_storage_url,
    recover,
    storage_url,
)


def _job(tmp_path: Path, n: int = 5) -> Job:
    cfg = BacktestConfig(
        strategies=("ema_cross",), symbols=("BTCUSDT",), interval="1h", start_ms=0, end_ms=1, stake=Decimal(100)
    )
    return Job(
        config=cfg,
        dims=(Dim("fast", "int", 3, 15),),
        objective="sharpe",
        min_trades=1,
        max_drawdown=None,
        storage=f"sqlite:///{tmp_path / 'o.db'}",
        study_name="s",
        n_trials=n,
    )


def test_storage_url_uses_a_synchronous_driver() -> None:
    assert storage_url("sqlite+aiosqlite:////x/rt.db") == "sqlite:////x/rt.db"
    assert storage_url("postgresql+asyncpg://u@h/db") == "postgresql+psycopg://u@h/db"


def test_the_platform_storage_keeps_optuna_out_of_the_platform_s_alembic_namespace() -> None:
    assert platform_storage_url("sqlite+aiosqlite:////x/rt.db") == "sqlite:////x/rt.optuna.db"
    assert (
        platform_storage_url("postgresql+asyncpg://u@h/db")
        == "postgresql+psycopg://u@h/db?options=-csearch_path%3Doptuna"
    )


def test_recover_requeues_what_a_crash_left_running_and_counts_stay_exact(tmp_path: Path) -> None:
    job = _job(tmp_path)
    study = open_study(job, resume=False)
    for v in (1.0, 2.0):
        t = study.ask()
        t.suggest_int("fast", 3, 15)
        study.tell(t, v)
    crashed = study.ask()
    fast = crashed.suggest_int("fast", 3, 15)  # the process dies here: the trial stays RUNNING
    assert counted_trials(study) == 3

    again = open_study(job, resume=True)
    assert recover(again) == [crashed.number]
    assert counted_trials(again) == 3  # 2 finished + 1 queued; the interrupted one no longer counts
    retry = again.ask()
    assert retry.suggest_int("fast", 3, 15) == fast and retry.user_attrs["retry_of"] == crashed.number
    again.tell(retry, 3.0)
    states = [t.state for t in again.get_trials()]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3 and states.count(optuna.trial.TrialState.FAIL) == 1
    assert recover(again) == []  # nothing left to recover: a second resume re-runs nothing


def test_a_study_is_not_silently_reused(tmp_path: Path) -> None:
    open_study(_job(tmp_path), resume=False)
    with pytest.raises(StudyExists, match="--resume"):
        open_study(_job(tmp_path), resume=False)


def test_postgresql_studies_live_in_their_own_schema_beside_a_migrated_platform(postgres_url: str, unique: str) -> None:
    """The platform's database migrated by Alembic, then a study in it: Optuna's tables (and its own
    alembic_version) go to schema `optuna`, so neither side refuses the other's schema version."""
    import asyncio

    from sqlalchemy import create_engine, text

    from roottrading.store import Database

    async def migrate() -> None:
        db = Database(postgres_url)
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(migrate())
    storage = make_storage(platform_storage_url(postgres_url))
    study = optuna.create_study(study_name=f"pg-{unique}", storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name=f"pg-{unique}", storage=storage).get_trials()) == 2
    engine = create_engine(storage_url(postgres_url))
    try:
        with engine.connect() as conn:
            schemas = {
                r[0]
                for r in conn.execute(
                    text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'trials'")
                )
            }
            assert schemas == {"optuna"}
    finally:
        engine.dispose()
    asyncio.run(migrate())  # the platform still migrates: its alembic_version is untouched
