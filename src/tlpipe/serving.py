"""Serve a tlpipe bundle with onnxruntime alone: verify its files, preprocess, predict.

This module imports nothing from tlpipe, torch or transformers: the export copies it into every
bundle as ``predict.py``, next to a ``requirements.txt`` naming exactly what it imports
(onnxruntime and numpy; tokenizers for a text bundle, Pillow for an image bundle), and
``tlpipe predict`` runs the same code. Before loading anything it checks every file against the
bundle's ``manifest.json`` (sha256 and size), so a file changed or lost in transit is refused by
name. The bundle format is documented in docs/bundle.md.

    python predict.py BUNDLE --text "my card was charged twice"      # texts as arguments
    python predict.py BUNDLE texts.txt                               # one text per line
    python predict.py BUNDLE tickets.csv --column text               # a CSV column
    python predict.py BUNDLE photo.jpg photos/                       # image files and folders
    python predict.py BUNDLE texts.txt --sets                        # add each input's prediction set
    python predict.py BUNDLE todays_texts.txt --drift                # do these look like the training data?

Each prediction is one JSON line on stdout: the input, the label and every class's probability.
The probabilities are calibrated: the logits are divided by the temperature in
``preprocessing.json`` (fitted on held-out data when the model was trained). With ``--sets`` each
line also has ``set``, the labels whose probability is at least 1 - the bundle's threshold: sets
that hold the true label for the share of inputs ``preprocessing.json`` names (its ``coverage``),
for inputs like the training data.

``--drift`` prints one JSON report instead of predictions: are these inputs, taken together, drawn
from the distribution the model was evaluated on? The bundle carries a reference sample: the body
embeddings and predictions of held-out examples (``drift_reference.npz``). The report gives a
two-sample test on the embeddings (maximum mean discrepancy with a Gaussian kernel, p-value by
permutation), and how the predicted labels and the share of low-confidence predictions moved.
The exit status is 1 when the p-value is below ``--alpha`` (drift), else 0; ``tlpipe monitor``
runs the same check.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DRIFT_EXIT = 1  # --drift: the inputs drifted (errors exit 2)
MIN_DRIFT_INPUTS = 20
MAX_DRIFT_INPUTS = 1000  # a seeded sample of more inputs is tested: the kernel matrix grows with the square
LOW_CONFIDENCE_QUANTILE = 0.1  # "low confidence": below the reference's 10th percentile, so 10% without drift
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
PROGRESS_EVERY_S = 5.0


class BundleError(Exception):
    """The bundle is incomplete, altered, or cannot take the input it was given."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_bundle(bundle: Path) -> dict[str, Any]:
    """Check every file the manifest lists (present, same size, same sha256); return the manifest."""
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path}: missing; this is not a tlpipe bundle (or it was not copied whole).")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path}: bundle format {manifest.get('format_version')!r}; this predictor reads format {FORMAT_VERSION}."
        )
    for name, expected in manifest["files"].items():
        file = bundle / name
        if not file.is_file():
            raise BundleError(f"{file}: listed in {MANIFEST} but missing; copy the whole bundle again.")
        if file.stat().st_size != expected["size"] or sha256_of(file) != expected["sha256"]:
            raise BundleError(
                f"{file}: differs from {MANIFEST} (size or sha256); the file was altered or damaged in transit. "
                "Copy the bundle again from its source."
            )
    return manifest


