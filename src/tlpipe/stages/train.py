"""Stage ``train``: fine-tune the snapshot on the prepared split and keep the best checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tlpipe.artifacts import atomic_directory, read_json, write_json
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.models.text import (
    TextClassifier,
    TextPreprocessor,
    load_pretrained,
    load_tokenizer,
    save_checkpoint,
)
from tlpipe.sources import verify_snapshot
from tlpipe.stages.prepare import LABELS, TRAIN, VALID
from tlpipe.training import TrainResult, fine_tune, seed_everything

log = logging.getLogger(__name__)


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, train: TrainConfig) -> TrainResult:
    """Train with ``train.strategy``; the best epoch on validation macro-F1 lands in ``paths.checkpoint``."""
    manifest = verify_snapshot(paths.snapshot)
    labels: list[str] = read_json(paths.prepared / LABELS, "prepare")
    fit, valid = read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)
    label_ids = {label: index for index, label in enumerate(labels)}
    tokenizer = load_tokenizer(paths.snapshot, model.trust_remote_code)
    seed_everything(train.seed)  # the new head's initial weights come from this seed
    classifier = load_pretrained(paths.snapshot, len(labels), train.dropout, model.trust_remote_code)
    metadata: dict[str, Any] = {
        "source": manifest["source"],
        "source_resolved": manifest["resolved"],
        "source_weights_sha256": manifest["weights_sha256"],
        "max_length": preprocess.max_length,
        "strategy": train.strategy,
    }

    with atomic_directory(paths.checkpoint) as staging:

        def keep_best(improved: TextClassifier, record: dict[str, Any]) -> None:
            save_checkpoint(improved, tokenizer, labels, staging, {**metadata, "best": record})

        result = fine_tune(
            classifier,
            TextPreprocessor(tokenizer, preprocess.max_length),
            fit[INPUT].tolist(),
            [label_ids[label] for label in fit[LABEL]],
            valid[INPUT].tolist(),
            [label_ids[label] for label in valid[LABEL]],
            train,
            keep_best,
        )
        _write_history(staging, result)
    log.info(
        "Best validation macro-F1 %.4f at epoch %d -> %s",
        result.best_macro_f1,
        result.best_epoch,
        paths.checkpoint,
    )
    return result


def _write_history(folder: Path, result: TrainResult) -> None:
    write_json(folder / "history.json", {"best_epoch": result.best_epoch, "epochs": result.history})
