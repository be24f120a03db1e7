"""Label review: cleanlab on out-of-fold probe probabilities flags the labels that look wrong, and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import make_table, write_project

from tlpipe.cli import main, run_stage
from tlpipe.label_review import (
    GIVEN,
    GIVEN_PROBABILITY,
    SUGGESTED,
    conflicting_near_duplicates,
    out_of_fold_probabilities,
    review_labels,
)


def test_confident_learning_flags_the_flipped_labels_lowest_given_probability_first() -> None:
    names = ["cat", "dog", "fox"]
    labels = [name for name in names for _ in range(10)]
    probabilities = np.full((30, 3), 0.05)
    probabilities[np.arange(30), [names.index(label) for label in labels]] = 0.9
    labels[3], labels[14] = "fox", "cat"  # two wrong labels; the probabilities still say cat and dog
    probabilities[14] = [0.1, 0.9, 0.0]

    review = review_labels([f"item {i}" for i in range(30)], labels, probabilities, names, "text", 5)

    assert review.table["text"].tolist() == ["item 3", "item 14"]  # given-label probability 0.05, then 0.1
    assert review.table[SUGGESTED].tolist() == ["cat", "dog"] and review.table[GIVEN].tolist() == ["fox", "cat"]
    assert review.per_class == {"cat": 1, "dog": 0, "fox": 1}
    assert review.summary()["suspects"] == 2 and review.summary()["examples"] == 30


def test_near_duplicates_are_listed_only_when_their_labels_differ() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (30, 16))
    labels = [("cat", "dog", "fox")[row % 3] for row in range(30)]
    features[1] = features[0] * 1.001  # a near copy labelled dog, of a cat
    features[9] = features[6] + 1e-3  # a near copy labelled cat, of a cat: consistent, not listed
    features[20] = features[5] + 1e-3  # three near copies: fox, dog (20 % 3 == 2: fox), fox
    features[26] = features[5] - 1e-3

    assert conflicting_near_duplicates(features, labels) == [(0, 1)]
    labels[26] = "cat"
    assert conflicting_near_duplicates(features, labels) == [(0, 1), (5, 20, 26)]

    review = review_labels(
        [f"item {i}" for i in range(30)], labels, np.full((30, 3), 1 / 3), ["cat", "dog", "fox"], "text", 3, features
    )
    assert review.duplicates.values.tolist() == [
        [1, "item 0", "cat"], [1, "item 1", "dog"], [2, "item 5", "fox"], [2, "item 20", "fox"], [2, "item 26", "cat"]
    ]  # fmt: skip
    assert review.summary()["conflicting_duplicate_sets"] == 2
    assert review.summary()["conflicting_duplicate_examples"] == 5


def test_out_of_fold_probabilities_follow_the_features_and_refuse_a_class_of_one() -> None:
    rng = np.random.default_rng(0)
    labels = [0] * 12 + [1] * 12
    features = rng.normal(0, 1, (24, 16))
    features[:12, 0] += 5.0
    features[12:, 1] += 5.0

    probabilities = out_of_fold_probabilities(features, labels)

    assert probabilities.shape == (24, 2) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities.argmax(axis=1) == labels).all()
    with pytest.raises(ValueError, match="at least 3 examples in every class"):
        out_of_fold_probabilities(features[:14], labels[:14])  # two of the second class
    assert out_of_fold_probabilities(features[:15], labels[:15]).shape == (15, 2)  # three are enough


def test_the_review_stage_lists_the_flipped_training_labels_the_card_counts_them_and_the_data_stays(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame
) -> None:
    train = make_table(20)
    classes = sorted(set(train["label"]))
    flipped = [0, 25, 47]
    for row in flipped:
        train.loc[row, "label"] = classes[(classes.index(train.loc[row, "label"]) + 1) % len(classes)]
    write_project(project, tiny_model_dir, train, test_table, {"train": {"strategy": "linear_probe"}})
    raw = (project / "data" / "raw" / "train.csv").read_bytes()
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)

    assert main(["review-labels"]) == 0

    review = pd.read_csv(project / "reports" / "label_review" / "label_review.csv")
    summary = json.loads((project / "reports" / "label_review" / "summary.json").read_text())
    assert set(train.loc[flipped, "text"]) <= set(review["text"])
    assert review[GIVEN_PROBABILITY].is_monotonic_increasing
    assert not set(review["text"]) & set(test_table["text"])  # the test split is never reviewed
    assert summary["examples"] == len(train) and summary["suspects"] == len(review)
    assert sum(summary["suspects_per_class"].values()) == len(review)
    assert set(summary["suspects_per_class"]) == set(classes)
    assert (project / "data" / "raw" / "train.csv").read_bytes() == raw
    duplicates = pd.read_csv(project / "reports" / "label_review" / "conflicting_duplicates.csv")
    assert list(duplicates.columns) == ["duplicate_set", "text", "label"]
    assert summary["conflicting_duplicate_examples"] == len(duplicates)
    run_stage("train")
    run_stage("calibrate")
    run_stage("evaluate")
    card = (project / "reports" / "model_card.md").read_text()
    assert f"## Labels to check\n\n{len(review)} of the {len(train)} training labels look wrong (" in card


def test_a_class_too_small_to_hold_out_skips_the_review_and_says_why_without_stopping_the_pipeline(
    project: Path, tiny_model_dir: Path, train_table: pd.DataFrame, test_table: pd.DataFrame
) -> None:
    small = pd.concat(
        [train_table[train_table["label"] != "access"], train_table[train_table["label"] == "access"][:2]]
    )
    overrides = {"data": {"min_examples_per_class": 2}, "split": {"cross_validate_below": 100, "folds": 2}}
    write_project(project, tiny_model_dir, small, test_table, overrides)
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)

    summary = run_stage("review_labels")

    assert summary["skipped"].startswith("skipped: a class has 2 training examples")
    assert pd.read_csv(project / "reports" / "label_review" / "label_review.csv").empty


def test_the_card_counts_the_near_duplicate_sets_labelled_apart_and_says_nothing_of_none() -> None:
    from tlpipe.model_card import _label_review_lines

    review = {"suspects": 1, "examples": 30, "suspects_per_class": {"cat": 1, "dog": 0}}
    with_sets = {**review, "conflicting_duplicate_sets": 2, "conflicting_duplicate_examples": 5}

    assert "near-duplicate" not in "\n".join(_label_review_lines({**review, "conflicting_duplicate_sets": 0}))
    assert "2 sets of near-duplicate examples (5 examples) carry different labels" in "\n".join(
        _label_review_lines(with_sets)
    )
