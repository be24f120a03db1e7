"""``train.strategy: auto``: which strategies it plans for the data, why, and the settings each runs with."""

from __future__ import annotations

import pytest

from tlpipe.auto import StrategyPlan, plan_strategy
from tlpipe.config import AutoConfig, TrainConfig
from tlpipe.errors import ConfigError
from tlpipe.modalities.text.modality import TEXT_RULE
from tlpipe.params import parse_params
from tlpipe.strategies import frozen_body_rule, get_strategy, strategies_for
from tlpipe.strategies.recipes import RECIPE_KEYS, recipe_keys, recipe_keys_used, settings_for

AUTO = TrainConfig(strategy="auto", batch_size=8, seed=7)
TEXT_STRATEGIES = strategies_for("text")


def recipe(strategy: str) -> dict:
    return dict(get_strategy(strategy).recipe("text"))


def labels(per_class: int, classes: str = "abc") -> list[str]:
    return [label for label in classes for _ in range(per_class)]


@pytest.mark.parametrize(
    ("train_per_class", "valid_per_class", "candidates"),
    [
        (6, 2, ["contrastive"]),  # too few validation examples to compare
        (39, 10, ["contrastive", "lexical_contrastive", "linear_probe", "lexical_probe"]),
        (40, 10, ["freeze_unfreeze", "linear_probe", "lexical_probe"]),
        (40, 4, ["freeze_unfreeze"]),
        (500, 100, ["freeze_unfreeze", "linear_probe", "lexical_probe"]),
    ],
)
def test_auto_plans_by_the_smallest_class(train_per_class: int, valid_per_class: int, candidates: list[str]) -> None:
    plan = plan_strategy(AUTO, labels(train_per_class), labels(valid_per_class), TEXT_RULE)

    assert plan.candidates == candidates
    assert plan.requested == "auto"
    assert f"{train_per_class} training examples" in plan.reason


@pytest.mark.parametrize(("modality", "candidates"), [("text", ["linear_probe", "lexical_probe"]),
                                                    ("image", ["linear_probe"])])  # fmt: skip
def test_frozen_body_only_plans_the_strategies_that_keep_the_body_at_every_size(
    modality: str, candidates: list
) -> None:
    for per_class in (8, 500):
        plan = plan_strategy(AUTO, labels(per_class), labels(per_class), frozen_body_rule(modality))

        assert plan.candidates == candidates
        assert not any(get_strategy(name).changes_body for name in plan.candidates)


def test_the_reason_counts_one_example_in_the_singular() -> None:
    plan = plan_strategy(AUTO, labels(1), labels(1), TEXT_RULE)

    assert "1 training example," in plan.reason
    assert "1 validation example," in plan.reason


def test_a_compare_list_in_params_replaces_the_rules_companions_too() -> None:
    named = AUTO.model_copy(update={"auto": AutoConfig(compare=("linear_probe",))})
    off = AUTO.model_copy(update={"auto": AutoConfig(compare=())})

    assert plan_strategy(named, labels(8), labels(8), TEXT_RULE).candidates == ["contrastive", "linear_probe"]
    assert plan_strategy(off, labels(8), labels(8), TEXT_RULE).candidates == ["contrastive"]


def test_the_smallest_class_decides_not_the_average() -> None:
    plan = plan_strategy(AUTO, labels(100, "ab") + labels(8, "c"), labels(10, "abc"), TEXT_RULE)

    assert plan.candidates[0] == "contrastive"
    assert plan.fewest_train_per_class == 8


def test_a_class_missing_from_validation_counts_as_zero_and_skips_the_comparison() -> None:
    plan = plan_strategy(AUTO, labels(50), labels(10, "ab"), TEXT_RULE)

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

    plan = plan_strategy(custom, labels(50), labels(2), TEXT_RULE)

    assert plan.candidates == ["contrastive", "full", "linear_probe"]


