"""The canonical labelled table, the label map, and the stratified split.

A modality's reader turns the user's raw files into one table with two columns, ``input`` (a
text, or an image path) and ``label`` (``tlpipe.modalities``). Everything after the reader (the
split, the label map, training and evaluation) works on that table alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tlpipe.artifacts import write_text
from tlpipe.config import SplitConfig
from tlpipe.errors import ArtifactError, DataError, DataValidationError

INPUT = "input"
LABEL = "label"


def label_names(train: pd.DataFrame) -> list[str]:
    """Sorted class names; a label's index in this list is its class id everywhere."""
    return sorted(train[LABEL].unique().tolist())


def examples_per_class(train: pd.DataFrame, per_class: int | None, seed: int) -> pd.DataFrame:
    """At most ``per_class`` rows of each class, drawn at random (seeded); every row when ``per_class`` is None.

    A smaller sample with the same seed is not a subset of a larger one; each learning-curve point
    is its own draw, as a team that labelled only that many would have.
    """
    if per_class is None:
        return train
    picked = [
        rows.sample(n=min(per_class, len(rows)), random_state=seed) for _, rows in train.groupby(LABEL, sort=True)
    ]
    return pd.concat(picked).reset_index(drop=True)


def seeded_sample(items: Sequence[Any], size: int, seed: int = 0) -> list[Any]:
    """At most ``size`` of ``items``, drawn without replacement (seeded), in their original order."""
    if len(items) <= size:
        return list(items)
    chosen = np.sort(np.random.default_rng(seed).choice(len(items), size=size, replace=False))
    return [items[index] for index in chosen]


def stratified_split(train: pd.DataFrame, split: SplitConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into (train, validation) keeping class proportions; same seed, same split.

    Raises ``DataError`` when a class would get no validation example (or none left to train on),
    since its validation scores, and the choice of the best epoch, would then ignore it.
    """
    try:
        from sklearn.model_selection import train_test_split  # 0.8 s to import: only prepare splits

        fit, valid = train_test_split(
            train,
            test_size=split.validation_fraction,
            random_state=split.seed,
            stratify=train[LABEL],
            shuffle=True,
        )
    except ValueError:  # sklearn: fewer validation (or training) rows than classes
        fit, valid = train.iloc[:0], train.iloc[:0]
    counts = train[LABEL].value_counts()
    left_out = sorted(set(counts.index) - set(valid[LABEL]) | set(counts.index) - set(fit[LABEL]))
    if left_out:
        shown = ", ".join(f"'{label}' ({counts[label]} examples)" for label in left_out[:10])
        raise DataError(
            f"split.validation_fraction {split.validation_fraction} of {len(train)} training examples leaves "
            f"{len(left_out)} class(es) without a validation or a training example: {shown}. Raise "
            "split.validation_fraction in params.yaml, or add examples to the smallest classes."
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


def find_data(folder: Path, names: Sequence[str], reads_folders: bool) -> Path | None:
    """The first of ``names`` in ``folder`` that holds data: a file, or a folder where the modality reads folders
    (images); None if none does (an optional input the user has not put there)."""
    for name in names:
        candidate = folder / name
        if candidate.is_file() or (candidate.is_dir() and reads_folders):
            return candidate
    return None


def read_csv_strings(path: Path, what: str = "CSV file") -> pd.DataFrame:
    """A user's UTF-8 CSV with every cell a string (nothing turned into NaN); errors name the file and the fix."""
    _require_utf8(path, what)
    try:
        # utf-8-sig: spreadsheet programs start UTF-8 files with a byte-order mark, which is not part of the header.
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        raise DataValidationError(f"{path}: not a readable {what}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path}: the {what} is empty; expected a header row.") from None
    _require_commas(path, what, table)
    return table


def _require_utf8(path: Path, what: str) -> None:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataValidationError(
            f"{path}: line {line} is not UTF-8 text (byte {raw[exc.start : exc.start + 1]!r} at offset {exc.start}); "
            f"re-save the {what} as UTF-8."
        ) from None


def _require_commas(path: Path, what: str, table: pd.DataFrame) -> None:
    if len(table.columns) != 1:
        return
    header = str(table.columns[0])
    for delimiter, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if delimiter in header:
            raise DataValidationError(
                f"{path}: line 1 has one column '{header}', which looks {name}-separated; tlpipe reads "
                f"comma-separated files. Save the {what} with commas as the delimiter."
            )


def read_manifest(path: Path) -> pd.DataFrame:
    """Read a manifest written by ``validate`` (the raw table as checked), every cell a string."""
    if not path.is_file():
        raise ArtifactError(f"{path}: missing. Run `tlpipe validate` (or `dvc repro`) first.")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
