"""Self-training in the pipeline: the pseudo_label stage labels an unlabelled pool, each fold from its own rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from factories import make_table, make_texts, write_images, write_project

import tlpipe.self_training as self_training
from tlpipe.cli import run_stage
from tlpipe.errors import ArtifactError, DataValidationError
from tlpipe.self_training import UNLABELLED, SelfTraining
from tlpipe.stages import pseudo_label, train
from tlpipe.stages.train import CandidateRun

CROSS_VALIDATED = {"train": {"strategy": "linear_probe"}, "split": {"cross_validate_below": 100, "folds": 3}}


def pool_texts() -> list[str]:
    return make_texts("billing", 5, offset=300) + make_texts("access", 5, offset=300)


class FakeSelfTraining:
    """Records what each call was given; call ``k`` pseudo-labels every ``k + 1``-th pool row with class 0."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, list[int], np.ndarray]] = []

    def __call__(self, features: np.ndarray, labels: list[int], pool: np.ndarray, seed: int = 0) -> SelfTraining:
        return self.at(features, labels, pool, 0.9, seed)

    def at(self, features: np.ndarray, labels: list[int], pool: np.ndarray, threshold: float, seed: int = 0) -> Any:
        assert threshold == 0.9  # the folds repeat the threshold chosen on every labelled row
        self.calls.append((features, labels, pool))
        step = len(self.calls)
        given = tuple(0 if row % step == 0 else UNLABELLED for row in range(len(pool)))
        return SelfTraining(0.9, {"off": 0.5, "0.9": 0.6}, {0: sum(label == 0 for label in given)}, None, given)


def write_pool(project: Path, texts: list[str]) -> None:
    """``texts`` as the unlabelled pool (the text column only), where ``paths.unlabelled`` looks."""
    (project / "data" / "unlabelled").mkdir(parents=True)
    pd.DataFrame({"text": texts}).to_csv(project / "data" / "unlabelled" / "pool.csv", index=False)


def faked(monkeypatch: pytest.MonkeyPatch) -> FakeSelfTraining:
    """The stage's self-training replaced by a recording fake (the threshold's choice and the folds' repeats)."""
    fake = FakeSelfTraining()
    monkeypatch.setattr(pseudo_label, "self_train", fake)
    monkeypatch.setattr(pseudo_label, "self_train_at", fake.at)
    return fake


def stages_before_training(project: Path, tiny_model_dir: Path, test_table: pd.DataFrame, overrides: dict) -> None:
    write_project(project, tiny_model_dir, make_table(8), test_table, overrides)
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)


def test_without_a_pool_nothing_is_pseudo_labelled_and_the_checkpoint_is_as_before(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame
) -> None:
    stages_before_training(project, tiny_model_dir, test_table, {"train": {"strategy": "linear_probe"}})

    summary = run_stage("pseudo_label")
    run_stage("train")

    assert summary["used"] is False and "data/unlabelled has no unlabelled pool" in summary["reason"]
    choice = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())["strategy_choice"]
    assert "self_training" not in choice  # metrics.json and the model card stay as they were without a pool


