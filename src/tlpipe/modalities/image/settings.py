"""The image modality's own keys of params.yaml: what ``data``, ``preprocess`` and ``evaluate`` say about images.

Kept apart from the modality's code so that reading params.yaml never imports a model family.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tlpipe.config import DataConfig, EvaluateConfig, PreprocessConfig, Section, owned


class ImageData(Section):
    """``data``: where a CSV manifest names the image files, and what counts as a usable image."""

    path_column: str = Field("path", min_length=1, description="image path column of a CSV manifest")
    # 28x28 digits and silhouettes (MNIST-like) and thin clip-art are ordinary; what is refused is an image with
    # nothing to see (1x1, 2x2). Resizing to the body's input size is preprocessing's job (benchmarks/real_data).
    min_image_size: int = Field(8, ge=1, description="shortest side in pixels an image must have")
    allowed_image_modes: tuple[str, ...] = Field(
        ("RGB", "RGBA", "L", "LA", "P"), min_length=1, description="Pillow modes accepted (others are reported)"
    )
    max_image_pixels: int = Field(
        89_478_485, ge=1, description="decompression-bomb limit: larger images are refused (Pillow's default)"
    )
    skip_bad_files: bool = Field(
        False, description="skip images that cannot be used (listed in the report) instead of stopping"
    )


class AugmentConfig(Section):
    """Training-time image augmentation (torchvision transforms v2), seeded with ``train.seed``.

    It applies whenever a strategy trains on decoded images; strategies that train on cached
    features (``linear_probe``) see each image once, unaugmented. Evaluation never augments.
    """

    enabled: bool = True
    crop_scale: tuple[float, float] = Field(
        (0.35, 1.0), description="RandomResizedCrop area range, as fractions of the image"
    )
    horizontal_flip: bool = True
    vertical_flip: bool = False
    trivial_augment: bool = Field(False, description="TrivialAugmentWide: one random photometric/geometric op")
    color_jitter: float = Field(0.1, ge=0.0, le=1.0, description="brightness/contrast/saturation strength (0 = off)")

    @model_validator(mode="after")
    def _crop_scale_ordered(self) -> AugmentConfig:
        low, high = self.crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1 (got {self.crop_scale})")
        return self


class ImagePreprocess(Section):
    """``preprocess``: augmentation while training. Images are resized, cropped and normalised as their
    pretrained weights expect (recorded with the snapshot), not set here."""

    augment: AugmentConfig = AugmentConfig()


class ImageEvaluate(Section):
    """``evaluate``: the pixel baseline's image size."""

    baseline_image_size: int = Field(32, ge=4, le=256, description="side images are downscaled to")


SETTINGS = {"data": ImageData, "preprocess": ImagePreprocess, "evaluate": ImageEvaluate}


def data_of(data: DataConfig) -> ImageData:
    return owned(ImageData, data)


def preprocess_of(preprocess: PreprocessConfig) -> ImagePreprocess:
    return owned(ImagePreprocess, preprocess)


def evaluate_of(evaluate: EvaluateConfig) -> ImageEvaluate:
    return owned(ImageEvaluate, evaluate)
