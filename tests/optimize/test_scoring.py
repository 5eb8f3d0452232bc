from __future__ import annotations

import random

from roottrading.optimize.scoring import constraint_failure, deflated_sharpe, expected_max_sharpe, score


def test_objectives_and_constraints() -> None:
    m = {"net_pnl": "12.5", "sharpe": 1.2, "profit_factor": None, "closed_trades": 3, "max_drawdown": 0.25}
    assert score(m, "profit") == 12.5 and score(m, "sharpe") == 1.2 and score(m, "profit_factor") is None
    assert constraint_failure(m, 5, None) == "3 closed trades < --min-trades 5"
    assert "max drawdown 25.00%" in (constraint_failure(m, 1, 0.2) or "")
    assert constraint_failure(m, 3, 0.3) is None


def test_the_luck_bar_rises_with_the_number_of_trials() -> None:
    assert expected_max_sharpe(0.01, 1) == 0.0
    assert 0 < expected_max_sharpe(0.01, 10) < expected_max_sharpe(0.01, 1000)


def test_deflated_sharpe_falls_as_more_trials_were_searched() -> None:
    rng = random.Random(7)
    returns = [0.002 + rng.gauss(0, 0.01) for _ in range(365)]
    few = deflated_sharpe(returns, [rng.gauss(0, 0.05) for _ in range(5)])
    many = deflated_sharpe(returns, [rng.gauss(0, 0.05) for _ in range(2000)])
    assert few is not None and many is not None
    assert 0 <= many < few <= 1
    # a pure-noise "winner" among many trials is not significant
    noise = [rng.gauss(0, 0.01) for _ in range(365)]
    assert (deflated_sharpe(noise, [rng.gauss(0, 0.05) for _ in range(500)]) or 0) < 0.5
    assert deflated_sharpe([0.01, 0.01], [0.1, 0.2]) is None
