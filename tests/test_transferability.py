"""The frozen-feature probe that ranks bodies, and the choice between bodies the folds cannot tell apart."""

from __future__ import annotations

import numpy as np
import pytest

from tlpipe.transferability import ProbeScore, choose_body, fold_count, probe_score, within_noise_of_best


def _features(signal: float, per_class: int = 12, classes: int = 3, width: int = 32, seed: int = 0) -> np.ndarray:
    """Rows whose class shifts one coordinate by ``signal`` over unit noise: 0 is a body that sees nothing."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 1, (per_class * classes, width))
    for index in range(classes):
        rows[index * per_class : (index + 1) * per_class, index] += signal
    return rows


LABELS = [label for label in ("a", "b", "c") for _ in range(12)]


def test_a_body_whose_features_carry_the_labels_outscores_one_whose_features_are_noise() -> None:
    informative, noise = probe_score(_features(4.0), LABELS), probe_score(_features(0.0), LABELS)

    assert informative.mean > 0.9 > 0.6 > noise.mean
    assert len(informative.fold_scores) == 5 and informative.standard_error >= 0.0


def test_the_folds_are_no_more_than_the_smallest_class_has_rows_and_a_lone_example_is_refused() -> None:
    labels = ["a"] * 10 + ["b"] * 3

    assert fold_count(labels) == 3
    assert len(probe_score(_features(4.0, per_class=13, classes=1)[:13], labels).fold_scores) == 3
    with pytest.raises(ValueError, match="at least 2 labelled examples in every class"):
        probe_score(_features(4.0)[:13], ["a"] * 12 + ["b"])


def test_bodies_within_the_best_ones_standard_error_are_tied_and_the_largest_tied_body_is_kept() -> None:
    scores = {
        "small": ProbeScore((0.90, 0.80, 0.85), 1.0),  # mean 0.85, standard error about 0.029
        "large": ProbeScore((0.84, 0.82, 0.83), 1.0),  # 0.83: inside it
        "huge": ProbeScore((0.70, 0.72, 0.71), 1.0),  # 0.71: outside it
    }
    parameters = {"small": 10.0, "large": 100.0, "huge": 1000.0}

    assert within_noise_of_best(scores) == ["small", "large"]
    assert choose_body(scores, parameters) == "large"  # tied with the best, and larger
    separated = {**scores, "small": ProbeScore((0.95, 0.96, 0.97), 1.0)}
    assert choose_body(separated, parameters) == "small"  # the folds tell them apart: the best mean
