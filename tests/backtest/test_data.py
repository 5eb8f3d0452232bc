"""History sources and the data-quality gate."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import msgspec
import pytest

from roottrading.backtest.data import MissingData, check_quality, clean, load_history
from roottrading.backtest.runner import DataQualityError, prepare
from roottrading.history.download import write_parquet
from tests.backtest.helpers import config, hourly

H = 3_600_000


def test_clean_history_passes_the_gate() -> None:
    cs = hourly()
    rep = check_quality({"BTCUSDT": cs}, "1h", cs[0].open_time, cs[-1].open_time + H)
    assert rep.ok, rep.issues


def test_gate_reports_each_kind_of_problem() -> None:
    cs = hourly()
    bad = [*cs[:10], *cs[13:50], cs[49], cs[60], *cs[51:60], msgspec.structs.replace(cs[70], high=cs[70].low - 1)]
    rep = check_quality({"BTCUSDT": bad}, "1h")
    counts = rep.counts["BTCUSDT"]
    assert counts["gap"] >= 3  # 10..12 missing (and 61..69 after the last in-order candle)
    assert counts["duplicate"] == 1 and counts["non_monotonic"] >= 1 and counts["ohlc"] == 1
    text = "\n".join(rep.issues)
    assert "3 candle(s) missing after 2018-05-01 09:00 UTC" in text
    assert "appears more than once" in text and "comes after" in text and "do not contain" in text
    fixed = clean({"BTCUSDT": bad})["BTCUSDT"]
    times = [c.open_time for c in fixed]
    assert times == sorted(set(times))


def test_missing_candles_at_the_edges_of_the_period_are_gaps() -> None:
    cs = hourly()
    rep = check_quality({"BTCUSDT": cs[5:]}, "1h", cs[0].open_time, cs[-1].open_time + 3 * H)
    assert rep.counts["BTCUSDT"]["gap"] == 5 + 2
    assert any("at the start" in i for i in rep.issues) and any("at the end" in i for i in rep.issues)


async def test_gate_refuses_a_gap_by_default_and_allow_gaps_runs() -> None:
    cs = hourly()
    gappy = [*cs[:30], *cs[40:]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("roottrading.backtest.data._from_bundled", lambda s, i: gappy)
        with pytest.raises(DataQualityError) as err:
            await prepare(config(), database_url=None)
        assert "10 gap" in str(err.value) and "--allow-gaps" in str(err.value)
        prep = await prepare(config(allow_gaps=True), database_url=None)
    assert len(prep.candles["BTCUSDT"]) == 110
    assert prep.warnings and "10 gap" in prep.warnings[0]


async def test_missing_data_names_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(MissingData) as err:
        await load_history("bundled", ["ETHUSDT"], "1h", 1704067200000, 1706745600000)
    assert "roottrading download-data --symbols ETHUSDT --interval 1h --start 2024-01-01 --end 2024-02-01" in str(
        err.value
    )
    with pytest.raises(MissingData) as err:
        await load_history(str(tmp_path), ["BTCUSDT"], "1m", 1704067200000, 1704153600000)
    assert f"--start 2024-01-01 --end 2024-01-02 --parquet {tmp_path} --no-store" in str(err.value)


async def test_store_source_reads_market_data_and_names_the_command(tmp_path: Path) -> None:
    from roottrading.store import CandleRepo, Database

    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    db = Database(url)
    await db.migrate()
    await CandleRepo(db).upsert(hourly())
    await db.close()
    cs = hourly()
    got = await load_history("store", ["BTCUSDT"], "1h", cs[10].open_time, cs[20].open_time, database_url=url)
    assert got["BTCUSDT"] == cs[10:20]
    with pytest.raises(MissingData, match="download-data --symbols BTCUSDT --interval 1m"):
        await load_history("store", ["BTCUSDT"], "1m", cs[10].open_time, cs[20].open_time, database_url=url)


async def test_parquet_folder_and_binance_zip_files(tmp_path: Path) -> None:
    cs = hourly()
    write_parquet(tmp_path / "pq", "BTCUSDT", "1h", cs)
    got = await load_history(str(tmp_path / "pq"), ["BTCUSDT"], "1h", cs[0].open_time, cs[-1].open_time + H)
    assert got["BTCUSDT"] == cs
    # data.binance.vision monthly file: BTCUSDT-1h-2018-05.zip holding the CSV without a header
    lines = [f"{c.open_time},{c.open},{c.high},{c.low},{c.close},{c.volume},{c.close_time},0,0,0,0,0" for c in cs]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BTCUSDT-1h-2018-05.csv", "\n".join(lines) + "\n")
    (tmp_path / "zips").mkdir()
    (tmp_path / "zips" / "BTCUSDT-1h-2018-05.zip").write_bytes(buf.getvalue())
    for source in (str(tmp_path / "zips"), str(tmp_path / "zips" / "BTCUSDT-1h-*.zip")):
        got = await load_history(source, ["BTCUSDT"], "1h", cs[0].open_time, cs[-1].open_time + H)
        assert [(c.open_time, c.close) for c in got["BTCUSDT"]] == [(c.open_time, c.close) for c in cs]


async def test_a_gap_at_the_edge_of_the_period_names_the_command_that_fetches_it(tmp_path: Path) -> None:
    cs = hourly()
    write_parquet(tmp_path, "BTCUSDT", "1h", cs)
    cfg = config(data=str(tmp_path), start_ms=cs[0].open_time - 24 * H)
    with pytest.raises(DataQualityError) as err:
        await prepare(cfg, database_url=None)
    assert "24 candle(s) missing at the start" in str(err.value)
    assert (
        f"roottrading download-data --symbols BTCUSDT --interval 1h --start 2018-04-30 --end 2018-05-06 --parquet {tmp_path} --no-store"
        in str(err.value)
    )
