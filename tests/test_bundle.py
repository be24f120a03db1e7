"""The production hand-off: a checksummed, self-describing bundle that serves without the training stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from tlpipe import serving
from tlpipe.cli import main
from tlpipe.quantization import compare_int8

BLOCK_TRAINING_STACK = (
    "import sys, runpy\n"
    "for name in ('torch', 'transformers', 'tlpipe', 'sklearn', 'pandas', 'sentence_transformers'):\n"
    "    sys.modules[name] = None  # importing any of them now fails\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


@pytest.fixture
def exported(finished_project: Path) -> Path:
    """The finished tiny text project (tests/conftest.py), only read here (``bundle`` is a copy to tamper with)."""
    return finished_project


@pytest.fixture
def bundle(exported: Path, tmp_path: Path) -> Path:
    """A private copy of the bundle, free to tamper with."""
    import shutil

    return Path(shutil.copytree(exported / "models" / "bundle", tmp_path / "bundle"))


def exported_test_texts(exported: Path) -> list[str]:
    """The exported project's test texts, in the order evaluate's predictions.csv lists them."""
    return pd.read_csv(exported / "data" / "prepared" / "test.csv")["input"].tolist()


def texts_file(exported: Path, bundle: Path) -> Path:
    """The test texts as a text file beside the bundle, one per line, for the standalone predictor."""
    path = bundle.parent / "texts.txt"
    path.write_text("\n".join(exported_test_texts(exported)) + "\n")
    return path


def run_standalone(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python predict.py`` from the bundle, in a process where torch, transformers and tlpipe cannot be imported."""
    command = [sys.executable, "-c", BLOCK_TRAINING_STACK, str(bundle / "predict.py"), str(bundle), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=bundle.parent)


def test_manifest_lists_every_other_file_with_its_sha256_and_size(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())

    assert manifest["format_version"] == serving.FORMAT_VERSION
    assert set(manifest["files"]) == {p.name for p in bundle.iterdir()} - {"manifest.json"}
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": serving.sha256_of(bundle / name), "size": (bundle / name).stat().st_size}


def test_the_onnx_file_carries_labels_preprocessing_and_versions(bundle: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(bundle / "model.onnx")).metadata_props}

    assert json.loads(props["labels"]) == json.loads((bundle / "labels.json").read_text())
    assert json.loads(props["preprocessing"])["tokenizer"] == "tokenizer.json"
    assert set(json.loads(props["versions"])) >= {"tlpipe", "torch", "onnx", "opset"}


def test_no_file_names_a_path_of_the_training_machine(exported: Path, bundle: Path, tiny_model_dir: Path) -> None:
    for path in bundle.iterdir():
        if path.suffix in (".json", ".md", ".txt"):
            text = path.read_text()
            assert str(exported) not in text and str(tiny_model_dir) not in text, path.name


def test_standalone_predictor_runs_without_the_training_stack_and_agrees_with_evaluate(
    exported: Path, bundle: Path
) -> None:
    texts = texts_file(exported, bundle)

    result = run_standalone(bundle, str(texts))

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    predictions = pd.read_csv(exported / "reports" / "evaluation" / "predictions.csv")
    assert [line["label"] for line in lines] == predictions["finetuned"].tolist()
    assert all(abs(sum(line["probabilities"].values()) - 1) < 1e-4 for line in lines)
    requirements = (bundle / "requirements.txt").read_text().split()
    assert [r.split("==")[0] for r in requirements] == ["onnxruntime", "numpy", "tokenizers"]


