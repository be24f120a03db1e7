"""A sweep's points come from its axes, and its verdict from validation scores alone."""

from __future__ import annotations

import pytest

from tlpipe.errors import ConfigError
from tlpipe.sweep_plan import (
    SweepRun,
    best_by_validation,
    comparison_markdown,
    parse_axes,
    run_from_experiment,
    sweep_points,
)


def test_axes_are_parsed_with_yaml_typed_values() -> None:
    axes = parse_axes(["train.learning_rate=1e-4,5.0e-5", "train.strategy=full,freeze_unfreeze", "train.epochs=3"])

    assert axes == {
        "train.learning_rate": [1e-4, 5e-5],
        "train.strategy": ["full", "freeze_unfreeze"],
        "train.epochs": [3],
    }


@pytest.mark.parametrize("specs", [["train.epochs"], ["=3"], ["train.epochs=3", "train.epochs=4"], []])
def test_malformed_axes_are_refused_with_the_form_to_use(specs: list[str]) -> None:
    with pytest.raises(ConfigError, match="sweep|axis"):
        parse_axes(specs)


def test_the_grid_holds_every_combination_and_a_sample_is_seeded_and_distinct() -> None:
    axes = {"a": [1, 2, 3], "b": ["x", "y"]}

    grid = sweep_points(axes)
    sample = sweep_points(axes, sample=4, seed=1)

    assert len(grid) == 6 and {tuple(p.values()) for p in grid} == {(a, b) for a in (1, 2, 3) for b in "xy"}
    assert sample == sweep_points(axes, sample=4, seed=1)
    assert len({tuple(p.values()) for p in sample}) == 4
    assert sweep_points(axes, sample=10) == grid


def metrics(valid: float, test: float) -> dict:
    return {
        "strategy_choice": {"chosen": "full", "validation_macro_f1": {"full": valid, "linear_probe": 0.99}},
        "finetuned": {"macro_f1": test},
        "baseline": {"macro_f1": 0.5},
    }


def test_the_best_run_is_chosen_on_validation_even_when_another_scores_higher_on_test() -> None:
    runs = [
        run_from_experiment("s-01", {"train.epochs": 3}, metrics(valid=0.80, test=0.95)),
        run_from_experiment("s-02", {"train.epochs": 5}, metrics(valid=0.90, test=0.85)),
        run_from_experiment("s-03", {"train.epochs": 8}, None),
    ]

    best = best_by_validation(runs)
    table = comparison_markdown(runs, best)

    assert best is not None and best.name == "s-02"
    assert runs[2] == SweepRun("s-03", {"train.epochs": 8}, None, None, None, None)
    assert "s-02 (best)" in table and "dvc exp apply s-02" in table and "| s-03 | train.epochs=8 | failed" in table
    assert table.index("s-02") < table.index("s-01")


def test_no_finished_run_means_no_best() -> None:
    assert best_by_validation([run_from_experiment("s-01", {}, None)]) is None
