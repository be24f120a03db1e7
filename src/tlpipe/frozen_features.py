"""The frozen pretrained body's features of any inputs, through the feature cache: what the probe-based stages
(label review, self-training) and ``suggest-labels`` encode, keyed as the train stage keys its cache so that each
reuses the others' rows."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tlpipe.config import ModelConfig, PathsConfig, PreprocessConfig
from tlpipe.feature_cache import FeatureCache, encode_features
from tlpipe.modalities.base import Modality
from tlpipe.runtime import encoding_device

if TYPE_CHECKING:
    from tlpipe.modalities.classifier import Classifier

ENCODE_BATCH = 64

Encoder = Callable[[Sequence[Any]], np.ndarray]


def frozen_encoder(
    paths: PathsConfig,
    model: ModelConfig,
    preprocess: PreprocessConfig,
    modality: Modality,
    manifest: dict[str, Any],
    classes: int,
) -> Encoder:
    """A function from inputs to the snapshot's frozen features (one row each); rows the cache holds are read,
    the others encoded and added. ``manifest``: the snapshot's, as ``verify_snapshot`` returns it. The body is
    loaded on the first rows the cache lacks: loading it was a third of a label review that found every row cached."""
    device = encoding_device()
    encode = modality.preprocessor(paths.snapshot, preprocess, model.trust_remote_code)
    snapshot_key = json.dumps(manifest["files"], sort_keys=True)  # as the train stage keys its feature cache
    cache = FeatureCache(paths.feature_cache, snapshot_key, encode.describe(), modality.content_key)

    @functools.cache
    def body() -> Classifier:
        loaded = modality.load_pretrained(
            paths.snapshot, classes, 0.0, trust_remote_code=model.trust_remote_code, pretrained=True
        )
        return loaded.to(device)

    def features(inputs: Sequence[Any]) -> np.ndarray:
        items = list(inputs)
        compute = lambda: encode_features(body(), encode, items, ENCODE_BATCH, device).cpu()  # noqa: E731
        return cache.load_or_compute(items, compute).numpy()

    return features
