"""Stage ``evaluate``: the fine-tuned model against the classic baseline on the test file; did transfer help?

It also measures on the test file what ``calibrate`` fitted on held-out logits: the calibration error
before and after the temperature (with a reliability diagram), and the prediction sets' coverage and size.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from tlpipe.artifacts import atomic_directory, read_json, write_json, write_text
from tlpipe.calibration import (
    expected_calibration_error,
    negative_log_likelihood,
    prediction_sets,
    reliability,
    score_sets,
    softmax,
)
from tlpipe.checkpoint import checked_labels, load_checkpoint
from tlpipe.config import EvaluateConfig, PathsConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.metrics import classification_metrics
from tlpipe.model_card import package_versions, render_model_card
from tlpipe.plots import plot_confusion_matrices, plot_reliability
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TEST, TRAIN, VALID
from tlpipe.stages.review_labels import SUMMARY
from tlpipe.stages.train import HISTORY
from tlpipe.training import predict_logits
from tlpipe.transfer_verdict import Gain, transfer_gain

log = logging.getLogger(__name__)

PREDICTIONS, CONFUSION_PNG, CALIBRATION_PNG = "predictions.csv", "confusion_matrix.png", "calibration.png"
BOOTSTRAP_SEED = 0  # fixed, so a rerun on the same predictions reports the same interval


def _label_review(paths: PathsConfig) -> dict[str, Any] | None:
    summary = paths.label_review / SUMMARY
    return read_json(summary, "review-labels") if summary.is_file() else None


def run(paths: PathsConfig, evaluate: EvaluateConfig) -> dict[str, Any]:
    """Write ``paths.metrics``, ``paths.model_card`` and, under ``paths.evaluation``, predictions and confusion PNG.

    Everything is computed before anything is written, so a failure leaves the previous outputs as
    they were. The metrics go first out and last in: a run killed while publishing leaves no
    metrics, which export refuses, rather than new predictions beside the old metrics.
    """
    model, preprocess, config, modality = load_checkpoint(paths.checkpoint)
    labels = checked_labels(paths.checkpoint, config, model.head.out_features, paths.prepared / LABELS)
    fit, test = read_examples(paths.prepared / TRAIN), read_examples(paths.prepared / TEST)
    valid = read_examples(paths.prepared / VALID)
    label_ids = {label: index for index, label in enumerate(labels)}
    actual = [label_ids[label] for label in test[LABEL]]
    logits = predict_logits(model, preprocess, test[INPUT].tolist(), evaluate.batch_size).double().numpy()
    finetuned = logits.argmax(axis=1).tolist()
    calibration = read_json(paths.calibration, "calibrate")
    probabilities = softmax(logits, calibration["temperature"])
    sets = prediction_sets(probabilities, calibration["prediction_sets"]["threshold"])
    baseline_model = modality.fit_baseline(
        fit[INPUT].tolist(), [label_ids[label] for label in fit[LABEL]], evaluate, seed=0
    )
    baseline = [int(i) for i in baseline_model.predict(test[INPUT].tolist())]

    results = {
        "finetuned": classification_metrics(finetuned, actual, labels),
        "baseline": classification_metrics(baseline, actual, labels),
    }
    over_baseline = transfer_gain(
        finetuned,
        baseline,
        actual,
        len(labels),
        f"baseline ({modality.baseline_title})",
        samples=evaluate.bootstrap_samples,
        confidence=evaluate.confidence_level,
        seed=BOOTSTRAP_SEED,
    )
    metrics = {
        "test_examples": len(test),
        "strategy": config["strategy"],
        "strategy_choice": config.get("strategy_choice"),
        **{name: {k: v for k, v in scores.items() if k != "confusion_matrix"} for name, scores in results.items()},
        "transfer": {"over_baseline": over_baseline.to_dict()},
        **calibration_metrics(logits, actual, calibration),
    }
    predictions = pd.DataFrame(
        {
            modality.input_column: test[INPUT],
            "actual": test[LABEL],
            "finetuned": [labels[i] for i in finetuned],
            "baseline": [labels[i] for i in baseline],
            "probability": probabilities.max(axis=1).round(4),  # calibrated, as the bundle serves it
            "prediction_set": ["|".join(labels[i] for i in np.flatnonzero(row)) for row in sets],
        }
    )
    card = render_model_card(
        config,
        read_json(paths.checkpoint / HISTORY, "train"),
        metrics,
        {
            name: table[LABEL].value_counts().to_dict()
            for name, table in (("train", fit), ("validation", valid), ("test", test))
        },
        read_json(paths.prepared / DATA_VERSION, "prepare")["raw_sha256"],
        package_versions(),
        modality,
        _label_review(paths),
    )
    with atomic_directory(paths.evaluation) as staging:
        write_text(staging / PREDICTIONS, predictions.to_csv(index=False))
        plot_confusion_matrices(
            {
                f"fine-tuned ({config['strategy']}): macro-F1 {results['finetuned']['macro_f1']:.3f}": results[
                    "finetuned"
                ]["confusion_matrix"],
                f"baseline ({modality.baseline_title}): macro-F1 {results['baseline']['macro_f1']:.3f}": results[
                    "baseline"
                ]["confusion_matrix"],
            },
            labels,
            staging / CONFUSION_PNG,
        )
        plot_reliability(
            {
                "softmax": reliability(softmax(logits), actual),
                f"temperature {calibration['temperature']:.2f}": reliability(probabilities, actual),
            },
            staging / CALIBRATION_PNG,
        )
        paths.metrics.unlink(missing_ok=True)
    write_text(paths.model_card, card)
    write_json(paths.metrics, metrics)
    _log_summary(metrics, calibration, over_baseline)
    return metrics


def _log_summary(metrics: dict[str, Any], calibration: dict[str, Any], over_baseline: Gain) -> None:
    log.info(
        "Test macro-F1: fine-tuned %.4f vs baseline %.4f (accuracy %.4f vs %.4f)",
        metrics["finetuned"]["macro_f1"],
        metrics["baseline"]["macro_f1"],
        metrics["finetuned"]["accuracy"],
        metrics["baseline"]["accuracy"],
    )
    log.info(
        "Calibration error on the test split %.4f -> %.4f (temperature %.3f); prediction sets at %.2f coverage: "
        "%.4f covered, %.2f labels per set",
        metrics["calibration"]["test"]["ece_before"], metrics["calibration"]["test"]["ece_after"],
        calibration["temperature"], calibration["prediction_sets"]["coverage"],
        metrics["prediction_sets"]["test"]["coverage"], metrics["prediction_sets"]["test"]["mean_set_size"],
    )  # fmt: skip
    if over_baseline.verdict == "helped":
        log.info(over_baseline.message)
    else:
        log.warning(over_baseline.message)


def calibration_metrics(logits: np.ndarray, actual: list[int], calibration: dict[str, Any]) -> dict[str, Any]:
    """The test file's calibration error and negative log-likelihood before and after the temperature, and the
    prediction sets' coverage and size, beside what ``calibrate`` fitted them on."""
    temperature = calibration["temperature"]
    before, after = softmax(logits), softmax(logits, temperature)
    sets = calibration["prediction_sets"]
    return {
        "calibration": {
            "method": calibration["method"],
            "setting": calibration.get("setting", calibration["method"]),
            "applied": calibration["applied"],
            "refused": calibration.get("refused"),
            "temperature": temperature,
            "fitted_on": calibration["fitted_on"]["description"],
            "test": {
                "ece_before": expected_calibration_error(before, actual),
                "ece_after": expected_calibration_error(after, actual),
                "nll_before": negative_log_likelihood(logits, actual),
                "nll_after": negative_log_likelihood(logits, actual, temperature),
            },
        },
        "prediction_sets": {
            "coverage_target": sets["coverage"],
            "threshold": sets["threshold"],
            "all_labels": sets["all_labels"],
            "test": score_sets(after, actual, sets["threshold"]).to_dict(),
        },
    }
