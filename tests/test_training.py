"""Strategies train exactly the parameters they should, reproducibly, and keep the best epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from tlpipe.config import TrainConfig
from tlpipe.models.text import (
    TextPreprocessor,
    load_checkpoint,
    load_pretrained,
    load_tokenizer,
    save_checkpoint,
)
from tlpipe.training import Callbacks, fine_tune, predict_logits, seed_everything

LABELS = ["access", "billing", "shipping"]
FAST = TrainConfig(epochs=4, batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2, warmup_ratio=0.0, seed=3)


def build(tiny_model_dir: Path, seed: int = 0):
    seed_everything(seed)
    model = load_pretrained(tiny_model_dir, len(LABELS), dropout=0.0)
    return model, TextPreprocessor(load_tokenizer(tiny_model_dir), max_length=32)


def encode(table: pd.DataFrame) -> tuple[list[str], list[int]]:
    return table["text"].tolist(), [LABELS.index(label) for label in table["label"]]


def train_once(tiny_model_dir: Path, train_table, test_table, config: TrainConfig, seed: int = 0):
    model, preprocess = build(tiny_model_dir, seed)
    improvements: list[int] = []
    result = fine_tune(
        model,
        preprocess,
        *encode(train_table),
        *encode(test_table),
        config,
        Callbacks(on_improvement=lambda m, record: improvements.append(record["epoch"])),
    )
    return model, preprocess, result, improvements


def test_linear_probe_trains_only_the_head(tiny_model_dir, train_table, test_table) -> None:
    model, _, _, _ = train_once(
        tiny_model_dir,
        train_table,
        test_table,
        FAST.model_copy(update={"strategy": "linear_probe", "epochs": 1}),
    )

    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.weight", "head.bias"}


def test_linear_probe_leaves_the_body_weights_untouched(tiny_model_dir, train_table, test_table) -> None:
    before, _ = build(tiny_model_dir)
    after, _, _, _ = train_once(
        tiny_model_dir, train_table, test_table, FAST.model_copy(update={"strategy": "linear_probe"})
    )

    for (name, p_before), p_after in zip(before.body.named_parameters(), after.body.parameters(), strict=True):
        assert torch.equal(p_before, p_after), name
    assert not torch.equal(before.head.weight, after.head.weight)


def test_full_fine_tune_trains_every_parameter(tiny_model_dir, train_table, test_table) -> None:
    before, _ = build(tiny_model_dir)
    after, _, _, _ = train_once(tiny_model_dir, train_table, test_table, FAST)

    frozen = {name for name, p in after.named_parameters() if not p.requires_grad}
    assert frozen == {"body.pooler.dense.weight", "body.pooler.dense.bias"}  # unused by the classifier
    assert not torch.equal(before.body.embeddings.word_embeddings.weight, after.body.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("strategy", ["full", "linear_probe"])
def test_same_seed_gives_identical_training_on_cpu(tiny_model_dir, train_table, test_table, strategy) -> None:
    config = FAST.model_copy(update={"strategy": strategy, "epochs": 2})

    first = train_once(tiny_model_dir, train_table, test_table, config)[2]
    second = train_once(tiny_model_dir, train_table, test_table, config)[2]

    strip = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]  # noqa: E731
    assert strip(first.history) == strip(second.history)


def test_full_fine_tune_learns_the_toy_task_and_reports_each_improvement(
    tiny_model_dir, train_table, test_table
) -> None:
    model, _, result, improvements = train_once(
        tiny_model_dir, train_table, test_table, FAST.model_copy(update={"epochs": 8})
    )

    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_macro_f1 > 0.6  # chance is 1/3
    assert improvements[-1] == result.best_epoch
    assert improvements == sorted(improvements)


def test_checkpoint_round_trip_gives_the_same_logits(tiny_model_dir, tmp_path, train_table) -> None:
    model, preprocess = build(tiny_model_dir)
    save_checkpoint(model, preprocess.tokenizer, LABELS, tmp_path, {"max_length": 32})

    loaded, _, config = load_checkpoint(tmp_path)

    texts = train_table["text"].tolist()[:5]
    assert config["labels"] == LABELS
    assert torch.allclose(predict_logits(model, preprocess, texts, 2), predict_logits(loaded, preprocess, texts, 2))
    assert not list(tmp_path.glob("*.bin"))
