"""``train.strategy: auto``: which strategies it plans for the data, why, and the settings each runs with."""

from __future__ import annotations

import pytest

from tlpipe.auto import RECIPES, StrategyPlan, plan_strategy, settings_for
from tlpipe.config import AutoConfig, TrainConfig

AUTO = TrainConfig(strategy="auto", batch_size=8, seed=7)


def labels(per_class: int, classes: str = "abc") -> list[str]:
    return [label for label in classes for _ in range(per_class)]


@pytest.mark.parametrize(
    ("train_per_class", "valid_per_class", "candidates"),
    [
        (6, 2, ["contrastive"]),  # too few validation examples to compare
        (39, 10, ["contrastive", "linear_probe"]),
        (40, 10, ["freeze_unfreeze", "linear_probe"]),
        (40, 4, ["freeze_unfreeze"]),
        (500, 100, ["freeze_unfreeze", "linear_probe"]),
    ],
)
def test_auto_plans_by_the_smallest_class(train_per_class: int, valid_per_class: int, candidates: list[str]) -> None:
    plan = plan_strategy(AUTO, labels(train_per_class), labels(valid_per_class))

    assert plan.candidates == candidates
    assert plan.requested == "auto"
    assert f"{train_per_class} training examples" in plan.reason


def test_the_smallest_class_decides_not_the_average() -> None:
    plan = plan_strategy(AUTO, labels(100, "ab") + labels(8, "c"), labels(10, "abc"))

    assert plan.candidates[0] == "contrastive"
    assert plan.fewest_train_per_class == 8


def test_a_class_missing_from_validation_counts_as_zero_and_skips_the_comparison() -> None:
    plan = plan_strategy(AUTO, labels(50), labels(10, "ab"))

    assert plan.candidates == ["freeze_unfreeze"]
    assert "0 validation examples" in plan.reason


def test_the_thresholds_and_comparisons_are_the_users() -> None:
    custom = AUTO.model_copy(
        update={
            "auto": AutoConfig(
                few_labels_below=100, compare=("full", "linear_probe", "full"), compare_min_valid_per_class=1
            )
        }
    )

    plan = plan_strategy(custom, labels(50), labels(2))

    assert plan.candidates == ["contrastive", "full", "linear_probe"]


def test_a_named_strategy_is_trained_alone_as_set() -> None:
    named = TrainConfig(strategy="full")

    plan = plan_strategy(named, labels(50), labels(20))

    assert plan.candidates == ["full"]
    assert plan.chosen == "full"
    assert settings_for(named, "full") is named


def test_settling_keeps_the_best_validation_score_and_ties_go_to_the_rules_choice() -> None:
    plan = StrategyPlan("auto", ["freeze_unfreeze", "linear_probe"], "Rule.", 40, 10)

    assert plan.settle({"freeze_unfreeze": 0.90, "linear_probe": 0.90}) == "freeze_unfreeze"
    assert plan.settle({"freeze_unfreeze": 0.80, "linear_probe": 0.85}) == "linear_probe"
    assert plan.chosen == "linear_probe"
    assert plan.validation_macro_f1 == {"freeze_unfreeze": 0.80, "linear_probe": 0.85}
    assert "kept linear_probe" in plan.reason


@pytest.mark.parametrize("strategy", sorted(RECIPES))
def test_each_candidate_runs_with_its_recipe_and_the_users_other_settings(strategy: str) -> None:
    settings = settings_for(AUTO, strategy)

    assert settings.strategy == strategy
    for key, value in RECIPES[strategy].items():
        actual = getattr(settings, key)
        assert (actual.model_dump() if isinstance(value, dict) else actual) == value, key
    assert (settings.batch_size, settings.seed) == (8, 7)
