"""Classification metrics, checked against values worked out by hand."""

from __future__ import annotations

import pytest

from tlpipe.metrics import classification_metrics


def test_metrics_match_a_hand_computed_example() -> None:
    actual = [0, 0, 1, 1, 1, 2]
    predicted = [0, 1, 1, 1, 0, 2]

    metrics = classification_metrics(predicted, actual, ["a", "b", "c"])

    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # a: P=1/2 R=1/2 F1=1/2; b: P=2/3 R=2/3 F1=2/3; c: 1
    assert metrics["per_class"]["a"]["f1"] == pytest.approx(0.5)
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert metrics["per_class"]["b"]["support"] == 3
    assert metrics["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