def test_compare_left_null_takes_the_modalitys_list_and_an_empty_one_compares_nothing() -> None:
    from tlpipe.modalities import get_modality

    image_rule = get_modality("image").auto_rule
    none = AUTO.model_copy(update={"auto": AutoConfig(compare=())})

    assert plan_strategy(AUTO, labels(50), labels(20), image_rule).candidates == [image_rule.many, "linear_probe"]
    assert plan_strategy(none, labels(50), labels(20), TEXT_RULE).candidates == ["freeze_unfreeze"]


def test_a_named_strategy_is_trained_alone() -> None:
    named = TrainConfig(strategy="full")

    plan = plan_strategy(named, labels(50), labels(20), TEXT_RULE)

    assert plan.candidates == ["full"]
    assert plan.chosen == "full"


@pytest.mark.parametrize("strategy", TEXT_STRATEGIES)
def test_a_named_strategy_brings_its_recipe_where_params_yaml_leaves_keys_null(strategy: str) -> None:
    named = TrainConfig.model_validate(
        {"strategy": strategy, "epochs": None, "learning_rate": None, "head_learning_rate": None,
         "layer_decay": None, "freeze_unfreeze": {"head_epochs": None}, "batch_size": 8}
    )  # fmt: skip

    settings = settings_for(named, strategy, "text")

    for key, value in recipe(strategy).items():
        actual = getattr(settings, key)
        assert (actual.model_dump() if isinstance(value, dict) else actual) == value, key
    assert settings.batch_size == 8
    assert recipe_keys_used(named, strategy) == list(recipe_keys(strategy))
    assert set(RECIPE_KEYS) <= set(recipe_keys(strategy))


def test_a_value_set_in_params_yaml_overrides_the_recipe() -> None:
    named = TrainConfig.model_validate(
        {"strategy": "freeze_unfreeze", "epochs": 9, "learning_rate": None, "layer_decay": None}
    )

    settings = settings_for(named, "freeze_unfreeze", "text")

    assert settings.epochs == 9
    assert settings.layer_decay == recipe("freeze_unfreeze")["layer_decay"]
    used = recipe_keys_used(named, "freeze_unfreeze")
    assert "epochs" not in used and "layer_decay" in used and "freeze_unfreeze.head_epochs" in used


def test_recipe_and_user_settings_that_clash_are_refused_when_params_load() -> None:
    raw = {"train": {"strategy": "freeze_unfreeze", "epochs": 1}}  # the recipe's 1 head-only epoch leaves none

    with pytest.raises(ConfigError, match="train: .*head_epochs .*must be less than epochs"):
        parse_params(raw)


def test_freeze_unfreeze_named_without_layer_decay_takes_the_recipes() -> None:
    params = parse_params({"train": {"strategy": "freeze_unfreeze", "layer_decay": None}})

    assert settings_for(params.train, "freeze_unfreeze", "text").layer_decay == recipe("freeze_unfreeze")["layer_decay"]


def test_settling_keeps_the_best_validation_score_and_ties_go_to_the_rules_choice() -> None:
    plan = StrategyPlan("auto", ["freeze_unfreeze", "linear_probe"], "Rule.", 40, 10)

    assert plan.settle({"freeze_unfreeze": 0.90, "linear_probe": 0.90}) == "freeze_unfreeze"
    assert plan.settle({"freeze_unfreeze": 0.80, "linear_probe": 0.85}) == "linear_probe"
    assert plan.chosen == "linear_probe"
    assert plan.validation_macro_f1 == {"freeze_unfreeze": 0.80, "linear_probe": 0.85}
    assert "kept linear_probe" in plan.reason


@pytest.mark.parametrize("strategy", TEXT_STRATEGIES)
def test_each_candidate_runs_with_its_recipe_and_the_users_other_settings(strategy: str) -> None:
    settings = settings_for(AUTO, strategy, "text")

    assert settings.strategy == strategy
    for key, value in recipe(strategy).items():
        actual = getattr(settings, key)
        assert (actual.model_dump() if isinstance(value, dict) else actual) == value, key
    assert (settings.batch_size, settings.seed) == (8, 7)