class Predictor:
    """A verified bundle, loaded: ``predict(inputs)`` gives each input's label and class probabilities."""

    def __init__(self, bundle: Path, model_file: str | None = None, verify: bool = True) -> None:
        import onnxruntime as ort

        manifest = verify_bundle(bundle) if verify else {}
        self.bundle = bundle
        self.labels: list[str] = json.loads((bundle / "labels.json").read_text(encoding="utf-8"))
        self.preprocessing: dict[str, Any] = json.loads((bundle / "preprocessing.json").read_text(encoding="utf-8"))
        self.modality: str = self.preprocessing.get("modality", "")
        if self.modality not in ENCODERS:
            raise BundleError(
                f"{bundle / 'preprocessing.json'}: the bundle's modality is {self.modality!r}, which this predict.py "
                f"does not serve (it serves {', '.join(ENCODERS)}); serve it with a tlpipe that knows that modality."
            )
        self.default_model_file = manifest.get("model_file", "model.onnx")
        self.model_file = model_file = model_file or self.default_model_file
        self.session = ort.InferenceSession(str(bundle / model_file), providers=["CPUExecutionProvider"])
        outputs = self.session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(self.labels):
            raise BundleError(
                f"{bundle / 'labels.json'}: {len(self.labels)} labels, but {model_file} has {outputs} outputs; "
                "the files come from different exports."
            )
        self._encode = ENCODERS[self.modality](self)
        # Bundles exported before calibration existed serve the raw softmax and have no sets.
        self.temperature = float(self.preprocessing.get("calibration", {}).get("temperature", 1.0))
        self.set_threshold: float | None = self.preprocessing.get("prediction_sets", {}).get("threshold")
        self.drift_settings: dict[str, Any] | None = self.preprocessing.get("drift")

    def probabilities(self, inputs: Sequence[str]) -> Any:
        """Calibrated class probabilities: (len(inputs), labels), softmax of the logits over the temperature."""
        return self.outputs(inputs)[0]

    def outputs(self, inputs: Sequence[str], embeddings: bool = False, session: Any = None) -> tuple[Any, Any]:
        """Calibrated probabilities and, if asked for, the body's embeddings (the graph's second output), from
        ``session`` (default: the model this predictor serves)."""
        import numpy as np

        names = [self.preprocessing["output"], *([self.drift_settings["output"]] if embeddings else [])]
        results = (session or self.session).run(names, self._encode(inputs))
        scaled = results[0].astype(np.float64) / self.temperature
        shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True), (results[1] if embeddings else None)

    def drift(self, inputs: Sequence[str], batch_size: int = 32, alpha: float | None = None) -> dict[str, Any]:
        """Test whether ``inputs``, together, come from the distribution of the bundle's reference sample."""
        import numpy as np

        if not self.drift_settings:
            raise BundleError(
                f"{self.bundle / 'preprocessing.json'}: no drift reference (the bundle predates drift checks); "
                "export it again with this tlpipe."
            )
        if len(inputs) < MIN_DRIFT_INPUTS:
            raise BundleError(f"{len(inputs)} inputs: a drift check needs at least {MIN_DRIFT_INPUTS}.")
        settings = self.drift_settings
        rng = np.random.default_rng(settings["seed"])
        tested = list(inputs)
        if len(tested) > MAX_DRIFT_INPUTS:
            tested = [tested[i] for i in sorted(rng.choice(len(tested), MAX_DRIFT_INPUTS, replace=False))]
        with np.load(self.bundle / settings["reference"], allow_pickle=False) as stored:
            reference = {name: stored[name] for name in stored.files}
        session = self._reference_model()
        probabilities, embeddings = [], []
        for batch in batches(tested, batch_size):
            batch_probabilities, batch_embeddings = self.outputs(batch, embeddings=True, session=session)
            probabilities.append(batch_probabilities)
            embeddings.append(batch_embeddings)
        mmd2, p_value = mmd_permutation_test(
            reference["embeddings"], np.concatenate(embeddings), settings["permutations"], rng
        )
        alpha = settings["alpha"] if alpha is None else alpha
        drifted = p_value < alpha
        return {
            "inputs": len(inputs),
            "tested": len(tested),
            "reference": len(reference["predicted"]),
            "reference_source": settings["source"],
            "embedding_test": {
                "method": "maximum mean discrepancy, Gaussian kernel (median bandwidth) on unit-length body embeddings",
                "mmd2": mmd2,
                "p_value": p_value,
                "permutations": settings["permutations"],
            },
            "predictions": self._prediction_shift(np.concatenate(probabilities), reference),
            "alpha": alpha,
            "drift": bool(drifted),
            "verdict": (
                f"drift: these inputs differ from the reference sample (p = {p_value:.4f} < {alpha}); check what "
                "changed, and label some to retrain"
                if drifted
                else f"no drift detected (p = {p_value:.4f} >= {alpha})"
            ),
        }

    def _reference_model(self) -> Any:
        """The session of the model the drift reference was computed with, the bundle's default (fp32) one: an
        int8 model's embeddings differ from it by quantisation noise that a large batch would call drift."""
        if self.model_file == self.default_model_file:
            return self.session
        import onnxruntime as ort

        return ort.InferenceSession(str(self.bundle / self.default_model_file), providers=["CPUExecutionProvider"])

    def _prediction_shift(self, current: Any, reference: dict[str, Any]) -> dict[str, Any]:
        """How the predicted labels and the share of low-confidence predictions moved from the reference's."""
        import numpy as np

        low = float(np.quantile(reference["confidence"], LOW_CONFIDENCE_QUANTILE))
        shares = np.bincount(current.argmax(axis=1), minlength=len(self.labels)) / len(current)
        reference_shares = np.bincount(reference["predicted"], minlength=len(self.labels)) / len(reference["predicted"])
        return {
            "label_shares": {label: round(float(s), 4) for label, s in zip(self.labels, shares, strict=True)},
            "reference_label_shares": {
                label: round(float(s), 4) for label, s in zip(self.labels, reference_shares, strict=True)
            },
            "label_shift": round(float(np.abs(shares - reference_shares).sum() / 2), 4),  # total variation
            "low_confidence_below": round(low, 4),
            "low_confidence_share": round(float((current.max(axis=1) < low).mean()), 4),
            "reference_low_confidence_share": LOW_CONFIDENCE_QUANTILE,
        }

    def predict(self, inputs: Sequence[str], sets: bool = False) -> list[dict[str, Any]]:
        """One dict per input: ``input``, ``label`` and ``probabilities`` (label to calibrated probability); with
        ``sets``, ``set``: the labels of its prediction set, most probable first."""
        if sets and self.set_threshold is None:
            raise BundleError(
                f"{self.bundle / 'preprocessing.json'}: no prediction-set threshold (the bundle predates them); "
                "export it again with this tlpipe."
            )
        predictions = []
        for item, row in zip(inputs, self.probabilities(inputs), strict=True):
            prediction = {
                "input": item,
                "label": self.labels[int(row.argmax())],
                "probabilities": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)},
            }
            if sets:
                order = sorted(range(len(row)), key=lambda i: -row[i])
                prediction["set"] = [self.labels[i] for i in order if 1.0 - row[i] <= self.set_threshold]
            predictions.append(prediction)
        return predictions

    def _text_encoder(self) -> Any:
        import numpy as np
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.bundle / self.preprocessing["tokenizer"]))
        tokenizer.enable_truncation(self.preprocessing["max_length"])
        tokenizer.enable_padding()

        def encode(texts: Sequence[str]) -> dict[str, Any]:
            encodings = tokenizer.encode_batch(list(texts))
            return {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }

        return encode

    def _image_encoder(self) -> Any:
        import numpy as np
        from PIL import Image

        prep = self.preprocessing
        resample = getattr(Image.Resampling, prep["interpolation"].upper())
        mean, std = np.array(prep["mean"], np.float32), np.array(prep["std"], np.float32)

        def pixels(path: str) -> Any:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
            width, height = image.size
            short, crop = prep["resize_shorter_side"], prep["center_crop"]
            size = (short, int(short * height / width)) if width <= height else (int(short * width / height), short)
            image = image.resize(size, resample)
            top, left = int(round((size[1] - crop) / 2.0)), int(round((size[0] - crop) / 2.0))
            array = np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.float32) * prep["scale"]
            return ((array - mean) / std).transpose(2, 0, 1)

        def encode(paths: Sequence[str]) -> dict[str, Any]:
            return {prep["inputs"][0]: np.stack([pixels(path) for path in paths]).astype(np.float32)}

        return encode


