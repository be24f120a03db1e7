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
