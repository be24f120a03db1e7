"""Reading image data: a folder per class or a CSV manifest, into a manifest that describes every file.

``paths.raw_train`` / ``paths.raw_test`` name either a folder with one subfolder of images per
class (torchvision's ImageFolder layout) or a CSV manifest with a path and a label column, its
paths relative to the manifest's folder. ``read_image_manifest`` turns either into one row per
image file: its path, label, content hash, size, Pillow mode, and the problem that makes it
unusable, if any. The data checks (``tlpipe.modalities.image.quality``) judge those rows; nothing
here raises for a bad file, so one broken JPEG is a line in the report, not a traceback.

Every file is fully decoded (``Image.load()``), because Pillow's ``open`` only reads the header
and a truncated JPEG would otherwise pass here and fail in the middle of training. Each file is
read once, into memory, so that the hash and the decoded pixels come from the same bytes. The
size is checked against ``data.max_image_pixels`` before any pixel is decoded, and Pillow's own
decompression-bomb check (which plugins repeat for frames and tiles while decoding) runs with the
same limit, its warning raised as an error; Pillow's global settings are restored afterwards.
Symbolic links leading outside the data folder and manifest paths that are absolute or contain
``..`` are reported and never opened, so a manifest cannot make the pipeline read (or leak into a
model) files it was not given.

``load_rgb`` is the one way an image becomes pixels for training, evaluation and the exported
bundle: ``Image.convert("RGB")`` whatever the mode. For palette and alpha images this drops the
alpha channel, so a transparent pixel takes its stored colour (often black) rather than being
composited on white; it is kept this simple because the bundle's predict code must repeat it
exactly, in a few lines anyone can copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

from tlpipe.config import DataConfig
from tlpipe.datasets import read_csv_strings
from tlpipe.errors import DataValidationError
from tlpipe.modalities.image.settings import data_of

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Pillow identifies files by content; only these formats may be tried, whatever the extension says.
PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
MANIFEST_COLUMNS = ["path", "label", "sha256", "width", "height", "mode", "decodable", "problem"]

OUTSIDE_LINK = "symbolic link leading outside the data folder"
_PROGRESS_FROM = 100  # files; smaller folders are scanned without progress lines


@dataclass(frozen=True)
class _Entry:
    """A file to describe; ``problem`` set beforehand means it must not be opened."""

    file: Path
    label: str
    problem: str = ""


def read_image_manifest(path: Path, data: DataConfig) -> pd.DataFrame:
    """One row per image file of a class folder tree or CSV manifest (columns ``MANIFEST_COLUMNS``), sorted by path."""
    if path.is_dir():
        entries = _folder_entries(path, data)
    elif path.is_file():
        entries = _manifest_entries(path, data)
    else:
        raise DataValidationError(f"{path}: no such file or folder. {_layout_help(data)}")
    rows = _describe_all(entries, data_of(data).max_image_pixels)
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).astype({"width": int, "height": int, "decodable": bool})
    return manifest.sort_values("path", kind="stable").reset_index(drop=True)


def read_pool_manifest(path: Path, data: DataConfig) -> pd.DataFrame:
    """One row per image file of an unlabelled pool (columns ``MANIFEST_COLUMNS``, label empty): every image under a
    folder, subfolders included, or the ``data.path_column`` of a CSV manifest; sorted by path."""
    if path.is_dir():
        entries = _class_entries(path, path.resolve())
    elif path.is_file():
        table = read_csv_strings(path, "CSV manifest")
        column = data_of(data).path_column
        if column not in table.columns:
            found = ", ".join(map(str, table.columns)) or "none"
            raise DataValidationError(
                f"{path}: no column '{column}' (found: {found}). An unlabelled pool is a folder of images, or a CSV "
                "manifest with the image path column (data.path_column); it needs no label column."
            )
        entries = [_manifest_entry(path.parent, path.parent.resolve(), given, "") for given in table[column]]
    else:
        raise DataValidationError(f"{path}: no such file or folder. An unlabelled pool is a folder of images or a CSV.")
    rows = _describe_all([dataclasses.replace(entry, label="") for entry in entries], data_of(data).max_image_pixels)
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).astype({"width": int, "height": int, "decodable": bool})
    return manifest.sort_values("path", kind="stable").reset_index(drop=True)


def load_rgb(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB pixels, converted exactly as training, evaluation and the bundle do."""
    with Image.open(path, formats=PILLOW_FORMATS) as image:
        return image.convert("RGB")


@contextmanager
def _pixel_limit(max_pixels: int | None) -> Iterator[None]:
    """Within the block: Pillow's decompression-bomb limit is ``max_pixels`` (None: off), its warning an error."""
    previous = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # another library may have switched it on; truncation must be seen
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _layout_help(data: DataConfig) -> str:
    return (
        "Expected a folder with one subfolder of images per class (e.g. train/cat/0001.jpg), or a CSV manifest "
        f"with columns {data_of(data).path_column},{data.label_column} (paths relative to the CSV's folder); "
        "set paths.raw_train / paths.raw_test in params.yaml."
    )