def test_each_fold_self_trains_on_its_own_rows_and_train_adds_the_rows_to_training_never_to_validation(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages_before_training(project, tiny_model_dir, test_table, CROSS_VALIDATED)
    labelled = pd.read_csv(project / "data" / "prepared" / "train.csv")
    already = [labelled["input"][0], test_table["text"][0]]  # a labelled text and a test text: both left out
    write_pool(project, [*pool_texts(), *already])
    fake = faked(monkeypatch)

    summary = run_stage("pseudo_label")

    fold_of_row = np.array(json.loads((project / "data" / "prepared" / "folds.json").read_text())["fold_of_row"])
    everything, *per_fold = fake.calls
    assert summary["pool_examples"] == 10 and summary["left_out"] == 2 and len(everything[2]) == 10
    assert len(per_fold) == summary["folds"] == 3
    for fold, (features, labels, _) in enumerate(per_fold):
        assert np.array_equal(features, everything[0][fold_of_row != fold])
        assert labels == np.array(everything[1])[fold_of_row != fold].tolist()
    tables = project / "data" / "pseudo_labels"
    assert len(pd.read_csv(tables / "final.csv")) == 10  # the first call labels every pool row
    assert [len(pd.read_csv(tables / f"fold_{fold}.csv")) for fold in range(3)] == [5, 4, 3]

    seen: list[tuple[set[str], set[str]]] = []
    real_train = CandidateRun.train

    def recording(self: CandidateRun, *args: Any, **kwargs: Any) -> Any:
        seen.append((set(self.fit["input"]), set(self.valid["input"])))
        return real_train(self, *args, **kwargs)

    monkeypatch.setattr(CandidateRun, "train", recording)
    run_stage("train")

    pool = set(pool_texts())
    folds, final = seen[:3], seen[3]
    for fold, (fit, valid) in enumerate(folds):
        assert len(fit & pool) == len(pd.read_csv(tables / f"fold_{fold}.csv")) and not valid & pool
    assert pool <= final[0]
    for stage in ("calibrate", "evaluate"):
        run_stage(stage)
    card = (project / "reports" / "model_card.md").read_text()
    assert "## Unlabelled examples" in card and "also trained on 10 pseudo-labelled examples: `access` 10." in card
    assert "self-trained at that threshold on its own training rows only (5, 4, 3 pseudo-labels)" in card


def test_when_the_labelled_rows_choose_off_no_fold_self_trains_and_nothing_is_added(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages_before_training(project, tiny_model_dir, test_table, CROSS_VALIDATED)
    write_pool(project, pool_texts())
    off = SelfTraining(None, {"off": 0.7, "0.9": 0.6})
    monkeypatch.setattr(pseudo_label, "self_train", lambda *args, **kwargs: off)
    monkeypatch.setattr(pseudo_label, "self_train_at", lambda *args, **kwargs: pytest.fail("a fold self-trained"))

    summary = run_stage("pseudo_label")
    run_stage("train")

    assert summary["used"] and summary["threshold"] is None and summary["folds"] == 0
    assert pd.read_csv(project / "data" / "pseudo_labels" / "final.csv").empty
    history = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())
    assert history["strategy_choice"]["self_training"]["description"].startswith("self-training off")


def test_train_refuses_pseudo_labels_made_from_other_training_data(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages_before_training(project, tiny_model_dir, test_table, CROSS_VALIDATED)
    write_pool(project, pool_texts())
    faked(monkeypatch)
    run_stage("pseudo_label")
    write_project(project, tiny_model_dir, make_table(9), test_table, CROSS_VALIDATED)
    run_stage("validate")
    run_stage("prepare")

    with pytest.raises(ArtifactError, match=r"other training data.*Run `tlpipe pseudo-label`"):
        train.run(*_train_sections(project))


def test_a_pool_of_texts_all_labelled_already_is_refused_by_name(
    project: Path, tiny_model_dir: Path, test_table: pd.DataFrame
) -> None:
    stages_before_training(project, tiny_model_dir, test_table, {"train": {"strategy": "linear_probe"}})
    write_pool(project, test_table["text"].tolist())

    with pytest.raises(DataValidationError, match=r"data/unlabelled/pool.csv: every example in it is already"):
        run_stage("pseudo_label")


def test_an_image_pool_folder_is_pseudo_labelled_by_the_real_self_training_and_trained_on(
    image_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_images(image_project / "data" / "unlabelled" / "pool", 3, 200)
    scores = {"off": 0.1, "0.7": 0.9}  # the real fits, at a threshold the tiny random body's folds would not choose
    monkeypatch.setattr(self_training, "_fold_scores", lambda *args: scores)
    params = yaml.safe_load((image_project / "params.yaml").read_text())
    params["train"].update(strategy="linear_probe", learning_rate=None, layer_decay=None, freeze_unfreeze={})
    (image_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("validate", "prepare", "fetch_model"):
        run_stage(stage)

    summary = run_stage("pseudo_label")
    run_stage("train")

    assert summary["used"] and summary["pool_examples"] == 9 and summary["threshold"] == 0.7
    assert summary["folds"] == 3 and summary["fold_scores"] == scores
    tables = image_project / "data" / "pseudo_labels"
    pool = {path.as_posix() for path in (image_project / "data" / "unlabelled" / "pool").rglob("*.*")}
    for name in ["final.csv", *(f"fold_{fold}.csv" for fold in range(3))]:
        rows = pd.read_csv(tables / name)
        assert {(image_project / path).as_posix() for path in rows["input"]} <= pool
        assert set(rows["label"]) <= {"blue", "green", "red"}
    choice = json.loads((image_project / "models" / "checkpoint" / "classifier.json").read_text())["strategy_choice"]
    assert choice["self_training"]["description"] == summary["description"]


def _train_sections(project: Path) -> tuple[Any, ...]:
    from tlpipe.params import load_params

    params = load_params(project / "params.yaml")
    return params.paths, params.model, params.preprocess, params.train
