"""The query strategies that rank unlabelled examples for labelling."""

from __future__ import annotations

import numpy as np
import pytest

from tlpipe.active_learning import STRATEGIES, entropy_order, farthest_first, margin_order, select

PROBABILITIES = np.array([[0.9, 0.05, 0.05], [0.45, 0.45, 0.10], [0.6, 0.3, 0.1], [0.34, 0.33, 0.33]])


def test_uncertainty_puts_the_closest_call_first() -> None:
    assert margin_order(PROBABILITIES).tolist() == [1, 3, 2, 0]  # margins 0.0, 0.01, 0.3, 0.85
    assert entropy_order(PROBABILITIES).tolist() == [3, 1, 2, 0]


def test_farthest_first_covers_what_the_labelled_rows_do_not_and_never_picks_twice() -> None:
    near = np.array([[1.0, 0.0], [0.99, 0.1], [0.98, 0.2]])
    far = np.array([[0.0, 1.0], [0.1, 0.99]])
    pool = np.vstack([near, far])

    picks = farthest_first(pool, labelled=np.array([[1.0, 0.0]]), budget=3)

    assert picks[0] in (3, 4) and len(set(picks)) == 3
    assert farthest_first(pool, np.array([[1.0, 0.0]]), 2, among=np.array([0, 1, 2])) == [2, 1]


def test_every_strategy_returns_the_budget_of_distinct_pool_rows_and_an_unknown_one_is_named() -> None:
    rng = np.random.default_rng(0)
    pool, labelled = rng.normal(size=(4, 8)), rng.normal(size=(2, 8))
    for strategy in STRATEGIES:
        picks = select(strategy, 3, PROBABILITIES, pool, labelled, seed=1)
        assert len(picks) == len(set(picks)) == 3 and set(picks) <= set(range(4))
    assert len(select("margin", 10, PROBABILITIES, pool, labelled)) == 4  # no more than the pool holds
    assert select("random", 4, PROBABILITIES, pool, labelled, seed=1) == select(
        "random", 4, PROBABILITIES, pool, labelled, seed=1
    )
    with pytest.raises(ValueError, match="unknown query strategy 'coin': one of margin, entropy"):
        select("coin", 1, PROBABILITIES, pool, labelled)
