"""Tabler icons by category (UI icons: system, devices, brands, arrows...), from the npm package ``@tabler/icons``.

The outline SVGs are rasterised by ``rsvg-convert`` from Debian's ``librsvg2-bin`` (the second archive), unpacked
into a temporary folder and run from there; it needs the system's cairo, pango and glib (Debian bookworm's).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from PIL import Image

from .sources import Archive
from .splits import Card, choose, deduplicated, write_images

MODALITY = "image"
ARCHIVES = (
    Archive("npm", "@tabler/icons", "3.52.0", "626620c7d42afd2f294fba167ce4653b5cb946336d186b4991c70b700e5616af"),
    Archive("debian", "librsvg2-bin", "2.54.7+dfsg-1~deb12u1",
            "2199db95318c03dd139e12477f410bffa910ef0c999aebf6acae18c7cd16487b"),
)  # fmt: skip
SIDE = 64
CARD = Card(
    title="Tabler icons by category",
    domain="Outline UI icons (black strokes on white) by their Tabler category",
    licence="MIT (@tabler/icons).",
    caveats=(
        f"Each outline SVG is rasterised at {SIDE}x{SIDE} on white by rsvg-convert 2.54.7 (librsvg2-bin, the "
        "second archive), with the system's cairo; another cairo version may anti-alias edges differently.",
        "Icons that rasterise to the same pixels are dropped (all copies where their categories differ, e.g. "
        "search/zoom); variants of one glyph (x, x-off, x-plus, ...) share a category and can fall on both sides "
        "of the split.",
        "Only the big categories survive the split rule; 'Brand' (company logos) and 'Letters'/'Numbers' "
        "(glyphs) are classes of a different kind from the others.",
    ),
    where="package/icons.json (each icon's category) and package/icons/outline/<name>.svg",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of the Tabler outline icons into ``out``."""
    with tarfile.open(files[0]) as package:
        icons = json.load(_member(package, "package/icons.json"))
        names = sorted(name for name, icon in icons.items() if icon.get("category") and "outline" in icon["styles"])
        svgs = [_member(package, f"package/icons/outline/{name}.svg").read() for name in names]
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(["dpkg-deb", "-x", str(files[1]), folder], check=True)
        convert = Path(folder) / "usr/bin/rsvg-convert"
        # Every icon is rasterised, not only the chosen ones: different SVGs can give the same pixels, and
        # duplicates must be dropped before the split is chosen.
        images = [_rasterised(convert, svg) for svg in svgs]
    table = pd.DataFrame({
        "pixels": [image.tobytes() for image in images],
        "label": [icons[name]["category"] for name in names],
        "row": range(len(names)),
    })  # fmt: skip
    table = deduplicated(table, key="pixels")

    def save(i: int, path: Path) -> None:
        Image.fromarray(images[table["row"][i]]).save(path, format="PNG", compress_level=6)

    write_images(out, table["label"].tolist(), choose(table["label"]), CARD, ARCHIVES, save)


def _member(package: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = package.extractfile(name)
    if handle is None:
        raise FileNotFoundError(f"{name} is not a file in the @tabler/icons package")
    return handle


def _rasterised(convert: Path, svg: bytes) -> np.ndarray:
    """``svg`` as ``SIDE``x``SIDE`` RGB pixels on white."""
    command = [str(convert), "--width", str(SIDE), "--height", str(SIDE), "--background-color", "white"]
    png = subprocess.run(command, input=svg, capture_output=True, check=True).stdout
    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        return np.asarray(image.convert("RGB"))
