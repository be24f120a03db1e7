"""A fine-tuned classifier on disk: safetensors weights, the body's config, preprocessing files, labels.

``classifier.json`` names the modality, so evaluation and export rebuild the model through the
same plug-in that trained it, without being told what kind of data it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlpipe.artifacts import read_json, write_json
from tlpipe.config import PreprocessConfig
from tlpipe.errors import ArtifactError
from tlpipe.modalities import get_modality
from tlpipe.modalities.base import Modality, Preprocessor

if TYPE_CHECKING:
    from tlpipe.modalities.classifier import Classifier

WEIGHTS = "model.safetensors"
CLASSIFIER_CONFIG = "classifier.json"


def save_checkpoint(
    model: Classifier,
    preprocessor: Preprocessor,
    modality: Modality,
    labels: list[str],
    folder: Path,
    metadata: dict[str, Any],
) -> None:
    """Write weights (safetensors), the body's config, preprocessing files and ``classifier.json`` into ``folder``."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / WEIGHTS))
    modality.save_body_config(model, folder)
    preprocessor.save(folder)
    write_json(
        folder / CLASSIFIER_CONFIG,
        {"modality": modality.name, "labels": labels, "dropout": model.dropout.p, **metadata},
    )


def load_checkpoint(folder: Path) -> tuple[Classifier, Preprocessor, dict[str, Any], Modality]:
    """Rebuild a trained classifier from ``folder``: (model in eval mode, preprocessor, classifier config, modality)."""
    from safetensors.torch import load_model

    config = read_json(folder / CLASSIFIER_CONFIG, "train")
    modality = get_modality(config["modality"])
    model = modality.build_classifier(folder, folder / WEIGHTS, len(config["labels"]), config["dropout"])
    load_model(model, str(folder / WEIGHTS))
    preprocess = PreprocessConfig.model_validate(config["preprocess"])
    return model.eval(), modality.preprocessor(folder, preprocess, trust_remote_code=False), config, modality


def checked_labels(folder: Path, config: dict[str, Any], outputs: int, prepared_labels: Path) -> list[str]:
    """The checkpoint's own labels, refused if they disagree with its head or with the prepared data's label map."""
    labels: list[str] = config["labels"]
    if len(labels) != outputs:
        raise ArtifactError(f"{folder}: {len(labels)} labels but a head of {outputs} outputs; rerun `tlpipe train`.")
    prepared: list[str] = read_json(prepared_labels, "prepare")
    if prepared != labels:
        raise ArtifactError(
            f"{folder} was trained on labels {labels}, but {prepared_labels} has {prepared}: the checkpoint is from "
            "other data. Rerun `tlpipe train` (or `dvc repro`)."
        )
    return labels
