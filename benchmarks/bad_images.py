"""What tlpipe reports for each kind of bad image file, with and without ``data.skip_bad_files``.

Builds a small image dataset in a temporary folder: good PNG and JPEG images of two classes, one
bad file of each kind next to them, a few cross-file problems (a duplicate, a test image copied
from train, a test label train lacks), and a CSV manifest listing the training files. Runs
``read_image_manifest`` and ``run_image_checks`` on it twice, with ``data.skip_bad_files`` off and
on, and prints a Markdown table (one row per case: what the checks reported, and what happened
with skipping on), also written to benchmarks/results/bad_images.md.

    .venv/bin/python benchmarks/bad_images.py
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import great_expectations as gx
import numpy as np
import pandas as pd
import PIL
from PIL import Image

from tlpipe.config import DataConfig
from tlpipe.modalities.image.data import read_image_manifest
from tlpipe.modalities.image.quality import run_image_checks
from tlpipe.quality import QualityReport

REPO = Path(__file__).resolve().parents[1]
TRAIN, TEST = Path("data/train"), Path("data/test")
# Small limits so that a 40x40 image is a "decompression bomb" and a 1x1 one is too small; every offending
# row shown, so each case can be found in the report.
DATA = DataConfig(min_examples_per_class=3, min_image_size=8, max_image_pixels=1000, report_rows=20)


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (24, 24), seed: int = 0) -> Path:
    """A noise image saved in the format its suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def truncated_jpeg() -> Path:
    path = write_image(TRAIN / "cat" / "truncated.jpg", size=(31, 31), seed=101)  # half of it still has the header
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def zero_byte_file() -> Path:
    path = TRAIN / "cat" / "empty.jpg"
    path.write_bytes(b"")
    return path


def text_named_jpg() -> Path:
    path = TRAIN / "cat" / "notes.jpg"
    path.write_text("meeting notes, not a photo\n")
    return path


def one_pixel_image() -> Path:
    return write_image(TRAIN / "cat" / "dot.png", size=(1, 1), seed=102)


def cmyk_jpeg() -> Path:
    return write_image(TRAIN / "cat" / "print.jpg", "CMYK", seed=103)


def sixteen_bit_png() -> Path:
    path = TRAIN / "cat" / "depth.png"
    Image.fromarray(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 100).save(path)
    return path


def decompression_bomb() -> Path:
    return write_image(TRAIN / "cat" / "bomb.png", size=(40, 40), seed=104)


def symlink_outside() -> Path:
    target = write_image(Path("elsewhere/secret.png"), seed=105).absolute()
    link = TRAIN / "cat" / "link.png"
    link.symlink_to(target)
    return link


def class_folder_symlink_outside() -> Path:
    write_image(Path("elsewhere/bird/0.png"), seed=106)
    (TRAIN / "bird").symlink_to(Path("elsewhere/bird").absolute(), target_is_directory=True)
    return TRAIN / "bird" / "0.png"


def manifest_path_with_dot_dot() -> Path:
    write_image(Path("data/secret.png"), seed=107)
    return TRAIN / ".." / "secret.png"


def duplicate_in_train() -> Path:
    path = TRAIN / "dog" / "copy.png"
    path.write_bytes((TRAIN / "dog" / "0.png").read_bytes())
    return path


def same_image_in_train_and_test() -> Path:
    path = TEST / "cat" / "leak.png"
    path.write_bytes((TRAIN / "cat" / "0.png").read_bytes())
    return path


def unknown_test_label() -> Path:
    return write_image(TEST / "bird" / "0.png", seed=108)


