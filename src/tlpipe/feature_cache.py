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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tlpipe.artifacts import atomic_file

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
