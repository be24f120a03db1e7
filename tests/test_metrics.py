"""Classification metrics, checked against values worked out by hand, and the one macro-F1 every score uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tlpipe import quantization
from tlpipe.metrics import classification_metrics, macro_f1, macro_f1_of_rows
from tlpipe.transfer_verdict import transfer_gain


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


def test_macro_f1_of_rows_equals_sklearn_over_every_class_on_rows_that_miss_classes() -> None:
    rng = np.random.default_rng(1)
    actual = rng.integers(0, 4, 9)
    predicted = rng.integers(0, 5, 9)  # class 4 is never true: predicting it only costs
    resamples = rng.integers(0, 9, size=(40, 9))

    ours = macro_f1_of_rows(predicted[resamples], actual[resamples], classes=5)

    expected = [
        f1_score(actual[rows], predicted[rows], average="macro", labels=range(5), zero_division=0) for rows in resamples
    ]
    assert np.allclose(ours, expected)
    assert len({len(set(actual[rows])) for rows in resamples}) > 1  # some resamples did lose classes


def test_a_class_neither_true_nor_predicted_counts_alike_in_metrics_json_and_the_bootstrap() -> None:
    labels = ["billing", "login", "shipping", "refund"]  # no test text is, or is predicted, a refund
    actual = [0, 0, 1, 1, 2, 2]
    model = [0, 0, 1, 1, 2, 1]
    reference = [0, 1, 1, 1, 2, 0]

    ours, theirs = (classification_metrics(ids, actual, labels)["macro_f1"] for ids in (model, reference))
    gain = transfer_gain(model, reference, actual, len(labels), "baseline", samples=10, confidence=0.9, seed=0)

    # billing 1, login 0.8, shipping 2/3, refund 0: the empty class scores 0 and the mean divides by 4.
    assert ours == pytest.approx((1 + 0.8 + 2 / 3 + 0) / 4)
    assert ours == pytest.approx(f1_score(actual, model, average="macro", labels=range(4), zero_division=0))
    assert ours == pytest.approx(
        np.mean([scores["f1"] for scores in classification_metrics(model, actual, labels)["per_class"].values()])
    )
    assert gain.point == pytest.approx(ours - theirs)


def test_the_quantization_gate_counts_a_class_absent_from_the_test_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = ["billing", "login", "shipping", "refund"]
    actual = [0, 0, 1, 1, 2, 2]
    predicted = {"fp32": [0, 0, 1, 1, 2, 1], "int8": [0, 1, 1, 1, 2, 0]}
    monkeypatch.setattr(quantization, "onnx_logits", lambda path, *a: np.eye(len(labels))[predicted[path.stem]])
    for name in predicted:
        (tmp_path / f"{name}.onnx").write_bytes(b"x")

    report = quantization.compare_int8(
        tmp_path / "fp32.onnx", tmp_path / "int8.onnx", None, [0] * 6, actual, len(labels), 2, 1.0, "dynamic"
    )

    assert report.fp32_macro_f1 == pytest.approx(classification_metrics(predicted["fp32"], actual, labels)["macro_f1"])
    assert report.int8_macro_f1 == pytest.approx(classification_metrics(predicted["int8"], actual, labels)["macro_f1"])


def test_a_class_id_outside_the_label_map_is_refused() -> None:
    with pytest.raises(ValueError, match="Class ids must lie in 0..2"):
        macro_f1(np.array([0, 3]), np.array([0, 1]), classes=3)