def test_predict_py_serves_the_calibrated_probabilities_and_sets_that_evaluate_measured(
    exported: Path, bundle: Path
) -> None:
    texts = texts_file(exported, bundle)
    calibration = json.loads((exported / "models" / "calibration.json").read_text())
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())

    result = run_standalone(bundle, str(texts), "--sets")

    assert result.returncode == 0, result.stderr
    assert preprocessing["calibration"]["temperature"] == calibration["temperature"]
    assert preprocessing["prediction_sets"]["threshold"] == calibration["prediction_sets"]["threshold"] < 1.0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    predictions = pd.read_csv(exported / "reports" / "evaluation" / "predictions.csv", keep_default_na=False)
    served = [max(line["probabilities"].values()) for line in lines]
    assert served == pytest.approx(predictions["probability"].tolist(), abs=2e-4)  # evaluate rounds to 4 places
    assert [sorted(line["set"]) for line in lines] == [
        sorted(filter(None, s.split("|"))) for s in predictions["prediction_set"]
    ]
    for line in lines:  # a set is every label at least 1 - threshold likely, most likely first
        within = [
            label
            for label, p in line["probabilities"].items()
            if 1 - p <= calibration["prediction_sets"]["threshold"] + 1e-6
        ]
        assert sorted(line["set"]) == sorted(within)
        assert [line["probabilities"][label] for label in line["set"]] == sorted(
            (line["probabilities"][label] for label in line["set"]), reverse=True
        )


def test_the_predictor_divides_the_logits_by_the_bundles_temperature(exported: Path, bundle: Path) -> None:
    texts = exported_test_texts(exported)
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())
    preprocessing["calibration"]["temperature"] = 2.5
    (bundle / "preprocessing.json").write_text(json.dumps(preprocessing))
    predictor = serving.Predictor(bundle, verify=False)  # the edit breaks the manifest's checksum, on purpose

    logits = predictor.session.run(["logits"], predictor._encode(texts))[0].astype(np.float64) / 2.5
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))

    np.testing.assert_allclose(predictor.probabilities(texts), expected / expected.sum(axis=1, keepdims=True))


def test_the_bundle_keeps_a_checksummed_drift_reference_of_test_embeddings(exported: Path, bundle: Path) -> None:
    preprocessing = json.loads((bundle / "preprocessing.json").read_text())
    test = pd.read_csv(exported / "data" / "prepared" / "test.csv")

    with np.load(bundle / preprocessing["drift"]["reference"], allow_pickle=False) as reference:
        embeddings, predicted = reference["embeddings"], reference["predicted"]
    assert preprocessing["drift"]["examples"] == len(test) == len(embeddings) == len(predicted)  # fewer than 300
    assert "drift_reference.npz" in json.loads((bundle / "manifest.json").read_text())["files"]
    session = ort.InferenceSession(str(bundle / "model.onnx"))
    assert [output.name for output in session.get_outputs()] == ["logits", "body_embedding"]
    predictions = pd.read_csv(exported / "reports" / "evaluation" / "predictions.csv")
    labels = json.loads((bundle / "labels.json").read_text())
    assert [labels[i] for i in predicted] == predictions["finetuned"].tolist()


def test_predict_py_drift_passes_the_test_split_and_flags_unrelated_inputs(exported: Path, bundle: Path) -> None:
    # The toy test split is 12 texts of a few patterns, all of them in the reference: the same texts twice over
    # are the no-drift case (the false-alarm rate on real held-out data is benchmarks/drift.py's).
    test = exported_test_texts(exported)
    alike, unrelated = bundle.parent / "alike.txt", bundle.parent / "unrelated.txt"
    alike.write_text("\n".join(test * 2) + "\n")
    unrelated.write_text("\n".join(f"{i * 7919} {'zq' * (i % 5 + 1)} {i}.{i} ###" for i in range(24)) + "\n")

    same = run_standalone(bundle, str(alike), "--drift")
    moved = run_standalone(bundle, str(unrelated), "--drift")

    assert same.returncode == 0, same.stderr
    assert moved.returncode == 1, moved.stderr  # exit status 1: drift
    same_report, moved_report = json.loads(same.stdout), json.loads(moved.stdout)
    assert not same_report["drift"] and moved_report["drift"]
    assert moved_report["embedding_test"]["p_value"] < 0.01 <= same_report["embedding_test"]["p_value"]
    assert moved_report["embedding_test"]["mmd2"] > same_report["embedding_test"]["mmd2"]
    assert same_report["inputs"] == 24 and same_report["reference"] == 12
    assert abs(sum(same_report["predictions"]["label_shares"].values()) - 1) < 1e-3
    assert "no drift detected" in same.stderr and "drift: these inputs differ" in moved.stderr


