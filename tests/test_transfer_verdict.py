"""The negative-transfer verdict: the paired bootstrap of the macro-F1 gain, and what evaluate makes of it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import CLASS_WORDS, write_project
from sklearn.metrics import f1_score

from tlpipe.cli import run_stage
from tlpipe.stages import STAGES
from tlpipe.transfer_verdict import transfer_gain

# A word of another vocabulary for each class keyword, with the same meaning.
SYNONYMS = dict(
    zip(
        [word for words in CLASS_WORDS.values() for word in words],
        "bill reimbursement fee visa cost settled signin passphrase restore profile blocked pin "
        "package dispatch tracing delayed carrier carton".split(),
        strict=True,
    )
)


def predictions_with_accuracy(actual: np.ndarray, accuracy: float, classes: int, seed: int) -> np.ndarray:
    """``actual`` with a random ``1 - accuracy`` share of it replaced by another class."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(actual)) > accuracy
    return np.where(wrong, (actual + rng.integers(1, classes, len(actual))) % classes, actual)


def gain(model: np.ndarray, reference: np.ndarray, actual: np.ndarray, classes: int = 3, seed: int = 0):
    return transfer_gain(model, reference, actual, classes, "baseline", samples=2000, confidence=0.95, seed=seed)


def test_interval_contains_the_point_estimate_on_typical_data() -> None:
    actual = np.random.default_rng(2).integers(0, 3, 200)
    model = predictions_with_accuracy(actual, 0.8, 3, seed=3)
    reference = predictions_with_accuracy(actual, 0.7, 3, seed=4)

    result = gain(model, reference, actual)

    assert result.low < result.point < result.high
    assert result.point == pytest.approx(
        f1_score(actual, model, average="macro") - f1_score(actual, reference, average="macro")
    )


def test_identical_predictions_gain_nothing_and_are_not_called_help() -> None:
    actual = np.random.default_rng(5).integers(0, 3, 60)
    model = predictions_with_accuracy(actual, 0.7, 3, seed=6)

    result = gain(model, model.copy(), actual)

    assert result.point == result.low == result.high == 0.0
    assert result.verdict == "did_not_help"
    assert result.message.startswith("Transfer did not help here: macro-F1 +0.000 over the baseline")


def test_a_clearly_better_model_helped() -> None:
    actual = np.random.default_rng(7).integers(0, 3, 150)
    better, worse = predictions_with_accuracy(actual, 0.9, 3, seed=8), predictions_with_accuracy(actual, 0.5, 3, seed=9)

    result = gain(better, worse, actual)

    assert result.verdict == "helped"
    assert result.low > 0
    assert result.message.startswith("Transfer helped: macro-F1 +")
    assert "did not help" not in result.message


def test_a_clearly_worse_model_did_not_help_and_the_message_says_what_to_try() -> None:
    actual = np.random.default_rng(10).integers(0, 3, 150)
    worse = predictions_with_accuracy(actual, 0.5, 3, seed=11)
    better = predictions_with_accuracy(actual, 0.9, 3, seed=12)

    result = gain(worse, better, actual)

    assert result.verdict == "did_not_help"
    assert result.high <= 0
    assert f"interval {result.low:+.3f} to {result.high:+.3f} on 150 test examples" in result.message
    for advice in ("more labelled examples", "model.source", "`pretrain` stage", "linear_probe", "check the labels"):
        assert advice in result.message
    assert "valid production choice" in result.message


