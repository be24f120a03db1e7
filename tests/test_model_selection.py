"""Folds for model selection, and the choice of epochs from the folds' validation scores."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from tlpipe.config import SplitConfig
from tlpipe.datasets import INPUT, LABEL
from tlpipe.errors import DataError
from tlpipe.model_selection import FEWER_FOLDS_FROM, Folds, assign_folds, choose_epochs, with_threshold


def labelled(per_class: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{label} text {i}", label) for label, count in per_class.items() for i in range(count)]
    return pd.DataFrame(rows, columns=[INPUT, LABEL])


def test_few_labels_get_stratified_seeded_folds_covering_every_example() -> None:
    table = labelled({"a": 8, "b": 9, "c": 12})
    split = SplitConfig(folds=4, cross_validate_below=40, seed=3)

    folds = assign_folds(table, split)

    assert folds.cross_validates and folds.smallest_class == 8
    assert len(folds.fold_of_row) == len(table) and set(folds.fold_of_row) == {0, 1, 2, 3}
    for label in ("a", "b", "c"):
        per_fold = Counter(f for f, row in zip(folds.fold_of_row, table[LABEL], strict=True) if row == label)
        assert max(per_fold.values()) - min(per_fold.values()) <= 1  # stratified
    assert assign_folds(table, split) == folds
    assert assign_folds(table, split.model_copy(update={"seed": 4})).fold_of_row != folds.fold_of_row


def test_a_fold_validates_on_its_rows_and_trains_on_the_rest() -> None:
    table = labelled({"a": 8, "b": 8})
    folds = assign_folds(table, SplitConfig(folds=4, cross_validate_below=20))

    seen = []
    for fold in range(4):
        fit, valid = folds.split(table, fold)
        assert len(fit) + len(valid) == len(table)
        assert not set(fit[INPUT]) & set(valid[INPUT])
        assert sorted(valid[LABEL]) == ["a", "a", "b", "b"]
        seen += valid[INPUT].tolist()
    assert sorted(seen) == sorted(table[INPUT])  # every example validates exactly once


def test_enough_labels_keep_the_held_out_split(tmp_path: Path) -> None:
    folds = assign_folds(labelled({"a": 40, "b": 50}), SplitConfig(cross_validate_below=40))

    assert not folds.cross_validates and folds.fold_of_row == []
    assert "held-out validation split" in folds.reason
    folds.write(tmp_path / "folds.json")
    assert Folds.read(tmp_path / "folds.json") == folds


def test_always_holding_out_when_the_threshold_is_zero() -> None:
    assert assign_folds(labelled({"a": 4, "b": 4}), SplitConfig(cross_validate_below=0)).method == "holdout"


def test_a_null_threshold_takes_the_modalitys_and_a_set_one_stays() -> None:
    assert with_threshold(SplitConfig(), 30).cross_validate_below == 30
    assert with_threshold(SplitConfig(cross_validate_below=0), 30).cross_validate_below == 0
    with pytest.raises(ValueError, match="with_threshold"):
        assign_folds(labelled({"a": 4, "b": 4}), SplitConfig())


def test_a_class_smaller_than_the_fold_count_is_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match=r"split.folds is 5, but 'b' \(3\).*Lower split.folds"):
        assign_folds(labelled({"a": 8, "b": 3}), SplitConfig(folds=5, cross_validate_below=20))
    with pytest.raises(DataError, match=r"split.folds is auto \(3 folds\), but 'b' \(2\).*at least 2"):
        assign_folds(labelled({"a": 8, "b": 2}), SplitConfig(cross_validate_below=20))


@pytest.mark.parametrize(("smallest", "folds"), [(8, 3), (FEWER_FOLDS_FROM - 1, 3), (FEWER_FOLDS_FROM, 2), (64, 2)])
def test_auto_takes_three_folds_with_few_labels_and_two_from_forty_a_class(smallest: int, folds: int) -> None:
    chosen = assign_folds(labelled({"a": smallest, "b": smallest + 5}), SplitConfig(cross_validate_below=100))

    assert chosen.cross_validates and chosen.folds == folds and set(chosen.fold_of_row) == set(range(folds))
    assert f"{folds}-fold cross-validation" in chosen.reason
    named = assign_folds(labelled({"a": smallest, "b": smallest}), SplitConfig(folds=4, cross_validate_below=100))
    assert named.folds == 4  # a number in params.yaml is taken as it is


def history(scores: list[float], phases: list[str] | None = None) -> list[dict]:
    phases = phases or ["head"] * len(scores)
    return [
        {"epoch": i + 1, "phase": phase, "valid_macro_f1": score}
        for i, (score, phase) in enumerate(zip(scores, phases, strict=True))
    ]


def test_the_epoch_with_the_best_mean_over_folds_is_chosen() -> None:
    chosen = choose_epochs("linear_probe", [history([0.2, 0.6, 0.5]), history([0.4, 0.4, 0.7])])

    # means 0.3, 0.5, 0.6: the third epoch, although the first fold peaked at the second
    assert chosen.epochs == 3
    assert chosen.fold_scores == [0.5, 0.7]
    assert chosen.mean == pytest.approx(0.6) and chosen.std == pytest.approx(0.1414, abs=1e-4)
    assert chosen.mean_by_epoch == pytest.approx([0.3, 0.5, 0.6])


def test_ties_go_to_fewer_epochs_and_only_epochs_every_fold_reached_count() -> None:
    assert choose_epochs("full", [history([0.5, 0.5]), history([0.5, 0.5])]).epochs == 1
    stopped_early = choose_epochs("full", [history([0.1, 0.2, 0.9]), history([0.1, 0.3])])
    assert stopped_early.epochs == 2


def test_a_phased_strategy_is_never_cut_before_its_last_phase_starts() -> None:
    phases = ["head", "head", "all", "all"]
    chosen = choose_epochs("freeze_unfreeze", [history([0.9, 0.8, 0.5, 0.6], phases)] * 2)

    assert chosen.epochs == 4  # the head-only epochs scored best, but stopping there would be a linear probe
