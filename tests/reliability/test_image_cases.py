"""The reliability table for image folders: each bad file stops `tlpipe validate` naming the file and its problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Case, check_case
from .images import (
    cmyk_mode,
    decompression_bomb,
    not_an_image,
    sixteen_bit,
    symlink_out_of_the_folder,
    too_small,
    truncated_png,
)

VALIDATE = ["validate"]

CASES = [
    Case("truncated PNG", truncated_png, VALIDATE, 1, ("data/raw/train/cat/truncated.png", "decodes")),
    Case("text file named .png", not_an_image, VALIDATE, 1,
         ("data/raw/train/cat/notes.png", "cannot be decoded as an image")),
    Case("symlink escaping the data folder", symlink_out_of_the_folder, VALIDATE, 1,
         ("data/raw/train/cat/link.png", "symbolic link leading outside")),
    Case("decompression bomb", decompression_bomb, VALIDATE, 1,
         ("data/raw/train/cat/bomb.png", "decompression bomb: 1600 pixels exceed data.max_image_pixels (1000)")),
    Case("CMYK image", cmyk_mode, VALIDATE, 1, ("data/raw/train/cat/print.jpg", "mode CMYK: convert to RGB")),
    Case("16-bit image", sixteen_bit, VALIDATE, 1, ("data/raw/train/cat/deep.png", "mode I;16: convert to RGB")),
    Case("image too small", too_small, VALIDATE, 1,
         ("data/raw/train/cat/dot.png", "2x2 pixels, below data.min_image_size (8)")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_image_stops_validate_naming_the_file_and_the_problem(case: Case, image_workspace: Path) -> None:
    check_case(case, image_workspace)
