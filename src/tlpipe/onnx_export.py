"""ONNX export that proves itself: the exported graph is run with onnxruntime next to PyTorch.

The parity check runs both on real held-out inputs, in batches (of varied text lengths), and
compares raw logits (max absolute difference), top-1 predictions (agreement), and the ONNX
model's own accuracy. The caller decides what to do with a failing report; the export stage
refuses to publish the model.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlpipe.modalities.base import Preprocessor
from tlpipe.modalities.classifier import Classifier

log = logging.getLogger(__name__)

OUTPUT_NAME = "logits"
# The body's pooled embedding, the graph's second output: what a drift check compares with the bundle's reference.
# Not "embedding": the dynamo exporter names a text body's embedding module's nodes that, and ONNX names must differ.
EMBEDDING_NAME = "body_embedding"
STACK_TRACE = "pkg.torch.onnx.stack_trace"  # node metadata the exporter writes (export_onnx removes it)


class ServingGraph(torch.nn.Module):
    """What is exported: ``model``'s logits and its body's embedding from one pass, inputs in ``input_names`` order."""

    def __init__(self, model: Classifier, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.input_names = model, tuple(input_names)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.logits_and_embedding(**dict(zip(self.input_names, tensors, strict=True)))


@dataclass(frozen=True)
class ParityReport:
    """How closely onnxruntime reproduces PyTorch on held-out inputs (no wall-clock time: the report is in the
    bundle, whose checksum must not change when the same model is exported again)."""

    examples: int
    max_abs_logit_diff: float
    top1_agreement: float
    onnx_accuracy: float
    torch_accuracy: float
    atol: float
    min_top1_agreement: float
    onnxruntime_version: str

    @property
    def passed(self) -> bool:
        return self.max_abs_logit_diff <= self.atol and self.top1_agreement >= self.min_top1_agreement

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **asdict(self)}

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"ONNX parity {verdict} on {self.examples} test examples: max |logit diff| "
            f"{self.max_abs_logit_diff:.2e} (atol {self.atol:.0e}), top-1 agreement "
            f"{self.top1_agreement:.4f} (min {self.min_top1_agreement}), ONNX accuracy {self.onnx_accuracy:.4f}"
        )


def export_onnx(
    model: Classifier, sample: dict[str, torch.Tensor], shapes: dict[str, list[str | int]], path: Path, opset: int
) -> None:
    """Export ``model`` to ``path`` with two outputs, ``logits`` and ``body_embedding``; in ``shapes`` (input name to
    axes) a named axis is dynamic."""
    model.eval()
    dims = {axis: torch.export.Dim(axis) for axes in shapes.values() for axis in axes if isinstance(axis, str)}
    # One entry, the tuple of the graph's positional inputs (ServingGraph.forward takes them as *tensors).
    dynamic_shapes = (
        tuple(
            {index: dims[axis] for index, axis in enumerate(axes) if isinstance(axis, str)} for axes in shapes.values()
        ),
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Inputs that share a dim (texts: batch and sequence) are reported as a rename.
        warnings.filterwarnings("ignore", message=".*The axis name.*will not be used", category=UserWarning)
        program = torch.onnx.export(
            ServingGraph(model, list(shapes)).eval(),
            tuple(sample[name] for name in shapes),
            input_names=list(shapes),
            output_names=[OUTPUT_NAME, EMBEDDING_NAME],
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
        )
    # The exporter records each node's Python stack trace, with this machine's absolute paths: the bundle would tell
    # production where it was built, and two checkouts of one commit would export different bytes.
    for node in _all_nodes(program.model):
        node.metadata_props.pop(STACK_TRACE, None)
    program.save(str(path), external_data=False)
    log.info("Exported ONNX (opset %d) to %s in %.1fs", opset, path, time.perf_counter() - started)


def _all_nodes(model: Any) -> Iterator[Any]:
    """Every node of an ``onnx_ir`` model: its graph's, subgraphs included, and its functions'."""
    yield from model.graph.all_nodes()
    for function in model.functions.values():
        yield from function.all_nodes()


def annotate(path: Path, metadata: dict[str, Any]) -> None:
    """Store ``metadata`` in the ONNX file's ``metadata_props`` (values as JSON), for servers reading only the model."""
    import json

    import onnx

    model = onnx.load(str(path))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value if isinstance(value, str) else json.dumps(value))
    onnx.save(model, str(path))


def check_parity(
    model: Classifier,
    onnx_path: Path,
    preprocess: Preprocessor,
    inputs: Sequence[Any],
    labels: Sequence[int],
    batch_size: int,
    atol: float,
    min_top1_agreement: float,
) -> ParityReport:
    """Run PyTorch and onnxruntime on the same batches and compare their outputs."""
    import onnxruntime as ort

    started = time.perf_counter()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model.eval()
    torch_logits, onnx_logits = [], []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = preprocess(inputs[start : start + batch_size])
            torch_logits.append(model(**batch).float().numpy())
            feeds = {name: batch[name].numpy() for name in preprocess.input_names}
            onnx_logits.append(session.run([OUTPUT_NAME], feeds)[0])
    expected, actual = np.concatenate(torch_logits), np.concatenate(onnx_logits)
    targets = np.asarray(labels)
    log.info("Compared onnxruntime with PyTorch on %d examples in %.1fs", len(inputs), time.perf_counter() - started)
    return ParityReport(
        examples=len(inputs),
        max_abs_logit_diff=float(np.abs(expected - actual).max()),
        top1_agreement=float((expected.argmax(1) == actual.argmax(1)).mean()),
        onnx_accuracy=float((actual.argmax(1) == targets).mean()),
        torch_accuracy=float((expected.argmax(1) == targets).mean()),
        atol=atol,
        min_top1_agreement=min_top1_agreement,
        onnxruntime_version=ort.__version__,
    )
