"""Classification metrics of a set of predictions, with one definition of macro-F1 for the whole project.

Macro-F1 is the mean F1 over every class of the label map, scikit-learn's
``f1_score(average="macro", labels=range(classes), zero_division=0)``: a class that is neither in
the targets nor predicted scores 0 and still counts. torchmetrics' macro average leaves such a
class out instead, so its mean divides by the classes seen; two scores of one model would then
disagree whenever a split, fold or bootstrap resample misses a class, and two models compared on
the same rows could divide by different numbers. Where every class occurs, both agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def macro_f1_of_rows(predicted: ArrayLike, actual: ArrayLike, classes: int) -> np.ndarray:
    """Macro-F1 of each row of ``predicted`` against the same row of ``actual`` (class ids): shape (rows,)."""
    said = np.atleast_2d(np.asarray(predicted, dtype=np.int64))
    truth = np.atleast_2d(np.asarray(actual, dtype=np.int64))
    if said.size and (min(said.min(), truth.min()) < 0 or max(said.max(), truth.max()) >= classes):
        raise ValueError(f"Class ids must lie in 0..{classes - 1}: map labels with the prepared labels.json.")
    offsets = np.arange(len(truth))[:, None] * classes
    size = len(truth) * classes
    true_counts = np.bincount((offsets + truth).ravel(), minlength=size)
    predicted_counts = np.bincount((offsets + said).ravel(), minlength=size)
    hits = np.bincount((offsets + truth).ravel(), weights=(truth == said).ravel(), minlength=size)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (predicted + true); 0 where the class is neither there nor predicted.
    counts = true_counts + predicted_counts
    f1 = np.divide(2 * hits, counts, out=np.zeros(size), where=counts > 0)
    return f1.reshape(-1, classes).mean(axis=1)


def macro_f1(predicted: ArrayLike, actual: ArrayLike, classes: int) -> float:
    """Macro-F1 of ``predicted`` against ``actual`` (class ids ``0..classes-1``), every class counted."""
    return float(macro_f1_of_rows(predicted, actual, classes)[0])


def classification_metrics(predicted: Sequence[int], actual: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix (rows: actual)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    said = np.asarray(list(predicted), dtype=np.int64)
    truth = np.asarray(list(actual), dtype=np.int64)
    classes = range(len(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, said, labels=list(classes), average=None, zero_division=0
    )
    return {
        "accuracy": float(np.mean(said == truth)) if len(truth) else 0.0,
        "macro_f1": macro_f1(said, truth, len(labels)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(truth, said, labels=list(classes)).tolist(),
    }
