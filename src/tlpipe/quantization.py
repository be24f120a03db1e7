"""int8 dynamic quantisation of an exported model, kept only if it stays accurate.

onnxruntime's ``quantize_dynamic`` stores weights as int8 and quantises activations on the fly,
which suits CPU serving of transformer and linear layers (about 4x smaller). Whether it stays
accurate depends on the model, so the quantised model is compared with the fp32 one on the test
inputs: macro-F1 of both, and how often their top-1 predictions agree. The caller keeps it only
if the macro-F1 drop is within ``export.max_quantization_drop``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tlpipe.metrics import macro_f1
from tlpipe.modalities.base import Preprocessor
from tlpipe.onnx_export import OUTPUT_NAME

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizationReport:
    """How the int8 model compares with the fp32 one on the test inputs, and whether it was kept."""

    kept: bool
    reason: str
    fp32_macro_f1: float
    int8_macro_f1: float
    macro_f1_drop: float
    max_quantization_drop: float
    top1_agreement: float
    fp32_bytes: int
    int8_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Write a dynamically quantised (int8 weights) copy of ``fp32_path`` to ``int8_path``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(fp32_path))
    # The dynamo exporter's value_info makes the quantiser's shape inference fail; it is only a hint.
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as scratch:
        cleared = Path(scratch) / "model.onnx"
        onnx.save(model, str(cleared))
        # Per-channel scales: on the demo's train and validation texts they agreed with fp32 more often than one
        # scale per tensor (benchmarks/quantization.py, benchmarks/results/quantization.md; the test split is not
        # used to choose).
        quantize_dynamic(str(cleared), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)
    quantized = onnx.load(str(int8_path))
    for entry in model.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    onnx.save(quantized, str(int8_path))


def onnx_logits(path: Path, preprocess: Preprocessor, inputs: Sequence[Any], batch_size: int) -> np.ndarray:
    """onnxruntime's logits for ``inputs``, batched: (len(inputs), num_labels)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = preprocess(inputs[start : start + batch_size])
        outputs.append(session.run([OUTPUT_NAME], {name: batch[name].numpy() for name in preprocess.input_names})[0])
    return np.concatenate(outputs)


def compare_int8(
    fp32_path: Path,
    int8_path: Path,
    preprocess: Preprocessor,
    inputs: Sequence[Any],
    labels: Sequence[int],
    classes: int,
    batch_size: int,
    max_drop: float,
) -> QuantizationReport:
    """Score both models on ``inputs`` (true class ids ``labels`` of ``classes``) and decide whether int8 may ship."""
    fp32 = onnx_logits(fp32_path, preprocess, inputs, batch_size).argmax(axis=1)
    int8 = onnx_logits(int8_path, preprocess, inputs, batch_size).argmax(axis=1)
    fp32_f1, int8_f1 = macro_f1(fp32, labels, classes), macro_f1(int8, labels, classes)
    drop = fp32_f1 - int8_f1
    kept = drop <= max_drop
    reason = (
        f"int8 test macro-F1 {int8_f1:.4f} vs fp32 {fp32_f1:.4f} (drop {drop:+.4f}, allowed "
        f"{max_drop}): {'kept' if kept else 'left out; the fp32 model is unaffected'}"
    )
    return QuantizationReport(
        kept=kept,
        reason=reason,
        fp32_macro_f1=fp32_f1,
        int8_macro_f1=int8_f1,
        macro_f1_drop=drop,
        max_quantization_drop=max_drop,
        top1_agreement=float((fp32 == int8).mean()),
        fp32_bytes=fp32_path.stat().st_size,
        int8_bytes=int8_path.stat().st_size,
    )
