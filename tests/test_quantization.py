"""int8 in the form that suits the body: static QDQ calibrated on training inputs, or dynamic; metadata kept."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from tlpipe.onnx_export import annotate, export_onnx
from tlpipe.quantization import calibration_sample, onnx_logits, quantize_int8
from tlpipe.training import seed_everything

SIZE = 16


class TinyConvNet(nn.Module):
    """Two convolutions with batch norm, pooled, and a linear head: a convolutional body in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Linear(16, 3)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(pixel_values))

    def logits_and_embedding(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What export_onnx exports, as a tlpipe Classifier gives it: the logits and the pooled body features."""
        features = self.body(pixel_values)
        return self.head(features), features


class ArrayPreprocessor:
    """Images as (3, SIZE, SIZE) arrays to ``pixel_values``, standing in for the image preprocessor."""

    input_names = ("pixel_values",)

    def __init__(self) -> None:
        self.seen: list[int] = []  # how many inputs each call got

    def __call__(self, inputs: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        self.seen.append(len(inputs))
        return {"pixel_values": torch.from_numpy(np.stack(inputs)).float()}

    def input_shapes(self) -> dict[str, list[str | int]]:
        return {"pixel_values": ["batch", 3, SIZE, SIZE]}


def images(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, 1.0, (3, SIZE, SIZE)).astype(np.float32) for _ in range(count)]


@pytest.fixture(scope="module")
def fp32_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny conv net exported to ONNX, with metadata as the export stage writes it."""
    seed_everything(0)
    model = TinyConvNet().eval()
    with torch.no_grad():  # batch norms with statistics of their own, so folding them changes something
        for norm in (model.body[1], model.body[4]):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("conv") / "model.onnx"
    export_onnx(model, ArrayPreprocessor()(images(2, 0)), ArrayPreprocessor().input_shapes(), path, opset=18)
    annotate(path, {"labels": ["a", "b", "c"], "tlpipe.bundle_format": "1"})
    return path


def op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_static_quantisation_writes_a_qdq_graph_that_stays_close_to_fp32(fp32_model: Path, tmp_path: Path) -> None:
    preprocess = ArrayPreprocessor()
    int8 = tmp_path / "model.int8.onnx"

    quantize_int8(fp32_model, int8, "static", preprocess, images(40, 1), batch_size=16)

    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= op_types(int8)
    assert preprocess.seen == [16, 16, 8]  # every calibration input, in batches
    held_out = images(8, 2)  # from the distribution the model was calibrated on, not the same inputs
    fp32_logits = onnx_logits(fp32_model, preprocess, held_out, 4)
    int8_logits = onnx_logits(int8, preprocess, held_out, 4)
    assert np.abs(int8_logits - fp32_logits).max() <= 0.05 * np.abs(fp32_logits).max()
    assert int8.stat().st_size < fp32_model.stat().st_size


@pytest.mark.parametrize("form", ["static", "dynamic"])
def test_either_form_keeps_the_fp32_models_metadata(fp32_model: Path, tmp_path: Path, form: str) -> None:
    int8 = tmp_path / "model.int8.onnx"

    quantize_int8(fp32_model, int8, form, ArrayPreprocessor(), images(4, 1))  # type: ignore[arg-type]

    def metadata(path: Path) -> list[tuple[str, str]]:
        return [(p.key, p.value) for p in onnx.load(str(path)).metadata_props]

    assert metadata(int8) == metadata(fp32_model)


def test_dynamic_quantisation_quantises_activations_per_batch_and_needs_no_calibration(
    fp32_model: Path, tmp_path: Path
) -> None:
    int8 = tmp_path / "model.int8.onnx"

    quantize_int8(fp32_model, int8, "dynamic")

    assert {"DynamicQuantizeLinear", "ConvInteger"} <= op_types(int8)
    assert "QuantizeLinear" not in op_types(int8)  # no ranges fixed beforehand


@pytest.mark.parametrize(
    ("form", "calibration", "message"),
    [
        ("static", [], "static quantisation needs a preprocessor and calibration inputs"),
        ("int4", images(2, 1), "unknown quantisation form 'int4'; known: dynamic, static"),
    ],
)
def test_a_static_model_without_calibration_inputs_or_an_unknown_form_is_refused(
    fp32_model: Path, tmp_path: Path, form: str, calibration: list[np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quantize_int8(fp32_model, tmp_path / "int8.onnx", form, ArrayPreprocessor(), calibration)  # type: ignore[arg-type]

    assert not (tmp_path / "int8.onnx").exists()


def test_the_calibration_sample_is_seeded_bounded_and_drawn_from_the_inputs_given() -> None:
    inputs = [f"train/{index:03d}.png" for index in range(500)]

    sample = calibration_sample(inputs, size=50)

    assert len(sample) == 50 and set(sample) <= set(inputs)
    assert sample == sorted(sample)  # in the table's order
    assert calibration_sample(inputs, size=50) == sample
    assert calibration_sample(inputs[:30], size=50) == inputs[:30]  # fewer than size: all of them