def _folder_entries(root: Path, data: DataConfig) -> list[_Entry]:
    children = _visible(root)
    classes = [child for child in children if child.is_dir()]
    if not classes:
        raise DataValidationError(f"{root}: no class subfolders found. {_layout_help(data)}")
    loose = [child for child in children if child.is_file() and _is_image_name(child)]
    if loose:
        log.warning("%d images directly in %s are ignored: put each in the subfolder of its class", len(loose), root)
    boundary = root.resolve()
    return [entry for folder in classes for entry in _class_entries(folder, boundary)]


def _class_entries(folder: Path, boundary: Path) -> list[_Entry]:
    """The image files under one class folder, subfolders included; links leading outside become problem rows."""
    label = folder.name
    if not _inside(folder, boundary):
        return [_Entry(folder, label, OUTSIDE_LINK)]
    entries, seen, pending = [], set(), [folder]
    while pending:
        current = pending.pop()
        key = current.resolve()
        if key in seen:  # a link back up the tree would loop forever
            continue
        seen.add(key)
        for child in _visible(current):
            if child.is_dir():
                if _inside(child, boundary):
                    pending.append(child)
                else:
                    entries.append(_Entry(child, label, OUTSIDE_LINK))
            elif _is_image_name(child):
                entries.append(_Entry(child, label, "" if _inside(child, boundary) else OUTSIDE_LINK))
    return entries


def _manifest_entries(manifest: Path, data: DataConfig) -> list[_Entry]:
    table = read_csv_strings(manifest, "CSV manifest")
    path_column = data_of(data).path_column
    missing = [column for column in (path_column, data.label_column) if column not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns)) or "none"
        raise DataValidationError(
            f"{manifest}: missing column(s) {', '.join(missing)} (found: {found}). {_layout_help(data)} "
            "Name your columns in data.path_column / data.label_column."
        )
    base = manifest.parent
    boundary = base.resolve()
    pairs = zip(table[path_column], table[data.label_column], strict=True)
    return [_manifest_entry(base, boundary, given, label) for given, label in pairs]


def _manifest_entry(base: Path, boundary: Path, given: str, label: str) -> _Entry:
    relative = Path(given)
    file = base / relative
    if not given.strip():
        return _Entry(file, label, "empty path")
    if relative.is_absolute():
        return _Entry(file, label, "absolute path: manifest paths must be relative to the manifest's folder")
    if ".." in relative.parts:
        return _Entry(file, label, "path leaves the manifest's folder ('..')")
    return _Entry(file, label, "" if _inside(file, boundary) else OUTSIDE_LINK)


def _visible(folder: Path) -> list[Path]:
    return sorted(child for child in folder.iterdir() if not child.name.startswith("."))


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _inside(path: Path, boundary: Path) -> bool:
    try:
        return path.resolve().is_relative_to(boundary)
    except (OSError, RuntimeError):  # a symlink loop: nothing safe to open
        return False


def _describe_all(entries: list[_Entry], max_pixels: int) -> list[dict[str, Any]]:
    rows = []
    step = max(1, len(entries) // 10)
    for done, entry in enumerate(entries, start=1):
        rows.append(_describe(entry, max_pixels))
        if len(entries) >= _PROGRESS_FROM and (done % step == 0 or done == len(entries)):
            log.info("Scanned %d/%d images", done, len(entries))
    return rows


def _describe(entry: _Entry, max_pixels: int) -> dict[str, Any]:
    row = {"path": _shown_path(entry.file), "label": entry.label, "sha256": "", **_undecodable(entry.problem)}
    if entry.problem:
        return row
    try:
        content = entry.file.read_bytes()
    except OSError as exc:
        return {**row, **_undecodable(_read_problem(entry.file, exc))}
    row["sha256"] = hashlib.sha256(content).hexdigest()
    if not content:
        return {**row, **_undecodable("empty file (0 bytes)")}
    return {**row, **_decode(content, max_pixels)}


def _read_problem(file: Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file (broken symbolic link)" if file.is_symlink() else "no such file"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not an image file"
    return f"cannot be read: {exc.strerror or exc}"


def _decode(content: bytes, max_pixels: int) -> dict[str, Any]:
    """Size, mode and problem of an image file's bytes, after a full decode."""
    try:
        # Pillow's check in open() would refuse a bomb without saying its size. Opening reads only the
        # header, and the same limit is applied to that size just below, before any pixel is decoded.
        with _pixel_limit(None):
            image = Image.open(io.BytesIO(content), formats=PILLOW_FORMATS)
        with image, _pixel_limit(max_pixels):
            pixels = image.width * image.height
            if pixels > max_pixels:
                return _undecodable(f"decompression bomb: {pixels} pixels exceed data.max_image_pixels ({max_pixels})")
            width, height, mode = image.width, image.height, image.mode
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return _undecodable(f"decompression bomb: {exc}")
    except UnidentifiedImageError:
        return _undecodable("cannot be decoded as an image: not a JPEG, PNG, BMP, GIF, WebP or TIFF file")
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, EOFError...: all mean a bad file
        if "truncated" in str(exc).lower():
            return _undecodable("truncated image data")
        return _undecodable(f"cannot be decoded as an image: {exc}")
    return {"width": width, "height": height, "mode": mode, "decodable": True, "problem": ""}


def _undecodable(problem: str) -> dict[str, Any]:
    return {"width": 0, "height": 0, "mode": "", "decodable": False, "problem": problem}


def _shown_path(file: Path) -> str:
    """POSIX path relative to the project root (the working directory) when under it, else as given."""
    try:
        return file.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return file.as_posix()
