"""The demo's fresh database: what is moved aside, what is refused, and that `up`'s database is never touched."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from roottrading.config import load_settings
from roottrading.services.gateway.demo_db import (
    DemoDatabaseError,
    demo_database_lock,
    demo_database_url,
    fresh_demo_database,
    release_demo_database,
)


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _write(path: Path, value: str) -> None:
    """Add a row the way the platform would, to a database fresh_demo_database created."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        conn.commit()


def _rows(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM t")]


def test_default_demo_database_is_its_own_file_in_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env or roottrading.yaml from the developer's folder
    settings = load_settings(data_dir=tmp_path / "d")
    assert demo_database_url(settings) == _url(tmp_path / "d" / "demo.db")
    assert settings.database_url != demo_database_url(settings)  # `roottrading up`'s file is another one
    explicit = load_settings(data_dir=tmp_path / "d", database_url=_url(tmp_path / "e2e.db"))
    assert demo_database_url(explicit) == _url(tmp_path / "e2e.db")


def test_each_start_is_fresh_and_keeps_exactly_one_previous_copy(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert fresh_demo_database(_url(db)) == f"demo: fresh database {db}"
    _write(db, "run1")
    (tmp_path / "api_token").write_text("tok\n")
    line = fresh_demo_database(_url(db))
    assert line == f"demo: fresh database {db}; the previous run's is kept as {tmp_path / 'demo.previous.db'}"
    assert _rows(tmp_path / "demo.previous.db") == ["run1"]
    _write(db, "run2")
    fresh_demo_database(_url(db))
    assert _rows(tmp_path / "demo.previous.db") == ["run2"]  # the older copy replaced, not piled up
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api_token", "demo.db", "demo.previous.db"]


def test_refuses_a_database_the_demo_did_not_create(tmp_path: Path) -> None:
    live = tmp_path / "roottrading.db"
    with contextlib.closing(sqlite3.connect(live)) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.commit()
    before = live.read_bytes()
    with pytest.raises(DemoDatabaseError, match="not created by `roottrading demo`"):
        fresh_demo_database(_url(live))
    assert live.read_bytes() == before and not (tmp_path / "roottrading.previous.db").exists()
    (tmp_path / "notes.db").write_text("not sqlite")
    with pytest.raises(DemoDatabaseError, match="not created"):
        fresh_demo_database(_url(tmp_path / "notes.db"))


def test_refuses_a_database_it_cannot_set_aside() -> None:
    with pytest.raises(DemoDatabaseError, match="only set aside a SQLite file"):
        fresh_demo_database("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    with pytest.raises(DemoDatabaseError):
        fresh_demo_database("sqlite+aiosqlite:///:memory:")


def test_a_second_demo_on_the_same_database_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path / "demo.db")
    with demo_database_lock(url), pytest.raises(DemoDatabaseError, match="another demo is running"):  # noqa: SIM117
        with demo_database_lock(url):
            pass
    with demo_database_lock(url):  # released when the first demo stops
        pass


def test_env_example_default_url_still_gives_the_demo_its_own_file(tmp_path: Path) -> None:
    # .env.example spells out `up`'s default DATABASE_URL; copying it must not make the demo reset that file
    settings = load_settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///./data/roottrading.db")
    assert demo_database_url(settings) == _url(tmp_path / "demo.db")


def test_up_on_a_demo_database_makes_the_demo_refuse_it_afterwards(tmp_path: Path) -> None:
    shared = _url(tmp_path / "mine.db")
    fresh_demo_database(shared)  # a demo ran first on a DATABASE_URL that `up` also uses
    assert release_demo_database(shared)  # what `roottrading up` / `service` do before serving
    _write(tmp_path / "mine.db", "paper trade")
    with pytest.raises(DemoDatabaseError, match="not created"):
        fresh_demo_database(shared)
    assert _rows(tmp_path / "mine.db") == ["paper trade"]
    assert not release_demo_database(shared)  # already a regular database
    assert not release_demo_database(_url(tmp_path / "absent.db")) and not (tmp_path / "absent.db").exists()
