"""The reference sample a bundle's drift check compares new inputs with (``tlpipe.serving``: ``predict.py --drift``).

The reference is a seeded sample of the test split as the exported graph sees it: each example's
body embedding (the graph's ``body_embedding`` output), its calibrated top-1 probability and its
predicted label. The test split, because it is labelled data from the training distribution that
no model trained on, and with few labels it is larger than the training sample. On the real suite
(``benchmarks/drift.py``: rotten_tomatoes and openclipart, bundles trained on 16 per class) a
reference of the training rows, alone or pooled with the test rows, gave no fewer false alarms.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlpipe.modalities.base import Preprocessor
from tlpipe.onnx_export import EMBEDDING_NAME, OUTPUT_NAME

REFERENCE_FILE = "drift_reference.npz"
SAMPLE_SEED = 0


def reference_outputs(
    model_path: Path, preprocess: Preprocessor, inputs: Sequence[Any], temperature: float, batch_size: int
) -> dict[str, np.ndarray]:
    """onnxruntime's body embeddings, calibrated confidence and predicted label of each input: the reference."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    logits, embeddings = [], []
    for start in range(0, len(inputs), batch_size):
        batch = preprocess(inputs[start : start + batch_size])
        feeds = {name: batch[name].numpy() for name in preprocess.input_names}
        batch_logits, batch_embeddings = session.run([OUTPUT_NAME, EMBEDDING_NAME], feeds)
        logits.append(batch_logits)
        embeddings.append(batch_embeddings)
    scaled = np.concatenate(logits).astype(np.float64) / temperature
    probabilities = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return {
        "embeddings": np.concatenate(embeddings).astype(np.float32),
        "confidence": probabilities.max(axis=1).astype(np.float32),
        "predicted": probabilities.argmax(axis=1).astype(np.int32),
    }


def write_reference(path: Path, reference: dict[str, np.ndarray]) -> None:
    """Save the reference as an uncompressed ``.npz`` of plain arrays (``np.load(allow_pickle=False)`` reads it)."""
    with path.open("wb") as handle:
        np.savez(handle, **reference)
