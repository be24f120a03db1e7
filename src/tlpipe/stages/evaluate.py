"""Stage ``evaluate``: the fine-tuned model against the classic baseline on the test file; did transfer help?"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tlpipe.artifacts import atomic_directory, read_json, write_json, write_text
from tlpipe.checkpoint import checked_labels, load_checkpoint
from tlpipe.config import EvaluateConfig, PathsConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.metrics import classification_metrics
from tlpipe.model_card import package_versions, render_model_card
from tlpipe.plots import plot_confusion_matrices
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TEST, TRAIN, VALID
from tlpipe.stages.review_labels import SUMMARY
from tlpipe.stages.train import HISTORY
from tlpipe.training import predict_logits
from tlpipe.transfer_verdict import transfer_gain

log = logging.getLogger(__name__)

PREDICTIONS, CONFUSION_PNG = "predictions.csv", "confusion_matrix.png"
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
    finetuned = predict_logits(model, preprocess, test[INPUT].tolist(), evaluate.batch_size).argmax(dim=1).tolist()
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
    }
    predictions = pd.DataFrame(
        {
            modality.input_column: test[INPUT],
            "actual": test[LABEL],
            "finetuned": [labels[i] for i in finetuned],
            "baseline": [labels[i] for i in baseline],
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
        paths.metrics.unlink(missing_ok=True)
    write_text(paths.model_card, card)
    write_json(paths.metrics, metrics)
    log.info(
        "Test macro-F1: fine-tuned %.4f vs baseline %.4f (accuracy %.4f vs %.4f)",
        metrics["finetuned"]["macro_f1"],
        metrics["baseline"]["macro_f1"],
        metrics["finetuned"]["accuracy"],
        metrics["baseline"]["accuracy"],
    )
    if over_baseline.verdict == "helped":
        log.info(over_baseline.message)
    else:
        log.warning(over_baseline.message)
    return metrics
