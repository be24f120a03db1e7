"""Which onnxruntime dynamic-quantisation settings keep a fine-tuned text model accurate, chosen on validation.

Quantises the demo's exported fp32 model (``models/bundle/model.onnx``, from ``dvc repro``) with
several ``quantize_dynamic`` settings and scores each on the validation split
(``data/prepared/valid.csv``: macro-F1) and on the training and validation texts together
(top-1 agreement with fp32, which needs no labels and so can use every non-test text), and
size. The setting ``tlpipe.quantization`` uses was chosen from this table; the test split is not
read here.

Usage: ``.venv/bin/python benchmarks/quantization.py`` after ``make demo`` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "quantization.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=REPO, help="a project after `dvc repro` (default: this one)")
    args = parser.parse_args()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from tlpipe.checkpoint import load_checkpoint
    from tlpipe.metrics import macro_f1
    from tlpipe.quantization import onnx_logits

    _, preprocess, config, _ = load_checkpoint(args.project / "models" / "checkpoint")
    prepared = args.project / "data" / "prepared"
    valid = pd.read_csv(prepared / "valid.csv", dtype=str, keep_default_na=False)
    train = pd.read_csv(prepared / "train.csv", dtype=str, keep_default_na=False)
    targets = [config["labels"].index(label) for label in valid["label"]]
    inputs = valid["input"].tolist() + train["input"].tolist()  # validation first: macro-F1 reads those
    fp32_path = args.project / "models" / "bundle" / "model.onnx"
    fp32 = onnx_logits(fp32_path, preprocess, inputs, 32).argmax(axis=1)
    settings = {
        "int8 weights, per tensor (onnxruntime default)": dict(weight_type=QuantType.QInt8),
        "int8 weights, per channel": dict(weight_type=QuantType.QInt8, per_channel=True),
        "uint8 weights, per tensor": dict(weight_type=QuantType.QUInt8),
        "uint8 weights, per channel": dict(weight_type=QuantType.QUInt8, per_channel=True),
        "int8, MatMul only (embeddings stay fp32)": dict(weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"]),
    }
    classes = len(config["labels"])
    fp32_f1 = macro_f1(fp32[: len(targets)], targets, classes)
    rows = [{"setting": "fp32", "macro_f1": fp32_f1, "agreement": 1.0, "megabytes": fp32_path.stat().st_size / 1e6}]
    with tempfile.TemporaryDirectory() as scratch:
        model = onnx.load(str(fp32_path))
        del model.graph.value_info[:]
        cleared = Path(scratch) / "fp32.onnx"
        onnx.save(model, str(cleared))
        for index, (name, options) in enumerate(settings.items()):
            path = Path(scratch) / f"int8_{index}.onnx"
            quantize_dynamic(str(cleared), str(path), **options)
            predicted = onnx_logits(path, preprocess, inputs, 32).argmax(axis=1)
            rows.append(
                {
                    "setting": name,
                    "macro_f1": macro_f1(predicted[: len(targets)], targets, classes),
                    "agreement": float(np.mean(predicted == fp32)),
                    "megabytes": path.stat().st_size / 1e6,
                }
            )
    print(f"Validation macro-F1 on {len(targets)} texts; agreement on {len(inputs)} train + validation texts\n")
    print("| setting | validation macro-F1 | top-1 agreement with fp32 | MB |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['setting']} | {row['macro_f1']:.4f} | {row['agreement']:.4f} | {row['megabytes']:.1f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"validation_examples": len(targets), "agreement_examples": len(inputs), "rows": rows}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
