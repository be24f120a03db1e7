"""Probabilities that mean what they say, and prediction sets that hold the true label as often as promised.

Both are fitted on held-out logits of the model as trained, never on the test file: the
out-of-fold logits cross-validation left (each example scored by the fold model that did not
train on it), or the validation split's.

- Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks"): one scalar
  T divides every logit, chosen to minimise the negative log-likelihood of the held-out labels.
  It changes no prediction (argmax is unchanged), only how confident the probabilities are. Under
  cross-validation it is fitted on the fold models' logits, whose confidence need not be the final
  model's (it trained on every label): measured in benchmarks/results/calibration.md.
- Split-conformal prediction sets with the LAC score (Sadinle, Lei and Wasserman, 2019, "Least
  Ambiguous Set-Valued Classifiers with Bounded Error Levels"): the score of an example is one
  minus the calibrated probability of its true label; the threshold is the ceil((n + 1) * coverage)-th
  smallest of the n held-out scores, and a new input's set is every label whose score is within
  it. If the held-out examples and new inputs are exchangeable, a set holds the true label with
  probability at least ``coverage``. Under cross-validation the scores come from the fold models,
  which saw fewer examples than the final model, so the guarantee is the fold models'; the
  evaluate stage measures the final model's coverage on the test file.

The serving side (``tlpipe.serving``, which may import numpy only) applies the temperature and
the threshold with the same arithmetic; a test keeps the two in agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

HELD_OUT_LOGITS = "held_out_logits.json"  # in the checkpoint under cross-validation: the chosen strategy's out-of-fold
# logits at the chosen epochs, which the calibrate stage fits on (with a validation split it predicts that instead)
ECE_BINS = 15  # torchmetrics' and Guo et al.'s equal-width confidence bins
TEMPERATURE_BOUNDS = (0.05, 20.0)  # beyond these the held-out set is too small or too easy to say more


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of ``logits`` (examples, classes) divided by ``temperature``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: Sequence[int], temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    top = scaled.max(axis=1, keepdims=True)
    log_normaliser = top[:, 0] + np.log(np.exp(scaled - top).sum(axis=1))
    return float(np.mean(log_normaliser - scaled[np.arange(len(scaled)), np.asarray(labels)]))


def fit_temperature(logits: np.ndarray, labels: Sequence[int]) -> float:
    """The temperature that minimises the held-out negative log-likelihood, within ``TEMPERATURE_BOUNDS``."""
    low, high = (math.log(bound) for bound in TEMPERATURE_BOUNDS)
    best = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, math.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(math.exp(best.x))


def at_bound(temperature: float) -> bool:
    """Whether a fitted temperature stopped at ``TEMPERATURE_BOUNDS``: the likelihood still fell beyond it, so the
    held-out logits do not pin a temperature down (on rotten_tomatoes the fold models' tiny lexical-probe logits
    asked for 0.05, and served, it made the final model's probabilities far worse on training rows the sample left
    out: benchmarks/results/calibration_development.md)."""
    return any(abs(math.log(temperature / bound)) < 1e-2 for bound in TEMPERATURE_BOUNDS)


def expected_calibration_error(probabilities: np.ndarray, labels: Sequence[int], bins: int = ECE_BINS) -> float:
    """Expected calibration error (L1, equal-width bins of top-1 confidence) as torchmetrics'
    ``multiclass_calibration_error(norm="l1")`` defines it, in float64 (tests/test_calibration.py checks the two
    agree). Written out because importing torchmetrics takes seconds (it loads its audio, image and text packages,
    torchvision among them), paid by every calibrate and evaluate process for 15 lines of numpy."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    # torch.bucketize(right=True) over bins + 1 edges: a confidence of exactly 1.0 gets a bin of its own.
    which = np.searchsorted(np.linspace(0.0, 1.0, bins + 1), confidence, side="right") - 1
    count = np.bincount(which, minlength=bins + 1)
    seen = count > 0
    accuracy = np.bincount(which, weights=correct, minlength=bins + 1)[seen] / count[seen]
    mean_confidence = np.bincount(which, weights=confidence, minlength=bins + 1)[seen] / count[seen]
    return float(np.sum(np.abs(accuracy - mean_confidence) * count[seen] / count.sum()))


def reliability(probabilities: np.ndarray, labels: Sequence[int], bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per confidence bin that holds examples: mean top-1 confidence, accuracy and count (the reliability diagram)."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # the ECE's bins (a confidence on an edge goes up), except that 1.0 joins the top bin to be drawn
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "confidence": float(confidence[which == b].mean()),
            "accuracy": float(correct[which == b].mean()),
            "count": int((which == b).sum()),
        }
        for b in range(bins)
        if (which == b).any()
    ]


def conformal_threshold(probabilities: np.ndarray, labels: Sequence[int], coverage: float) -> float:
    """The split-conformal LAC threshold on held-out scores: 1.0 (every label in every set) if too few examples.

    With n held-out examples the guarantee needs ceil((n + 1) * coverage) <= n, that is at least
    coverage / (1 - coverage) examples (9 at 0.9, 19 at 0.95).
    """
    probabilities = np.asarray(probabilities)
    scores = np.sort(1.0 - probabilities[np.arange(len(probabilities)), np.asarray(labels)])
    rank = math.ceil((len(scores) + 1) * coverage)
    return 1.0 if rank > len(scores) else float(scores[rank - 1])


def prediction_sets(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean (examples, classes): which labels each input's set holds (those scoring within ``threshold``)."""
    return 1.0 - np.asarray(probabilities) <= threshold


@dataclass(frozen=True)
class SetScores:
    """How prediction sets did on labelled examples."""

    coverage: float  # share of sets holding the true label
    mean_set_size: float
    empty_share: float  # sets with no label (LAC leaves an input empty when no label is likely enough)
    singleton_share: float
    examples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_sets(probabilities: np.ndarray, labels: Sequence[int], threshold: float) -> SetScores:
    """Coverage and size of the prediction sets ``threshold`` gives on labelled examples."""
    sets = prediction_sets(probabilities, threshold)
    sizes = sets.sum(axis=1)
    return SetScores(
        coverage=float(sets[np.arange(len(sets)), np.asarray(labels)].mean()),
        mean_set_size=float(sizes.mean()),
        empty_share=float((sizes == 0).mean()),
        singleton_share=float((sizes == 1).mean()),
        examples=len(sets),
    )
