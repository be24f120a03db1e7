"""The image model family: a timm or torchvision backbone (body) that pools to a feature vector, and a linear head.

Preprocessing comes from the pretrained weights' own configuration (recorded with the snapshot):
convert to RGB, resize the shorter side, centre-crop, scale to [0, 1], normalise. It is built from
Pillow operations (torchvision transforms v2 on PIL images), so a server with Pillow and numpy
reproduces it exactly from ``preprocessing.json``. Training adds seeded augmentation (random
resized crop, flips, TrivialAugmentWide, colour jitter) from ``preprocess.augment``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlpipe.artifacts import read_json, write_json
from tlpipe.modalities.classifier import Classifier
from tlpipe.modalities.image.backbones import body_blocks
from tlpipe.modalities.image.data import load_rgb
from tlpipe.modalities.image.settings import AugmentConfig

INPUT_NAME = "pixel_values"
PREPROCESSOR_CONFIG = "preprocessor_config.json"


class ImageClassifier(Classifier):
    """Backbone body (pooled features) + linear head; ``forward(pixel_values) -> logits``."""

    def __init__(
        self, body: nn.Module, num_features: int, num_labels: int, dropout: float, body_config: dict[str, Any]
    ) -> None:
        super().__init__(body, num_features, num_labels, dropout)
        self.body_config = body_config  # the snapshot's config.json: architecture, classifier, preprocessing
        self._blocks: list[nn.Module] | None = None

    def body_blocks(self) -> list[nn.Module]:
        """The backbone's stages, stem first (timm's own grouping, or torchvision's top-level stages)."""
        if self._blocks is None:
            self._blocks = body_blocks(self.body, self.body_config["architecture"])
        return self._blocks

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Globally pooled backbone features: (batch, num_features)."""
        return self.body(pixel_values)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(pixel_values))


class ImagePreprocessor:
    """Image paths to a normalised NCHW float batch, with the weights' evaluation transforms (or augmentation)."""

    input_names = (INPUT_NAME,)

    def __init__(self, preprocessing: dict[str, Any], augment: AugmentConfig | None = None) -> None:
        self.preprocessing = preprocessing
        self.transform = train_transform(preprocessing, augment) if augment else eval_transform(preprocessing)
        self.normalize = batch_normalizer(preprocessing)

    def __call__(self, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        # Per image only what differs between images (uint8); scaling and normalising run once per batch, because
        # on a few torch threads the per-tensor overhead of small ops dominated (benchmarks/image_throughput.py).
        return {INPUT_NAME: self.normalize(torch.stack([self.transform(load_rgb(path)) for path in paths]))}

    def input_shapes(self) -> dict[str, list[str | int]]:
        """NCHW with a dynamic batch."""
        size = self.preprocessing["input_size"]
        return {INPUT_NAME: ["batch", 3, size, size]}

    def describe(self) -> dict[str, Any]:
        """What a server does to an image file before ``model.onnx``, in order, as plain data."""
        record = self.preprocessing
        return {
            "modality": "image",
            "inputs": list(self.input_names),
            "input_dtype": "float32",
            "layout": "NCHW",
            "channel_order": "RGB",
            "convert": "RGB",
            "resize_shorter_side": record["resize"],
            "interpolation": record["interpolation"],
            "center_crop": record["input_size"],
            "scale": 1 / 255,
            "mean": record["mean"],
            "std": record["std"],
            "steps": [
                "open with Pillow and convert('RGB')",
                f"resize so the shorter side is {record['resize']} px, the longer int(size * longer / shorter), "
                f"{record['interpolation']} (Pillow)",
                f"centre-crop {record['input_size']} x {record['input_size']}: top = round((height - crop) / 2), "
                "left = round((width - crop) / 2)",
                "to float32, divide by 255, subtract mean and divide by std per channel, HWC to CHW, stack to NCHW",
            ],
        }

    def save(self, folder: Path) -> None:
        """The preprocessing record, for a checkpoint (``preprocessor_config.json``, as Hugging Face names it)."""
        write_json(folder / PREPROCESSOR_CONFIG, self.preprocessing)

    def write_bundle_files(self, folder: Path) -> None:
        """Nothing: ``preprocessing.json`` says all a server needs."""


def eval_transform(preprocessing: dict[str, Any]) -> Any:
    """PIL image to uint8 CHW tensor: resize the shorter side, centre-crop (deterministic)."""
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize(preprocessing["resize"], interpolation=_interpolation(preprocessing), antialias=True),
            v2.CenterCrop(preprocessing["input_size"]),
            v2.PILToTensor(),
        ]
    )


def train_transform(preprocessing: dict[str, Any], augment: AugmentConfig) -> Any:
    """PIL image to uint8 CHW tensor through random resized crop, flips, TrivialAugmentWide and colour jitter.

    Transforms v2 draw from torch's global generator, which the training loop seeds and saves
    with its resumable state, so augmented runs are reproducible and resume exactly.
    """
    from torchvision.transforms import v2

    steps: list[Any] = [
        v2.RandomResizedCrop(
            preprocessing["input_size"],
            scale=augment.crop_scale,
            interpolation=_interpolation(preprocessing),
            antialias=True,
        )
    ]
    if augment.horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    if augment.vertical_flip:
        steps.append(v2.RandomVerticalFlip())
    if augment.trivial_augment:
        steps.append(v2.TrivialAugmentWide())
    if augment.color_jitter > 0:
        strength = augment.color_jitter
        steps.append(v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength))
    return v2.Compose([*steps, v2.PILToTensor()])


def load_preprocessing(folder: Path) -> dict[str, Any]:
    """A checkpoint's ``preprocessor_config.json``, or else the snapshot's recorded preprocessing."""
    from tlpipe.modalities.image.backbones import read_preprocessing

    if (folder / PREPROCESSOR_CONFIG).is_file():
        return read_json(folder / PREPROCESSOR_CONFIG, "train")
    return read_preprocessing(folder)


def batch_normalizer(preprocessing: dict[str, Any]) -> Any:
    """uint8 NCHW batch to float32 in [0, 1], normalised with the weights' mean and std."""
    from torchvision.transforms import v2

    return v2.Compose(
        [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=preprocessing["mean"], std=preprocessing["std"])]
    )


def _interpolation(preprocessing: dict[str, Any]) -> Any:
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(preprocessing["interpolation"])
