"""Figures for humans: confusion matrices side by side, and reliability diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tlpipe.artifacts import atomic_file


def plot_confusion_matrices(matrices: dict[str, list[list[int]]], labels: list[str], path: Path) -> None:
    """Draw one row-normalised confusion matrix per model into a PNG at ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(matrices), figsize=(5.5 * len(matrices), 5), squeeze=False)
    for axis, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        counts = np.asarray(matrix)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        for (row, col), count in np.ndenumerate(counts):
            axis.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if rates[row, col] > 0.5 else "black",
            )
        axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axis.set_yticks(range(len(labels)), labels)
        axis.set_xlabel("predicted")
        axis.set_ylabel("actual")
        axis.set_title(title)
    save_png(figure, path)


def plot_reliability(curves: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Reliability diagram: per confidence bin (``tlpipe.calibration.reliability``), accuracy against mean
    confidence, one line per curve, and the diagonal a calibrated model lies on; a PNG at ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    for (title, bins), marker in zip(curves.items(), "os^v", strict=False):
        sizes = [20 + 180 * b["count"] / max(sum(x["count"] for x in bins), 1) for b in bins]
        axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker=marker, label=title)
        axis.scatter([b["confidence"] for b in bins], [b["accuracy"] for b in bins], s=sizes, alpha=0.3)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("confidence (top-1 probability), per bin")
    axis.set_ylabel("accuracy in the bin")
    axis.set_title("Reliability on the test split (marker area: examples)")
    axis.legend(loc="upper left")
    save_png(figure, path)


def save_png(figure: Any, path: Path) -> None:
    """Write ``figure`` to ``path`` as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    try:
        with atomic_file(path) as staging:
            figure.savefig(staging, dpi=120, format="png")
    finally:
        plt.close(figure)
