"""Stage ``export``: a self-describing, checksummed ONNX bundle, published only if it matches PyTorch.

The bundle (format: docs/bundle.md) carries the labels of the checkpoint it exports, the
preprocessing a server must apply (with the temperature and prediction-set threshold that
``calibrate`` fitted), the model card, a standalone ``predict.py`` with its ``requirements.txt``,
optionally an int8 model that passed its accuracy gate, and ``manifest.json`` with the sha256
and size of every other file.

The parity report goes first out and last in: a run killed while publishing leaves no report,
never a new report beside the old bundle. A failed parity check writes its report and no bundle.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tlpipe import serving
from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json, write_text
from tlpipe.checkpoint import checked_labels, load_checkpoint
from tlpipe.config import ExportConfig, PathsConfig, ServingConfig
from tlpipe.datasets import INPUT, LABEL, read_examples, seeded_sample
from tlpipe.drift import REFERENCE_FILE, SAMPLE_SEED, reference_outputs, write_reference
from tlpipe.errors import ArtifactError, ExportParityError
from tlpipe.modalities.base import Modality, Preprocessor
from tlpipe.model_card import package_versions
from tlpipe.onnx_export import EMBEDDING_NAME, OUTPUT_NAME, ParityReport, annotate, check_parity, export_onnx
from tlpipe.quantization import Int8Form, QuantizationReport, calibration_sample, compare_int8, quantize_int8
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TEST, TRAIN

log = logging.getLogger(__name__)

MODEL_FILE, INT8_MODEL_FILE, MODEL_CARD = "model.onnx", "model.int8.onnx", "README.md"
PREDICTOR, REQUIREMENTS = "predict.py", "requirements.txt"


def run(paths: PathsConfig, export: ExportConfig, serving: ServingConfig) -> ParityReport:
    """Export the checkpoint to ``paths.bundle``; raise ``ExportParityError`` (and publish nothing) on disagreement."""
    if not paths.model_card.is_file():
        raise ArtifactError(f"{paths.model_card}: missing. Run `tlpipe evaluate` (or `dvc repro`) first.")
    model, preprocess, config, modality = load_checkpoint(paths.checkpoint)
    labels = checked_labels(paths.checkpoint, config, model.head.out_features, paths.prepared / LABELS)
    test = read_examples(paths.prepared / TEST)
    label_ids = {label: index for index, label in enumerate(labels)}
    inputs, targets = test[INPUT].tolist(), [label_ids[label] for label in test[LABEL]]

    calibration = calibrated_serving(read_json(paths.calibration, "calibrate"))
    with atomic_directory(paths.bundle) as staging:
        export_onnx(model, preprocess(inputs[:2]), preprocess.input_shapes(), staging / MODEL_FILE, export.opset)
        annotate(staging / MODEL_FILE, _onnx_metadata(labels, preprocess, export, calibration))
        parity = check_parity(
            model, staging / MODEL_FILE, preprocess, inputs, targets,
            export.batch_size, export.atol, export.min_top1_agreement,
        )  # fmt: skip
        quantize = modality.quantize if export.quantize == "auto" else export.quantize
        quantization = (
            _quantize(staging, quantize, paths, preprocess, inputs, targets, len(labels), export)
            if parity.passed and quantize != "none"
            else None
        )
        report = {**parity.to_dict(), "quantize": quantize, "int8": quantization.to_dict() if quantization else None}
        if not parity.passed:
            write_json(paths.parity_report, report)
            raise ExportParityError(
                f"{parity.describe()}. No model was written to {paths.bundle}; see {paths.parity_report}."
            )
        reference = seeded_sample(inputs, serving.drift_reference_size, SAMPLE_SEED)
        temperature = calibration["calibration"]["temperature"]
        outputs = reference_outputs(staging / MODEL_FILE, preprocess, reference, temperature, export.batch_size)
        write_reference(staging / REFERENCE_FILE, outputs)
        served = {**calibration, "drift": drift_settings(serving, len(reference))}
        _write_bundle_files(staging, paths, modality, preprocess, labels, config, parity, quantization, export, served)
        paths.parity_report.unlink(missing_ok=True)
    write_json(paths.parity_report, report)
    log.info("%s. Bundle written to %s", parity.describe(), paths.bundle)
    return parity


def calibrated_serving(calibration: dict[str, Any]) -> dict[str, Any]:
    """What a server needs (``preprocessing.json``) of ``calibrate``'s record: the temperature to divide the logits
    by, and the threshold that makes prediction sets."""
    sets = calibration["prediction_sets"]
    return {
        "calibration": {"method": calibration["method"], "temperature": calibration["temperature"]},
        "prediction_sets": {
            "coverage": sets["coverage"],
            "threshold": sets["threshold"],
            "rule": "labels whose probability is at least 1 - threshold",
        },
    }


def drift_settings(serving: ServingConfig, examples: int) -> dict[str, Any]:
    """How ``predict.py --drift`` checks inputs against the bundle's reference sample (``preprocessing.json``)."""
    return {
        "reference": REFERENCE_FILE,
        "output": EMBEDDING_NAME,
        "examples": examples,
        "source": f"{examples} examples of the test split, which no model trained on",
        "alpha": serving.drift_alpha,
        "permutations": serving.drift_permutations,
        "seed": SAMPLE_SEED,
    }


