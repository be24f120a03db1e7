"""OpenClipArt drawings by category (objects, people, signs...), from Debian's ``openclipart-png``."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd
from PIL import Image

from .sources import Archive
from .splits import Card, choose, deduplicated, write_images

MODALITY = "image"
ARCHIVES = (
    Archive("debian", "openclipart-png", "1:0.18+dfsg-19",
            "f07f1545a2970c2cf3fa339bc2405da1a95cf2b1827bfa05bf73eb1c20291c02"),
)  # fmt: skip
ROOT = "usr/share/openclipart/png"
CATEGORIES = (
    "animals", "buildings", "computer", "food", "geography", "office", "people", "plants", "recreation",
    "signs_and_symbols", "tools", "transportation",
)  # fmt: skip
MAX_SIDE = 256
# Smaller than this on a side carries no drawing a classifier could use (the one case is a 3x2 flag); tlpipe's
# default data.min_image_size is the same, so every drawing kept passes its checks.
MIN_SIDE = 8
# The largest drawing is a 20990x29700 poster; the limit admits it and still refuses a real bomb.
MAX_PIXELS = 1 << 30
CARD = Card(
    title="OpenClipArt by category",
    domain="Clip-art drawings (objects, people, signs, vehicles...) by their top-level OpenClipArt category",
    licence="Public domain (Creative Commons Public Domain Dedication; Debian's openclipart-png).",
    caveats=(
        f"Transparency is flattened onto white, and drawings larger than {MAX_SIDE} px are scaled down (Lanczos) "
        f"so that their longer side is {MAX_SIDE} px; very wide or tall drawings end up thin (a few have a shorter "
        "side of 10 to 16 px).",
        "The label is the top-level category folder; its subfolders (food/fruit, computer/icons, ...) are merged "
        "into it. Symbolic links (Debian's deduplicated copies) are skipped, and drawings that come out identical "
        "(one drawing saved twice) are kept once, or not at all where their categories differ.",
        "Categories vary in kind: 'computer' and 'signs_and_symbols' hold many icons and buttons, 'recreation' "
        "mixes music, sports, holidays and religion; series of near-identical drawings (one drawing in several "
        "colours) can put near-duplicates on both sides of the split.",
        "The other top-level folders are left out: shapes (jigsaw pieces, arrows, flowchart symbols, stars), "
        "special (patterns, gradients), unsorted, and the small buttons, containers, decorations, education, "
        "electronics, logos and science.",
    ),
    where=f"{ROOT}/<category>/**/*.png",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of the drawings of ``CATEGORIES`` into ``out``."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["dpkg-deb", "-x", str(files[0]), folder], check=True)
        root = Path(folder) / ROOT
        # Every drawing is drawn, not only the chosen ones: copies (one drawing saved twice, with other metadata
        # or at another size) and blank drawings only show once drawn, and must go before the split is chosen.
        drawn = {path.relative_to(root): _drawn(path) for category in CATEGORIES for path in _drawings(root / category)}
    kept = {path: png for path, png in drawn.items() if isinstance(png, bytes)}
    table = pd.DataFrame({"png": list(kept.values()), "label": [path.parts[0] for path in kept]})
    table = deduplicated(table, key="png")
    reasons = pd.Series([why for why in drawn.values() if isinstance(why, str)]).value_counts()
    caveats = [f"{count} drawings left out: {why}." for why, count in sorted(reasons.items())]
    card = replace(CARD, caveats=(*CARD.caveats, *caveats))

    def save(i: int, path: Path) -> None:
        path.write_bytes(table["png"][i])

    write_images(out, table["label"].tolist(), choose(table["label"]), card, ARCHIVES, save)


def _drawings(folder: Path) -> list[Path]:
    found = [Path(top) / name for top, _, names in os.walk(folder) for name in names if name.endswith(".png")]
    return sorted(path for path in found if not path.is_symlink())


@contextmanager
def _pixel_limit() -> Iterator[None]:
    """Within the block: Pillow's decompression-bomb limit is ``MAX_PIXELS``, its warning an error."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _drawn(path: Path) -> bytes | str:
    """The drawing at ``path`` as PNG bytes: on white, RGB, its longer side at most ``MAX_SIDE``; or why it is left
    out."""
    try:
        with _pixel_limit(), Image.open(path, formats=["PNG"]) as image:
            # Scaled down before flattening (Pillow resamples RGBA premultiplied), so posters are never copied whole.
            drawing = image if image.mode == "RGBA" else image.convert("RGBA")
            drawing.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            canvas = Image.new("RGB", drawing.size, "white")
            canvas.paste(drawing, mask=drawing.getchannel("A"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        return "Pillow cannot decode them"
    if all(low == high for low, high in canvas.getextrema()):
        return "blank (one colour once on white)"
    if min(canvas.size) < MIN_SIDE:
        return f"under {MIN_SIDE} px on their shorter side"
    png = io.BytesIO()
    canvas.save(png, format="PNG", compress_level=6)
    return png.getvalue()
