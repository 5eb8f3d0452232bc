"""What a study leaves in the database besides its trials: its plan, each finished window, its result.

Why in the study's own storage (Optuna study user attributes, by default the platform's database): `--apply`,
`roottrading tune`, the dashboard's Optimise page and `--resume` all need them after the process that ran the
study is gone, and a running study's progress must be readable by the platform while another process (or a
cluster) runs it. The record lives on the study named after the whole question (`--study-name`); with
walk-forward each window's trials are in `NAME/wK` studies, which the record lists.

Attributes (all JSON): `roottrading` = the plan (strategy, symbols, interval, objective, n_trials, windows, status,
started_at, finished_at); `window_K` = window K's row without its trials (best params, in/out-of-sample
headline figures, parity, deflated Sharpe); `result` = the stitched summary and the chosen parameters (the last
window's best: trained on the most recent data).
"""

from __future__ import annotations

import time
from typing import Any

PLAN_KEY = "roottrading"
RESULT_KEY = "result"


def _now_ms() -> int:
    return int(time.time() * 1000)


def window_study_names(plan: dict[str, Any]) -> list[str]:
    if not plan.get("walk_forward"):
        return [plan["study"]]
    return [f"{plan['study']}/w{w['index']}" for w in plan["windows"]]


def record_study(storage: Any, name: str) -> Any:
    """The study that holds the record (created empty when walk-forward keeps its trials elsewhere)."""
    import optuna

    return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)


def write_plan(study: Any, plan: dict[str, Any]) -> None:
    prev = study.user_attrs.get(PLAN_KEY) or {}
    study.set_user_attr(PLAN_KEY, {**plan, "status": "running", "started_at": prev.get("started_at") or _now_ms()})


def write_window(study: Any, row: dict[str, Any]) -> None:
    study.set_user_attr(f"window_{row['index']}", {k: v for k, v in row.items() if k != "trials"})


def write_result(study: Any, doc: dict[str, Any]) -> None:
    """The summary the platform acts on (no per-trial rows and no equity curve: bounded in size)."""
    plan = dict(study.user_attrs.get(PLAN_KEY) or {})
    study.set_user_attr(RESULT_KEY, summary(doc))
    study.set_user_attr(PLAN_KEY, {**plan, "status": "finished", "finished_at": _now_ms()})


def chosen_params(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The parameters to trade now: the last window that chose any (trained on the most recent data)."""
    for row in reversed(doc.get("windows", [])):
        if row.get("best_params") is not None:
            return dict(row["best_params"])
    return None


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    oos = doc.get("out_of_sample")
    return {
        "strategy": doc["strategy"],
        "symbols": doc["symbols"],
        "interval": doc["interval"],
        "objective": doc["objective"],
        "walk_forward": doc["walk_forward"],
        "chosen_params": chosen_params(doc),
        "out_of_sample": oos["metrics"] if oos else None,
        "in_sample": doc.get("in_sample"),
        "walk_forward_efficiency": doc.get("walk_forward_efficiency"),
        "deflated_sharpe_mean": doc.get("deflated_sharpe_mean"),
    }


def _progress(storage: Any, names: list[str], ids: dict[str, int]) -> list[dict[str, Any]]:
    """Per window study: trials finished and the best value so far (two SQL aggregates, whatever the count)."""
    from sqlalchemy import text

    engine = getattr(storage, "_backend", storage).engine
    out = []
    with engine.connect() as conn:
        for name in names:
            sid = ids.get(name)
            if sid is None:
                out.append({"study": name, "done": 0, "running": 0, "best_value": None})
                continue
            rows = dict(
                conn.execute(
                    text("SELECT state, COUNT(*) FROM trials WHERE study_id = :s GROUP BY state"), {"s": sid}
                ).all()
            )
            best = conn.execute(
                text(
                    "SELECT MAX(v.value) FROM trial_values v JOIN trials t ON t.trial_id = v.trial_id "
                    "WHERE t.study_id = :s AND t.state = 'COMPLETE'"
                ),
                {"s": sid},
            ).scalar()
            out.append(
                {
                    "study": name,
                    "done": int(rows.get("COMPLETE", 0)) + int(rows.get("PRUNED", 0)),
                    "running": int(rows.get("RUNNING", 0)),
                    "failed": int(rows.get("FAIL", 0)),
                    "best_value": None if best is None else float(best),
                }
            )
    return out


def list_studies(storage: Any) -> list[dict[str, Any]]:
    """Every study recorded by `roottrading optimize` in this storage, newest first, with its progress."""
    studies = storage.get_all_studies()
    ids = {s.study_name: s._study_id for s in studies}
    out = []
    for s in studies:
        plan = s.user_attrs.get(PLAN_KEY)
        if not plan:
            continue  # a window's study, or one not made by us
        out.append({**_describe(storage, plan, s.user_attrs, ids), "id": s._study_id})
    out.sort(key=lambda d: (d.get("started_at") or 0, d["id"]), reverse=True)  # ties: the later created first
    return out


def get_study(storage: Any, name: str) -> dict[str, Any] | None:
    for d in list_studies(storage):
        if d["study"] == name:
            return d
    return None


def _describe(storage: Any, plan: dict[str, Any], attrs: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    names = window_study_names(plan)
    progress = _progress(storage, names, ids)
    windows = []
    for w, p in zip(plan["windows"], progress, strict=True):
        windows.append({**w, **p, **(attrs.get(f"window_{w['index']}") or {})})
    done = sum(p["done"] for p in progress)
    total = plan["n_trials"] * len(names)
    return {
        **plan,
        "trials_done": done,
        "trials_total": total,
        "best_value": max((p["best_value"] for p in progress if p["best_value"] is not None), default=None),
        "windows": windows,
        "result": attrs.get(RESULT_KEY),
    }
