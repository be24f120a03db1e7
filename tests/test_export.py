"""The ONNX export matches PyTorch on inputs of any batch and length, and a mismatch is caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tlpipe.modalities.text.model import TextPreprocessor, load_pretrained, load_tokenizer
from tlpipe.onnx_export import check_parity, export_onnx
from tlpipe.training import seed_everything


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    seed_everything(0)
    model = load_pretrained(tiny_model_dir, 3, dropout=0.1)
    preprocess = TextPreprocessor(load_tokenizer(tiny_model_dir), max_length=32)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(model, preprocess(["my invoice", "login"]), preprocess.input_shapes(), path, opset=18)
    return model, preprocess, path


def test_onnx_runs_any_batch_size_and_sequence_length(exported) -> None:
    model, preprocess, path = exported
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    for texts in (["a"], ["my invoice was late", "login", "please help with my parcel tracking today"] * 3):
        batch = preprocess(texts)
        onnx_logits, onnx_embedding = session.run(
            ["logits", "body_embedding"], {k: v.numpy() for k, v in batch.items()}
        )
        with torch.inference_mode():
            torch_logits = model.eval()(**batch).numpy()
            torch_embedding = model.embedding(**batch).numpy()
        assert onnx_logits.shape == (len(texts), 3)
        np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-5)
        np.testing.assert_allclose(onnx_embedding, torch_embedding, atol=1e-5)  # the drift check's embedding


def test_the_exported_graph_names_no_path_of_the_machine_that_exported_it(exported) -> None:
    import onnx

    _, _, path = exported
    graph = onnx.load(str(path))
    metadata = [(prop.key, prop.value) for node in graph.graph.node for prop in node.metadata_props]

    assert metadata, "the exporter's other node metadata (module names) is kept"
    assert not [key for key, value in metadata if "onnx_export.py" in value or key == "pkg.torch.onnx.stack_trace"]


def test_parity_report_passes_for_the_exported_model(exported, test_table) -> None:
    model, preprocess, path = exported
    labels = [["access", "billing", "shipping"].index(label) for label in test_table["label"]]

    report = check_parity(
        model, path, preprocess, test_table["text"].tolist(), labels, 5, atol=1e-4, min_top1_agreement=1.0
    )

    assert report.passed
    assert report.examples == len(test_table)
    assert report.max_abs_logit_diff < 1e-4
    assert report.top1_agreement == 1.0
    assert report.onnx_accuracy == report.torch_accuracy


def test_parity_report_fails_when_onnx_and_torch_disagree(exported, test_table, tiny_model_dir) -> None:
    _, preprocess, path = exported
    seed_everything(1)
    different = load_pretrained(tiny_model_dir, 3, dropout=0.1)
    labels = [0] * len(test_table)

    report = check_parity(
        different, path, preprocess, test_table["text"].tolist(), labels, 5, atol=1e-4, min_top1_agreement=1.0
    )

    assert not report.passed
    assert report.max_abs_logit_diff > 1e-4
    assert "FAILED" in report.describe()
