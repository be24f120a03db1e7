"""Which int8 form keeps the image demo's fine-tuned EfficientNet-Lite0 accurate: fp32, static QDQ and dynamic.

Exports the demo project's checkpoint (``models/checkpoint``, from ``dvc repro evaluate``) to
ONNX as ``tlpipe export`` does, quantises it with ``tlpipe.quantization.quantize_int8`` in each
form, and scores each model on the validation split (macro-F1, and top-1 agreement with fp32)
and on the test split (macro-F1: what the export stage's gate reads). Static models calibrate on
a seeded sample of the training inputs, as the export stage does. Two static variants: uint8
activations (U8S8, what ``tlpipe.quantization`` uses) and int8 activations (S8S8, onnxruntime's
general first choice); which one to use was read from the validation columns and from
``benchmarks/serving.py``'s speed, not from the test column.

Usage: ``.venv/bin/python benchmarks/quantization_image.py [--project DIR]``. Without --project it
builds the demo in a temporary folder (``examples/image_demo.py``, 40 training and 20 test images
per class, seed 0) and runs ``dvc repro evaluate`` there first (about 2 minutes on 2 cores).
Results: ``benchmarks/results/quantization_image.json`` and the Markdown table beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quantization_image.json"
sys.path.insert(0, str(REPO / "examples"))


def build_demo(folder: Path) -> None:
    """The image demo project in ``folder``, reproduced up to ``evaluate``."""
    from image_demo import write_project

    write_project(folder, train_per_class=40, test_per_class=20, seed=0)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # stages call tlpipe
    subprocess.run([str(Path(sys.executable).with_name("dvc")), "repro", "evaluate"], cwd=folder, check=True, env=env)


def score(project: Path) -> dict[str, Any]:
    """Validation and test macro-F1, agreement with fp32 and file size of each form, for ``project``'s checkpoint."""
    from tlpipe import quantization
    from tlpipe.checkpoint import load_checkpoint
    from tlpipe.metrics import macro_f1
    from tlpipe.onnx_export import export_onnx

    model, preprocess, config, _ = load_checkpoint(project / "models" / "checkpoint")
    labels = config["labels"]
    splits = {
        name: pd.read_csv(project / "data" / "prepared" / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("train", "valid", "test")
    }
    calibration = quantization.calibration_sample(splits["train"]["input"].tolist())
    rows: dict[str, dict[str, Any]] = {"fp32": {"quantize_seconds": 0.0}}
    with tempfile.TemporaryDirectory() as scratch_dir, contextlib.chdir(project):
        scratch = Path(scratch_dir)
        fp32 = scratch / "fp32.onnx"
        export_onnx(model, preprocess(calibration[:2]), preprocess.input_shapes(), fp32, 18)
        paths = {"fp32": fp32}
        for name, form, activations in (
            ("static, uint8 activations (U8S8)", "static", "QUInt8"),
            ("static, int8 activations (S8S8)", "static", "QInt8"),
            ("dynamic", "dynamic", None),
        ):
            paths[name] = scratch / f"{len(paths)}.onnx"
            chosen, quantization.STATIC_ACTIVATIONS = quantization.STATIC_ACTIVATIONS, activations or "QUInt8"
            started = time.perf_counter()
            try:
                quantization.quantize_int8(fp32, paths[name], form, preprocess, calibration)
            finally:
                quantization.STATIC_ACTIVATIONS = chosen
            rows[name] = {"quantize_seconds": time.perf_counter() - started}
        predictions = {
            split: {
                name: quantization.onnx_logits(path, preprocess, splits[split]["input"].tolist(), 32).argmax(axis=1)
                for name, path in paths.items()
            }
            for split in ("valid", "test")
        }
        for name, path in paths.items():
            for split in ("valid", "test"):
                targets = [labels.index(label) for label in splits[split]["label"]]
                rows[name][f"{split}_macro_f1"] = macro_f1(predictions[split][name], targets, len(labels))
                rows[name][f"{split}_agreement"] = float(
                    (predictions[split][name] == predictions[split]["fp32"]).mean()
                )
            rows[name]["megabytes"] = path.stat().st_size / 1e6
    return {
        "strategy": config["strategy"],
        "calibration_inputs": len(calibration),
        "examples": {split: len(table) for split, table in splits.items()},
        "forms": rows,
    }


def markdown(result: dict[str, Any], project: str, command: str) -> str:
    examples, forms = result["examples"], result["forms"]
    fp32 = forms["fp32"]
    lines = [
        f"{project}, checkpoint trained by `dvc repro evaluate` "
        f"(strategy {result['strategy']}); {examples['valid']} validation and {examples['test']} test images, "
        f"static models calibrated on {result['calibration_inputs']} training images. Command: `{command}`",
        "",
        "| model | validation macro-F1 | agreement with fp32 (validation) | test macro-F1 | test drop vs fp32 | "
        "agreement with fp32 (test) | MB | quantise, s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in forms.items():
        lines.append(
            f"| {name} | {row['valid_macro_f1']:.4f} | {row['valid_agreement']:.3f} | {row['test_macro_f1']:.4f} | "
            f"{fp32['test_macro_f1'] - row['test_macro_f1']:+.4f} | {row['test_agreement']:.3f} | "
            f"{row['megabytes']:.1f} | {row['quantize_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="an image project after `dvc repro evaluate`")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results; the Markdown table goes beside")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tlpipe-quantization-image-") as scratch:
        project = args.project or Path(scratch) / "demo"
        if args.project is None:
            build_demo(project)
        result = score(project.resolve())
    command = "python benchmarks/quantization_image.py" + (f" --project {args.project.name}" if args.project else "")
    project_name = f"Project {args.project.name}" if args.project else "Image demo (examples/image_demo.py, seed 0)"
    table = markdown(result, project_name, command)
    print(table)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
