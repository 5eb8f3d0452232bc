"""A finished window's trials read back from the database in bounded pieces: the JSON's trial rows streamed page by
page, the report's history downsampled, the counts and the trials' Sharpe statistics as SQL aggregates or
running sums. Why: a 10,000-trial study's trials as Python objects are tens of MB; none of these needs more
than one page (or a fixed number of points) in memory at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text

PAGE = 500
MAX_POINTS = 2000  # optimisation-history points per window in the report (trial count above that: bucketed)
_FAR = 2**62


def _backend(study: Any) -> Any:
    return getattr(study._storage, "_backend", study._storage)


def iter_rows(study: Any, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every trial of the study as a JSON row (number, state, value, params, user attributes), by trial number."""
    rdb = _backend(study)
    last = -1
    while True:
        with rdb.engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    text(
                        "SELECT trial_id FROM trials WHERE study_id = :s AND trial_id > :last "
                        "ORDER BY trial_id LIMIT :n"
                    ),
                    {"s": study._study_id, "last": last, "n": page},
                )
            ]
        if not ids:
            return
        for t in rdb._get_trials(study._study_id, None, set(ids), _FAR):
            yield {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params, **t.user_attrs}
        last = ids[-1]


def state_counts(study: Any) -> dict[str, int]:
    with _backend(study).engine.connect() as conn:
        rows = conn.execute(
            text("SELECT state, COUNT(*) FROM trials WHERE study_id = :s GROUP BY state"), {"s": study._study_id}
        ).all()
    return {str(k): int(v) for k, v in rows}


def history(study: Any, max_points: int = MAX_POINTS) -> list[tuple[int, float]]:
    """(trial number, value) of scored trials; above `max_points`, each bucket of trials keeps its best one
    (the running best drawn from it is then exact)."""
    sql = text(
        "SELECT t.number, v.value FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "
        "WHERE t.study_id = :s AND t.state = 'COMPLETE' ORDER BY t.number"
    )
    rdb = _backend(study)
    with rdb.engine.connect() as conn:
        n = conn.execute(
            text("SELECT COUNT(*) FROM trials WHERE study_id = :s AND state = 'COMPLETE'"), {"s": study._study_id}
        ).scalar_one()
        size = max(1, math.ceil(n / max_points))
        out: list[tuple[int, float]] = []
        bucket: tuple[int, float] | None = None
        for i, (num, val) in enumerate(
            conn.execution_options(stream_results=True).execute(sql, {"s": study._study_id})
        ):
            if val is None:
                continue
            if bucket is None or val > bucket[1]:
                bucket = (int(num), float(val))
            if (i + 1) % size == 0:
                out.append(bucket)
                bucket = None
        if bucket is not None:
            out.append(bucket)
    return out


def sharpe_stats(study: Any, per_period: float) -> tuple[int, float]:
    """(n, sample variance) of the scored trials' Sharpe ratios, divided by `per_period` (running sums)."""
    sql = text(
        "SELECT a.value_json FROM trial_user_attributes a JOIN trials t ON t.trial_id = a.trial_id "
        "WHERE t.study_id = :s AND t.state = 'COMPLETE' AND a.key = 'metrics'"
    )
    n, mean, m2 = 0, 0.0, 0.0
    with _backend(study).engine.connect() as conn:
        for (raw,) in conn.execution_options(stream_results=True).execute(sql, {"s": study._study_id}):
            s = json.loads(raw).get("sharpe")
            if s is None or not math.isfinite(s):
                continue
            x = s / per_period
            n += 1
            d = x - mean
            mean += d / n
            m2 += d * (x - mean)
    return n, (m2 / (n - 1) if n >= 2 else 0.0)


def write_json(doc: dict[str, Any], path: Path, studies: dict[int, Any]) -> None:
    """The `--json` document with each window's `trials` streamed from its study (`studies`: window index ->
    study), so the file holds every trial while memory holds one page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write("{\n")
        items = list(doc.items())
        for i, (k, v) in enumerate(items):
            f.write(f"  {json.dumps(k)}: ")
            if k == "windows":
                _windows(f, v, studies)
            else:
                f.write(json.dumps(v, default=str))
            f.write(",\n" if i < len(items) - 1 else "\n")
        f.write("}\n")


def _windows(f: IO[str], rows: list[dict[str, Any]], studies: dict[int, Any]) -> None:
    f.write("[")
    for i, row in enumerate(rows):
        f.write("\n    " if i == 0 else ",\n    ")
        body = json.dumps({k: v for k, v in row.items() if k != "trials"}, default=str)
        f.write(body[:-1] + (", " if len(body) > 2 else "") + '"trials": [')
        study = studies.get(row["index"])
        for j, t in enumerate(iter_rows(study) if study is not None else ()):
            f.write(("" if j == 0 else ", ") + json.dumps(t, default=str))
        f.write("]}")
    f.write("\n  ]")
