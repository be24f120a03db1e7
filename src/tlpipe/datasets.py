"""Labelled tables: reading raw files, the label map, and the stratified split.

A modality is a reader that turns the user's raw files into one table with two columns,
``input`` (a text here; an image path on the image track) and ``label``. Everything after the
reader (quality checks on labels, the split, the label map) works on that table alone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from tlpipe.artifacts import write_text
from tlpipe.config import DataConfig, SplitConfig
from tlpipe.errors import ArtifactError, DataValidationError

INPUT = "input"
LABEL = "label"


def read_raw_table(path: Path, data: DataConfig) -> pd.DataFrame:
    """Read a raw CSV as strings, keeping the user's column names (the quality suite checks them)."""
    if not path.is_file():
        raise DataValidationError(
            f"{path}: no such file. Point paths.raw_train / paths.raw_test in params.yaml at your CSV files."
        )
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"{path}: not UTF-8 text ({exc}); re-save it as UTF-8.") from None
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: not a readable CSV file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the file is empty; expected a header row.") from None


def to_examples(raw: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """Rename the user's text and label columns to the canonical ``input`` / ``label``."""
    table = raw[[data.text_column, data.label_column]].rename(
        columns={data.text_column: INPUT, data.label_column: LABEL}
    )
    return table.reset_index(drop=True)


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
