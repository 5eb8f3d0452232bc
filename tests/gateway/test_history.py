"""History tools: REST download (fake exchange) and data.binance.vision CSV import, to store and Parquet."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest

from roottrading.datasets import synthetic_candles
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.history import download, import_monthly_csv, parse_time, read_parquet
from roottrading.history.cli import main
from roottrading.store import Database
from roottrading.store.repos_market import CandleRepo
from tests.marketdata.helpers import serve

T0 = 1_704_067_200_000  # 2024-01-01


def _fake(n: int = 3000) -> FakeBinanceConfig:
    # everything already closed and the replay paused: a fixed history, like a past day on Binance
    return FakeBinanceConfig(
        symbols=("BTCUSDT", "ETHUSDT"),
        synthetic_count=n,
        history_candles=n - 1,
        start_paused=True,
        rest_5xx_prob=0.05,
        seed=2,
    )


async def test_download_to_store_and_parquet_is_exact_and_idempotent(tmp_path: Path) -> None:
    app = build_app(_fake())
    series = app.state.fake.market.series
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/h.db")
    await db.migrate()
    async with serve(app) as base:
        end = parse_time("2024-01-02")
        for _ in range(2):  # twice: nothing duplicated
            res = await download(
                ["BTCUSDT", "ethusdt"], "1m", T0, end, rest_url=base, to_store=db, to_parquet=tmp_path / "pq"
            )
        assert res.counts == {"BTCUSDT": 1440, "ETHUSDT": 1440}  # 2 pages of 1000 each, end exclusive
    repo = CandleRepo(db)
    assert await repo.range("BTCUSDT", "1m") == series["BTCUSDT"][:1440]
    assert await repo.count("ETHUSDT", "1m") == 1440
    await db.close()
    assert read_parquet(tmp_path / "pq" / "ETHUSDT_1m.parquet", "ETHUSDT", "1m") == series["ETHUSDT"][:1440]


async def test_download_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"end .* must be after start"):
        await download(["BTCUSDT"], "1m", T0, T0, rest_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="unknown interval"):
        await download(["BTCUSDT"], "7m", T0, T0 + 1, rest_url="http://127.0.0.1:9")


def _vision_zip(path: Path, candles: list, micro: bool = False) -> Path:
    k = 1000 if micro else 1
    lines = [
        f"{c.open_time * k},{c.open:.8f},{c.high:.8f},{c.low:.8f},{c.close:.8f},{c.volume:.8f},"
        f"{c.close_time * k},{c.quote_volume:.8f},{c.trades},0,0,0"
        for c in candles
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    return path


async def test_import_monthly_zip_files_by_glob_infers_symbol_and_interval(tmp_path: Path) -> None:
    src = synthetic_candles("BTCUSDT", "1m", 200, seed=4, start_ms=T0)
    _vision_zip(tmp_path / "BTCUSDT-1m-2024-01.zip", src[:120])
    _vision_zip(tmp_path / "BTCUSDT-1m-2024-02.zip", src[100:], micro=True)  # 2025+ files use microseconds
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/i.db")
    await db.migrate()
    res = await import_monthly_csv(str(tmp_path / "BTCUSDT-1m-*.zip"), to_store=db, to_parquet=tmp_path / "pq")
    assert res.counts == {"BTCUSDT": 220}
    stored = await CandleRepo(db).range("BTCUSDT", "1m")
    await db.close()
    assert [(c.open_time, c.close) for c in stored] == [(c.open_time, c.close) for c in src]
    assert len(read_parquet(tmp_path / "pq" / "BTCUSDT_1m.parquet", "BTCUSDT", "1m")) == 200
    with pytest.raises(ValueError, match="cannot infer"):
        (tmp_path / "x.csv").write_text("1,2,3,1,2,3\n")
        await import_monthly_csv(tmp_path / "x.csv", to_store=None, to_parquet=tmp_path)
    with pytest.raises(ValueError, match="no file matches"):
        await import_monthly_csv(str(tmp_path / "nothing-*.zip"), "BTCUSDT", "1m", to_parquet=tmp_path)


async def test_cli_downloads_from_the_fake_exchange_to_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_app(_fake(600))
    async with serve(app) as base:
        argv = [
            "--symbols",
            "BTCUSDT",
            "--interval",
            "1m",
            "--start",
            "2024-01-01T00:00",
            "--end",
            str(T0 + 3_600_000),
            "--rest-url",
            base,
            "--parquet",
            str(tmp_path / "pq"),
            "--no-store",
        ]
        await asyncio.to_thread(main, argv)
    out = capsys.readouterr().out
    assert "BTCUSDT: 60 candles" in out and "BTCUSDT_1m.parquet" in out
    assert (
        read_parquet(tmp_path / "pq" / "BTCUSDT_1m.parquet", "BTCUSDT", "1m")
        == app.state.fake.market.series["BTCUSDT"][:60]
    )


def test_cli_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, msg in [
        (["--start", "someday", "--no-store", "--parquet", str(tmp_path)], "--start: 'someday'"),
        (["--no-store"], "--no-store needs --parquet"),
        (["--no-store", "--parquet", str(tmp_path)], "--start is required"),
        (["--import-csv", str(tmp_path / "none.zip"), "--no-store", "--parquet", str(tmp_path)], "no such file"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err, err
