"""Tuned bodies: shared only where the tuning would be the same, and averaged over the folds for a final model."""

from __future__ import annotations

from pathlib import Path

import pytest
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


class Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)
        self.register_buffer("position_ids", torch.arange(4))


def tuning(body: Body, value: float) -> dict:
    with torch.no_grad():
        body.linear.weight.fill_(value)
        body.linear.bias.fill_(-value)
    return {"pairs": 40, "similar_pairs": 20, "steps": 3, "seconds": 1.5, "epochs": 1, "loss": "cosine_similarity",
            "final_loss": value / 10}  # fmt: skip


def test_the_folds_average_is_their_element_wise_mean_and_the_final_run_loads_it_without_tuning(
    tmp_path: Path,
) -> None:
    bodies = store(tmp_path)
    folds = [(TEXTS[:2], LABELS[:2], 1.0), (TEXTS[1:], LABELS[1:], 2.0), (TEXTS[::2], LABELS[::2], 6.0)]
    for texts, labels, value in folds:
        body = Body()
        bodies.load_or_tune(body, texts, labels, CONTRASTIVE, lambda body=body, value=value: tuning(body, value))
    fold_keys = [bodies.key(texts, labels, CONTRASTIVE) for texts, labels, _ in folds]

    assert bodies.average(fold_keys, into=bodies.key(TEXTS, LABELS, CONTRASTIVE))
    final = Body()
    with torch.no_grad():
        final.position_ids.zero_()

    def must_not_tune() -> dict:
        raise AssertionError("the final body was tuned again")

    summary = bodies.load_or_tune(final, TEXTS, LABELS, CONTRASTIVE, must_not_tune)
    assert torch.equal(final.linear.weight, torch.full((2, 4), 3.0))
    assert torch.equal(final.linear.bias, torch.full((2,), -3.0))
    assert torch.equal(final.position_ids, torch.arange(4))  # integer buffers are copied, not averaged
    assert summary == {
        "method": "fold_average", "folds": 3, "pairs": 120, "similar_pairs": 60, "steps": 9, "seconds": 4.5,
        "epochs": 1, "loss": "cosine_similarity", "precision": "fp32", "final_loss": pytest.approx(0.3),
        "fold_bodies": [key[:12] for key in fold_keys],
    }  # fmt: skip


def test_no_average_is_written_when_a_fold_body_is_missing(tmp_path: Path) -> None:
    bodies = store(tmp_path)
    body = Body()
    bodies.load_or_tune(body, TEXTS[:2], LABELS[:2], CONTRASTIVE, lambda: tuning(body, 1.0))
    final_key = bodies.key(TEXTS, LABELS, CONTRASTIVE)

    assert not bodies.average([bodies.key(TEXTS[:2], LABELS[:2], CONTRASTIVE), "0" * 64], into=final_key)
    assert not bodies.path(final_key).exists()
