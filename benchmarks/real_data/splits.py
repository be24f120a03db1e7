"""The fixed train/test split every dataset gets, and writing a built dataset (atomically) with its card.

The rule, the same for every dataset: a class is kept when it can give the benchmark's largest sample
(``LARGEST_SAMPLE`` per class) from its training rows and at least ``MIN_TEST`` test rows; its test rows are capped
at ``TEST_PER_CLASS`` and its training pool at ``TRAIN_POOL``, each drawn by a seeded permutation of the class's
rows (seed ``SPLIT_SEED``, mixed with the class name so that adding a class moves no other class's rows). Where
the source has an official split, it is kept; otherwise the test rows are drawn first. Exact duplicate inputs
are dropped (all copies, where they disagree on the label; and test rows that also appear in training).
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .sources import Archive

SPLIT_SEED = 0
LARGEST_SAMPLE = 64
MIN_TEST = 40
TEST_PER_CLASS = 100
TRAIN_POOL = 400
SIZES = (8, 16, 32, 64)


@dataclass(frozen=True)
class Card:
    """What a dataset's card says beyond the counts: where it comes from, its licence and its caveats."""

    title: str
    domain: str
    licence: str
    caveats: Sequence[str] = ()
    where: str = ""


@dataclass(frozen=True)
class Split:
    """Indices into a dataset's rows: the training pool and the test rows, and each dropped class's reason."""

    train: list[int]
    test: list[int]
    dropped: dict[str, str] = field(default_factory=dict)


def choose(labels: Sequence[str], official_test: Sequence[bool] | None = None) -> Split:
    """The split of rows with these ``labels`` (``official_test``: the source's own test rows, if it has them)."""
    frame = pd.DataFrame({"label": list(labels), "test": official_test if official_test is not None else False})
    train: list[int] = []
    test: list[int] = []
    dropped: dict[str, str] = {}
    for label, rows in sorted(frame.groupby("label").groups.items()):
        order = _permutation(str(label), len(rows))
        shuffled = np.asarray(rows)[order]
        if official_test is None:
            take = min(TEST_PER_CLASS, len(shuffled) - LARGEST_SAMPLE)
            tests, trains = list(shuffled[:take]), list(shuffled[max(take, 0) :])
        else:
            is_test = frame.loc[shuffled, "test"].to_numpy(dtype=bool)
            tests, trains = list(shuffled[is_test][:TEST_PER_CLASS]), list(shuffled[~is_test])
        if len(trains) < LARGEST_SAMPLE or len(tests) < MIN_TEST:
            dropped[str(label)] = f"{len(trains)} + {len(tests)}"
            continue
        train += [int(i) for i in trains[:TRAIN_POOL]]
        test += [int(i) for i in tests]
    return Split(sorted(train), sorted(test), dropped)


def deduplicated(table: pd.DataFrame, key: str = "text") -> pd.DataFrame:
    """``table`` without inputs that occur more than once: one copy kept where every copy has the same label,
    none where the labels disagree; then test rows (column ``test``, if any) whose input is also a training row."""
    labels_per_input = table.groupby(key)["label"].nunique()
    agreed = table[table[key].map(labels_per_input) == 1]
    if "test" in agreed:
        seen_in_train = set(agreed.loc[~agreed["test"], key])
        agreed = agreed[~(agreed["test"] & agreed[key].isin(seen_in_train))]
        return agreed.drop_duplicates(subset=[key, "test"]).reset_index(drop=True)
    return agreed.drop_duplicates(subset=[key]).reset_index(drop=True)


def write_texts(out: Path, table: pd.DataFrame, split: Split, card: Card, archives: Sequence[Archive]) -> None:
    """``table``'s rows (columns ``text``, ``label``) as ``train.csv`` and ``test.csv`` in ``out``, with the card."""

    def fill(folder: Path) -> None:
        for name, rows in (("train", split.train), ("test", split.test)):
            table.loc[rows, ["text", "label"]].to_csv(folder / f"{name}.csv", index=False)
        (folder / "CARD.md").write_text(card_text(card, archives, table["label"], split, "text"))

    _replace_folder(out, fill)


def write_images(
    out: Path, labels: Sequence[str], split: Split, card: Card, archives: Sequence[Archive],
    save: Callable[[int, Path], None],
) -> None:  # fmt: skip
    """Each chosen row ``i`` saved by ``save(i, path)`` as ``train/<label>/<i>.png`` or ``test/<label>/<i>.png``."""

    def fill(folder: Path) -> None:
        for name, rows in (("train", split.train), ("test", split.test)):
            for row in rows:
                path = folder / name / labels[row] / f"{row:06d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                save(row, path)
        (folder / "CARD.md").write_text(card_text(card, archives, pd.Series(list(labels)), split, "image"))

    _replace_folder(out, fill)


def card_text(card: Card, archives: Sequence[Archive], labels: pd.Series, split: Split, modality: str) -> str:
    """The card: title, domain, source archives, licence, the split rule, per-class counts and caveats."""
    train, test = labels.loc[split.train].value_counts(), labels.loc[split.test].value_counts()
    rows = [f"| {label} | {train[label]} | {test[label]} |" for label in sorted(train.index)]
    dropped = ", ".join(f"`{label}` ({why})" for label, why in sorted(split.dropped.items())) or "none"
    caveats = [f"- {caveat}" for caveat in card.caveats] or ["- none known"]
    sources = [f"- {archive.describe()}" for archive in archives]
    layout = ("`train.csv` and `test.csv`, columns `text,label`" if modality == "text"
              else "`train/<class>/*.png` and `test/<class>/*.png`")  # fmt: skip
    return "\n".join([
        f"# {card.title}", "", f"{card.domain} ({modality}, {len(train)} classes; {layout}).", "",
        "## Source", "", *sources, *([f"- in the archive: {card.where}"] if card.where else []), "",
        f"## Licence\n\n{card.licence}\n",
        "## Split", "",
        f"Fixed, seed {SPLIT_SEED} (`benchmarks/real_data/splits.py`): a class is kept when it has at least "
        f"{LARGEST_SAMPLE} training and {MIN_TEST} test rows; test rows capped at {TEST_PER_CLASS} per class, the "
        f"training pool at {TRAIN_POOL}. The benchmark samples {', '.join(map(str, SIZES))} per class from the "
        f"training pool (seeded; `tlpipe.datasets.examples_per_class`).", "",
        f"{len(split.train)} training rows, {len(split.test)} test rows.", "",
        "| class | train | test |", "|---|---|---|", *rows, "",
        f"Classes left out (training + test rows they had): {dropped}.", "",
        "## Caveats", "", *caveats, "",
    ])  # fmt: skip


def _permutation(label: str, count: int) -> np.ndarray:
    return np.random.default_rng([SPLIT_SEED, zlib.crc32(label.encode())]).permutation(count)


def _replace_folder(out: Path, fill: Callable[[Path], None]) -> None:
    # Built beside the target and swapped in whole: an interrupted build leaves the previous dataset intact.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging, previous = out.with_name(f".{out.name}.building"), out.with_name(f".{out.name}.previous")
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir()
    fill(staging)
    if out.exists():
        os.replace(out, previous)
    os.replace(staging, out)
    shutil.rmtree(previous, ignore_errors=True)