def test_tlpipe_monitor_runs_the_same_check_and_refuses_too_few_inputs(exported: Path, bundle: Path, capsys) -> None:
    texts = exported_test_texts(exported) * 2

    assert main(["monitor", str(bundle), *sum((["--text", t] for t in texts), [])]) == 0
    assert json.loads(capsys.readouterr().out)["drift"] is False
    assert main(["monitor", str(bundle), "--text", "one", "--text", "two"]) == 2
    assert "a drift check needs at least 20" in capsys.readouterr().err


def test_the_drift_check_embeds_with_the_fp32_model_its_reference_came_from(exported: Path, bundle: Path) -> None:
    from tlpipe.quantization import quantize_int8

    texts = exported_test_texts(exported) * 2
    quantize_int8(bundle / "model.onnx", bundle / "quantized.onnx", "dynamic")
    fp32, int8 = serving.Predictor(bundle, verify=False), serving.Predictor(bundle, "quantized.onnx", verify=False)

    assert not np.allclose(int8.outputs(texts, embeddings=True)[1], fp32.outputs(texts, embeddings=True)[1])
    assert int8.drift(texts)["embedding_test"] == fp32.drift(texts)["embedding_test"]


def test_blocking_the_training_stack_really_blocks_it(bundle: Path, tmp_path: Path) -> None:
    script = tmp_path / "imports_torch.py"
    script.write_text("import torch\n")

    result = subprocess.run([sys.executable, "-c", BLOCK_TRAINING_STACK, str(script)], capture_output=True, text=True)

    assert result.returncode != 0 and "import of torch halted" in result.stderr


def change_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def rewrite_sealed(bundle: Path, name: str, content: str) -> None:
    """``name`` in the bundle rewritten, and the manifest updated to match (a bundle as another export made it)."""
    path = bundle / name
    path.write_text(content)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": serving.sha256_of(path), "size": path.stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def relabel(bundle: Path) -> None:
    """labels.json with one label more than the model has outputs, and a manifest updated to match."""
    rewrite_sealed(bundle, "labels.json", json.dumps(json.loads((bundle / "labels.json").read_text()) + ["extra"]))


def of_another_modality(bundle: Path) -> None:
    """A bundle whose preprocessing names a modality this predict.py does not know."""
    preprocessing = json.loads((bundle / "preprocessing.json").read_text()) | {"modality": "audio"}
    rewrite_sealed(bundle, "preprocessing.json", json.dumps(preprocessing))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda b: change_one_byte(b / "model.onnx"), "model.onnx: differs from manifest.json"),
        (lambda b: (b / "labels.json").unlink(), "labels.json: listed in manifest.json but missing"),
        (lambda b: (b / "manifest.json").unlink(), "manifest.json: missing"),
        (relabel, "4 labels, but model.onnx has 3 outputs"),
        (
            of_another_modality,
            "the bundle's modality is 'audio', which this predict.py does not serve (it serves text, image)",
        ),
    ],
    ids=[
        "one byte of model.onnx changed",
        "labels.json deleted",
        "manifest deleted",
        "labels mismatch outputs",
        "unknown modality",
    ],
)
def test_a_tampered_bundle_is_refused_by_name(bundle: Path, tamper, message: str) -> None:
    tamper(bundle)

    result = run_standalone(bundle, "--text", "my invoice")

    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_tlpipe_predict_reads_texts_from_arguments_text_files_and_csv_columns(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "one.txt").write_text("my invoice\n\nlogin reset\n")
    pd.DataFrame({"body": ["parcel late"], "other": ["x"]}).to_csv(tmp_path / "rows.csv", index=False)

    status = main(
        ["predict", str(bundle), "--text", "refund please", str(tmp_path / "one.txt"), str(tmp_path / "rows.csv"),
         "--column", "body"]
    )  # fmt: skip

    assert status == 0
    inputs = [json.loads(line)["input"] for line in capsys.readouterr().out.splitlines()]
    assert inputs == ["refund please", "my invoice", "login reset", "parcel late"]


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: d / "empty.txt", "holds no text to classify"),
        (lambda d: d / "photo.png", "an image, but this bundle classifies texts"),
        (lambda d: d / "rows.csv", "name the text column with --column"),
        (lambda d: d / "missing.txt", "no such file"),
    ],
    ids=["empty file", "image to a text bundle", "csv without --column", "missing file"],
)
def test_tlpipe_predict_refuses_inputs_the_bundle_cannot_take(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_input, message: str
) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "rows.csv").write_text("body\nparcel late\n")

    status = main(["predict", str(bundle), str(make_input(tmp_path))])

    assert status == 2
    assert message in capsys.readouterr().err


