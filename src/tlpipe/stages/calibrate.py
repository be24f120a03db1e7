"""Stage ``calibrate``: the temperature and the prediction-set threshold, fitted on held-out logits.

After ``train``. The held-out logits are the chosen strategy's out-of-fold logits that a
cross-validating train stage left in the checkpoint (``held_out_logits.json``), or, with a
validation split, the checkpoint's logits on that split; never the test file (``tlpipe.calibration``).
Writes ``paths.calibration``: the temperature (1.0 under ``serving.calibration: none``, or where the fitted
one stopped at its bound), the conformal threshold for ``serving.coverage``, what they were fitted on, and the
negative log-likelihood and calibration error before and after on those same held-out examples. ``evaluate``
measures both on the test file, and ``export`` puts them in the bundle.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tlpipe.artifacts import read_json, write_json
from tlpipe.calibration import (
    HELD_OUT_LOGITS,
    at_bound,
    conformal_threshold,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    score_sets,
    softmax,
)
from tlpipe.checkpoint import CLASSIFIER_CONFIG
from tlpipe.config import CalibrationMethod, PathsConfig, ServingConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.errors import ArtifactError
from tlpipe.modalities import get_modality
from tlpipe.stages.prepare import LABELS, VALID
from tlpipe.wording import counted

log = logging.getLogger(__name__)

PREDICT_BATCH = 64


def run(paths: PathsConfig, serving: ServingConfig) -> dict[str, Any]:
    """Fit the temperature and the conformal threshold on held-out logits; write and return ``paths.calibration``."""
    logits, labels, fitted_on = held_out_logits(paths)
    method = calibration_method(paths, serving)
    fitted = fit_temperature(logits, labels) if method == "temperature" else None
    refused = None
    if fitted is not None and at_bound(fitted):
        refused = (
            f"the temperature fitted on {fitted_on['description']} stopped at its bound ({fitted:.3g}): those "
            "logits do not pin one down"
        )
    applied = fitted is not None and refused is None
    temperature = fitted if applied else 1.0
    before, after = softmax(logits), softmax(logits, temperature)
    threshold = conformal_threshold(after, labels, serving.coverage)
    record = {
        "method": method,
        "setting": serving.calibration,
        "temperature": temperature,
        "fitted_on": fitted_on,
        "applied": applied,
        "refused": refused,  # why a fitted temperature is not served (then the temperature is 1.0)
        "held_out": {
            "nll_before": negative_log_likelihood(logits, labels),
            "nll_after": negative_log_likelihood(logits, labels, temperature),
            "ece_before": expected_calibration_error(before, labels),
            "ece_after": expected_calibration_error(after, labels),
        },
        "prediction_sets": {
            "score": "lac",  # 1 - the calibrated probability of the true label
            "coverage": serving.coverage,
            "threshold": threshold,
            "all_labels": threshold >= 1.0,  # too few held-out examples for the coverage: every set is every label
            "held_out": score_sets(after, labels, threshold).to_dict(),
        },
    }
    write_json(paths.calibration, record)
    held_out = record["held_out"]
    if refused:
        calibrated = f"Raw softmax: {refused}; ECE {held_out['ece_before']:.4f}"
    elif applied:
        calibrated = f"Temperature {temperature:.3f} fitted on {fitted_on['description']}: "
        calibrated += f"held-out ECE {held_out['ece_before']:.4f} -> {held_out['ece_after']:.4f}"
    else:
        chosen = " (auto: the modality's choice)" if serving.calibration == "auto" else ""
        calibrated = f"Raw softmax, serving.calibration none{chosen}: ECE {held_out['ece_before']:.4f} on "
        calibrated += fitted_on["description"]
    log.info("%s; prediction sets at %.2f coverage: threshold %.4f", calibrated, serving.coverage, threshold)
    if threshold >= 1.0:
        log.warning(
            "Only %s held out: too few for prediction sets at %.2f coverage, so every set holds every label. "
            "Label more examples, or lower serving.coverage.",
            counted(len(labels), "example"), serving.coverage,
        )  # fmt: skip
    return record


def calibration_method(paths: PathsConfig, serving: ServingConfig) -> CalibrationMethod:
    """``serving.calibration``, with ``auto`` resolved to the checkpoint's modality's choice."""
    if serving.calibration != "auto":
        return serving.calibration
    modality = read_json(paths.checkpoint / CLASSIFIER_CONFIG, "train")["modality"]
    return get_modality(modality).calibration


def held_out_logits(paths: PathsConfig) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The checkpoint's held-out logits and label ids, and a record of where they come from."""
    stored = paths.checkpoint / HELD_OUT_LOGITS
    if stored.is_file():
        held_out = read_json(stored, "train")
        logits, labels = np.asarray(held_out["logits"], dtype=np.float64), np.asarray(held_out["labels"])
        description = (
            f"the out-of-fold logits of {counted(len(labels), 'training example')} ({held_out['folds']} folds, "
            f"{held_out['epochs']} epochs)"
        )
        return logits, labels, {"source": "out_of_fold", "examples": len(labels), "description": description}
    # torch and the model only here: out-of-fold logits (cross-validation, the demo's case) need neither
    from tlpipe.checkpoint import checked_labels, load_checkpoint
    from tlpipe.training import predict_logits

    model, preprocess, config, _ = load_checkpoint(paths.checkpoint)
    names = checked_labels(paths.checkpoint, config, model.head.out_features, paths.prepared / LABELS)
    valid = read_examples(paths.prepared / VALID)
    if valid.empty:
        raise ArtifactError(
            f"{paths.checkpoint} has no {HELD_OUT_LOGITS} and {paths.prepared / VALID} is empty, so nothing held out "
            "is left to calibrate on. Run `tlpipe train` again (or `dvc repro`)."
        )
    index = {name: position for position, name in enumerate(names)}
    logits = predict_logits(model, preprocess, valid[INPUT].tolist(), PREDICT_BATCH).double().numpy()
    labels = np.asarray([index[label] for label in valid[LABEL]])
    description = f"the validation split ({counted(len(labels), 'example')})"
    return logits, labels, {"source": "validation", "examples": len(labels), "description": description}
