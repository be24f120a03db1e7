"""Temperature scaling and split-conformal prediction sets (tlpipe.calibration), and the serving side's agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlpipe.calibration import (
    TEMPERATURE_BOUNDS,
    conformal_threshold,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    prediction_sets,
    reliability,
    score_sets,
    softmax,
)


def overconfident(examples: int, classes: int, true_temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose labels are drawn from softmax(logits / true_temperature): the model is over-confident by that
    factor, so the temperature that calibrates it is ``true_temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, size=(examples, classes))
    probabilities = softmax(logits, true_temperature)
    labels = np.array([rng.choice(classes, p=row) for row in probabilities])
    return logits, labels


def test_the_fitted_temperature_recovers_the_one_that_generated_the_labels() -> None:
    logits, labels = overconfident(4000, 5, true_temperature=2.5, seed=0)

    temperature = fit_temperature(logits, labels)

    assert temperature == pytest.approx(2.5, rel=0.1)
    assert negative_log_likelihood(logits, labels, temperature) < negative_log_likelihood(logits, labels)


def test_temperature_scaling_lowers_the_calibration_error_of_an_overconfident_model_and_changes_no_prediction() -> None:
    fit_logits, fit_labels = overconfident(2000, 4, true_temperature=3.0, seed=1)
    test_logits, test_labels = overconfident(2000, 4, true_temperature=3.0, seed=2)

    temperature = fit_temperature(fit_logits, fit_labels)
    before, after = softmax(test_logits), softmax(test_logits, temperature)

    assert expected_calibration_error(after, test_labels) < expected_calibration_error(before, test_labels) / 3
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()


def test_the_temperature_stays_within_its_bounds_when_every_held_out_example_is_right() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])

    # the likelihood keeps rising as T falls: the fit sharpens to near its lower bound, never past it
    assert TEMPERATURE_BOUNDS[0] <= fit_temperature(logits, [0, 1, 0]) < 0.2


def test_negative_log_likelihood_matches_its_definition() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = [0, 1]

    expected = -np.mean(np.log(softmax(logits, 2.0)[[0, 1], labels]))

    assert negative_log_likelihood(logits, labels, 2.0) == pytest.approx(expected)


def test_ece_is_zero_when_confidence_equals_accuracy_and_the_gap_otherwise() -> None:
    # four examples at confidence 0.75, three right: calibrated; then all four at 0.75 and all right: gap 0.25
    probabilities = np.array([[0.75, 0.25]] * 4)

    assert expected_calibration_error(probabilities, [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error(probabilities, [0, 0, 0, 0]) == pytest.approx(0.25)
    bins = reliability(probabilities, [0, 0, 0, 1])
    assert len(bins) == 1 and bins[0]["count"] == 4 and bins[0]["accuracy"] == pytest.approx(0.75)


def test_the_conformal_threshold_is_the_right_order_statistic_and_all_labels_when_too_few() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]])
    labels = [0, 0, 1, 1]  # scores 1 - p(true): 0.1, 0.4, 0.3, 0.8

    # n = 4, coverage 0.5: ceil(5 * 0.5) = 3rd smallest score, 0.4
    assert conformal_threshold(probabilities, labels, 0.5) == pytest.approx(0.4)
    # coverage 0.9: ceil(5 * 0.9) = 5 > 4 examples: no finite threshold keeps the promise
    assert conformal_threshold(probabilities, labels, 0.9) == 1.0
    assert prediction_sets(probabilities, 1.0).all()


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_prediction_sets_cover_new_examples_at_least_as_often_as_promised(coverage: float) -> None:
    """The split-conformal guarantee, measured: over many calibration/test draws the mean coverage is at least
    the target (and not far above: the sets are not simply every label)."""
    coverages, sizes = [], []
    for seed in range(40):
        logits, labels = overconfident(400, 6, true_temperature=2.0, seed=seed)
        probabilities = softmax(logits, 1.3)  # miscalibrated on purpose: the guarantee does not need calibration
        threshold = conformal_threshold(probabilities[:200], labels[:200], coverage)
        scores = score_sets(probabilities[200:], labels[200:], threshold)
        coverages.append(scores.coverage)
        sizes.append(scores.mean_set_size)

    assert np.mean(coverages) >= coverage - 0.01
    assert np.mean(coverages) <= coverage + 0.05
    assert np.mean(sizes) < 6


def test_set_scores_count_sizes_empties_and_singletons() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.45, 0.45, 0.1], [0.34, 0.33, 0.33]])

    scores = score_sets(probabilities, [0, 1, 2], threshold=0.6)  # sets: labels with p >= 0.4

    assert scores.mean_set_size == pytest.approx((1 + 2 + 0) / 3)
    assert scores.coverage == pytest.approx(2 / 3)
    assert scores.empty_share == pytest.approx(1 / 3) and scores.singleton_share == pytest.approx(1 / 3)
    assert math.isclose(scores.examples, 3)


def calibrate_on(
    tmp_path,
    logits: np.ndarray,
    labels: np.ndarray,
    coverage: float = 0.9,
    calibration: str = "temperature",
    modality: str = "text",
) -> dict:
    """The calibrate stage on a checkpoint holding only out-of-fold logits, as a cross-validating train leaves them."""
    from tlpipe.artifacts import write_json
    from tlpipe.calibration import HELD_OUT_LOGITS
    from tlpipe.checkpoint import CLASSIFIER_CONFIG
    from tlpipe.config import PathsConfig, ServingConfig
    from tlpipe.stages import calibrate

    paths = PathsConfig(checkpoint=tmp_path / "checkpoint", calibration=tmp_path / "calibration.json")
    held_out = {"source": "out_of_fold", "folds": 3, "epochs": 5, "logits": logits.tolist(), "labels": labels.tolist()}
    write_json(paths.checkpoint / HELD_OUT_LOGITS, held_out)
    write_json(paths.checkpoint / CLASSIFIER_CONFIG, {"modality": modality})
    return calibrate.run(paths, ServingConfig(coverage=coverage, calibration=calibration))


def test_the_calibrate_stage_fits_the_temperature_and_threshold_on_the_out_of_fold_logits(tmp_path) -> None:
    logits, labels = overconfident(600, 4, true_temperature=3.0, seed=3)

    record = calibrate_on(tmp_path, logits, labels)

    assert record["applied"] and record["temperature"] == pytest.approx(3.0, rel=0.15)
    assert record["held_out"]["ece_after"] < record["held_out"]["ece_before"]
    assert record["fitted_on"]["examples"] == 600 and record["prediction_sets"]["threshold"] < 1.0


@pytest.mark.parametrize("modality", ["text", "image"])
def test_auto_calibration_is_the_checkpoints_modalitys_choice(
    tmp_path, modality: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlpipe.modalities import get_modality

    logits, labels = overconfident(300, 4, true_temperature=3.0, seed=4)
    shipped = get_modality(modality).calibration
    chosen = calibrate_on(tmp_path / "chosen", logits, labels, calibration="auto", modality=modality)
    monkeypatch.setattr(type(get_modality(modality)), "calibration", "none")

    declined = calibrate_on(tmp_path / "declined", logits, labels, calibration="auto", modality=modality)

    assert (chosen["method"], chosen["setting"]) == (shipped, "auto") == ("temperature", "auto")
    assert chosen["applied"] and chosen["temperature"] == pytest.approx(3.0, rel=0.2)
    assert (declined["method"], declined["applied"], declined["temperature"]) == ("none", False, 1.0)


def test_a_temperature_that_stops_at_its_bound_is_refused_and_the_raw_softmax_served(tmp_path) -> None:
    # Every held-out prediction right by a hair: the likelihood keeps rising as the temperature falls.
    labels = np.arange(60) % 3
    logits = 0.01 * np.eye(3)[labels]

    record = calibrate_on(tmp_path, logits, labels)

    assert fit_temperature(logits, labels) == pytest.approx(TEMPERATURE_BOUNDS[0], rel=1e-2)
    assert record["method"] == "temperature" and not record["applied"] and record["temperature"] == 1.0
    assert "stopped at its bound" in record["refused"]
    assert record["held_out"]["ece_after"] == record["held_out"]["ece_before"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_calibration_error_is_torchmetrics_multiclass_calibration_error(seed: int) -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.classification import multiclass_calibration_error

    logits, labels = overconfident(300, 5, 2.0, seed)
    probabilities = softmax(logits)
    probabilities[:7] = np.eye(5)[labels[:7] if seed else (labels[:7] + 1) % 5]  # confidence exactly 1.0, own bin
    probabilities[7:9] = 0.2  # confidence 0.2, on a bin edge

    theirs = multiclass_calibration_error(
        torch.as_tensor(probabilities), torch.as_tensor(labels), num_classes=5, n_bins=15, norm="l1"
    )

    # torchmetrics bins and sums in float32, tlpipe in float64: they agree to float32's precision.
    assert expected_calibration_error(probabilities, labels) == pytest.approx(float(theirs), rel=1e-6)


def test_a_confidence_of_exactly_one_is_binned_apart_as_torchmetrics_bins_it() -> None:
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.classification import multiclass_calibration_error

    probabilities = np.array([[0.0, 1.0], [0.95, 0.05], [0.95, 0.05], [0.95, 0.05]])
    labels = np.array([0, 0, 0, 0])  # wrong at confidence 1.0, right at 0.95: one bin would net them out

    theirs = multiclass_calibration_error(torch.as_tensor(probabilities), torch.as_tensor(labels), num_classes=2)

    assert expected_calibration_error(probabilities, labels) == pytest.approx((1.0 + 3 * 0.05) / 4)
    assert float(theirs) == pytest.approx((1.0 + 3 * 0.05) / 4)
