"""Tuned bodies are shared only where the tuning would be the same: same data, labels and tuning settings."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tlpipe.config import TrainConfig
from tlpipe.feature_cache import FeatureCache
from tlpipe.tuned_bodies import TunedBodies

TEXTS = ["reset my password", "invoice is wrong", "parcel is late"]
LABELS = [0, 1, 2]
CONTRASTIVE = TrainConfig(strategy="contrastive", epochs=30, learning_rate=2e-5, head_learning_rate=1e-2, seed=3)


def store(folder: Path, snapshot_key: str = "weights-sha") -> TunedBodies:
    return TunedBodies(folder, FeatureCache(folder / "features", snapshot_key, preprocessing={"max_length": 32}))


def test_the_key_ignores_the_strategy_and_the_head_but_not_the_data_labels_or_tuning(tmp_path: Path) -> None:
    bodies = store(tmp_path)
    key = bodies.key(TEXTS, LABELS, CONTRASTIVE)
    lexical = CONTRASTIVE.model_copy(update={"strategy": "lexical_contrastive", "epochs": 12, "head_learning_rate": 1})

    assert bodies.key(TEXTS, LABELS, lexical) == key
    assert bodies.key(TEXTS[:2], LABELS[:2], CONTRASTIVE) != key
    assert bodies.key(TEXTS, [0, 0, 2], CONTRASTIVE) != key
    assert bodies.key(TEXTS, LABELS, CONTRASTIVE.model_copy(update={"learning_rate": 1e-5})) != key
    assert bodies.key(TEXTS, LABELS, CONTRASTIVE.model_copy(update={"seed": 4})) != key
    more_pairs = TrainConfig.model_validate(CONTRASTIVE.model_dump() | {"contrastive": {"pairs_per_example": 40}})
    assert bodies.key(TEXTS, LABELS, more_pairs) != key
    assert store(tmp_path, "other-weights").key(TEXTS, LABELS, CONTRASTIVE) != key


def test_a_second_strategy_tuning_alike_gets_the_first_ones_weights_without_tuning(tmp_path: Path) -> None:
    tuned = nn.Linear(4, 2)
    calls = []

    def tune() -> dict:
        calls.append(1)
        with torch.no_grad():
            tuned.weight.fill_(0.5)
        return {"pairs": 60, "final_loss": 0.1}

    bodies = store(tmp_path)
    first = bodies.load_or_tune(tuned, TEXTS, LABELS, CONTRASTIVE, tune)
    fresh = nn.Linear(4, 2)
    again = bodies.load_or_tune(fresh, TEXTS, LABELS, CONTRASTIVE.model_copy(update={"epochs": 5}), tune)

    assert calls == [1]
    assert first == {"pairs": 60, "final_loss": 0.1}
    assert again == {**first, "reused": True}
    assert torch.equal(fresh.weight, tuned.weight) and torch.equal(fresh.bias, tuned.bias)
    assert [p.name for p in tmp_path.iterdir()] == [f"{bodies.key(TEXTS, LABELS, CONTRASTIVE)}.safetensors"]