def _onnx_metadata(
    labels: list[str], preprocess: Preprocessor, export: ExportConfig, calibration: dict[str, Any]
) -> dict[str, Any]:
    """What the ONNX file itself carries, so a server holding only model.onnx still has labels and preprocessing."""
    return {
        "tlpipe.bundle_format": str(serving.FORMAT_VERSION),
        "labels": labels,
        "preprocessing": {**preprocess.describe(), **calibration},  # no drift: that needs the bundle's reference
        "versions": {**package_versions(), "opset": export.opset},
    }


def _quantize(
    folder: Path,
    form: Int8Form,
    paths: PathsConfig,
    preprocess: Preprocessor,
    inputs: list[Any],
    targets: list[int],
    classes: int,
    export: ExportConfig,
) -> QuantizationReport:
    """Quantise the exported model in ``form``, calibrating on training inputs, and judge it on the test inputs."""
    calibration = calibration_sample(read_examples(paths.prepared / TRAIN)[INPUT].tolist()) if form == "static" else []
    quantize_int8(folder / MODEL_FILE, folder / INT8_MODEL_FILE, form, preprocess, calibration)
    report = compare_int8(
        folder / MODEL_FILE, folder / INT8_MODEL_FILE, preprocess, inputs, targets, classes,
        export.batch_size, export.max_quantization_drop, form,
    )  # fmt: skip
    log.info("Quantisation (%s): %s; top-1 agreement %.4f", form, report.reason, report.top1_agreement)
    if not report.kept:
        (folder / INT8_MODEL_FILE).unlink()
    return report


def _write_bundle_files(
    folder: Path,
    paths: PathsConfig,
    modality: Modality,
    preprocess: Preprocessor,
    labels: list[str],
    config: dict[str, Any],
    parity: ParityReport,
    quantization: QuantizationReport | None,
    export: ExportConfig,
    served: dict[str, Any],
) -> None:
    preprocess.write_bundle_files(folder)
    write_text(folder / MODEL_CARD, paths.model_card.read_text(encoding="utf-8"))
    write_json(folder / "labels.json", labels)
    write_json(
        folder / "preprocessing.json",
        {
            **preprocess.describe(),
            "output": OUTPUT_NAME,
            "output_shape": ["batch", len(labels)],
            "labels": "labels.json",
            **served,
        },
    )
    write_json(folder / "parity.json", parity.to_dict())
    models = {"fp32": MODEL_FILE, **({"int8": INT8_MODEL_FILE} if quantization and quantization.kept else {})}
    write_json(
        folder / "metadata.json",
        {
            "format_version": serving.FORMAT_VERSION,
            "task": modality.task,
            "modality": modality.name,
            "model_file": MODEL_FILE,
            "models": models,
            "opset": export.opset,
            "inputs": preprocess.input_shapes(),
            "outputs": {OUTPUT_NAME: ["batch", len(labels)]},
            "source_model": config["source"],
            "source_model_resolved": config["source_resolved"],
            "source_weights_sha256": config["source_weights_sha256"],
            "strategy": config["strategy"],
            "strategy_choice": config.get("strategy_choice"),
            "data_version": read_json(paths.prepared / DATA_VERSION, "prepare")["raw_sha256"],
            "metrics": read_json(paths.metrics, "evaluate"),
            "quantization": quantization.to_dict() if quantization else None,
            "versions": package_versions(),
        },
    )
    write_text(folder / PREDICTOR, Path(serving.__file__).read_text(encoding="utf-8"))
    write_text(
        folder / REQUIREMENTS,
        "".join(f"{name}=={version(name)}\n" for name in ("onnxruntime", "numpy", *modality.serving_packages)),
    )
    _refuse_machine_paths(folder)
    write_json(
        folder / serving.MANIFEST,
        {
            "format_version": serving.FORMAT_VERSION,
            "model_file": MODEL_FILE,
            "files": {
                path.name: {"sha256": sha256_file(path), "size": path.stat().st_size}
                for path in sorted(folder.iterdir())
                if path.is_file() and path.name != serving.MANIFEST
            },
        },
    )


def _refuse_machine_paths(folder: Path) -> None:
    """A bundle travels: no text file in it may name a path of the machine that trained it."""
    machine_paths = {str(Path.cwd().resolve()), str(Path.home())} - {"/"}
    for path in folder.iterdir():
        if path.suffix in (".json", ".md", ".txt"):
            text = path.read_text(encoding="utf-8")
            found = [p for p in machine_paths if p in text]
            if found:
                raise ArtifactError(
                    f"{path.name} would carry the training machine's path {found[0]}; report this as a tlpipe bug."
                )
