"""Each stage's run() on files in a temporary project, with the tiny model as the pretrained source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from factories import write_project
from tokenizers import Tokenizer

from tlpipe import training
from tlpipe.cli import run_stage
from tlpipe.errors import ArtifactError, DataValidationError, ExportParityError
from tlpipe.metrics import macro_f1
from tlpipe.modalities.text.modality import TextModality
from tlpipe.onnx_export import ParityReport
from tlpipe.stages import STAGES

# Contrastive tuning's pairs per example in the tests that tune in every fold: what they check does not hang on
# how many there are, and the default's 20 made the pair tuning most of their time.
PAIRS_PER_EXAMPLE = 4


def run_all(until: str = "export") -> None:
    for stage in STAGES[: STAGES.index(until) + 1]:
        run_stage(stage)


def snapshot_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_pipeline_writes_a_bundle_that_onnxruntime_serves_alone(finished_project: Path) -> None:
    bundle = finished_project / "models" / "bundle"
    assert {p.name for p in bundle.iterdir()} >= {
        "README.md", "labels.json", "manifest.json", "metadata.json", "model.onnx", "parity.json", "predict.py",
        "preprocessing.json", "requirements.txt", "tokenizer.json",
    }  # fmt: skip
    labels = json.loads((bundle / "labels.json").read_text())
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    tokenizer.enable_truncation(preprocessing["max_length"])
    tokenizer.enable_padding()
    test = pd.read_csv(finished_project / "data" / "prepared" / "test.csv")
    encodings = tokenizer.encode_batch(test["input"].tolist())
    feeds = {
        name: np.array([getattr(e, "ids" if name == "input_ids" else name) for e in encodings], dtype=np.int64)
        for name in preprocessing["inputs"]
    }
    predicted = ort.InferenceSession(str(bundle / "model.onnx")).run(["logits"], feeds)[0].argmax(axis=1)
    accuracy = float(np.mean([labels[i] == label for i, label in zip(predicted, test["label"], strict=True)]))
    parity = json.loads((bundle / "parity.json").read_text())
    assert accuracy == pytest.approx(parity["onnx_accuracy"])


def test_auto_with_few_labels_cross_validates_trains_on_every_label_says_why_and_exports_with_parity(
    project: Path, tiny_model_dir: Path, train_table, test_table, monkeypatch
) -> None:
    tunings = []
    tune_body = training.tune_body

    def counting_tune_body(*args, **kwargs):
        tunings.append(len(args[2]))  # the examples it tunes on
        return tune_body(*args, **kwargs)

    monkeypatch.setattr(training, "tune_body", counting_tune_body)
    write_project(
        project, tiny_model_dir, train_table, test_table,
        {
            "split": {"cross_validate_below": 40, "folds": 3},
            "train": {"strategy": "auto", "learning_rate": 1e-2, "epochs": None, "head_learning_rate": None,
                      "contrastive": {"pairs_per_example": PAIRS_PER_EXAMPLE}},
        },
    )  # fmt: skip

    run_all()

    prepared = project / "data" / "prepared"
    assert len(pd.read_csv(prepared / "train.csv")) == len(train_table)  # every label trains the final model
    assert pd.read_csv(prepared / "valid.csv").empty
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    choice = metrics["strategy_choice"]
    assert choice["model_selection"]["method"] == "cross_validation"
    assert "fewer than split.cross_validate_below (40)" in choice["model_selection"]["reason"]
    # each example validates once across the folds, so every class has enough to compare on
    assert choice["candidates"] == ["contrastive", "lexical_contrastive", "linear_probe", "lexical_probe"]
    assert "fewer than auto.few_labels_below (40)" in choice["reason"]
    assert "Cross-validated macro-F1: contrastive" in choice["reason"]
    scores = choice["cross_validation"]
    assert set(scores) == {"contrastive", "lexical_contrastive", "linear_probe", "lexical_probe"}
    for name, score in scores.items():
        assert len(score["fold_scores"]) == 3 and len(score["mean_by_epoch"]) == 30  # the recipes' 30 head epochs
        assert choice["validation_macro_f1"][name] == pytest.approx(score["mean"])
    chosen = choice["chosen"]
    assert chosen == max(scores, key=lambda name: (scores[name]["mean"], name == "contrastive"))
    history = json.loads((project / "models" / "checkpoint" / "history.json").read_text())
    assert len(history["epochs"]) == scores[chosen]["epochs"]  # the final model trains the chosen epochs
    assert all(epoch["valid_macro_f1"] is None for epoch in history["epochs"])
    # lexical_contrastive's folds reuse the bodies contrastive's folds tuned; the final model tunes its own
    tunes_finally = chosen in ("contrastive", "lexical_contrastive")
    assert len(tunings) == 3 + tunes_finally
    assert sum(tunings[:3]) == 2 * len(train_table)  # each example trains in two of the three folds
    assert tunings[3:] == ([len(train_table)] if tunes_finally else [])
    if tunes_finally:
        assert history["body_tuning"]["pairs"] == PAIRS_PER_EXAMPLE * len(train_table)  # pairs from every label
    parity = json.loads((project / "reports" / "parity.json").read_text())
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    card = (project / "reports" / "model_card.md").read_text()
    assert f"Strategy: **{chosen}**, chosen by `train.strategy: auto`." in card
    assert choice["reason"] in card and choice["model_selection"]["reason"] in card
    assert f"| {chosen} (chosen) | {scores[chosen]['mean']:.4f} ± {scores[chosen]['std']:.4f} |" in card
    assert f"epochs {scores[chosen]['epochs']} (cross-validated)" in card
    assert f"| this model ({chosen}) | {metrics['finetuned']['macro_f1']:.4f} |" in card
    assert (project / "models" / "bundle" / "README.md").read_text() == card
    assert not (project / "models" / "train_state").exists()
    # calibrate fitted on the chosen strategy's out-of-fold logits: row by row, each from the fold that held it out
    held_out = json.loads((project / "models" / "checkpoint" / "held_out_logits.json").read_text())
    fold_of_row = json.loads((prepared / "folds.json").read_text())["fold_of_row"]
    label_ids = {label: i for i, label in enumerate(json.loads((prepared / "labels.json").read_text()))}
    assert held_out["labels"] == [label_ids[label] for label in pd.read_csv(prepared / "train.csv")["label"]]
    assert held_out["epochs"] == scores[chosen]["epochs"]
    predicted, actual = np.asarray(held_out["logits"]).argmax(axis=1), np.asarray(held_out["labels"])
    for fold, fold_score in enumerate(scores[chosen]["fold_scores"]):
        rows = np.asarray(fold_of_row) == fold
        assert macro_f1(predicted[rows], actual[rows], len(label_ids)) == pytest.approx(fold_score)
    calibration = json.loads((project / "models" / "calibration.json").read_text())
    assert calibration["fitted_on"] == {
        "source": "out_of_fold",
        "examples": len(train_table),
        "description": f"the out-of-fold logits of {len(train_table)} training examples (3 folds, "
        f"{scores[chosen]['epochs']} epochs)",
    }
    plots = project / "reports" / "training" / "plots" / "metrics"
    assert (plots / "cv" / "contrastive" / "macro_f1.tsv").is_file()
    from importlib.metadata import version

    assert f"sentence-transformers {version('sentence-transformers')}, tokenizers" in card


@pytest.mark.parametrize("fold_body_missing", [False, True])
def test_fold_average_gives_the_final_model_the_mean_of_the_folds_bodies_without_a_fourth_tuning(
    project: Path, tiny_model_dir: Path, train_table, test_table, monkeypatch, fold_body_missing: bool
) -> None:
    import tlpipe.stages.train as train_stage
    from tlpipe.checkpoint import load_checkpoint

    tuned_bodies = []
    tune_body = training.tune_body

    def recording_tune_body(model, *args, **kwargs):
        summary = tune_body(model, *args, **kwargs)
        tuned_bodies.append({name: tensor.detach().clone() for name, tensor in model.body.state_dict().items()})
        return summary

    monkeypatch.setattr(training, "tune_body", recording_tune_body)
    if fold_body_missing:  # as when a fold's state was resumed without its body in the store
        monkeypatch.setattr(train_stage.TunedBodies, "average", lambda self, sources, into: False)
    write_project(
        project, tiny_model_dir, train_table, test_table,
        {
            "split": {"cross_validate_below": 40, "folds": 3},
            "train": {"strategy": "contrastive", "epochs": 3,
                      "contrastive": {"final_body": "fold_average", "pairs_per_example": PAIRS_PER_EXAMPLE}},
        },
    )  # fmt: skip

    run_all("train" if fold_body_missing else "evaluate")

    history = json.loads((project / "models" / "checkpoint" / "history.json").read_text())
    if fold_body_missing:
        assert len(tuned_bodies) == 4  # the final body was tuned on every example instead
        assert "method" not in history["body_tuning"]
        return
    assert len(tuned_bodies) == 3  # the folds'; none for the final model
    final_body = load_checkpoint(project / "models" / "checkpoint")[0].body.state_dict()
    for name, tensor in final_body.items():
        if tensor.is_floating_point():
            mean = torch.stack([fold[name].double() for fold in tuned_bodies]).mean(dim=0).to(tensor.dtype)
            assert torch.allclose(tensor, mean, atol=1e-6), name
    assert any(not torch.equal(tuned_bodies[0][name], tuned_bodies[1][name]) for name in final_body)  # folds differ
    tuning = history["body_tuning"]
    assert tuning["method"] == "fold_average" and tuning["folds"] == 3
    assert tuning["pairs"] == PAIRS_PER_EXAMPLE * 2 * len(train_table)  # each example is in two folds' training part
    card = (project / "reports" / "model_card.md").read_text()
    assert "the element-wise mean of the 3 cross-validation folds' tuned encoders" in card
    assert "their encoders averaged into its encoder" in card
    assert not (project / "models" / "train_state").exists()


def test_an_interrupted_cross_validation_resumes_without_retraining_finished_folds(
    project: Path, tiny_model_dir: Path, train_table, test_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tlpipe.stages.train as train_stage

    write_project(
        project, tiny_model_dir, train_table, test_table,
        {"split": {"cross_validate_below": 40, "folds": 3}, "train": {"strategy": "full", "epochs": 2}},
    )  # fmt: skip
    run_all(until="fetch_model")

    def interrupted(strategy: str, histories: list) -> None:
        raise KeyboardInterrupt  # after the last fold, before the choice

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(train_stage, "choose_epochs", interrupted)
        run_stage("train")
    resumed_after = []
    fine_tune = train_stage.fine_tune

    def recording(*args, **kwargs):
        result = fine_tune(*args, **kwargs)
        resumed_after.append(result.resumed_after_epoch)
        return result

    monkeypatch.setattr(train_stage, "fine_tune", recording)
    run_stage("train")

    assert resumed_after[:3] == [2, 2, 2]  # the three folds came back from their saved states
    assert resumed_after[3:] == [0]  # only the final model trained
    assert not (project / "models" / "train_state").exists()


def test_folds_that_do_not_match_the_train_table_are_refused_with_the_fix(
    project: Path, tiny_model_dir: Path, train_table, test_table
) -> None:
    write_project(project, tiny_model_dir, train_table, test_table, {"split": {"cross_validate_below": 40}})
    run_all(until="fetch_model")
    train_csv = project / "data" / "prepared" / "train.csv"
    pd.read_csv(train_csv).iloc[:-1].to_csv(train_csv, index=False)

    refusal = r"folds.json assigns folds to 36 examples, but .*train.csv has 35.*tlpipe prepare"
    with pytest.raises(ArtifactError, match=refusal):
        run_stage("train")
    assert not (project / "models" / "checkpoint").exists()


def test_a_null_threshold_is_the_text_modalitys(project: Path, tiny_model_dir: Path, train_table, test_table) -> None:
    write_project(project, tiny_model_dir, train_table, test_table, {"split": {"cross_validate_below": None}})
    run_all(until="prepare")

    folds = json.loads((project / "data" / "prepared" / "folds.json").read_text())
    assert folds["cross_validate_below"] == TextModality.cross_validate_below
    assert folds["method"] == "cross_validation"


def test_auto_compares_with_the_probe_on_validation_and_keeps_the_better(
    project: Path, tiny_model_dir: Path, train_table, test_table
) -> None:
    auto = {"few_labels_below": 0, "compare": ["linear_probe"], "compare_min_valid_per_class": 1}
    write_project(
        project, tiny_model_dir, train_table, test_table,
        {"split": {"cross_validate_below": 0}, "train": {"strategy": "auto", "auto": auto}},
    )  # fmt: skip

    run_all(until="evaluate")

    choice = json.loads((project / "reports" / "metrics.json").read_text())["strategy_choice"]
    scores = choice["validation_macro_f1"]
    assert choice["candidates"] == ["freeze_unfreeze", "linear_probe"]
    assert choice["chosen"] == max(choice["candidates"], key=lambda name: (scores[name], name == "freeze_unfreeze"))
    config = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())
    assert config["strategy"] == choice["chosen"]
    assert config["best"]["valid_macro_f1"] == scores[choice["chosen"]]
    plots = project / "reports" / "training" / "plots" / "metrics"
    assert (plots / "valid" / "macro_f1.tsv").is_file()
    assert (plots / "linear_probe" / "valid" / "macro_f1.tsv").is_file()
    assert not (project / "models" / "train_state").exists()


def test_training_again_leaves_the_same_checkpoint_byte_for_byte_and_its_times_beside_the_training_log(
    project: Path, tiny_model_dir: Path, train_table, test_table
) -> None:
    # The checkpoint is a DVC output: if a wall-clock time were in it, training again to the same model would change
    # its checksum, and every stage after train would run again.
    write_project(project, tiny_model_dir, train_table, test_table, {"train": {"strategy": "full", "epochs": 2}})
    run_all(until="train")
    checkpoint = project / "models" / "checkpoint"
    first = {path.name: path.read_bytes() for path in checkpoint.iterdir()}
    shutil.rmtree(checkpoint)

    run_stage("train")

    assert {path.name: path.read_bytes() for path in checkpoint.iterdir()} == first
    timing = json.loads((project / "reports" / "training" / "time.json").read_text())
    assert [(epoch["epoch"], epoch["seconds"] > 0) for epoch in timing["epochs"]] == [(1, True), (2, True)]
    assert timing["taken"] >= sum(epoch["seconds"] for epoch in timing["epochs"])


def test_the_fast_preset_trains_only_heads_on_the_frozen_body_and_its_time_was_estimated_first(
    project: Path, tiny_model_dir: Path, train_table, test_table
) -> None:
    auto = {"few_labels_below": 0, "compare_min_valid_per_class": 1}
    write_project(
        project, tiny_model_dir, train_table, test_table,
        {"preset": "fast", "split": {"cross_validate_below": 0}, "train": {"strategy": "auto", "auto": auto}},
    )  # fmt: skip

    run_all(until="train")

    config = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())
    assert config["strategy_choice"]["candidates"] == ["linear_probe", "lexical_probe"]
    assert config["strategy"] in ("linear_probe", "lexical_probe")
    seconds = json.loads((project / "reports" / "training" / "time.json").read_text())
    assert seconds["estimated"]["runs"] == 2  # each probe once on the held-out split
    assert seconds["estimated"]["setup_per_run"] > 0  # measured: loading the tiny body took some time
    assert 0 < seconds["estimated"]["low"] <= seconds["estimated"]["high"]
    assert seconds["taken"] > 0


def test_bundle_metadata_records_source_data_version_and_metrics(finished_project: Path, tiny_model_dir: Path) -> None:
    metadata = json.loads((finished_project / "models" / "bundle" / "metadata.json").read_text())
    snapshot = json.loads((finished_project / "data" / "pretrained" / "tlpipe-snapshot.json").read_text())
    data_version = json.loads((finished_project / "data" / "prepared" / "data.json").read_text())["raw_sha256"]
    assert metadata["source_model"] == f"path:{tiny_model_dir.name}"  # no path of the training machine
    assert metadata["source_weights_sha256"] == snapshot["weights_sha256"]
    assert metadata["data_version"] == data_version
    assert set(metadata["metrics"]) >= {"finetuned", "baseline"}
    assert metadata["versions"]["onnxruntime"]


def test_evaluate_writes_metrics_for_model_and_baseline_and_a_png(finished_project: Path) -> None:
    metrics = json.loads((finished_project / "reports" / "metrics.json").read_text())
    for model in ("finetuned", "baseline"):
        assert 0.0 <= metrics[model]["macro_f1"] <= 1.0
        assert set(metrics[model]["per_class"]) == {"access", "billing", "shipping"}
    assert metrics["baseline"]["macro_f1"] == 1.0  # keywords make the toy task easy for TF-IDF
    assert (finished_project / "reports" / "evaluation" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    predictions = pd.read_csv(finished_project / "reports" / "evaluation" / "predictions.csv")
    assert list(predictions.columns) == ["text", "actual", "finetuned", "baseline", "probability", "prediction_set"]
    assert predictions["probability"].between(1 / 3, 1.0).all()  # the calibrated top-1 probability of 3 labels
    assert (finished_project / "reports" / "evaluation" / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    calibration = json.loads((finished_project / "models" / "calibration.json").read_text())
    valid = pd.read_csv(finished_project / "data" / "prepared" / "valid.csv")
    assert calibration["fitted_on"]["source"] == "validation" and calibration["fitted_on"]["examples"] == len(valid)
    assert metrics["calibration"]["temperature"] == calibration["temperature"]
    assert 0.0 <= metrics["calibration"]["test"]["ece_after"] <= 1.0
    assert metrics["prediction_sets"]["test"]["examples"] == len(predictions)
    sizes = predictions["prediction_set"].fillna("").map(lambda cell: len([x for x in cell.split("|") if x]))
    assert metrics["prediction_sets"]["test"]["mean_set_size"] == pytest.approx(sizes.mean())


def test_bad_data_stops_validate_and_leaves_earlier_outputs_untouched(
    project: Path, params_writer, tiny_model_dir, train_table, test_table
) -> None:
    run_all(until="prepare")
    prepared_before = snapshot_of(project / "data" / "prepared")
    bad_test = test_table.copy()
    bad_test.loc[0, "label"] = "refunds"
    bad_test.loc[1, "text"] = ""
    params_writer(project, tiny_model_dir, train_table, bad_test)

    with pytest.raises(DataValidationError) as error:
        run_stage("validate")

    assert "every test label also appears in the training file" in str(error.value)
    assert "text is not empty" in str(error.value)
    assert json.loads((project / "reports" / "validation.json").read_text())["success"] is False
    with pytest.raises(DataValidationError, match="records failed data checks"):
        run_stage("prepare")
    assert snapshot_of(project / "data" / "prepared") == prepared_before


def test_failed_parity_publishes_no_model_and_keeps_the_previous_bundle(
    finished_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle_before = snapshot_of(finished_copy / "models" / "bundle")
    failing = ParityReport(10, 0.5, 0.9, 0.5, 0.6, 1e-4, 1.0, "x")
    monkeypatch.setattr("tlpipe.stages.export.check_parity", lambda *args, **kwargs: failing)

    with pytest.raises(ExportParityError, match="No model was written"):
        run_stage("export")

    assert snapshot_of(finished_copy / "models" / "bundle") == bundle_before
    assert json.loads((finished_copy / "reports" / "parity.json").read_text())["passed"] is False
    assert not list((finished_copy / "models").glob(".bundle.staging*"))


def test_train_before_prepare_says_which_stage_to_run(project: Path) -> None:
    run_stage("fetch_model")

    with pytest.raises(ArtifactError, match="Run `tlpipe prepare`"):
        run_stage("train")


def test_linear_probe_checkpoint_records_its_strategy(
    project: Path, params_writer, tiny_model_dir, train_table, test_table
) -> None:
    params_writer(project, tiny_model_dir, train_table, test_table, {"train": {"strategy": "linear_probe"}})

    run_all(until="train")

    config = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())
    history = json.loads((project / "models" / "checkpoint" / "history.json").read_text())
    assert config["strategy"] == "linear_probe"
    assert config["best"]["epoch"] == history["best_epoch"]


def test_lexical_probe_runs_every_stage_and_its_onnx_model_computes_the_wordpiece_bag(
    project: Path, params_writer, tiny_model_dir, train_table, test_table
) -> None:
    import onnx

    params_writer(project, tiny_model_dir, train_table, test_table, {"train": {"strategy": "lexical_probe"}})

    run_all()

    bundle = project / "models" / "bundle"
    report = json.loads((project / "reports" / "parity.json").read_text())
    config = json.loads((project / "models" / "checkpoint" / "classifier.json").read_text())
    assert config["strategy"] == "lexical_probe"
    assert report["max_abs_logit_diff"] < 1e-4 and report["top1_agreement"] == 1.0
    assert report["quantize"] == "dynamic" and report["int8"]["form"] == "dynamic"  # auto for texts: the gate ran
    graph = onnx.load(str(bundle / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]  # what a server already sends
    assert "ScatterElements" in {node.op_type for node in graph.node}


def test_static_int8_is_calibrated_on_training_inputs_and_judged_on_test_inputs(
    project: Path, params_writer, tiny_model_dir, train_table, test_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from tlpipe.stages import export

    params_writer(project, tiny_model_dir, train_table, test_table, {"export": {"quantize": "static"}})
    calls = []

    def recording_quantize(fp32: Path, int8: Path, form: str, preprocess=None, calibration_inputs=()) -> None:
        calls.append((form, list(calibration_inputs)))
        shutil.copy(fp32, int8)  # an int8 model as good as fp32, so the gate keeps it

    monkeypatch.setattr(export, "quantize_int8", recording_quantize)

    run_all()

    prepared = project / "data" / "prepared"
    train, test = (pd.read_csv(prepared / name)["input"].tolist() for name in ("train.csv", "test.csv"))
    ((form, calibration),) = calls
    assert form == "static"
    assert calibration == train  # fewer than 200 training inputs: all of them, none from the test file
    assert not set(calibration) & set(test)
    report = json.loads((project / "reports" / "parity.json").read_text())
    metadata = json.loads((project / "models" / "bundle" / "metadata.json").read_text())
    assert report["quantize"] == "static" and report["int8"]["form"] == "static" and report["int8"]["kept"]
    assert metadata["quantization"]["form"] == "static" and metadata["models"]["int8"] == "model.int8.onnx"


def test_the_gate_leaves_an_int8_model_that_loses_accuracy_out_of_the_bundle(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlpipe import quantization

    def logits(path: Path, preprocess, inputs, batch_size: int) -> np.ndarray:
        """fp32 always right, int8 always wrong, whatever the tiny model learnt."""
        prepared = project / "data" / "prepared"
        labels = json.loads((prepared / "labels.json").read_text())
        truth = dict(pd.read_csv(prepared / "test.csv").itertuples(index=False))
        ids = [labels.index(truth[text]) for text in inputs]
        return np.eye(len(labels))[[(i + 1) % len(labels) for i in ids] if "int8" in path.name else ids]

    monkeypatch.setattr(quantization, "onnx_logits", logits)

    run_all()

    bundle = project / "models" / "bundle"
    report = json.loads((project / "reports" / "parity.json").read_text())
    metadata = json.loads((bundle / "metadata.json").read_text())
    assert report["quantize"] == "dynamic"  # auto, for texts
    assert not report["int8"]["kept"] and report["int8"]["int8_macro_f1"] == 0.0
    assert metadata["quantization"] == report["int8"] and "int8" not in metadata["models"]
    assert not (bundle / "model.int8.onnx").exists()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert "model.int8.onnx" not in manifest["files"]


def test_outputs_get_ordinary_file_permissions_not_temp_file_ones(project: Path) -> None:
    import os
    import stat

    run_all(until="prepare")

    umask = os.umask(0)
    os.umask(umask)
    prepared = project / "data" / "prepared"
    assert stat.S_IMODE(prepared.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((prepared / "labels.json").stat().st_mode) == 0o666 & ~umask


def test_auto_interrupted_in_its_second_strategy_keeps_the_first_one_trained(
    project: Path, tiny_model_dir: Path, train_table, test_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tlpipe.stages.train as train_stage

    auto = {"few_labels_below": 0, "compare": ["linear_probe"], "compare_min_valid_per_class": 1}
    left_to_recipes = {"epochs": None, "learning_rate": None, "head_learning_rate": None}
    overrides = {"train": {"strategy": "auto", "auto": auto, **left_to_recipes}}
    write_project(project, tiny_model_dir, train_table, test_table, overrides)
    run_all(until="fetch_model")
    real_fine_tune = train_stage.fine_tune
    resumed_after: dict[str, int] = {}

    def interrupted_at_the_probe(model, preprocess, *args, **kwargs):
        if args[4].strategy == "linear_probe":
            raise KeyboardInterrupt
        return real_fine_tune(model, preprocess, *args, **kwargs)

    def recording(model, preprocess, *args, **kwargs):
        result = real_fine_tune(model, preprocess, *args, **kwargs)
        resumed_after[args[4].strategy] = result.resumed_after_epoch
        return result

    monkeypatch.setattr(train_stage, "fine_tune", interrupted_at_the_probe)
    with pytest.raises(KeyboardInterrupt):
        run_stage("train")
    monkeypatch.setattr(train_stage, "fine_tune", recording)
    run_stage("train")

    assert resumed_after == {"freeze_unfreeze": 5, "linear_probe": 0}  # all 5 recipe epochs restored, none rerun
    assert (project / "models" / "checkpoint" / "model.safetensors").is_file()


def test_prepare_refuses_a_validation_report_written_for_other_data(project: Path) -> None:
    run_all(until="prepare")
    prepared = snapshot_of(project / "data" / "prepared")
    manifest = project / "data" / "manifest" / "train.csv"
    manifest.write_text(manifest.read_text().replace("invoice", "invoices", 1))

    with pytest.raises(DataValidationError, match="is not the report of the data in data/manifest"):
        run_stage("prepare")

    assert snapshot_of(project / "data" / "prepared") == prepared


def test_prepare_trains_on_the_labelled_sample_and_says_when_a_class_has_fewer(
    project: Path, tiny_model_dir: Path, train_table, test_table, caplog: pytest.LogCaptureFixture
) -> None:
    more_billing = train_table[train_table["label"] == "billing"].assign(text=lambda table: table["text"] + " x")
    small = pd.concat([train_table, more_billing])
    write_project(project, tiny_model_dir, small, test_table, {"split": {"examples_per_class": 15}})
    run_stage("validate")

    with caplog.at_level("WARNING"):
        run_stage("prepare")

    data = json.loads((project / "data/prepared/data.json").read_text())
    assert data["examples_per_class"] == 15
    split_counts = data["class_counts"]
    counts = {label: split_counts["train"][label] + split_counts["valid"][label] for label in split_counts["train"]}
    assert counts["billing"] == 15 and counts["access"] == counts["shipping"] == len(train_table) // 3
    assert "have fewer: all of theirs are used" in caplog.text and "'billing'" not in caplog.text
