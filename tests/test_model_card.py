"""The model card's sentences: a count reads "1 example" or "2 examples", never "1 examples"."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tlpipe.modalities import get_modality
from tlpipe.model_card import render_model_card
from tlpipe.model_selection import Folds
from tlpipe.wording import counted


def card_with_every_count(count: int) -> str:
    """A card whose every counted thing (labels, examples, pairs, epochs, classes) numbers ``count``."""
    labels = [f"label{i}" for i in range(count)]
    scores = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    classifier: dict[str, Any] = {
        "labels": labels,
        "source": "hf:tiny",
        "source_resolved": "hf:tiny@main",
        "source_weights_sha256": {"model.safetensors": "0" * 64},
        "strategy": "contrastive",
        "train_settings": {"epochs": count},
        "preprocess": {"max_length": 64},
        "strategy_choice": {
            "requested": "contrastive",
            "model_selection": {
                "method": "cross_validation",
                "reason": Folds("cross_validation", 3, 8, count, 0).reason,
            },
            "cross_validation": {"contrastive": {"mean": 1.0, "std": 0.0, "fold_scores": [1.0], "epochs": count}},
        },
        "pretraining": {
            "pretrained": True,
            "source_data": "data/source/train.csv",
            "source_data_sha256": "1" * 64,
            "source_examples": {"train": count, "validation": count},
            "source_classes": [f"topic{i}" for i in range(count)],
            "start_from": "hf:tiny@main",
            "strategy": "full",
            "settings": {"epochs": count},
            "source_validation_macro_f1": 1.0,
            "best_epoch": 1,
        },
    }
    history = {"body_tuning": {"pairs": count, "similar_pairs": 0, "epochs": count, "loss": "mnrl", "seconds": 1.0}}
    metrics = {
        "test_examples": count,
        "finetuned": {"macro_f1": 1.0, "accuracy": 1.0, "per_class": dict.fromkeys(labels, scores)},
        "baseline": {"macro_f1": 1.0, "accuracy": 1.0},
        "transfer": {"over_baseline": {"message": "Transfer helped."}},
    }
    counts = {"train": dict.fromkeys(labels, 1)}
    return render_model_card(classifier, history, metrics, counts, "abc", {"tlpipe": "0"}, get_modality("text"))


@pytest.mark.parametrize(
    ("count", "phrases"),
    [
        (
            1,
            [
                "one of 1 label:", "test split (1 example)", "1 training example and 1 validation example in 1 class ",
                "for 1 epoch;", "Contrastive phase: 1 pair (", "for 1 epoch,", "the chosen 1 epoch;",
                "The smallest class has 1 labelled example,",
            ],
        ),
        (
            2,
            [
                "one of 2 labels:", "test split (2 examples)",
                "2 training examples and 2 validation examples in 2 classes ", "for 2 epochs;",
                "Contrastive phase: 2 pairs (", "for 2 epochs,", "the chosen 2 epochs;",
                "The smallest class has 2 labelled examples,",
            ],
        ),
    ],
)  # fmt: skip
def test_the_card_counts_one_thing_in_the_singular_and_two_in_the_plural(count: int, phrases: list[str]) -> None:
    card = card_with_every_count(count)

    for phrase in phrases:
        assert phrase in card
    assert not re.search(r"\b1 (?:[a-z-]+ )?[a-z-]*[^s]s\b", card)  # no "1 examples", "1 validation examples"
    assert "(s)" not in card


def test_counted_takes_an_irregular_plural() -> None:
    assert [counted(n, "class", "classes") for n in (0, 1, 2)] == ["0 classes", "1 class", "2 classes"]


def _card_with_calibration(calibration: dict[str, Any]) -> str:
    """A card whose metrics hold ``calibration`` (merged into a raw-softmax record) and one prediction-set result."""
    labels = ["a", "b"]
    scores = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    test = {"ece_before": 0.1, "ece_after": 0.1, "nll_before": 0.5, "nll_after": 0.5}
    metrics = {
        "test_examples": 2,
        "finetuned": {"macro_f1": 1.0, "accuracy": 1.0, "per_class": dict.fromkeys(labels, scores)},
        "baseline": {"macro_f1": 1.0, "accuracy": 1.0},
        "transfer": {"over_baseline": {"message": "Transfer helped."}},
        "calibration": {
            "method": "temperature",
            "setting": "auto",
            "applied": False,
            "refused": None,
            "temperature": 1.0,
            "fitted_on": "the validation split (2 examples)",
            "test": test,
            **calibration,
        },  # fmt: skip
        "prediction_sets": {
            "coverage_target": 0.9,
            "threshold": 0.5,
            "all_labels": False,
            "test": {"coverage": 1.0, "mean_set_size": 1.0, "empty_share": 0.0, "singleton_share": 1.0, "examples": 2},
        },
    }
    classifier = {"labels": labels, "source": "hf:tiny", "source_resolved": "hf:tiny@main", "strategy": "full",
                  "source_weights_sha256": {"model.safetensors": "0" * 64},
                  "train_settings": {"epochs": 1}, "preprocess": {"max_length": 64}}  # fmt: skip
    counts = {"train": dict.fromkeys(labels, 1)}
    return render_model_card(classifier, {}, metrics, counts, "abc", {"tlpipe": "0"}, get_modality("text"))


def test_the_card_says_why_a_fitted_temperature_was_not_served() -> None:
    refused = "the temperature fitted on the validation split (2 examples) stopped at its bound (0.05): ..."

    card = _card_with_calibration({"refused": refused})
    applied = _card_with_calibration({"applied": True, "temperature": 1.5})
    declined = _card_with_calibration({"method": "none"})

    assert f"The bundle serves the raw softmax: {refused}" in card
    assert "divides the logits by a temperature of 1.500" in applied
    assert "raw softmax (`serving.calibration: none` (auto: this modality's choice" in declined
