"""Reading texts: a UTF-8 CSV with a text column and a label column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tlpipe.config import DataConfig
from tlpipe.datasets import INPUT, LABEL, read_csv_strings
from tlpipe.errors import DataValidationError
from tlpipe.modalities.text.settings import data_of


def read_raw_table(path: Path, data: DataConfig) -> pd.DataFrame:
    """Read a raw CSV as strings, keeping the user's column names (the quality suite checks them)."""
    if not path.is_file():
        raise DataValidationError(
            f"{path}: no such file. Point paths.raw_train / paths.raw_test in params.yaml at your CSV files."
        )
    return read_csv_strings(path, "CSV file")


def read_pool(path: Path, data: DataConfig) -> list[str]:
    """The texts of an unlabelled CSV: its ``data.text_column``; empty texts are refused by line."""
    table = read_raw_table(path, data)
    column = data_of(data).text_column
    if column not in table.columns:
        found = ", ".join(map(str, table.columns)) or "none"
        raise DataValidationError(
            f"{path}: no column '{column}' (found: {found}). An unlabelled pool is a CSV with the training data's "
            "text column (data.text_column); it needs no label column."
        )
    texts = table[column].tolist()
    empty = [str(index + 2) for index, text in enumerate(texts) if not str(text).strip()]  # line 1 is the header
    if empty:
        shown = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise DataValidationError(f"{path}: empty text on line(s) {shown}; remove those rows or fill them in.")
    return texts


def to_examples(raw: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """Rename the user's text and label columns to the canonical ``input`` / ``label``."""
    text_column = data_of(data).text_column
    table = raw[[text_column, data.label_column]].rename(columns={text_column: INPUT, data.label_column: LABEL})
    return table.reset_index(drop=True)