def mmd_permutation_test(reference: Any, current: Any, permutations: int, rng: Any) -> tuple[float, float]:
    """Squared maximum mean discrepancy between two samples of embeddings (rows made unit length; Gaussian kernel
    whose bandwidth is the median pairwise squared distance) and its permutation p-value (Gretton et al., 2012).

    The p-value counts the permutations of the pooled rows whose statistic reaches the observed one, plus one,
    over ``permutations`` plus one: valid at any sample size when the two samples are exchangeable.
    """
    import numpy as np

    pooled = np.concatenate([reference, current]).astype(np.float64)
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    squared = np.maximum(2.0 - 2.0 * pooled @ pooled.T, 0.0)  # unit vectors: |a - b|^2 = 2 - 2 a.b
    off_diagonal = squared[~np.eye(len(pooled), dtype=bool)]
    bandwidth = float(np.median(off_diagonal)) or 1.0
    kernel = np.exp(-squared / bandwidth)
    n, total = len(reference), len(pooled)

    def statistic(orders: Any) -> Any:  # biased MMD^2 = w' K w, w = 1/n on the first sample, -1/m on the second
        weights = np.where(orders < n, 1.0 / n, -1.0 / (total - n)).T  # (total, columns)
        return np.einsum("ic,ic->c", kernel @ weights, weights)

    observed = float(statistic(np.arange(total)[None, :])[0])
    shuffled = np.argsort(rng.random((permutations, total)), axis=1)  # each row a random permutation
    exceed = int((statistic(shuffled) >= observed - 1e-12).sum())
    return observed, (1 + exceed) / (1 + permutations)


