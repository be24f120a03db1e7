"""Animal-Shape MNIST (10 animals, 28x28 grayscale silhouettes), from the PyPI wheel ``animal-mnist``.

The wheel's data are pickles; they are read with an unpickler that builds numpy arrays and nothing else, so the
wheel cannot run code here (it is never installed: it would pull in TensorFlow).
"""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy._core.multiarray import _reconstruct
from PIL import Image

from .sources import Archive
from .splits import Card, choose, deduplicated, write_images

MODALITY = "image"
ARCHIVES = (Archive("pypi", "animal-mnist", "0.4", "aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce"),)
FOLDER = "animal_mnist/data/Animal_MNIST"
CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
CARD = Card(
    title="Animal-Shape MNIST",
    domain="Animal silhouettes (10 animals), 28x28 grayscale, in MNIST's format",
    licence="MIT (the animal-mnist wheel).",
    caveats=(
        "Where the silhouettes come from is not documented; the package has no official split.",
        "The labels are integers 0-9 in the wheel; their names follow the package description's order (bear, bird, "
        "cat, cow, dog, elephant, giraffe, horse, sheep, zebra).",
        "284 images occur twice (same label each time); one copy is kept, which leaves bird with 812 images.",
    ),
    where=f"{FOLDER}/animal_data_version_3.gz (10000x28x28 uint8) and animal_label_version_3.gz (10000 int64), "
    "gzipped pickles of numpy arrays",
)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays only: every other global a pickle names is refused."""

    ALLOWED: dict[tuple[str, str], Any] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy arrays are expected")
        return self.ALLOWED[module, name]


def build(files: list[Path], out: Path) -> None:
    """The split and card of Animal-Shape MNIST into ``out``."""
    with zipfile.ZipFile(files[0]) as wheel:
        images = _array(wheel, "animal_data_version_3.gz", np.uint8, 3)
        numbers = _array(wheel, "animal_label_version_3.gz", np.int64, 1)
    if images.shape[1:] != (28, 28) or len(images) != len(numbers) or not set(numbers) <= set(range(len(CLASSES))):
        raise ValueError(f"unexpected Animal-MNIST arrays: images {images.shape}, labels {sorted(set(numbers))}")
    labels = [CLASSES[number] for number in numbers]
    table = pd.DataFrame({"pixels": [image.tobytes() for image in images], "label": labels, "row": range(len(images))})
    table = deduplicated(table, key="pixels")

    def save(i: int, path: Path) -> None:
        Image.fromarray(images[table["row"][i]]).save(path, format="PNG", compress_level=6)

    write_images(out, table["label"].tolist(), choose(table["label"]), CARD, ARCHIVES, save)


def _array(wheel: zipfile.ZipFile, name: str, dtype: type, dimensions: int) -> np.ndarray:
    with gzip.open(io.BytesIO(wheel.read(f"{FOLDER}/{name}"))) as file:
        array = _ArraysOnly(file).load()
    if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != dimensions:
        raise ValueError(f"{name}: expected a {dimensions}-d {np.dtype(dtype)} array, found {type(array).__name__}")
    return array
