"""The reliability table for bundles and `tlpipe predict`: a tampered bundle or an unusable input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tlpipe import serving

from .harness import Case, check_case
from .models import change_one_byte

BUNDLE = Path("models/bundle")


def predict(*inputs: str) -> list[str]:
    return ["predict", BUNDLE.as_posix(), *inputs]


def labels_beyond_the_outputs(root: Path) -> None:
    """labels.json with one label more than the model has outputs, and a manifest updated to match."""
    path = root / BUNDLE / "labels.json"
    path.write_text(json.dumps([*json.loads(path.read_text()), "extra"]))
    manifest = json.loads((root / BUNDLE / "manifest.json").read_text())
    manifest["files"]["labels.json"] = {"sha256": serving.sha256_of(path), "size": path.stat().st_size}
    (root / BUNDLE / "manifest.json").write_text(json.dumps(manifest))


def inputs(root: Path) -> None:
    (root / "empty.txt").write_text("\n")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n")
    (root / "rows.csv").write_text("body\nparcel late\n")


CASES = [
    Case("bundle: one byte of model.onnx changed", lambda r: change_one_byte(r / BUNDLE / "model.onnx"),
         predict("--text", "my invoice"), 2, ("model.onnx: differs from manifest.json",)),
    Case("bundle: labels.json missing", lambda r: (r / BUNDLE / "labels.json").unlink(),
         predict("--text", "my invoice"), 2, ("labels.json: listed in manifest.json but missing",)),
    Case("bundle: labels do not match the output size", labels_beyond_the_outputs,
         predict("--text", "my invoice"), 2, ("4 labels, but model.onnx has 3 outputs",)),
    Case("bundle: folder that does not exist", lambda r: None, ["predict", "models/nowhere", "--text", "x"], 2,
         ("models/nowhere", "manifest.json: missing")),
    Case("predict: empty text file", inputs, predict("empty.txt"), 2, ("empty.txt", "holds no text to classify")),
    Case("predict: an image to a text bundle", inputs, predict("photo.png"), 2,
         ("photo.png", "an image, but this bundle classifies texts")),
    Case("predict: CSV without --column", inputs, predict("rows.csv"), 2,
         ("rows.csv", "name the text column with --column")),
    Case("predict: CSV column that does not exist", inputs, predict("rows.csv", "--column", "text"), 2,
         ("rows.csv", "text")),
    Case("predict: input file that does not exist", inputs, predict("missing.txt"), 2,
         ("missing.txt", "no such file")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tampered_bundles_and_unusable_inputs_are_refused(case: Case, workspace: Path) -> None:
    check_case(case, workspace)