def test_int8_model_ships_only_with_its_gate_passed_and_serves(exported: Path, bundle: Path) -> None:
    metadata = json.loads((bundle / "metadata.json").read_text())
    report = metadata["quantization"]

    assert report["kept"] == (report["macro_f1_drop"] <= report["max_quantization_drop"])
    assert (bundle / "model.int8.onnx").is_file() == report["kept"]
    assert 0.0 <= report["top1_agreement"] <= 1.0
    if report["kept"]:
        result = run_standalone(bundle, "--model", "model.int8.onnx", "--text", "my invoice")
        assert result.returncode == 0, result.stderr


def test_int8_gate_refuses_a_model_that_loses_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from tlpipe import quantization

    outputs = {"fp32": np.eye(3)[[0, 1, 2, 0]], "int8": np.eye(3)[[0, 0, 0, 0]]}
    monkeypatch.setattr(
        quantization, "onnx_logits", lambda path, *a: outputs["int8" if "int8" in Path(path).name else "fp32"]
    )
    for name in ("fp32.onnx", "int8.onnx"):
        (tmp_path / name).write_bytes(b"x")

    report = compare_int8(
        tmp_path / "fp32.onnx", tmp_path / "int8.onnx", None, [0] * 4, [0, 1, 2, 0], 3, 2, 0.01, "dynamic"
    )

    assert not report.kept and report.macro_f1_drop > 0.01
    assert report.top1_agreement == 0.5
    assert "left out" in report.reason and report.form == "dynamic"


@pytest.mark.parametrize(
    ("paths", "texts", "message"),
    [
        ([], ["a text"], "--text given, but this bundle classifies images"),
        (["notes.txt"], [], "not an image file"),
        (["empty.png"], [], "an empty file"),
        (["nothing"], [], "a folder with no image files"),
        (["missing.png"], [], "no such file or folder"),
    ],
    ids=["text to an image bundle", "text file to an image bundle", "empty image", "empty folder", "missing"],
)
def test_image_inputs_the_bundle_cannot_take_are_refused(
    tmp_path: Path, paths: list[str], texts: list[str], message: str
) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "nothing").mkdir()

    with pytest.raises(serving.BundleError, match=message):
        serving.read_inputs([str(tmp_path / p) for p in paths], texts, None, "image")


def test_image_folders_are_read_recursively_in_order(tmp_path: Path) -> None:
    for name in ("b/2.jpg", "a/1.PNG", "a/readme.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")

    inputs = serving.read_inputs([str(tmp_path)], [], None, "image")

    assert inputs == [str(tmp_path / "a/1.PNG"), str(tmp_path / "b/2.jpg")]
