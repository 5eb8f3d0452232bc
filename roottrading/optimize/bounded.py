"""A study's trials in memory, bounded: what keeps a 10,000-trial study from growing with the trial count.

Why: Optuna wraps an RDB storage in `_CachedStorage`, which keeps every trial it has ever read (params, values,
user attributes: ~several KB each) for the life of the process, because the TPE sampler re-reads the whole
history before each suggestion. Both the memory and TPE's per-suggestion time then grow with the trial count
(measured before this change: ~20 KB and ~70 ms more per 1,000 trials).

Here the cache keeps at most `keep` finished trials per study: the best half (by objective value) and the most
recent half; running and queued trials are always kept (other workers' trials and re-queued ones must be
seen). The sampler thus models good regions from the best trials and the current search from the latest ones,
with a constant cost per trial. Everything stays in the database: the JSON, the report and the best trial are
read from there (trials.py), not from this cache. Grid sampling needs every visited point and runs unbounded
(its size is the grid's).
"""

from __future__ import annotations

import heapq
from typing import Any

from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
from optuna.trial import TrialState


class BoundedCachedStorage(_CachedStorage):
    """Optuna's cached RDB storage with at most `keep` finished trials per study in memory."""

    def __init__(self, backend: RDBStorage, keep: int) -> None:
        super().__init__(backend)
        if keep < 2:
            raise ValueError("keep must be >= 2")
        self.keep = keep

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        with self._lock:
            first = study_id not in self._studies or not self._studies[study_id].trials
        if first:
            self._seed(study_id)  # a resumed study: load the bounded view, never the whole history
        super()._read_trials_from_remote_storage(study_id)
        self._evict(study_id)

    def _seed(self, study_id: int) -> None:
        """First read of a study that may already hold many trials: every unfinished trial, the latest and
        the best finished ones; later reads then fetch only what is newer (Optuna's incremental read)."""
        from sqlalchemy import text

        half = self.keep // 2
        q = {
            "open": "SELECT trial_id FROM trials WHERE study_id = :s AND state IN ('RUNNING', 'WAITING')",
            "latest": "SELECT trial_id FROM trials WHERE study_id = :s AND state IN ('COMPLETE', 'PRUNED', 'FAIL') "
            "ORDER BY trial_id DESC LIMIT :n",
            "best": "SELECT t.trial_id FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "
            "WHERE t.study_id = :s AND t.state = 'COMPLETE' ORDER BY v.value DESC LIMIT :n",
        }
        with self._backend.engine.connect() as conn:
            open_ids = {r[0] for r in conn.execute(text(q["open"]), {"s": study_id})}
            last = conn.execute(
                text(
                    "SELECT MAX(trial_id) FROM trials WHERE study_id = :s AND state IN ('COMPLETE', 'PRUNED', 'FAIL')"
                ),
                {"s": study_id},
            ).scalar()
            if last is None:
                return  # nothing finished yet: Optuna's own first read is already small
            ids = set(open_ids)
            ids |= {r[0] for r in conn.execute(text(q["latest"]), {"s": study_id, "n": half})}
            ids |= {r[0] for r in conn.execute(text(q["best"]), {"s": study_id, "n": self.keep - half})}
        trials = self._backend._get_trials(study_id, None, ids, 2**62)
        with self._lock:
            if study_id not in self._studies:
                self._studies[study_id] = _StudyInfo()
            info = self._studies[study_id]
            self._add_trials_to_cache(study_id, trials)
            for t in trials:
                if not t.state.is_finished():
                    info.unfinished_trial_ids.add(t._trial_id)
            info.last_finished_trial_id = max(info.last_finished_trial_id, int(last))

    def _evict(self, study_id: int) -> None:
        with self._lock:
            info = self._studies.get(study_id)
            if info is None:
                return
            finished = [t for t in info.trials.values() if t.state.is_finished()]
            if len(finished) <= self.keep + self.keep // 10:  # evict in batches, not on every new trial
                return
            half = self.keep // 2
            latest = heapq.nlargest(half, finished, key=lambda t: t.number)
            scored = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
            best = heapq.nlargest(self.keep - half, scored, key=_value)
            kept = {t.number for t in latest} | {t.number for t in best}
            for t in finished:
                if t.number not in kept:
                    del info.trials[t.number]
                    self._trial_id_to_study_id_and_number.pop(t._trial_id, None)
                    self._study_id_and_number_to_trial_id.pop((study_id, t.number), None)

    def cached_trials(self, study_id: int) -> int:
        """How many trials of the study this process holds (the bound, tested)."""
        with self._lock:
            info = self._studies.get(study_id)
            return 0 if info is None else len(info.trials)


def _value(t: Any) -> float:
    return float(t.value)
