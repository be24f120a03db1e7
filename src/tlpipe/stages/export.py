"""Stage ``export``: an ONNX bundle that carries its labels and preprocessing, published only if it matches PyTorch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tlpipe.artifacts import atomic_directory, read_json, write_json
from tlpipe.checkpoint import load_checkpoint
from tlpipe.config import ExportConfig, PathsConfig
from tlpipe.datasets import INPUT, LABEL, read_examples
from tlpipe.errors import ArtifactError, ExportParityError
from tlpipe.model_card import package_versions
from tlpipe.modalities.base import Modality, Preprocessor
from tlpipe.onnx_export import OUTPUT_NAME, ParityReport, check_parity, export_onnx
from tlpipe.stages.prepare import DATA_VERSION, LABELS, TEST

log = logging.getLogger(__name__)

MODEL_FILE, MODEL_CARD = "model.onnx", "README.md"


def run(paths: PathsConfig, export: ExportConfig) -> ParityReport:
    """Export the checkpoint to ``paths.bundle``; raise ``ExportParityError`` (and publish nothing) on disagreement."""
    if not paths.model_card.is_file():
        raise ArtifactError(f"{paths.model_card}: missing. Run `tlpipe evaluate` (or `dvc repro`) first.")
    model, preprocess, config, modality = load_checkpoint(paths.checkpoint)
    labels: list[str] = read_json(paths.prepared / LABELS, "prepare")
    test = read_examples(paths.prepared / TEST)
    label_ids = {label: index for index, label in enumerate(labels)}

    with atomic_directory(paths.bundle) as staging:
        shapes = preprocess.input_shapes()
        export_onnx(model, preprocess(test[INPUT].tolist()[:2]), shapes, staging / MODEL_FILE, export.opset)
        parity = check_parity(
            model,
            staging / MODEL_FILE,
            preprocess,
            test[INPUT].tolist(),
            [label_ids[label] for label in test[LABEL]],
            export.batch_size,
            export.atol,
            export.min_top1_agreement,
        )
        write_json(paths.parity_report, parity.to_dict())
        if not parity.passed:
            raise ExportParityError(
                f"{parity.describe()}. No model was written to {paths.bundle}; see {paths.parity_report}."
            )
        _write_bundle_files(staging, paths, modality, preprocess, labels, config, parity, export)
    log.info("%s. Bundle written to %s", parity.describe(), paths.bundle)
    return parity


def _write_bundle_files(
    folder: Path,
    paths: PathsConfig,
    modality: Modality,
    preprocess: Preprocessor,
    labels: list[str],
    config: dict[str, Any],
    parity: ParityReport,
    export: ExportConfig,
) -> None:
    preprocess.write_bundle_files(folder)
    (folder / MODEL_CARD).write_text(paths.model_card.read_text(encoding="utf-8"), encoding="utf-8")
    write_json(folder / "labels.json", labels)
    write_json(
        folder / "preprocessing.json",
        {
            **preprocess.describe(),
            "output": OUTPUT_NAME,
            "output_shape": ["batch", len(labels)],
            "labels": "labels.json",
        },
    )
    write_json(folder / "parity.json", parity.to_dict())
    write_json(
        folder / "metadata.json",
        {
            "task": modality.task,
            "modality": modality.name,
            "model_file": MODEL_FILE,
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
            "versions": package_versions(),
        },
    )
