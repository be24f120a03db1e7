"""Frozen-body features cached on disk, so a linear probe encodes its data once.

The key is the sha256 of what decides the features: the snapshot's content (the checksums of
its weights, tokenizer and config, from its manifest), the preprocessing, and the inputs' content
as the modality identifies it (a text itself; an image file's sha256, not its path). A run that changes only
head settings (learning rate, epochs, smoothing) finds its features here and skips the encoder.

Each file also lists a digest per row, so a request for other inputs that earlier entries hold row by row (a
cross-validation fold of the training set that ``review_labels`` or the first fold encoded) is gathered from
them instead of encoded again.
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
ROWS = "rows"  # the file metadata listing each row's digest, in order


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
        return self._key([self.content_key(item) for item in inputs])

    def _key(self, contents: Sequence[str]) -> str:
        digest = self._prefix()
        for content in contents:
            digest.update(content.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    def _prefix(self) -> hashlib._Hash:
        digest = hashlib.sha256()
        digest.update(self.snapshot_key.encode())
        digest.update(json.dumps(self.preprocessing, sort_keys=True).encode())
        return digest

    def _row_digests(self, contents: Sequence[str]) -> list[str]:
        prefix = self._prefix()
        prefix.update(b"\0row\0")
        digests = []
        for content in contents:
            digest = prefix.copy()
            digest.update(content.encode())
            digests.append(digest.hexdigest()[:32])
        return digests

    def load_or_compute(self, inputs: Sequence[Any], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Cached features of ``inputs``, computing and storing them on a miss."""
        from safetensors.torch import load_file, save_file

        contents = [self.content_key(item) for item in inputs]
        path = self.folder / f"{self._key(contents)}.safetensors"
        if path.is_file():
            log.info("Features of %d examples loaded from the cache (%s)", len(inputs), path.name[:12])
            return load_file(path)["features"]
        rows = self._row_digests(contents)
        features = self._gathered(rows)
        if features is not None:
            log.info("Features of %d examples gathered from earlier cache entries", len(inputs))
            return features
        features = compute()
        # A unique staging name: two runs filling the same entry must not write into one file.
        with atomic_file(path) as staging:
            save_file({"features": features.contiguous().cpu()}, str(staging), metadata={ROWS: json.dumps(rows)})
        return features

    def _gathered(self, rows: Sequence[str]) -> torch.Tensor | None:
        """Features of ``rows`` (row digests) from the entries that hold them, or None unless every row is held."""
        if not rows or not self.folder.is_dir():
            return None
        from safetensors import SafetensorError, safe_open

        wanted, found = set(rows), {}
        for entry in sorted(self.folder.glob("*.safetensors")):
            try:
                with safe_open(str(entry), framework="pt") as file:
                    listed = json.loads((file.metadata() or {}).get(ROWS, "[]"))
                    positions = {digest: index for index, digest in enumerate(listed) if digest in wanted}
                    if positions:
                        features = file.get_tensor("features")
                        found.update({digest: features[index] for digest, index in positions.items()})
            except (SafetensorError, OSError, ValueError) as error:  # a cache entry is never worth a failed run
                log.warning("%s: not a readable feature-cache entry (%s); skipped. Delete it.", entry, error)
                continue
            if len(found) == len(wanted):
                return torch.stack([found[digest] for digest in rows])
        return None


def encode_features(
    model: Classifier,
    preprocess: Callable[[Sequence[Any]], dict[str, torch.Tensor]],
    inputs: Sequence[Any],
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    """The body's pooled ``embedding`` of ``inputs`` in eval mode: (len(inputs), hidden); without the channels
    that ``features`` adds to it (``Classifier.features_from_embeddings``)."""
    started = time.perf_counter()
    model.eval()
    chunks = []
    with torch.no_grad():  # not inference_mode: the head trains on these tensors
        for start in range(0, len(inputs), batch_size):
            batch = preprocess(inputs[start : start + batch_size])
            chunks.append(model.embedding(**{k: v.to(device) for k, v in batch.items()}).float())
    log.info("Encoded %d examples with the frozen body in %.1fs", len(inputs), time.perf_counter() - started)
    return torch.cat(chunks)
