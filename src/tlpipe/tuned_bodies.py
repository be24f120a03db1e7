"""Bodies tuned on pairs, kept on disk for the rest of a train stage, so strategies that tune alike tune once.

``contrastive`` and ``lexical_contrastive`` tune the body the same way: the pair loss reads the
pooled embedding alone, and the wordpiece channel is not a body weight. Cross-validating both
would tune every fold's body twice, the costly part of either. The key is the sha256 of what
decides the tuned weights: the feature cache's key of the training inputs (the snapshot's
content, the preprocessing and the inputs), their labels and the settings the tuning reads;
never the strategy's name or its head's settings.
The entries live under ``paths.train_state``, which the train stage removes when it ends.

Under cross-validation the store also gives the final model its body without a fourth tuning
(``train.contrastive.final_body: fold_average``): the element-wise mean of the folds' bodies,
each tuned from the same pretrained weights on two thirds of the examples (with 3 folds), so
every example tuned two of the three. Averaging fine-tuned weights that share a starting point
is the "model soup" of Wortsman et al. (2022). ``benchmarks/final_body.py`` measured it against
tuning again on every example, on training rows no run saw: it shortens the train stage, but on
the demo's tickets it scored lower than its adoption rule allows (``benchmarks/results/final_body.md``),
so it is not the default.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlpipe.artifacts import atomic_file
from tlpipe.config import TrainConfig
from tlpipe.feature_cache import FeatureCache
from tlpipe.strategies.contrastive import PAIR_SECTION, pair_settings

log = logging.getLogger(__name__)

FOLD_AVERAGE = "fold_average"
SUMMED = ("pairs", "similar_pairs", "steps", "seconds")  # over the folds, in an average's summary

# The train settings the contrastive phase reads (tlpipe.contrastive.tune_body and the runtime it runs on).
TUNING_SETTINGS = {
    "learning_rate", "layer_decay", "weight_decay", "warmup_ratio", "batch_size",
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
        tuning = train.model_dump(mode="json", include=TUNING_SETTINGS)
        tuning[PAIR_SECTION] = pair_settings(train).model_dump(mode="json")
        digest.update(json.dumps(tuning, sort_keys=True).encode())
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

        path = self.path(self.key(inputs, labels, train))
        if path.is_file():
            load_model(body, str(path))
            with safe_open(str(path), framework="pt") as stored:
                summary: dict[str, Any] = json.loads(stored.metadata()["summary"])
            if summary.get("method") == FOLD_AVERAGE:
                log.info("The body is the mean of the %d folds' tuned bodies (%s)", summary["folds"], path.name[:12])
                return summary
            log.info("The body tuned on these %d examples is reused (%s)", len(inputs), path.name[:12])
            return {**summary, "reused": True}
        summary = tune()
        with atomic_file(path) as staging:
            save_model(body, str(staging), metadata={"summary": json.dumps(summary)})
        return summary

    def average(self, sources: Sequence[str], into: str) -> bool:
        """Keep the element-wise mean of the bodies under the keys ``sources`` as the body under ``into``.

        Returns False, writing nothing, when one of them is not in the store (its fold was never tuned
        in this train state). The summary adds up the folds' pairs, steps and seconds.
        """
        from safetensors.torch import load_file, safe_open, save_file

        paths = [self.path(key) for key in sources]
        if not paths or not all(path.is_file() for path in paths):
            return False
        bodies = [load_file(str(path)) for path in paths]
        averaged = {
            name: torch.stack([body[name].double() for body in bodies]).mean(dim=0).to(tensor.dtype)
            if tensor.is_floating_point()
            else tensor  # integer buffers (position ids) are the same in every fold
            for name, tensor in bodies[0].items()
        }
        summaries = []
        for path in paths:
            with safe_open(str(path), framework="pt") as stored:
                summaries.append(json.loads(stored.metadata()["summary"]))
        summary = {
            "method": FOLD_AVERAGE,
            "folds": len(paths),
            **{total: sum(fold[total] for fold in summaries) for total in SUMMED},
            "epochs": summaries[0]["epochs"],
            "loss": summaries[0]["loss"],
            "precision": summaries[0].get("precision", "fp32"),
            "final_loss": sum(fold["final_loss"] for fold in summaries) / len(summaries),
            "fold_bodies": [key[:12] for key in sources],
        }
        with atomic_file(self.path(into)) as staging:
            save_file(averaged, str(staging), metadata={"summary": json.dumps(summary)})
        return True

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"
