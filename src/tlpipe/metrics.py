"""Classification metrics of a set of predictions, computed with torchmetrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def classification_metrics(predicted: Sequence[int], actual: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    preds = torch.as_tensor(list(predicted), dtype=torch.long)
    target = torch.as_tensor(list(actual), dtype=torch.long)
    classes = len(labels)
    per_class = {
        name: fn(preds, target, num_classes=classes, average="none").tolist()
        for name, fn in (
            ("precision", multiclass_precision),
            ("recall", multiclass_recall),
            ("f1", multiclass_f1_score),
        )
    }
    support = torch.bincount(target, minlength=classes).tolist()
    return {
        "accuracy": float(multiclass_accuracy(preds, target, num_classes=classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, target, num_classes=classes, average="macro")),
        "per_class": {
            label: {
                "precision": per_class["precision"][i],
                "recall": per_class["recall"][i],
                "f1": per_class["f1"][i],
                "support": support[i],
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": multiclass_confusion_matrix(preds, target, num_classes=classes).tolist(),
    }
