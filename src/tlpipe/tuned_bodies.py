"""Bodies tuned on pairs, kept on disk for the rest of a train stage, so strategies that tune alike tune once.

``contrastive`` and ``lexical_contrastive`` tune the body the same way: the pair loss reads the
pooled embedding alone, and the wordpiece channel is not a body weight. Cross-validating both
would tune every fold's body twice, the costly part of either. The key is the sha256 of what
decides the tuned weights: the feature cache's key of the training inputs (the snapshot's
content, the preprocessing and the inputs), their labels and the settings the tuning reads;
never the strategy's name or its head's settings.
The entries live under ``paths.train_state``, which the train stage removes when it ends.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from tlpipe.artifacts import atomic_file
from tlpipe.config import TrainConfig
from tlpipe.feature_cache import FeatureCache

log = logging.getLogger(__name__)

# The train settings the contrastive phase reads (tlpipe.contrastive.tune_body and the runtime it runs on).
TUNING_SETTINGS = {
    "contrastive", "learning_rate", "layer_decay", "weight_decay", "warmup_ratio", "batch_size",
    "gradient_accumulation", "max_grad_norm", "seed", "device", "mixed_precision", "deterministic", "processes",
}  # fmt: skip


class TunedBodies:
    """A folder of ``<key>.safetensors`` files: a tuned body's weights, with the tuning's summary as metadata."""

    def __init__(self, folder: Path, features: FeatureCache) -> None:
        self.folder = folder
        self.features = features

    def key(self, inputs: Sequence[Any], labels: Sequence[int], train: TrainConfig) -> str:
        """The key of the body tuned on ``inputs`` with ``labels`` under ``train``'s tuning settings."""
        digest = hashlib.sha256(self.features.key(inputs).encode())
        digest.update(json.dumps(list(labels)).encode())
        digest.update(json.dumps(train.model_dump(mode="json", include=TUNING_SETTINGS), sort_keys=True).encode())
        return digest.hexdigest()

    def load_or_tune(
        self,
        body: nn.Module,
        inputs: Sequence[Any],
        labels: Sequence[int],
        train: TrainConfig,
        tune: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Load the tuned weights into ``body`` and return the tuning's summary; on a miss, ``tune()`` and keep it."""
        from safetensors.torch import load_model, safe_open, save_model

        path = self.folder / f"{self.key(inputs, labels, train)}.safetensors"
        if path.is_file():
            load_model(body, str(path))
            with safe_open(str(path), framework="pt") as stored:
                summary: dict[str, Any] = json.loads(stored.metadata()["summary"])
            log.info("The body tuned on these %d examples is reused (%s)", len(inputs), path.name[:12])
            return {**summary, "reused": True}
        summary = tune()
        with atomic_file(path) as staging:
            save_model(body, str(staging), metadata={"summary": json.dumps(summary)})
        return summary