# What each modality's bundle is fed with: how a batch of inputs becomes the model's input tensors.
ENCODERS = {"text": Predictor._text_encoder, "image": Predictor._image_encoder}


def read_inputs(paths: Sequence[str], texts: Sequence[str], column: str | None, modality: str) -> list[str]:
    """The inputs named on the command line, checked against what the bundle classifies."""
    if modality == "text":
        return list(texts) + [text for path in paths for text in _texts_in(Path(path), column)]
    if modality != "image":
        raise BundleError(f"this predict.py reads no inputs for a bundle of modality {modality!r}")
    if texts:
        raise BundleError("--text given, but this bundle classifies images; pass image files or folders.")
    return [str(image) for path in paths for image in _images_in(Path(path))]


def _texts_in(path: Path, column: str | None) -> list[str]:
    if not path.is_file():
        raise BundleError(f"{path}: no such file; give a text file (one text per line) or a CSV with --column.")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise BundleError(f"{path}: an image, but this bundle classifies texts.")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if not column or column not in (reader.fieldnames or []):
                raise BundleError(f"{path}: name the text column with --column (columns: {reader.fieldnames}).")
            texts = [row[column] for row in reader]
    else:
        texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise BundleError(f"{path}: holds no text to classify.")
    return texts


def _images_in(path: Path) -> list[Path]:
    if path.is_dir():
        images = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise BundleError(f"{path}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        return images
    if not path.is_file():
        raise BundleError(f"{path}: no such file or folder.")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise BundleError(
            f"{path}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))}); this bundle classifies images."
        )
    if path.stat().st_size == 0:
        raise BundleError(f"{path}: an empty file.")
    return [path]


def batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """``items`` in consecutive slices of ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def add_arguments(parser: argparse.ArgumentParser, monitor: bool = False) -> None:
    """The predictor's command-line arguments (shared by predict.py and `tlpipe predict`); ``monitor``: those of
    `tlpipe monitor`, which always checks drift and predicts nothing."""
    parser.add_argument("bundle", type=Path, help="the bundle folder (models/bundle after `tlpipe export`)")
    parser.add_argument(
        "inputs", nargs="*", help="text files (one text per line), CSV files (with --column), image files or folders"
    )
    parser.add_argument("--text", action="append", default=[], help="a text to classify (repeatable)")
    parser.add_argument("--column", help="the text column of CSV inputs")
    parser.add_argument("--batch-size", type=int, default=32, help="inputs per onnxruntime call (default 32)")
    if not monitor:  # a drift check embeds with the model its reference came from, the default one
        parser.add_argument(
            "--model", help="the ONNX file in the bundle to use (default: the manifest's model_file, model.onnx)"
        )
        parser.add_argument(
            "--sets",
            action="store_true",
            help="add each input's prediction set: the labels that, together, hold the true one at the bundle's "
            "coverage (preprocessing.json: prediction_sets)",
        )
        parser.add_argument(
            "--drift",
            action="store_true",
            help="print one JSON drift report for all the inputs instead of predictions: a two-sample test of their "
            "body embeddings against the bundle's reference sample, and how predicted labels and confidence moved; "
            f"exit status {DRIFT_EXIT} when they drifted (at least {MIN_DRIFT_INPUTS} inputs)",
        )
    parser.add_argument(
        "--alpha",
        type=float,
        help="the drift test's significance level: drift when its p-value is below (default: the bundle's, 0.001)",
    )
    if monitor:
        parser.set_defaults(drift=True, sets=False, model=None)


def predict_command(args: argparse.Namespace, out: Any = None) -> int:
    """Run a parsed command line: JSON lines on ``out`` (stdout), progress and errors on stderr; the exit status."""
    out = out or sys.stdout
    try:
        predictor = Predictor(args.bundle, args.model)
        inputs = read_inputs(args.inputs, args.text, args.column, predictor.modality)
        if not inputs:
            raise BundleError("nothing to classify: give --text, or text/CSV/image files.")
        if getattr(args, "drift", False):
            report = predictor.drift(inputs, args.batch_size, args.alpha)
            out.write(json.dumps(report, ensure_ascii=False) + "\n")
            print(f"predict: {report['verdict']}", file=sys.stderr)
            return DRIFT_EXIT if report["drift"] else 0
        started = last_report = time.perf_counter()
        for done, batch in enumerate(batches(inputs, args.batch_size), start=1):
            for prediction in predictor.predict(batch, sets=args.sets):
                out.write(json.dumps(prediction, ensure_ascii=False) + "\n")
            if time.perf_counter() - last_report > PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                count = min(done * args.batch_size, len(inputs))
                rate = count / (last_report - started)
                print(f"predict: {count}/{len(inputs)} inputs ({rate:.0f}/s)", file=sys.stderr, flush=True)
    except (BundleError, OSError, ValueError) as exc:
        print(f"predict: {exc}", file=sys.stderr)
        return 2
    return 0


MONITOR_DESCRIPTION = (
    "Check whether inputs drifted from what the bundle's model was evaluated on: one JSON report of a two-sample "
    "test (maximum mean discrepancy, permutation p-value) of their body embeddings against the bundle's reference "
    f"sample, with how predicted labels and confidence moved. Exit status {DRIFT_EXIT} when they drifted, 0 when "
    "not, 2 on an error. Uses onnxruntime and numpy only, like predict.py --drift."
)


def main(argv: Sequence[str] | None = None, prog: str = "predict.py", monitor: bool = False) -> int:
    """Entry point of the bundle's ``predict.py`` (and of ``tlpipe predict``; ``monitor``: of ``tlpipe monitor``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=MONITOR_DESCRIPTION
        if monitor
        else "Classify texts or images with a tlpipe bundle, using onnxruntime alone.",
    )
    add_arguments(parser, monitor)
    # Intermixed, so that files may follow options: `predict.py BUNDLE --text "a" more.txt`.
    return predict_command(parser.parse_intermixed_args(argv))


if __name__ == "__main__":
    sys.exit(main())