CASES: dict[str, Callable[[], Path]] = {
    "truncated JPEG (second half cut off)": truncated_jpeg,
    "zero-byte file": zero_byte_file,
    "text file named .jpg": text_named_jpg,
    "1x1 pixel image": one_pixel_image,
    "CMYK JPEG": cmyk_jpeg,
    "16-bit PNG (mode I;16)": sixteen_bit_png,
    "decompression bomb (40x40 with max_image_pixels 1000)": decompression_bomb,
    "symlink to a file outside the data folder": symlink_outside,
    "class folder symlinked from outside": class_folder_symlink_outside,
    "manifest path with '..'": manifest_path_with_dot_dot,
    "same image twice in train": duplicate_in_train,
    "same image in train and test": same_image_in_train_and_test,
    "test label not in train": unknown_test_label,
}


def build_dataset() -> dict[str, str]:
    """Good images, then one bad file per case, then the train manifest; returns each case's manifest path."""
    for index, (label, mode, name) in enumerate(
        [("cat", "RGB", "0.png"), ("cat", "L", "1.jpg"), ("cat", "RGBA", "2.png")]
        + [("dog", "P", "0.png"), ("dog", "RGB", "1.jpg"), ("dog", "L", "2.png")]
    ):
        write_image(TRAIN / label / name, mode, seed=index)
    write_image(TEST / "cat" / "0.png", seed=10)
    write_image(TEST / "dog" / "0.jpg", seed=11)
    paths = {case: build().as_posix() for case, build in CASES.items()}
    files = sorted(path for label in TRAIN.iterdir() for path in label.iterdir())
    rows = [(path.relative_to("data").as_posix(), path.parent.name) for path in files]
    rows.append(("train/../secret.png", "cat"))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv("data/train.csv", index=False)
    return paths


def reported(report: QualityReport, path: str) -> list[str]:
    """Each failed check that lists ``path``, with what is wrong with the file."""
    lines = []
    for check in report.failures:
        for example in check.examples:
            if example.get("path") == path:
                lines.append(f"{check.file}: *{check.description}* failed: `{path}`{_detail(example)}")
    return lines


def _detail(example: dict) -> str:
    if example.get("problem"):
        return f": {example['problem']}"
    if example.get("also_in_train"):
        return f": also in train as `{example['also_in_train']}`"
    return ""


def with_skipping(report: QualityReport, path: str) -> str:
    skipped = [entry for entry in report.skipped if entry["path"] == path]
    if skipped:
        return f"skipped, listed in the report: {skipped[0]['problem']}"
    still = reported(report, path)
    return "still fails: " + "; ".join(still) if still else "passes"


def run_cases() -> tuple[str, QualityReport, QualityReport]:
    """The Markdown table of every case, and the two reports it came from."""
    paths = build_dataset()
    train = read_image_manifest(Path("data/train.csv"), DATA)
    test = read_image_manifest(TEST, DATA)
    strict = run_image_checks(train, test, DATA)
    lenient = run_image_checks(train, test, DATA.model_copy(update={"skip_bad_files": True}))
    lines = ["| case | what tlpipe reported | with skip_bad_files |", "|---|---|---|"]
    for case, path in paths.items():
        found = "<br>".join(reported(strict, path)) or "**not reported**"
        lines.append(f"| {case} | {_cell(found)} | {_cell(with_skipping(lenient, path))} |")
    return "\n".join(lines), strict, lenient


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "bad_images.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        table, strict, lenient = run_cases()
    summary = (
        f"skip_bad_files false: {len(strict.failures)} of {len(strict.checks)} checks failed. "
        f"skip_bad_files true: {len(lenient.skipped)} files skipped, {len(lenient.failures)} checks still failed "
        "(duplicates, leakage and unknown labels are not per-file problems, so they are never skipped)."
    )
    versions = f"Pillow {PIL.__version__}, Great Expectations {gx.__version__}; settings: {_settings()}."
    text = f"# What tlpipe reports for bad image files\n\n{versions}\n\n{table}\n\n{summary}\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)


def _settings() -> str:
    return ", ".join(
        f"data.{key} = {getattr(DATA, key)}"
        for key in ("min_image_size", "max_image_pixels", "min_examples_per_class", "report_rows")
    )


if __name__ == "__main__":
    main()
