"""Drift checks: the serving side's two-sample test, the reference sample the export keeps, and predict.py --drift."""

from __future__ import annotations

import numpy as np
import pytest

from tlpipe.serving import mmd_permutation_test


def gaussian(rng: np.random.Generator, rows: int, shift: float = 0.0, dims: int = 16) -> np.ndarray:
    sample = rng.normal(size=(rows, dims))
    sample[:, 0] += shift
    return sample + 3.0  # away from the origin, where making rows unit length would wash out a shift


def test_same_distribution_rarely_alarms_and_p_values_spread_over_zero_to_one() -> None:
    rng = np.random.default_rng(0)
    p_values = [
        mmd_permutation_test(gaussian(rng, 60), gaussian(rng, 40), permutations=200, rng=rng)[1] for _ in range(60)
    ]

    assert np.mean(np.array(p_values) < 0.05) <= 0.12  # about 5% by construction; 60 draws leave room
    assert 0.3 < np.median(p_values) < 0.7


def test_a_shifted_sample_is_detected_and_a_bigger_shift_scores_higher() -> None:
    rng = np.random.default_rng(1)
    reference = gaussian(rng, 100)

    small, p_small = mmd_permutation_test(reference, gaussian(rng, 80, shift=2.0), permutations=500, rng=rng)
    large, p_large = mmd_permutation_test(reference, gaussian(rng, 80, shift=6.0), permutations=500, rng=rng)

    assert p_small < 0.01 and p_large < 0.01
    assert large > small > 0


def test_the_p_value_never_reaches_zero_and_counts_the_observed_order() -> None:
    rng = np.random.default_rng(2)
    _, p_value = mmd_permutation_test(gaussian(rng, 30), gaussian(rng, 30, shift=50.0), permutations=99, rng=rng)

    assert p_value == pytest.approx(1 / 100)
