"""The canonical labelled table, the label map, and the stratified split.

A modality's reader turns the user's raw files into one table with two columns, ``input`` (a
text, or an image path) and ``label`` (``tlpipe.modalities``). Everything after the reader (the
split, the label map, training and evaluation) works on that table alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from tlpipe.artifacts import write_text
from tlpipe.config import SplitConfig
from tlpipe.errors import ArtifactError, DataValidationError

INPUT = "input"
LABEL = "label"


def label_names(train: pd.DataFrame) -> list[str]:
    """Sorted class names; a label's index in this list is its class id everywhere."""
    return sorted(train[LABEL].unique().tolist())


def stratified_split(train: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, validation) keeping class proportions; same seed, same split."""
    fit, valid = train_test_split(
        train,
        test_size=split.validation_fraction,
        random_state=split.seed,
        stratify=train[LABEL],
        shuffle=True,
    )
    return fit.reset_index(drop=True), valid.reset_index(drop=True)


def write_examples(table: pd.DataFrame, path: Path) -> None:
    """Write a canonical table as CSV, atomically."""
    write_text(path, table[[INPUT, LABEL]].to_csv(index=False))


def read_examples(path: Path) -> pd.DataFrame:
    """Read a canonical table written by ``prepare``."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `tlpipe prepare` (or `dvc repro`) first.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    if list(table.columns) != [INPUT, LABEL]:
        raise ArtifactError(f"{path}: expected columns {INPUT},{LABEL}; rerun `tlpipe prepare`.")
    return table


def read_csv_strings(path: Path, what: str = "CSV file") -> pd.DataFrame:
    """A user's UTF-8 CSV with every cell a string (nothing turned into NaN); errors name the file and the fix."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not UTF-8 text ({exc}); re-save the {what} as UTF-8.") from None
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: not a readable {what}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the {what} is empty; expected a header row.") from None


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest written by ``validate`` (the raw table as checked), every cell a string."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `tlpipe validate` (or `dvc repro`) first.")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
