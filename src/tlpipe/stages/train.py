"""Stage ``train``: fine-tune the snapshot on the prepared split and keep the best checkpoint.

Every epoch leaves a resumable state in ``paths.train_state``; rerunning the stage after an
interruption continues from it. Per-epoch metrics go to DVCLive in ``paths.training_log``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json
from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.feature_cache import FeatureCache
from tlpipe.models.text import TextClassifier, TextPreprocessor, load_pretrained, load_tokenizer, save_checkpoint
from tlpipe.sources import verify_snapshot
from tlpipe.stages.prepare import LABELS, TRAIN, VALID
from tlpipe.strategies import STRATEGIES
from tlpipe.train_state import TrainStateStore
from tlpipe.training import Callbacks, TrainResult, fine_tune, seed_everything

log = logging.getLogger(__name__)


def run(paths: PathsConfig, model: ModelConfig, preprocess: PreprocessConfig, train: TrainConfig) -> TrainResult:
    """Train with ``train.strategy``; the best epoch on validation macro-F1 lands in ``paths.checkpoint``."""
    manifest = verify_snapshot(paths.snapshot)
    labels: list[str] = read_json(paths.prepared / LABELS, "prepare")
    fit, valid = read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / VALID)
    label_ids = {label: index for index, label in enumerate(labels)}
    tokenizer = load_tokenizer(paths.snapshot, model.trust_remote_code)
    strategy = STRATEGIES[train.strategy]
    seed_everything(train.seed)  # the new head's (and a scratch body's) initial weights come from this seed
    classifier = load_pretrained(
        paths.snapshot, len(labels), train.dropout, model.trust_remote_code, pretrained=strategy.pretrained
    )
    text_preprocessor = TextPreprocessor(tokenizer, preprocess.max_length)
    snapshot_key = json.dumps(manifest["files"], sort_keys=True)  # weights, tokenizer and config
    state = TrainStateStore(paths.train_state, _fingerprint(paths, snapshot_key, preprocess, train))
    metadata: dict[str, Any] = {
        "source": manifest["source"],
        "source_resolved": manifest["resolved"],
        "source_weights_sha256": manifest["weights_sha256"],
        "max_length": preprocess.max_length,
        "strategy": train.strategy,
    }

    def keep_best(improved: TextClassifier, record: dict[str, Any]) -> None:
        with atomic_directory(state.best_dir) as staging:
            save_checkpoint(improved, tokenizer, labels, staging, {**metadata, "best": record})

    with _TrainingLog(paths.training_log, train) as training_log:
        result = fine_tune(
            classifier,
            text_preprocessor,
            fit[INPUT].tolist(),
            [label_ids[label] for label in fit[LABEL]],
            valid[INPUT].tolist(),
            [label_ids[label] for label in valid[LABEL]],
            train,
            Callbacks(on_improvement=keep_best, on_epoch_end=training_log.log_epoch),
            state=state,
            feature_cache=FeatureCache(paths.feature_cache, snapshot_key, text_preprocessor.describe()),
        )
    with atomic_directory(paths.checkpoint) as staging:
        shutil.copytree(state.best_dir, staging, dirs_exist_ok=True)
        write_json(
            staging / "history.json",
            {"best_epoch": result.best_epoch, "stopped_early": result.stopped_early, "epochs": result.history},
        )
    state.clear()
    log.info(
        "Best validation macro-F1 %.4f at epoch %d -> %s", result.best_macro_f1, result.best_epoch, paths.checkpoint
    )
    return result


def _fingerprint(paths: PathsConfig, snapshot_key: str, preprocess: PreprocessConfig, train: TrainConfig) -> str:
    """What a saved training state must match to be resumed: settings, body weights and data."""
    digest = hashlib.sha256()
    for part in (
        train.model_dump_json(),
        preprocess.model_dump_json(),
        snapshot_key,
        sha256_file(paths.prepared / TRAIN),
        sha256_file(paths.prepared / VALID),
        sha256_file(paths.prepared / LABELS),
    ):
        digest.update(part.encode())
    return digest.hexdigest()


class _TrainingLog:
    """DVCLive logging of each epoch; ``dvc plots show`` draws the curves from ``paths.training_log``."""

    def __init__(self, folder: Path, train: TrainConfig) -> None:
        self.folder, self.train = folder, train

    def __enter__(self) -> _TrainingLog:
        from dvclive import Live

        # A fresh log each run: a resumed run replays the epochs it restores, so steps stay in order.
        self.live = Live(dir=str(self.folder), resume=False, save_dvc_exp=False, dvcyaml=None, report=None)
        self.live.log_params({"strategy": self.train.strategy, "seed": self.train.seed})
        return self

    def log_epoch(self, record: dict[str, Any]) -> None:
        self.live.step = record["epoch"] - 1
        self.live.log_metric("train/loss", record["train_loss"])
        self.live.log_metric("valid/macro_f1", record["valid_macro_f1"])
        self.live.make_summary()

    def __exit__(self, *exc_info: object) -> None:
        self.live.end()
