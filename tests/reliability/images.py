"""A small image project (class folders of noise images) and the bad files the image rows put into it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from factories import REPO, write_image
from PIL import Image

TRAIN, TEST = Path("data/raw/train"), Path("data/raw/test")


def write_image_project(root: Path) -> None:
    """Three cats and three dogs to train on, one of each to test; params.yaml for images."""
    for label in ("cat", "dog"):
        for index in range(3):
            write_image(root / TRAIN / label / f"{index}.png")
        write_image(root / TEST / label / "0.png")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(raw_train=TRAIN.as_posix(), raw_test=TEST.as_posix())
    params["data"].update(modality="image", min_examples_per_class=3, min_image_size=8, max_image_pixels=1000)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def truncated_png(root: Path) -> None:
    path = write_image(root / TRAIN / "cat" / "truncated.png", size=(30, 30))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def not_an_image(root: Path) -> None:
    (root / TRAIN / "cat" / "notes.png").write_text("not an image\n")


def symlink_out_of_the_folder(root: Path) -> None:
    target = write_image(root / "elsewhere" / "secret.png")
    (root / TRAIN / "cat" / "link.png").symlink_to(target)


def decompression_bomb(root: Path) -> None:
    write_image(root / TRAIN / "cat" / "bomb.png", size=(40, 40))  # 1600 pixels > data.max_image_pixels 1000


def cmyk_mode(root: Path) -> None:
    write_image(root / TRAIN / "cat" / "print.jpg", "CMYK")


def sixteen_bit(root: Path) -> None:
    Image.fromarray(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 100).save(root / TRAIN / "cat" / "deep.png")


def too_small(root: Path) -> None:
    write_image(root / TRAIN / "cat" / "dot.png", size=(2, 2))
