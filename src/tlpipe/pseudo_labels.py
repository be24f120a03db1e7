"""The pool rows the ``pseudo_label`` stage labelled, as the train stage adds them to what it trains on.

Each cross-validation fold has its own rows, pseudo-labelled by a probe of that fold's training rows alone, so
that no fold's score sees its held-out labels through them; the final model (or, with a validation split, the
model trained on the train table) gets the rows of a probe of every labelled training row. ``summary.json``
records what they were made from, so that rows a changed training set outdated are refused, not trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tlpipe.artifacts import atomic_directory, read_json, sha256_file, write_json
from tlpipe.datasets import read_examples, write_examples
from tlpipe.errors import ArtifactError

SUMMARY, FINAL = "summary.json", "final.csv"


def fold_file(fold: int) -> str:
    return f"fold_{fold}.csv"


def labelled_version(*files: Path) -> str:
    """sha256 over the prepared files the rows were made from (the train table, and the folds if any)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + (sha256_file(path).encode() if path.is_file() else b"-"))
    return digest.hexdigest()


@dataclass(frozen=True)
class PseudoLabels:
    """``final``: rows for a model of every labelled training row; ``folds[k]``: rows for fold ``k``'s model."""

    summary: dict[str, Any]
    final: pd.DataFrame | None = None
    folds: tuple[pd.DataFrame, ...] = ()

    @property
    def used(self) -> bool:
        return bool(self.summary.get("used"))

    def added_to(self, fit: pd.DataFrame, fold: int | None = None) -> pd.DataFrame:
        """``fit`` (labelled rows) with the pseudo-labelled rows of ``fold`` (None: of the final model) after it."""
        rows = self.final if fold is None else (self.folds[fold] if fold < len(self.folds) else None)
        if not self.used or rows is None or rows.empty:
            return fit
        return pd.concat([fit, rows], ignore_index=True)

    def write(self, folder: Path) -> None:
        """Every table and the summary (with each table's sha256), atomically."""
        with atomic_directory(folder) as staging:
            tables = {FINAL: self.final} if self.final is not None else {}
            tables |= {fold_file(fold): rows for fold, rows in enumerate(self.folds)}
            for name, rows in tables.items():
                write_examples(rows, staging / name)
            files = {name: sha256_file(staging / name) for name in tables}
            write_json(staging / SUMMARY, {**self.summary, "files": files})

    @classmethod
    def read(cls, folder: Path, made_from: str) -> PseudoLabels:
        """What ``folder`` holds; nothing used when the stage never wrote it. Rows made from other labelled data
        than ``made_from`` (``labelled_version``) are an error."""
        if not (folder / SUMMARY).is_file():
            return cls({"used": False, "reason": f"{folder} holds no pseudo-labels"})
        summary = read_json(folder / SUMMARY, "pseudo-label")
        if not summary.get("used"):
            return cls(summary)
        if summary.get("made_from") != made_from:
            raise ArtifactError(
                f"{folder}: its pseudo-labels were made from other training data than the prepared data now holds. "
                "Run `tlpipe pseudo-label` (or `dvc repro`) again."
            )
        tables = {name: read_examples(folder / name) for name in summary["files"]}
        folds = tuple(tables[fold_file(fold)] for fold in range(summary.get("folds", 0)))
        return cls(summary, tables.get(FINAL), folds)

    def digest(self) -> str:
        """What a resumed training state must match: the summary, which holds every table's sha256."""
        return hashlib.sha256(json.dumps(self.summary, sort_keys=True).encode()).hexdigest()
