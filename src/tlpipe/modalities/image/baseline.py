"""The classic baseline for images: logistic regression on downscaled, standardised pixels.

It shows what the pixels alone give, so every run reports what the pretrained features added.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tlpipe.config import EvaluateConfig
from tlpipe.modalities.image.data import load_rgb
from tlpipe.modalities.image.settings import evaluate_of


class PixelLogReg:
    """Images downscaled to ``size`` x ``size`` RGB, flattened, standardised, into a balanced logistic regression."""

    def __init__(self, size: int, pipeline: Pipeline) -> None:
        self.size, self.pipeline = size, pipeline

    def pixels(self, paths: Sequence[str]) -> np.ndarray:
        """(len(paths), size * size * 3) floats in [0, 1]."""
        from PIL import Image

        return np.stack(
            [
                np.asarray(load_rgb(path).resize((self.size, self.size), Image.Resampling.BILINEAR), np.float32).ravel()
                / 255.0
                for path in paths
            ]
        )

    def fit(self, paths: Sequence[str], labels: Sequence[int]) -> PixelLogReg:
        self.pipeline.fit(self.pixels(paths), list(labels))
        return self

    def predict(self, paths: Sequence[str]) -> list[int]:
        return [int(label) for label in self.pipeline.predict(self.pixels(paths))]


def fit_pixel_logreg(paths: Sequence[str], labels: Sequence[int], evaluate: EvaluateConfig, seed: int) -> PixelLogReg:
    """The fitted pixel baseline."""
    pipeline = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=evaluate.baseline_c, max_iter=2000, class_weight="balanced", random_state=seed),
    )
    return PixelLogReg(evaluate_of(evaluate).baseline_image_size, pipeline).fit(paths, labels)
