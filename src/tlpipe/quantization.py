"""int8 quantisation of an exported model, in the form that suits its body, kept only if it stays accurate.

Two forms, both onnxruntime's, both with per-channel weight scales:

- ``dynamic`` (``quantize_dynamic``): int8 weights, activations quantised on the fly from each
  batch's own range (``DynamicQuantizeLinear``). It suits transformer and linear layers (MatMul)
  on CPU; its convolutions (``ConvInteger``) ran EfficientNet-Lite0 several times slower than fp32.
- ``static`` (``quantize_static``, QDQ format): activation ranges are fixed beforehand by running
  the model on calibration inputs, so convolutions run as int8 kernels. Calibration inputs are
  training inputs, never the test inputs that judge the result. The graph first goes through
  ``quant_pre_process`` (shape inference and onnxruntime's graph optimisations), as onnxruntime
  recommends before static quantisation; ranges are each tensor's min and max over the
  calibration inputs. Weights are int8 and activations uint8 (``STATIC_ACTIVATIONS``).

Whether a quantised model stays accurate depends on the model, so it is compared with the fp32 one
on the test inputs: macro-F1 of both, and how often their top-1 predictions agree. The caller
keeps it only if the macro-F1 drop is within ``export.max_quantization_drop``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from tlpipe.datasets import seeded_sample
from tlpipe.metrics import macro_f1
from tlpipe.modalities.base import Preprocessor
from tlpipe.onnx_export import OUTPUT_NAME

log = logging.getLogger(__name__)

Int8Form = Literal["dynamic", "static"]
INT8_FORMS: tuple[str, ...] = get_args(Int8Form)
CALIBRATION_SIZE = 200  # training inputs that fix the activation ranges of a static model
CALIBRATION_BATCH = 16
# Static activations as uint8 with int8 weights (U8S8): on this project's AVX-512 VNNI CPU, EfficientNet-Lite0 ran at
# 0.44x fp32's latency where int8 activations (S8S8, onnxruntime's general first choice) ran at 0.79x, and the two
# scored the same on validation (benchmarks/results/quantization_image.md).
STATIC_ACTIVATIONS = "QUInt8"


@dataclass(frozen=True)
class QuantizationReport:
    """How the int8 model (of ``form``, dynamic or static) compares with the fp32 one on the test inputs, and
    whether it was kept."""

    form: str
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


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    form: Int8Form,
    preprocess: Preprocessor | None = None,
    calibration_inputs: Sequence[Any] = (),
    batch_size: int = CALIBRATION_BATCH,
) -> None:
    """Write an int8 copy of ``fp32_path`` to ``int8_path`` in ``form``, with the fp32 model's metadata.

    ``static`` calibrates on ``calibration_inputs`` (training inputs, put through ``preprocess``
    ``batch_size`` at a time); ``dynamic`` needs neither.
    """
    import onnx

    model = onnx.load(str(fp32_path))
    # The dynamo exporter's value_info makes the quantiser's shape inference fail; it is only a hint.
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as scratch:
        cleared = Path(scratch) / "model.onnx"
        onnx.save(model, str(cleared))
        if form == "dynamic":
            _quantize_dynamic(cleared, int8_path)
        elif form == "static":
            if preprocess is None or not calibration_inputs:
                raise ValueError("static quantisation needs a preprocessor and calibration inputs")
            calibration = _Calibration(_feeds(preprocess, calibration_inputs, batch_size))
            _quantize_static(cleared, int8_path, Path(scratch) / "prepared.onnx", calibration)
        else:
            raise ValueError(f"unknown quantisation form {form!r}; known: {', '.join(INT8_FORMS)}")
    quantized = onnx.load(str(int8_path))
    del quantized.metadata_props[:]
    for entry in model.metadata_props:
        quantized.metadata_props.add(key=entry.key, value=entry.value)
    onnx.save(quantized, str(int8_path))


def _quantize_dynamic(fp32_path: Path, int8_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales: on the demo's train and validation texts they agreed with fp32 more often than one
    # scale per tensor (benchmarks/quantization.py, benchmarks/results/quantization.md; the test split is not
    # used to choose).
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True)


def _quantize_static(fp32_path: Path, int8_path: Path, prepared: Path, calibration: _Calibration) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(
        str(prepared),
        str(int8_path),
        calibration,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType[STATIC_ACTIVATIONS],
        weight_type=QuantType.QInt8,
    )


class _Calibration:
    """onnxruntime's ``CalibrationDataReader`` protocol over an iterator of feeds: one batch per call, then None."""

    def __init__(self, feeds: Iterator[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _feeds(preprocess: Preprocessor, inputs: Sequence[Any], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """``inputs`` through ``preprocess``, ``batch_size`` at a time, as onnxruntime feeds."""
    for start in range(0, len(inputs), batch_size):
        batch = preprocess(inputs[start : start + batch_size])
        yield {name: batch[name].numpy() for name in preprocess.input_names}


def calibration_sample(inputs: Sequence[Any], size: int = CALIBRATION_SIZE, seed: int = 0) -> list[Any]:
    """A seeded sample of at most ``size`` of ``inputs`` (training inputs), in their original order."""
    return seeded_sample(inputs, size, seed)


def onnx_logits(path: Path, preprocess: Preprocessor, inputs: Sequence[Any], batch_size: int) -> np.ndarray:
    """onnxruntime's logits for ``inputs``, batched: (len(inputs), num_labels)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT_NAME], feed)[0] for feed in _feeds(preprocess, inputs, batch_size)])


def compare_int8(
    fp32_path: Path,
    int8_path: Path,
    preprocess: Preprocessor,
    inputs: Sequence[Any],
    labels: Sequence[int],
    classes: int,
    batch_size: int,
    max_drop: float,
    form: Int8Form,
) -> QuantizationReport:
    """Score both models on ``inputs`` (true class ids ``labels`` of ``classes``) and decide whether the int8 model,
    quantised in ``form``, may ship."""
    fp32 = onnx_logits(fp32_path, preprocess, inputs, batch_size).argmax(axis=1)
    int8 = onnx_logits(int8_path, preprocess, inputs, batch_size).argmax(axis=1)
    fp32_f1, int8_f1 = macro_f1(fp32, labels, classes), macro_f1(int8, labels, classes)
    drop = fp32_f1 - int8_f1
    kept = drop <= max_drop
    reason = (
        f"{form} int8 test macro-F1 {int8_f1:.4f} vs fp32 {fp32_f1:.4f} (drop {drop:+.4f}, allowed "
        f"{max_drop}): {'kept' if kept else 'left out; the fp32 model is unaffected'}"
    )
    return QuantizationReport(
        form=form,
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
