"""Frozen-body features cached on disk, so a linear probe encodes its data once.

The key is the sha256 of what decides the features: the snapshot's content (the checksums of
its weights, tokenizer and config, from its manifest), the preprocessing, and the inputs' content
as the modality identifies it (a text itself; an image file's sha256, not its path). A run that changes only
head settings (learning rate, epochs, smoothing) finds its features here and skips the encoder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from tlpipe.artifacts import atomic_file

if TYPE_CHECKING:  # the modalities sit above this module; only the type is needed
    from tlpipe.modalities.classifier import Classifier

log = logging.getLogger(__name__)


class FeatureCache:
    """A folder of ``<key>.safetensors`` files, one per (body, preprocessing, inputs)."""

    def __init__(
        self,
        folder: Path,
        snapshot_key: str,
        preprocessing: dict[str, Any],
        content_key: Callable[[Any], str] = str,
    ) -> None:
        self.folder = folder
        self.snapshot_key = snapshot_key
        self.preprocessing = preprocessing
        self.content_key = content_key

    def key(self, inputs: Sequence[Any]) -> str:
        """The cache key of ``inputs`` under this body and preprocessing."""
        digest = hashlib.sha256()
        digest.update(self.snapshot_key.encode())
        digest.update(json.dumps(self.preprocessing, sort_keys=True).encode())
        for item in inputs:
            digest.update(self.content_key(item).encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def load_or_compute(self, inputs: Sequence[Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Cached features of ``inputs``, computing and storing them on a miss."""
        from safetensors.torch import load_file, save_file

        path = self.folder / f"{self.key(inputs)}.safetensors"
        if path.is_file():
            log.info("Features of %d examples loaded from the cache (%s)", len(inputs), path.name[:12])
            return load_file(path)["features"]
        features = compute()
        # A unique staging name: two runs filling the same entry must not write into one file.
        with atomic_file(path) as staging:
            save_file({"features": features.contiguous().cpu()}, str(staging))
        return features


def encode_features(
    model: Classifier,
    preprocess: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
    inputs: Sequence[Any],
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """Pooled body features of ``inputs`` in eval mode: (len(inputs), hidden)."""
    started = time.perf_counter()
    model.eval()
    chunks = []
    with torch.no_grad():  # not inference_mode: the head trains on these tensors
        for start in range(0, len(inputs), batch_size):
            batch = preprocess(inputs[start : start + batch_size])
            chunks.append(model.features(**{k: v.to(device) for k, v in batch.items()}).float())
    log.info("Encoded %d examples with the frozen body in %.1fs", len(inputs), time.perf_counter() - started)
    return torch.cat(chunks)
