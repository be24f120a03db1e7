"""The train stage's time estimate: each strategy counts its passes through the body, and the plan prices them."""

from __future__ import annotations

import pytest

from tlpipe.config import TrainConfig
from tlpipe.run_estimate import TRAINING_STEP_COST, Work, estimate
from tlpipe.strategies import get_strategy
from tlpipe.strategies.recipes import settings_for


def work(strategy: str, fit: int, valid: int, **settings: object) -> Work:
    train = settings_for(TrainConfig.model_validate(settings), strategy, "text")
    return get_strategy(strategy).work(train, fit, valid, blocks=6)


def test_a_probe_encodes_each_row_once_whatever_its_epochs() -> None:
    assert work("linear_probe", 100, 20) == work("linear_probe", 100, 20, epochs=300) == Work(encoded=120)


def test_freeze_unfreeze_runs_the_frozen_body_in_its_head_epochs_and_trains_it_after() -> None:
    counted = work("freeze_unfreeze", 100, 20, epochs=5, freeze_unfreeze={"head_epochs": 2})

    assert counted == Work(forward=2 * 100 + 5 * 20, trained=3 * 100)


def test_contrastive_tunes_on_its_pairs_capped_then_encodes_with_the_tuned_body() -> None:
    assert work("contrastive", 10, 5).pairs == 10 * 20  # pairs_per_example 20
    assert work("contrastive", 500, 5).pairs == 2000  # max_pairs
    assert work("contrastive", 500, 5, contrastive={"epochs": 2}).pairs == 4000
    assert work("contrastive", 500, 5).forward == 505


def test_the_plan_is_priced_per_pass_and_ranges_over_the_final_candidate() -> None:
    per_strategy = {"probe": Work(encoded=1), "tuned": Work(trained=3, forward=1)}

    def work_of(strategy: str, fit: int, valid: int) -> Work:
        unit = per_strategy[strategy]
        return Work(encoded=unit.encoded * (fit + valid), forward=unit.forward * (fit + valid),
                    trained=unit.trained * fit)  # fmt: skip

    expected = estimate(work_of, ["probe", "tuned"], examples=100, valid=0, folds=2, forward_seconds=0.01)

    step = 0.01 * TRAINING_STEP_COST
    folds = 2 * (50 * 3 * step + 100 * 0.01)  # two folds of the tuned run: 50 trained, 100 forward
    encoded = 100 * 0.01  # every row once, whichever probe run reads it
    assert expected.runs == 5  # two candidates on two folds, then the final model
    assert expected.low == pytest.approx(encoded + folds)  # the final model a probe: its rows are cached
    assert expected.high == pytest.approx(encoded + folds + 100 * 3 * step + 100 * 0.01)


def test_a_body_tuned_on_pairs_is_tuned_once_per_run_for_the_strategies_that_share_it() -> None:
    def work_of(strategy: str, fit: int, valid: int) -> Work:
        return Work(pairs=200)

    shared = estimate(work_of, ["contrastive", "lexical_contrastive"], 40, 10, folds=0, forward_seconds=0.01)

    assert shared.low == shared.high == pytest.approx(200 * 2 * 0.01 * TRAINING_STEP_COST)


def test_the_estimate_reads_as_a_duration() -> None:
    short = estimate(lambda s, f, v: Work(forward=f), ["full"], 1000, 0, 0, 0.05).describe()
    long = estimate(lambda s, f, v: Work(trained=f), ["full"], 1000, 0, 0, 0.05).describe()

    assert "about 50 s (1 training run;" in short
    assert "about 4 min" in long  # 1000 x 0.05 x 4.2 = 210 s


def test_every_run_pays_for_loading_the_body_once() -> None:
    def work_of(strategy: str, fit: int, valid: int) -> Work:
        return Work(encoded=fit + valid)

    without = estimate(work_of, ["probe", "lexical"], 90, 0, folds=3, forward_seconds=0.01)
    loaded = estimate(work_of, ["probe", "lexical"], 90, 0, folds=3, forward_seconds=0.01, setup_seconds=2.0)

    assert loaded.runs == 7  # two candidates on three folds, then the final model
    assert loaded.low == pytest.approx(without.low + 7 * 2.0)
    assert loaded.high == pytest.approx(without.high + 7 * 2.0)
    assert "loading the body at 2.0 s a run" in loaded.describe()
    assert loaded.to_dict()["setup_per_run"] == 2.0
