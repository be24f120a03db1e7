"""FOLDOC, the Free On-line Dictionary of Computing (a definition's subject), from Debian's dict-foldoc."""

from __future__ import annotations

import gzip
import re
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from .sources import Archive
from .splits import Card, choose, deduplicated, write_texts

MODALITY = "text"
ARCHIVES = (
    Archive("debian", "dict-foldoc", "20230119-1", "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3"),
)
DICTIONARY = "usr/share/dictd/foldoc"
MAX_CHARS = 4000
CARD = Card(
    title="FOLDOC by subject",
    domain="Definitions from the Free On-line Dictionary of Computing, by the subject tag of the entry",
    licence="GFDL-1.1 or later (Debian's dict-foldoc).",
    caveats=(
        "The label is the entry's first <tag>; every <tag> is removed from the text, as are the {cross-reference} "
        "braces and the (YYYY-MM-DD) dates. The headword stays at the start of the text.",
        "Entries with no tag are left out; aliases (several headwords for one entry) count once.",
        f"Texts are cut at {MAX_CHARS:,} characters.",
    ),
    where=f"{DICTIONARY}.dict.dz and {DICTIONARY}.index (dictd format)",
)
TAG = re.compile(r"<([a-z][a-z ,.-]*)>")


def build(files: list[Path], out: Path) -> None:
    """The split and card of FOLDOC's tagged entries into ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["dpkg-deb", "-x", str(files[0]), folder], check=True)
        index = (Path(folder) / f"{DICTIONARY}.index").read_text(encoding="utf-8")
        with gzip.open(Path(folder) / f"{DICTIONARY}.dict.dz") as dictionary:
            data = dictionary.read()
    places = sorted({tuple(line.split("\t")[1:3]) for line in index.splitlines() if line.count("\t") == 2})
    rows = [_entry(data[_number(at) : _number(at) + _number(size)].decode("utf-8", "replace")) for at, size in places]
    table = pd.DataFrame([row for row in rows if row], columns=["text", "label"])
    table = deduplicated(table)
    write_texts(out, table, choose(table["label"]), CARD, ARCHIVES)


def _entry(text: str) -> tuple[str, str] | None:
    headword, _, body = text.strip().partition("\n")
    tag = TAG.search(body)
    if headword.startswith("00") or tag is None:
        return None
    body = re.sub(r"\(\d{4}-\d{2}-\d{2}\)", " ", TAG.sub(" ", body)).replace("{", "").replace("}", "")
    return " ".join(f"{headword}: {body}".split())[:MAX_CHARS], tag.group(1).split(",")[0].strip()


def _number(encoded: str) -> int:
    # dictd's index writes offsets and lengths in base 64 with the alphabet of RFC 4648, most significant first.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = 0
    for character in encoded:
        value = value * 64 + alphabet.index(character)
    return value