def test_a_small_gain_on_few_examples_is_inconclusive_and_asks_for_more_examples() -> None:
    actual = np.random.default_rng(13).integers(0, 3, 30)
    reference = predictions_with_accuracy(actual, 0.6, 3, seed=14)
    model = reference.copy()
    model[np.flatnonzero(model != actual)[:2]] = actual[model != actual][:2]  # two more right answers

    result = gain(model, reference, actual)

    assert result.low <= 0 < result.high
    assert result.verdict == "inconclusive"
    assert "not established at 95% confidence" in result.message
    assert "More test examples" in result.message


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    actual = np.random.default_rng(15).integers(0, 3, 80)
    model = predictions_with_accuracy(actual, 0.75, 3, seed=16)
    reference = predictions_with_accuracy(actual, 0.7, 3, seed=17)

    first, again = gain(model, reference, actual), gain(model, reference, actual)
    other = gain(model, reference, actual, seed=1)

    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_predictions_that_do_not_match_the_test_set_are_refused() -> None:
    with pytest.raises(ValueError, match="one prediction per test example from each model: got 2 and 3"):
        gain(np.array([0, 1]), np.array([0, 1, 2]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="Class ids must lie in 0..2"):
        gain(np.array([0, 3, 1]), np.array([0, 1, 2]), np.array([0, 1, 2]))


def source_without_the_keywords(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny BERT with a vocabulary from another domain: it has the synonyms, and reads each keyword as [UNK]."""
    shutil.copytree(tiny_model_dir, folder)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    for word, synonym in SYNONYMS.items():
        vocab[synonym] = vocab.pop(word)
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    return folder


def source_that_knows_the_synonyms(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny BERT made by hand to know the classes' words: each keyword and its synonym (added to the vocabulary)
    embedded on one axis per class, and blocks that pass embeddings through, so mean pooling keeps that axis."""
    import torch
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = BertModel.from_pretrained(tiny_model_dir)
    tokenizer.add_tokens(list(SYNONYMS.values()))
    model.resize_token_embeddings(len(tokenizer))
    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        embeddings[:, : len(CLASS_WORDS)] = 0.0  # the class axes are the keywords' alone
        axes = torch.eye(embeddings.shape[1])
        for axis, words in enumerate(CLASS_WORDS.values()):
            for word in words:
                embeddings[tokenizer.convert_tokens_to_ids([word, SYNONYMS[word]])] = axes[axis]
        for block in model.encoder.layer:  # residual connections alone: each block is then a LayerNorm
            for dense in (block.attention.output.dense, block.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def in_synonyms(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every class keyword replaced by its synonym."""
    return table.assign(text=[" ".join(SYNONYMS.get(word, word) for word in text.split()) for text in table["text"]])


def evaluate_project() -> dict:
    for stage in STAGES[: STAGES.index("evaluate") + 1]:
        run_stage(stage)
    return json.loads(Path("reports/metrics.json").read_text())


def test_a_source_that_cannot_read_the_keywords_is_told_transfer_did_not_help(
    project: Path, tiny_model_dir: Path, train_table, test_table, tmp_path_factory, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_without_the_keywords(tiny_model_dir, tmp_path_factory.mktemp("source") / "other-domain-bert")
    write_project(project, source, train_table, test_table)

    with caplog.at_level(logging.INFO, logger="tlpipe"):
        metrics = evaluate_project()

    gain = metrics["transfer"]["over_baseline"]
    assert metrics["baseline"]["macro_f1"] == 1.0  # TF-IDF reads the keywords the source cannot
    assert gain["verdict"] == "did_not_help"
    assert gain["high"] <= 0
    assert gain["samples"] == 2000 and gain["confidence"] == 0.95 and gain["examples"] == len(test_table)
    assert gain["point"] == pytest.approx(metrics["finetuned"]["macro_f1"] - metrics["baseline"]["macro_f1"])
    card = Path("reports/model_card.md").read_text()
    assert "## Did transfer help?\n\nTransfer did not help here: macro-F1 -" in card
    assert "`pretrain` stage" in card
    warnings = [r for r in caplog.records if r.name == "tlpipe.stages.evaluate" and r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [gain["message"]]


def test_a_source_that_knows_the_test_sets_synonyms_is_told_transfer_helped(
    project: Path, tiny_model_dir: Path, train_table, test_table, tmp_path_factory, caplog: pytest.LogCaptureFixture
) -> None:
    source = source_that_knows_the_synonyms(tiny_model_dir, tmp_path_factory.mktemp("source") / "synonym-bert")
    write_project(project, source, train_table, in_synonyms(test_table), {"train": {"strategy": "linear_probe"}})

    with caplog.at_level(logging.INFO, logger="tlpipe"):
        metrics = evaluate_project()

    gain = metrics["transfer"]["over_baseline"]
    assert metrics["baseline"]["macro_f1"] < 0.5  # TF-IDF never saw the synonyms
    assert gain["verdict"] == "helped"
    assert gain["low"] > 0
    card = Path("reports/model_card.md").read_text()
    assert f"## Did transfer help?\n\n{gain['message']}" in card
    assert "did not help" not in card.lower()
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "tlpipe.stages.evaluate"]
    assert (logging.INFO, gain["message"]) in logged
    assert not [message for level, message in logged if level >= logging.WARNING]
