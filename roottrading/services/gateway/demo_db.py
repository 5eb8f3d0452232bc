"""The demo's database: a fresh SQLite file on every `roottrading demo`, the previous one kept beside it.

Why fresh: the demo replays the bundled market from the same day on every start, and its simulated
exchange account starts new each time (not persisted yet). A store kept from an earlier run holds cycles
with later market times than the restarted replay (the risk manager rebuilt loss streaks from them and
disabled every strategy) and open cycles the new account cannot close. One previous copy is kept
(`<name>.previous.db`) so nothing a person looked at vanishes silently; the API token lives in its own file
and is untouched.

Why the marker: only a file this module created (SQLite `application_id` set to DEMO_APPLICATION_ID) is
ever moved aside, so a DATABASE_URL shared with `roottrading up` (paper or live) is refused, never discarded.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from roottrading.config import Settings

DEMO_DB_NAME = "demo.db"
DEMO_APPLICATION_ID = 0x52544430  # "RTD0" in the SQLite header: created by `roottrading demo`
_SIDECARS = ("", "-wal", "-shm", "-journal")  # SQLite's files for one database, moved together


class DemoDatabaseError(ValueError):
    """The configured database cannot be reset safely for the demo (not SQLite, or not a demo database)."""


def demo_database_url(settings: Settings) -> str:
    """DATABASE_URL when set to something else than the default, else the demo's own file <data_dir>/demo.db:
    the demo never shares (and so never resets) the database that `roottrading up` uses by default."""
    default = Settings.model_fields["database_url"].default  # `roottrading up`'s file (.env.example spells it)
    if "database_url" in settings.model_fields_set and settings.database_url != default:
        return settings.database_url
    return f"sqlite+aiosqlite:///{settings.data_dir / DEMO_DB_NAME}"


def sqlite_file(url: str) -> Path | None:
    """The file of a file-backed SQLite URL (as Database reads it), else None."""
    if not url.startswith("sqlite") or ":///" not in url or ":memory:" in url or "mode=memory" in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return Path(path).expanduser() if path else None


def previous_path(path: Path) -> Path:
    """demo.db -> demo.previous.db (same folder, same suffix so tools still recognise it)."""
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def _application_id(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA application_id").fetchone()[0])


def fresh_demo_database(url: str) -> str:
    """Move the previous demo database aside (replacing the older copy) and create an empty, marked one.

    Returns one line for the person at the terminal. Raises DemoDatabaseError, touching nothing, when `url`
    is not a SQLite file or names an existing file the demo did not create."""
    path = sqlite_file(url)
    if path is None:
        raise DemoDatabaseError(
            f"the demo starts from a fresh database on every start and can only set aside a SQLite file, "
            f"not {url.split('://', 1)[0]}://...; unset DATABASE_URL (the demo then uses <DATA_DIR>/{DEMO_DB_NAME})"
        )
    moved = False
    if path.exists():
        try:
            is_demo = _application_id(path) == DEMO_APPLICATION_ID
        except sqlite3.DatabaseError:
            is_demo = False
        if not is_demo:
            raise DemoDatabaseError(
                f"{path} was not created by `roottrading demo`; the demo starts from a fresh database on every "
                f"start and will not move this one aside: point DATABASE_URL at a new file for the demo, "
                f"e.g. DATABASE_URL=sqlite+aiosqlite:///./data/{DEMO_DB_NAME} roottrading demo"
            )
        prev = previous_path(path)
        for side in _SIDECARS:
            Path(f"{prev}{side}").unlink(missing_ok=True)
        for side in _SIDECARS:
            src = Path(f"{path}{side}")
            if src.exists():
                src.rename(f"{prev}{side}")
        moved = True
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
    conn.close()
    if moved:
        return f"demo: fresh database {path}; the previous run's is kept as {previous_path(path)}"
    return f"demo: fresh database {path}"


def release_demo_database(url: str) -> bool:
    """Called before `roottrading up`/`service` runs on `url`: a demo-created SQLite file loses its marker, so
    a later demo refuses it instead of moving aside what paper or live trading wrote there. True if cleared."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return False
    try:
        if _application_id(path) != DEMO_APPLICATION_ID:
            return False
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True)) as conn:
            conn.execute("PRAGMA application_id = 0")
    except sqlite3.DatabaseError:
        return False
    return True


@contextlib.contextmanager
def demo_database_lock(url: str) -> Iterator[None]:
    """Hold `<database>.lock` while a demo runs: a second demo on the same folder stops with an error instead
    of moving the running demo's database from under it. A no-op where fcntl is missing (Windows) or the
    URL is not a SQLite file (fresh_demo_database refuses those)."""
    path = sqlite_file(url)
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoDatabaseError(f"another demo is running on {path}; stop it first") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
